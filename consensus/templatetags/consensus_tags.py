"""Template filters of the consensus pages."""

from __future__ import annotations

from typing import Any

from django import template

register = template.Library()


@register.filter
def hexbytes(value: Any) -> str:
    """Hex of a binary field (bytes or memoryview); empty for None or a missing variable."""
    if value is None or isinstance(value, str):
        return ""
    return bytes(value).hex()


@register.filter
def printable(value: Any) -> str:
    """A payload as text when it is printable UTF-8, else its hex (shortened)."""
    data = bytes(value)
    try:
        text = data.decode()
    except UnicodeDecodeError:
        text = ""
    if text and text.isprintable():
        return text if len(text) <= 120 else text[:117] + "..."
    hexed = data.hex()
    return hexed if len(hexed) <= 120 else hexed[:117] + "..."
