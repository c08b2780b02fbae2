"""Identifiers and amounts: LEIs, federation addresses, integer minor units.

Pure and strict: each parser either returns the one normal form or raises a typed error
with a sentence a person can act on.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import NewType

__all__ = [
    "MAX_AMOUNT",
    "MAX_DECIMALS",
    "AmountError",
    "FederationAddress",
    "IdentifierError",
    "InvalidFederationAddress",
    "InvalidLEI",
    "Lei",
    "MinorUnits",
    "amount_from_wire",
    "amount_to_wire",
    "check_amount",
    "format_amount",
    "is_valid_lei",
    "lei_check_digits",
    "parse_amount",
    "parse_federation_address",
    "validate_lei",
]

Lei = NewType("Lei", str)
MinorUnits = NewType("MinorUnits", int)

# The largest amount a contract can hold (uint256), so every off-chain amount can settle on
# chain. It is far beyond 2**53-1, so amounts travel on the wire as decimal strings.
MAX_AMOUNT = 2**256 - 1
# 10**77 < 2**256 < 10**78: more decimals than 77 would make one whole unit unrepresentable.
MAX_DECIMALS = 77


class IdentifierError(ValueError):
    """Base class of the errors in this module."""


class InvalidLEI(IdentifierError):  # noqa: N818 - the name is the interface
    """Not a well-formed ISO 17442 Legal Entity Identifier."""


class InvalidFederationAddress(IdentifierError):  # noqa: N818 - the name is the interface
    """Not a ``name*domain`` federation address."""


class AmountError(IdentifierError):
    """Not an amount: a float, a negative, too many decimals, or beyond :data:`MAX_AMOUNT`."""


# --- LEI (ISO 17442, check digits ISO 7064 MOD 97-10) -------------------------------------

_LEI_SHAPE = re.compile(r"[0-9A-Z]{18}[0-9]{2}")


def _lei_number(text: str) -> int:
    # ISO 7064 MOD 97-10 reads letters as two-digit numbers: A=10 ... Z=35.
    return int("".join(str(int(char, 36)) for char in text))


def lei_check_digits(prefix: str) -> str:
    """The two check digits that complete an 18-character LEI prefix."""
    if not re.fullmatch(r"[0-9A-Z]{18}", prefix or ""):
        raise InvalidLEI("an LEI prefix is 18 upper-case letters or digits")
    return f"{98 - _lei_number(prefix + '00') % 97:02d}"


def validate_lei(value: str) -> Lei:
    """Return ``value`` as an LEI, or raise :class:`InvalidLEI` saying what is wrong."""
    if not isinstance(value, str) or len(value) != 20:
        raise InvalidLEI("an LEI is exactly 20 characters")
    if not _LEI_SHAPE.fullmatch(value):
        raise InvalidLEI("an LEI is 18 upper-case letters or digits followed by two check digits")
    if _lei_number(value) % 97 != 1:
        raise InvalidLEI("this LEI's check digits are wrong (ISO 7064 MOD 97-10); check for a typo")
    return Lei(value)


def is_valid_lei(value: str) -> bool:
    try:
        validate_lei(value)
    except InvalidLEI:
        return False
    return True


# --- federation addresses (Stellar SEP-0002 shape) ----------------------------------------

# SEP-0002: the name is printable UTF-8 without whitespace or any of < * , >; it may hold @.
_FORBIDDEN_IN_NAME = set("<*,>")
_DOMAIN_LABEL = re.compile(r"[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?")
MAX_NAME_LENGTH = 64
MAX_DOMAIN_LENGTH = 253


@dataclass(frozen=True)
class FederationAddress:
    """``name*domain``, both in lower case: addresses compare case-insensitively."""

    name: str
    domain: str

    def __str__(self) -> str:
        return f"{self.name}*{self.domain}"


def parse_federation_address(text: str) -> FederationAddress:
    if not isinstance(text, str) or text.count("*") != 1:
        raise InvalidFederationAddress("a federation address is name*domain, with exactly one *")
    name, domain = text.split("*")
    if not name or len(name) > MAX_NAME_LENGTH:
        raise InvalidFederationAddress(f"the name before * must be 1 to {MAX_NAME_LENGTH} characters")
    if any(char in _FORBIDDEN_IN_NAME or char.isspace() or not char.isprintable() for char in name):
        raise InvalidFederationAddress("the name may not contain spaces, control characters or < * , >")
    domain = domain.lower()
    labels = domain.split(".")
    if (
        not domain
        or len(domain) > MAX_DOMAIN_LENGTH
        or len(labels) < 2
        or not all(_DOMAIN_LABEL.fullmatch(label) for label in labels)
    ):
        raise InvalidFederationAddress(
            f"{domain!r} is not a domain name like bank-a.test (letters, digits, hyphens, dots)"
        )
    return FederationAddress(name=name.lower(), domain=domain)


# --- amounts: integers in minor units -----------------------------------------------------

_DECIMAL = re.compile(r"(0|[1-9][0-9]*)(?:\.([0-9]+))?")


def _check_decimals(decimals: int) -> None:
    if isinstance(decimals, bool) or not isinstance(decimals, int) or not 0 <= decimals <= MAX_DECIMALS:
        raise AmountError(f"decimals must be an integer from 0 to {MAX_DECIMALS}")


def check_amount(value: object) -> MinorUnits:
    """``value`` if it is an int amount in minor units; floats and bools are refused."""
    if isinstance(value, bool) or not isinstance(value, int):
        raise AmountError(f"an amount is an integer in minor units, not {type(value).__name__}")
    if value < 0:
        raise AmountError("an amount cannot be negative")
    if value > MAX_AMOUNT:
        raise AmountError("an amount cannot exceed 2**256-1")
    return MinorUnits(value)


def parse_amount(text: str, decimals: int) -> MinorUnits:
    """``"12.5"`` with 2 decimals -> 1250. No rounding: more decimals than the asset has is an error."""
    _check_decimals(decimals)
    if not isinstance(text, str):
        raise AmountError(f"parse an amount from a decimal string, not {type(text).__name__}")
    match = _DECIMAL.fullmatch(text)
    if match is None:
        raise AmountError(f"{text[:40]!r} is not a decimal amount like 12.50 (no sign, exponent or spaces)")
    whole, fraction = match.group(1), match.group(2) or ""
    if len(fraction) > decimals:
        raise AmountError(f"this asset has {decimals} decimals; {text[:40]!r} has {len(fraction)}")
    if len(whole) > 80:  # long before int() gets slow; any such number is beyond MAX_AMOUNT
        raise AmountError("an amount cannot exceed 2**256-1")
    return check_amount(int(whole + fraction.ljust(decimals, "0")))


def format_amount(minor_units: int, decimals: int) -> str:
    """1250 with 2 decimals -> ``"12.50"``: always ``decimals`` digits after the point."""
    _check_decimals(decimals)
    digits = str(check_amount(minor_units)).rjust(decimals + 1, "0")
    if decimals == 0:
        return digits
    return f"{digits[:-decimals]}.{digits[-decimals:]}"


def amount_to_wire(minor_units: int) -> str:
    """Minor units as a decimal string: JSON integers above 2**53-1 are not portable."""
    return str(check_amount(minor_units))


def amount_from_wire(value: object) -> MinorUnits:
    """Read minor units from JSON: a decimal string of digits, or a (small) integer."""
    if isinstance(value, str):
        if not re.fullmatch(r"0|[1-9][0-9]{0,79}", value):
            raise AmountError("an amount on the wire is a string of digits with no leading zeros")
        return check_amount(int(value))
    return check_amount(value)
