"""Amounts are integers in minor units: parsed from decimal strings exactly, never from floats."""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from settlement.protocol.identifiers import (
    MAX_AMOUNT,
    AmountError,
    amount_from_wire,
    amount_to_wire,
    check_amount,
    format_amount,
    parse_amount,
)


@pytest.mark.parametrize(
    ("text", "decimals", "minor"),
    [
        ("12.5", 2, 1250),
        ("12.50", 2, 1250),
        ("0", 2, 0),
        ("0.01", 2, 1),
        ("1", 18, 10**18),
        ("1234", 0, 1234),
        ("0.000000000000000001", 18, 1),
    ],
)
def test_decimal_strings_parse_to_exact_minor_units(text: str, decimals: int, minor: int) -> None:
    assert parse_amount(text, decimals) == minor


@pytest.mark.parametrize(
    ("text", "decimals", "message"),
    [
        ("-1", 2, "not a decimal amount"),
        ("1.005", 2, "has 3"),
        ("1e3", 2, "not a decimal amount"),
        (" 1", 2, "not a decimal amount"),
        ("01", 2, "not a decimal amount"),
        ("1.", 2, "not a decimal amount"),
        (".5", 2, "not a decimal amount"),
        ("1,5", 2, "not a decimal amount"),
        ("\u0661", 0, "not a decimal amount"),  # Arabic-Indic one: int() would accept it
        (str(MAX_AMOUNT + 1), 0, "2\\*\\*256-1"),
        ("9" * 100, 0, "2\\*\\*256-1"),
        ("1", 78, "decimals"),
    ],
)
def test_malformed_amount_strings_are_refused_with_a_reason(text: str, decimals: int, message: str) -> None:
    with pytest.raises(AmountError, match=message):
        parse_amount(text, decimals)


@pytest.mark.parametrize("value", [1.5, 1.0, True, "12", None, -1, MAX_AMOUNT + 1])
def test_only_non_negative_ints_up_to_the_maximum_are_amounts(value: Any) -> None:
    with pytest.raises(AmountError):
        check_amount(value)


def test_floats_are_refused_even_where_a_string_is_expected() -> None:
    with pytest.raises(AmountError, match="float"):
        parse_amount(12.5, 2)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("minor", "decimals", "text"), [(1250, 2, "12.50"), (1, 2, "0.01"), (0, 2, "0.00"), (7, 0, "7")]
)
def test_format_writes_every_decimal(minor: int, decimals: int, text: str) -> None:
    assert format_amount(minor, decimals) == text


@given(minor=st.integers(0, MAX_AMOUNT), decimals=st.integers(0, 30))
def test_format_then_parse_is_the_identity(minor: int, decimals: int) -> None:
    assert parse_amount(format_amount(minor, decimals), decimals) == minor


@given(minor=st.integers(0, MAX_AMOUNT))
def test_wire_form_round_trips_beyond_the_json_integer_limit(minor: int) -> None:
    assert amount_from_wire(amount_to_wire(minor)) == minor


@pytest.mark.parametrize("value", ["", "01", "-1", "1.0", " 1", 1.0])
def test_malformed_wire_amounts_are_refused(value: Any) -> None:
    with pytest.raises(AmountError):
        amount_from_wire(value)
