"""LEIs (ISO 17442) are accepted only with correct ISO 7064 MOD 97-10 check digits."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from settlement.protocol.identifiers import InvalidLEI, is_valid_lei, lei_check_digits, validate_lei

# Published LEIs of well-known entities (GLEIF): Bloomberg Finance, Deutsche Bank, Apple.
REAL_LEIS = ["5493001KJTIIGC8Y1R12", "7LTWFZYICNSX8D621K86", "HWUPKR0MPOU8FGXBT394"]


@pytest.mark.parametrize("lei", REAL_LEIS)
def test_published_leis_are_valid(lei: str) -> None:
    assert validate_lei(lei) == lei
    assert lei_check_digits(lei[:18]) == lei[18:]


@pytest.mark.parametrize(
    ("lei", "message"),
    [
        ("5493001KJTIIGC8Y1R13", "check digits are wrong"),
        ("5493001KJTIIGC8Y1R1", "exactly 20 characters"),
        ("5493001kjtiigc8y1r12", "upper-case"),
        ("5493001KJTIIGC8Y1RA2", "two check digits"),
        ("5493001KJTIIGC8Y1 12", "upper-case"),
    ],
)
def test_invalid_leis_are_refused_with_a_reason(lei: str, message: str) -> None:
    with pytest.raises(InvalidLEI, match=message):
        validate_lei(lei)
    assert not is_valid_lei(lei)


prefixes = st.text(alphabet="0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZ", min_size=18, max_size=18)


@given(prefix=prefixes)
def test_computed_check_digits_always_make_a_valid_lei(prefix: str) -> None:
    assert is_valid_lei(prefix + lei_check_digits(prefix))


@given(prefix=prefixes, position=st.integers(0, 19), delta=st.integers(1, 9))
def test_changing_any_single_digit_is_detected(prefix: str, position: int, delta: int) -> None:
    # MOD 97-10 catches every single-digit substitution: d * 10**k is never a multiple of 97.
    lei = prefix + lei_check_digits(prefix)
    if not lei[position].isdigit():
        lei = lei[:position] + "0" + lei[position + 1 :]
        lei = lei[:18] + lei_check_digits(lei[:18])
    changed = lei[:position] + str((int(lei[position]) + delta) % 10) + lei[position + 1 :]
    assert not is_valid_lei(changed)
