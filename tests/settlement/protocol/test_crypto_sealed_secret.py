"""Private keys at rest: sealed with a passphrase (Argon2id + secretbox), opened only with it."""

from __future__ import annotations

import copy
import json
from typing import Any

import nacl.pwhash
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from settlement.protocol.keys import (
    DEFAULT_KDF,
    DerivedKey,
    KdfParams,
    SealedFormatError,
    WrongPassphrase,
    derive_key,
    derive_key_for,
    open_secret,
    seal_secret,
)

# The cheapest cost the bounds allow: these tests are about the format, not the KDF's cost.
FAST = KdfParams(opslimit=1, memlimit=8 * 1024 * 1024)
SECRET = bytes(range(32))


def test_sealed_secret_opens_with_the_passphrase_and_is_json() -> None:
    sealed = seal_secret(SECRET, passphrase="correct horse", params=FAST)
    reloaded = json.loads(json.dumps(sealed))
    assert open_secret(reloaded, passphrase="correct horse") == SECRET
    assert SECRET.hex() not in json.dumps(sealed)
    assert reloaded["version"] == 1
    assert reloaded["kdf"] == {
        "name": "argon2id13",
        "salt": reloaded["kdf"]["salt"],
        "opslimit": 1,
        "memlimit": 8 * 1024 * 1024,
    }


def test_wrong_passphrase_raises_wrong_passphrase() -> None:
    sealed = seal_secret(SECRET, passphrase="correct horse", params=FAST)
    with pytest.raises(WrongPassphrase):
        open_secret(sealed, passphrase="correct horse ")
    with pytest.raises(WrongPassphrase):
        open_secret(sealed, passphrase="")


def test_altered_ciphertext_is_refused() -> None:
    sealed = seal_secret(SECRET, passphrase="pw", params=FAST)
    tampered = dict(sealed)
    ciphertext = bytearray.fromhex(sealed["ciphertext"])
    ciphertext[0] ^= 1
    tampered["ciphertext"] = ciphertext.hex()
    with pytest.raises(WrongPassphrase):
        open_secret(tampered, passphrase="pw")


def test_each_seal_uses_a_fresh_salt_and_nonce() -> None:
    first = seal_secret(SECRET, passphrase="pw", params=FAST)
    second = seal_secret(SECRET, passphrase="pw", params=FAST)
    assert first["kdf"]["salt"] != second["kdf"]["salt"]
    assert first["nonce"] != second["nonce"]
    assert first["ciphertext"] != second["ciphertext"]


def test_a_derived_key_seals_and_opens_many_secrets_without_deriving_again() -> None:
    key = derive_key("pw", params=FAST)
    sealed = [seal_secret(bytes([index]) * 32, derived_key=key) for index in range(3)]
    assert {item["kdf"]["salt"] for item in sealed} == {key.salt.hex()}
    assert [open_secret(item, derived_key=key) for item in sealed] == [
        bytes([index]) * 32 for index in range(3)
    ]
    reopened = derive_key_for(sealed[0], "pw")
    assert reopened.key == key.key


def test_a_derived_key_with_another_salt_needs_the_passphrase() -> None:
    sealed = seal_secret(SECRET, passphrase="pw", params=FAST)
    unrelated = derive_key("pw", params=FAST)
    with pytest.raises(WrongPassphrase, match="another salt"):
        open_secret(sealed, derived_key=unrelated)
    assert open_secret(sealed, derived_key=unrelated, passphrase="pw") == SECRET


def test_derived_key_repr_never_shows_the_key() -> None:
    key = derive_key("pw", params=FAST)
    assert key.key.hex() not in repr(key)
    assert key.salt.hex() in repr(key)


def test_default_cost_is_never_below_libsodiums_interactive_cost() -> None:
    # What it costs in seconds is the machine's business (no timed tests); what must not drift
    # down unnoticed is the work an attacker pays per guess.
    assert DEFAULT_KDF.opslimit >= nacl.pwhash.argon2id.OPSLIMIT_INTERACTIVE
    assert DEFAULT_KDF.memlimit >= nacl.pwhash.argon2id.MEMLIMIT_INTERACTIVE
    key: DerivedKey = derive_key("a passphrase", params=DEFAULT_KDF)
    assert len(key.key) == 32


def _with(sealed: dict[str, Any], path: tuple[str, ...], value: Any) -> dict[str, Any]:
    changed = copy.deepcopy(sealed)
    target = changed
    for name in path[:-1]:
        target = target[name]
    target[path[-1]] = value
    return changed


@pytest.mark.parametrize(
    ("path", "value", "message"),
    [
        (("format",), "something-else", "not a parsec-sealed-secret"),
        (("version",), 2, "version 2 is not supported"),
        (("cipher",), "aes-gcm", "cipher"),
        (("nonce",), "00", "nonce must be 24 bytes"),
        (("ciphertext",), "zz", "ciphertext"),
        (("kdf", "name"), "scrypt", "kdf must be argon2id13"),
        (("kdf", "salt"), "00" * 8, "salt must be 16 bytes"),
        (("kdf", "memlimit"), 2**40, "memlimit must be an integer between"),
        (("kdf", "opslimit"), 1000, "opslimit must be an integer between"),
        (("kdf", "opslimit"), "3", "opslimit must be an integer between"),
    ],
)
def test_malformed_or_unknown_sealed_documents_are_refused_before_any_work(
    path: tuple[str, ...], value: Any, message: str
) -> None:
    sealed = seal_secret(SECRET, passphrase="pw", params=FAST)
    with pytest.raises(SealedFormatError, match=message):
        open_secret(_with(sealed, path, value), passphrase="pw")


def test_sealing_needs_exactly_one_of_passphrase_and_derived_key() -> None:
    with pytest.raises(TypeError):
        seal_secret(SECRET)
    with pytest.raises(TypeError):
        seal_secret(SECRET, passphrase="pw", derived_key=derive_key("pw", params=FAST))


@settings(max_examples=20, deadline=None)
@given(secret=st.binary(max_size=200), passphrase=st.text(min_size=1, max_size=40))
def test_any_secret_round_trips_under_any_passphrase(secret: bytes, passphrase: str) -> None:
    key = derive_key(passphrase, params=FAST)
    sealed = seal_secret(secret, derived_key=key)
    assert open_secret(json.loads(json.dumps(sealed)), passphrase=passphrase) == secret
