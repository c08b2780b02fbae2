import pytest
from hypothesis import given
from hypothesis import strategies as st

from ledgers.protocol.amounts import (
    MAX_AMOUNT,
    amount_from_wire,
    amount_to_wire,
    check_amount,
    format_amount,
    parse_amount,
)
from ledgers.protocol.errors import AmountOverflow, BadAmount


def test_max_amount_fits_postgresql_bigint():
    assert MAX_AMOUNT == 2**63 - 1


@pytest.mark.parametrize(
    ("text", "decimals", "minor"),
    [
        ("10.50", 2, 1050),
        ("10.5", 2, 1050),
        ("10", 2, 1000),
        ("0.01", 2, 1),
        ("7", 0, 7),
        ("1.000000000000000001", 18, 10**18 + 1),
    ],
)
def test_decimal_strings_parse_into_minor_units(text, decimals, minor):
    assert parse_amount(text, decimals=decimals) == minor


@given(st.integers(min_value=1, max_value=MAX_AMOUNT), st.integers(min_value=0, max_value=18))
def test_formatting_then_parsing_gives_back_the_same_minor_units(minor, decimals):
    assert parse_amount(format_amount(minor, decimals=decimals), decimals=decimals) == minor


def test_format_pads_fractions_and_keeps_the_sign():
    assert format_amount(5, decimals=2) == "0.05"
    assert format_amount(-1050, decimals=2) == "-10.50"
    assert format_amount(12, decimals=0) == "12"


@pytest.mark.parametrize("value", [10.5, 1.0, "10.50", None, True, 3 + 0j])
def test_check_amount_refuses_anything_but_an_int(value):
    with pytest.raises(BadAmount) as caught:
        check_amount(value)
    assert caught.value.code == "bad_amount"


@pytest.mark.parametrize("value", [0, -1, -(2**63)])
def test_amounts_must_be_positive(value):
    with pytest.raises(BadAmount):
        check_amount(value)


@pytest.mark.parametrize("value", [2**63, 10**30])
def test_amounts_beyond_the_maximum_overflow(value):
    with pytest.raises(AmountOverflow) as caught:
        check_amount(value)
    assert caught.value.code == "amount_overflow"


@pytest.mark.parametrize("text", ["92233720368547758.08", "1" * 40, "9223372036854775808"])
def test_parsing_past_the_maximum_overflows(text):
    decimals = 2 if "." in text else 0
    with pytest.raises(AmountOverflow):
        parse_amount(text, decimals=decimals)


@pytest.mark.parametrize("text", ["10.505", "0.001"])
def test_more_decimals_than_the_asset_has_are_refused_not_rounded(text):
    with pytest.raises(BadAmount):
        parse_amount(text, decimals=2)


@pytest.mark.parametrize(
    "text", ["", "-1", "+1", "1e3", "01", "1.", ".5", "1,5", " 1", "0", "0.00", "NaN", "١٢"]
)
def test_non_plain_or_non_positive_decimal_strings_are_refused(text):
    with pytest.raises(BadAmount):
        parse_amount(text, decimals=2)


def test_floats_are_refused_by_the_parser():
    with pytest.raises(BadAmount):
        parse_amount(10.5, decimals=2)


@given(st.integers(min_value=1, max_value=MAX_AMOUNT))
def test_wire_form_round_trips(minor):
    assert amount_from_wire(amount_to_wire(minor)) == minor


@pytest.mark.parametrize("text", [1050, "010", "-5", "0", "9223372036854775808", "1.5"])
def test_wire_form_has_one_spelling_per_amount(text):
    with pytest.raises(BadAmount):
        amount_from_wire(text)
