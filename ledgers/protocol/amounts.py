"""Amounts: integers in minor units, parsed from and formatted to decimal strings.

Never floats (ARCHITECTURE.md §3). The maximum is ``2**63 - 1`` so any amount, balance or
supply fits a PostgreSQL ``bigint``. Canonical JSON only carries integers up to ``2**53 - 1``
exactly (settlement.protocol.encoding), so inside signed bodies amounts travel as strings of
decimal digits in minor units (``"1050"`` is 10.50 EUR): the same bytes on every node.
"""

from __future__ import annotations

import re
from typing import NewType

from ledgers.protocol.errors import AmountOverflow, BadAmount

MinorUnits = NewType("MinorUnits", int)

MAX_AMOUNT = MinorUnits(2**63 - 1)
"""Largest amount, balance, credit line or outstanding supply: PostgreSQL bigint's maximum."""

_DECIMAL_RE = re.compile(r"(?P<whole>0|[1-9][0-9]*)(?:\.(?P<fraction>[0-9]+))?")
_MINOR_RE = re.compile(r"0|[1-9][0-9]*")


def check_amount(value: object) -> MinorUnits:
    """Return ``value`` if it is a positive integer amount within :data:`MAX_AMOUNT`."""
    # bool is an int subclass; True is not "one cent".
    if isinstance(value, bool) or not isinstance(value, int):
        raise BadAmount(f"amount must be an integer number of minor units, got {type(value).__name__}")
    if value <= 0:
        raise BadAmount("amount must be positive")
    if value > MAX_AMOUNT:
        raise AmountOverflow(f"amount is beyond the maximum of {MAX_AMOUNT} minor units")
    return MinorUnits(value)


def parse_amount(text: object, *, decimals: int) -> MinorUnits:
    """Parse a decimal string such as ``"10.50"`` into minor units for an asset with ``decimals``.

    Strings only: a float has already been rounded by the time it arrives here. More fraction
    digits than the asset has are refused rather than rounded, so nobody loses a cent silently.
    """
    if not isinstance(text, str):
        raise BadAmount(f"amount must be a decimal string such as '10.50', got {type(text).__name__}")
    match = _DECIMAL_RE.fullmatch(text)
    if match is None:
        raise BadAmount(f"{text[:40]!r} is not a plain decimal number such as '10.50'")
    fraction = match.group("fraction") or ""
    if len(fraction) > decimals:
        raise BadAmount(f"this asset has {decimals} decimals; {text!r} has {len(fraction)}")
    if len(match.group("whole")) > 20:  # cheap guard before int() on absurd input
        raise AmountOverflow(f"amount is beyond the maximum of {MAX_AMOUNT} minor units")
    value = int(match.group("whole") + fraction.ljust(decimals, "0"))
    return check_amount(value)


def format_amount(value: int, *, decimals: int) -> str:
    """Minor units to a decimal string with exactly ``decimals`` fraction digits (negatives too)."""
    if isinstance(value, bool) or not isinstance(value, int):
        raise BadAmount("amount must be an integer number of minor units")
    sign = "-" if value < 0 else ""
    digits = str(abs(value)).rjust(decimals + 1, "0")
    if decimals == 0:
        return sign + digits
    return f"{sign}{digits[:-decimals]}.{digits[-decimals:]}"


def amount_to_wire(value: MinorUnits) -> str:
    """The form an amount takes inside a signed body: decimal digits of minor units."""
    return str(value)


def amount_from_wire(text: object) -> MinorUnits:
    """Inverse of :func:`amount_to_wire`; one spelling per amount (no sign, no leading zeros)."""
    if not isinstance(text, str) or len(text) > 19 or not _MINOR_RE.fullmatch(text):
        raise BadAmount(f"amount in a body must be a string of digits in minor units, got {text!r}")
    return check_amount(int(text))


def check_balance(value: int, *, what: str = "balance") -> int:
    """A balance may be negative (credit lines) but must stay within bigint's range."""
    if not -MAX_AMOUNT <= value <= MAX_AMOUNT:
        raise AmountOverflow(f"{what} would leave the range of {MAX_AMOUNT} minor units")
    return value
