"""Private payloads: SealedBox to a public key and Box between two keys; wrong keys do not open."""

from __future__ import annotations

import pytest

from settlement.protocol.keys import (
    CannotDecrypt,
    MalformedKey,
    X25519KeyPair,
    box_decrypt,
    box_encrypt,
    open_sealed_box,
    seal_to,
)

ALICE = X25519KeyPair.generate()
BOB = X25519KeyPair.generate()
MALLORY = X25519KeyPair.generate()


def test_sealed_box_opens_only_for_its_recipient() -> None:
    ciphertext = seal_to(BOB.public_key, b"instruction")
    assert open_sealed_box(BOB, ciphertext) == b"instruction"
    with pytest.raises(CannotDecrypt):
        open_sealed_box(MALLORY, ciphertext)


def test_altered_or_truncated_sealed_box_does_not_open() -> None:
    ciphertext = bytearray(seal_to(BOB.public_key, b"instruction"))
    ciphertext[-1] ^= 1
    with pytest.raises(CannotDecrypt):
        open_sealed_box(BOB, bytes(ciphertext))
    with pytest.raises(CannotDecrypt):
        open_sealed_box(BOB, b"short")


def test_box_opens_for_the_recipient_from_the_named_sender_only() -> None:
    ciphertext = box_encrypt(ALICE, BOB.public_key, b"agreement")
    assert box_decrypt(BOB, ALICE.public_key, ciphertext) == b"agreement"
    with pytest.raises(CannotDecrypt):
        box_decrypt(BOB, MALLORY.public_key, ciphertext)
    with pytest.raises(CannotDecrypt):
        box_decrypt(MALLORY, ALICE.public_key, ciphertext)


def test_two_boxes_of_the_same_message_differ() -> None:
    assert box_encrypt(ALICE, BOB.public_key, b"m") != box_encrypt(ALICE, BOB.public_key, b"m")


def test_low_order_and_wrong_length_public_keys_are_refused() -> None:
    with pytest.raises(MalformedKey, match="low-order"):
        seal_to(bytes(32), b"x")
    with pytest.raises(MalformedKey, match="32 bytes"):
        box_encrypt(ALICE, b"\x01" * 31, b"x")


def test_key_pair_repr_shows_only_the_public_key() -> None:
    assert ALICE.private_key.hex() not in repr(ALICE)
    assert ALICE.public_key.hex() in repr(ALICE)
