"""Canonical encoding and hashing: one way each (ARCHITECTURE.md §3).

Every signed off-chain object is reduced to bytes the same way on every node:
RFC 8785 JSON Canonicalization of a JSON value. Amounts are integers in minor units, so
floats are refused outright: RFC 8785 would encode them, but two implementations that round
differently must never disagree on what was signed.
"""

from __future__ import annotations

import hashlib
from typing import Any, NewType

import rfc8785

Digest = NewType("Digest", bytes)
"""A 32-byte SHA-256 digest."""

# JSON integers beyond this lose precision in JavaScript and in I-JSON (RFC 7493), which
# RFC 8785 assumes. Larger amounts travel as decimal strings.
MAX_SAFE_INTEGER = 2**53 - 1


class CanonicalEncodingError(ValueError):
    """The value cannot be encoded canonically (a float, a huge integer, a non-string key)."""


def _check(value: Any, path: str) -> None:
    if value is None or isinstance(value, (bool, str)):
        return
    if isinstance(value, int):
        if abs(value) > MAX_SAFE_INTEGER:
            raise CanonicalEncodingError(f"{path}: integer {value} is beyond 2**53-1; send it as a string")
        return
    if isinstance(value, float):
        raise CanonicalEncodingError(f"{path}: floats are not allowed; use integers in minor units")
    if isinstance(value, (list, tuple)):
        for index, item in enumerate(value):
            _check(item, f"{path}[{index}]")
        return
    if isinstance(value, dict):
        for key, item in value.items():
            if not isinstance(key, str):
                raise CanonicalEncodingError(f"{path}: object keys must be strings, got {key!r}")
            _check(item, f"{path}.{key}")
        return
    raise CanonicalEncodingError(f"{path}: {type(value).__name__} is not a JSON value")


def canonical(value: Any) -> bytes:
    """Return the RFC 8785 canonical JSON bytes of ``value``."""
    _check(value, "$")
    return rfc8785.dumps(value)


def sha256(data: bytes) -> Digest:
    return Digest(hashlib.sha256(data).digest())


def domain_bytes(kind: str, value: Any) -> bytes:
    """The bytes that are signed and hashed for an object of ``kind``.

    ``b"parsec/v1/<kind>\\x00" + canonical(value)``: the domain prefix keeps a signature on
    one kind of object from ever being replayed as a signature on another.
    """
    if not kind or "\x00" in kind or not kind.isascii():
        raise CanonicalEncodingError(f"bad object kind {kind!r}")
    return b"parsec/v1/" + kind.encode("ascii") + b"\x00" + canonical(value)


def object_hash(kind: str, value: Any) -> Digest:
    """SHA-256 of the domain-separated canonical bytes: the identity of a signed object."""
    return sha256(domain_bytes(kind, value))
