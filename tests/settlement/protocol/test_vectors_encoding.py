"""The committed encoding vectors still hold: a change in canonical bytes, domain bytes, hashing
or signing breaks this test instead of silently forking the network."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import nacl.signing
import pytest

from settlement.protocol.encoding import canonical, domain_bytes, object_hash
from settlement.protocol.signing import SigningKey, sign, verify

VECTORS = json.loads((Path(__file__).resolve().parents[2] / "vectors" / "encoding.json").read_text())
KEYS = {key["public_key_hex"]: SigningKey(bytes.fromhex(key["seed_hex"])) for key in VECTORS["keys"]}


def test_the_first_key_is_rfc8032_test_1() -> None:
    first = VECTORS["keys"][0]
    assert first["public_key_hex"] == "d75a980182b10ab7d54bfed3c964073a0ee172f3daa62325af021a68f707511a"
    assert SigningKey(bytes.fromhex(first["seed_hex"])).public_key.hex() == first["public_key_hex"]


@pytest.mark.parametrize("case", VECTORS["rfc8785"], ids=lambda case: case["name"])
def test_rfc8785_examples_encode_to_the_committed_bytes(case: dict[str, Any]) -> None:
    assert canonical(case["input"]).hex() == case["canonical_hex"]


@pytest.mark.parametrize("item", VECTORS["objects"], ids=lambda item: item["kind"])
def test_objects_encode_hash_and_sign_to_the_committed_values(item: dict[str, Any]) -> None:
    kind, value = item["kind"], item["value"]
    assert canonical(value).hex() == item["canonical_hex"]
    assert domain_bytes(kind, value).hex() == item["domain_bytes_hex"]
    assert domain_bytes(kind, value) == b"parsec/v1/" + kind.encode() + b"\x00" + canonical(value)
    assert object_hash(kind, value).hex() == item["object_hash_hex"]
    for signature in item["signatures"]:
        key = KEYS[signature["public_key_hex"]]
        # Ed25519 is deterministic: the same key and bytes give the same signature.
        assert sign(key, kind, value).hex() == signature["signature_hex"]
        verify(
            bytes.fromhex(signature["public_key_hex"]), kind, value, bytes.fromhex(signature["signature_hex"])
        )
        nacl.signing.VerifyKey(bytes.fromhex(signature["public_key_hex"])).verify(
            bytes.fromhex(item["domain_bytes_hex"]), bytes.fromhex(signature["signature_hex"])
        )
