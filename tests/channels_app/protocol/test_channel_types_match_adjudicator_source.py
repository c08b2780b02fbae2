"""The EIP-712 type strings and the status layout the Python side relies on are the ones in
contracts/Adjudicator.sol, so a change on one side without the other fails here, before anvil."""

from __future__ import annotations

import re
from pathlib import Path

from channels_app.protocol.eip712 import (
    ALLOCATION_TYPE,
    DOMAIN_NAME,
    DOMAIN_TYPE,
    DOMAIN_VERSION,
    STATE_TYPE,
    SUB_ALLOCATION_TYPE,
    WITHDRAWAL_TYPE,
)

SOURCE = (Path(__file__).resolve().parents[3] / "contracts" / "Adjudicator.sol").read_text()


def _solidity_strings(constant: str) -> bytes:
    """The concatenated string literals of ``bytes32 private constant <constant> = keccak256(...)``."""
    match = re.search(constant + r"\s*=\s*keccak256\((.*?)\);", SOURCE, re.S)
    assert match, f"{constant} not found in Adjudicator.sol"
    return "".join(re.findall(r'"([^"]*)"', match.group(1))).encode()


def test_every_type_string_is_the_contracts() -> None:
    assert _solidity_strings("DOMAIN_TYPEHASH") == DOMAIN_TYPE
    assert _solidity_strings("ALLOCATION_TYPEHASH") == ALLOCATION_TYPE
    assert _solidity_strings("SUB_ALLOCATION_TYPEHASH") == SUB_ALLOCATION_TYPE
    assert _solidity_strings("STATE_TYPEHASH") == STATE_TYPE
    assert _solidity_strings("WITHDRAWAL_TYPEHASH") == WITHDRAWAL_TYPE


def test_domain_name_and_version_are_the_contracts() -> None:
    assert f'keccak256("{DOMAIN_NAME}"), keccak256("{DOMAIN_VERSION}")' in SOURCE


def test_channel_id_is_computed_from_the_same_fields_in_the_same_order() -> None:
    assert re.search(
        r"block\.chainid,\s*params\.participantA,\s*params\.participantB,\s*params\.nonce,\s*"
        r"params\.challengeDuration",
        SOURCE,
    )
