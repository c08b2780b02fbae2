"""Public keys typed in as hex are checked: length, hex digits, and that they are usable points."""

from __future__ import annotations

import nacl.public
import nacl.signing
import pytest

from settlement.protocol.keys import MalformedKey, parse_ed25519_public_key, parse_x25519_public_key


def test_a_real_ed25519_key_parses_to_its_bytes() -> None:
    key = bytes(nacl.signing.SigningKey.generate().verify_key)
    assert parse_ed25519_public_key(key.hex()) == key
    assert parse_ed25519_public_key(key.hex().upper()) == key


def test_a_real_x25519_key_parses_to_its_bytes() -> None:
    key = bytes(nacl.public.PrivateKey.generate().public_key)
    assert parse_x25519_public_key(key.hex()) == key


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("", "64 hex digits"),
        ("ab" * 31, "64 hex digits"),
        ("ab" * 33, "64 hex digits"),
        ("zz" * 32, "64 hex digits"),
        ("0x" + "ab" * 31, "64 hex digits"),
        ("00" * 32, "not a valid curve point"),  # the identity: small order
        ("01" + "00" * 31, "not a valid curve point"),  # also small order
        ("ff" * 32, "not a valid curve point"),  # not canonical
    ],
)
def test_malformed_ed25519_keys_are_refused_with_a_reason(text: str, message: str) -> None:
    with pytest.raises(MalformedKey, match=message):
        parse_ed25519_public_key(text)


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("ab" * 31, "64 hex digits"),
        ("gg" * 32, "64 hex digits"),
        ("00" * 32, "low-order"),
        ("01" + "00" * 31, "low-order"),
    ],
)
def test_malformed_x25519_keys_are_refused_with_a_reason(text: str, message: str) -> None:
    with pytest.raises(MalformedKey, match=message):
        parse_x25519_public_key(text)
