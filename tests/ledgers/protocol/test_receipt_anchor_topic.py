"""The hard-coded topic of the AnchorRegistry event is the keccak-256 of its signature, as
web3's own helper computes it, and matches the compiled contract's ABI."""

from __future__ import annotations

import json
from pathlib import Path

from eth_utils import event_abi_to_log_topic, keccak

from consensus.protocol.receipt import ANCHORED_TOPIC

ABI = Path(__file__).resolve().parents[3] / "contracts" / "build" / "AnchorRegistry.json"


def test_the_anchored_topic_is_the_keccak_of_the_event_signature() -> None:
    assert "0x" + keccak(text="Anchored(address,uint64,bytes32)").hex() == ANCHORED_TOPIC


def test_the_anchored_topic_matches_the_compiled_abi() -> None:
    [event] = [item for item in json.loads(ABI.read_text())["abi"] if item.get("type") == "event"]
    assert event["name"] == "Anchored"
    assert "0x" + event_abi_to_log_topic(event).hex() == ANCHORED_TOPIC
