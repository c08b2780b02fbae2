"""Ethereum accounts: addresses (EIP-55), recoverable signatures on digests, recovery."""

from __future__ import annotations

import hashlib

import pytest
from eth_keys import keys as eth_keys

from settlement.protocol.keys import (
    EthereumSignatureError,
    MalformedKey,
    eth_address_from_private_key,
    eth_generate_private_key,
    eth_recover_address,
    eth_sign_digest,
    parse_eth_address,
    to_checksum_address,
)

DIGEST = hashlib.sha256(b"channel state").digest()
SECP256K1_N = 0xFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFEBAAEDCE6AF48A03BBFD25E8CD0364141


def test_private_key_one_has_the_well_known_address() -> None:
    assert (
        eth_address_from_private_key((1).to_bytes(32, "big")) == "0x7E5F4552091A69125d5DfCb7b8C2659029395Bdf"
    )


@pytest.mark.parametrize(
    "address",
    [  # EIP-55's own examples
        "0x5aAeb6053F3E94C9b9A09f33669435E7Ef1BeAed",
        "0xfB6916095ca1df60bB79Ce92cE3Ea74c37c5d359",
        "0xdbF03B407c01E7cD3CBea99509d93f8DDDC8C6FB",
        "0xD1220A0cf47c7B9Be7A2E6BA89F429762e7b9aDb",
    ],
)
def test_checksum_matches_the_eip55_examples(address: str) -> None:
    assert to_checksum_address(address.lower()) == address
    assert parse_eth_address(address) == address
    assert parse_eth_address("0x" + address[2:].upper()) == address


def test_address_matches_eth_keys_for_random_keys() -> None:
    for _ in range(5):
        private = eth_generate_private_key()
        assert (
            eth_address_from_private_key(private)
            == eth_keys.PrivateKey(private).public_key.to_checksum_address()
        )


def test_signature_is_65_bytes_with_v_27_or_28_and_recovers_the_signer() -> None:
    private = eth_generate_private_key()
    signature = eth_sign_digest(private, DIGEST)
    assert len(signature) == 65
    assert signature[64] in (27, 28)
    assert eth_recover_address(DIGEST, signature) == eth_address_from_private_key(private)


def test_signature_equals_eth_keys_signature_of_the_same_digest() -> None:
    private = eth_generate_private_key()
    theirs = eth_keys.PrivateKey(private).sign_msg_hash(DIGEST)
    assert eth_sign_digest(private, DIGEST) == theirs.to_bytes()[:64] + bytes([theirs.v + 27])


def test_another_digest_recovers_another_address() -> None:
    private = eth_generate_private_key()
    signature = eth_sign_digest(private, DIGEST)
    other = hashlib.sha256(b"other state").digest()
    assert eth_recover_address(other, signature) != eth_address_from_private_key(private)


def test_malformed_signatures_are_refused() -> None:
    signature = eth_sign_digest(eth_generate_private_key(), DIGEST)
    with pytest.raises(EthereumSignatureError, match="v must be 27 or 28"):
        eth_recover_address(DIGEST, signature[:64] + b"\x00")
    with pytest.raises(EthereumSignatureError, match="65 bytes"):
        eth_recover_address(DIGEST, signature[:64])
    with pytest.raises(EthereumSignatureError, match="32-byte digest"):
        eth_sign_digest(eth_generate_private_key(), b"a message, not a digest")


def test_high_s_twin_of_a_valid_signature_is_refused() -> None:
    signature = eth_sign_digest(eth_generate_private_key(), DIGEST)
    s = int.from_bytes(signature[32:64], "big")
    twin = signature[:32] + (SECP256K1_N - s).to_bytes(32, "big") + bytes([55 - signature[64]])
    with pytest.raises(EthereumSignatureError, match="high s"):
        eth_recover_address(DIGEST, twin)


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("5aAeb6053F3E94C9b9A09f33669435E7Ef1BeAed", "0x followed by 40 hex"),
        ("0x5aAeb6053F3E94C9b9A09f33669435E7Ef1BeAe", "0x followed by 40 hex"),
        ("0x5aAeb6053F3E94C9b9A09f33669435E7Ef1BeAeg", "0x followed by 40 hex"),
        ("0x5AAeb6053F3E94C9b9A09f33669435E7Ef1BeAed", "checksum"),
    ],
)
def test_malformed_addresses_are_refused_with_a_reason(text: str, message: str) -> None:
    with pytest.raises(MalformedKey, match=message):
        parse_eth_address(text)


def test_private_key_out_of_range_is_refused() -> None:
    with pytest.raises(MalformedKey):
        eth_address_from_private_key(bytes(32))
    with pytest.raises(MalformedKey):
        eth_sign_digest(SECP256K1_N.to_bytes(32, "big"), DIGEST)
