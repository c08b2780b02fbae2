"""Helpers for the firehose tests: blocks stored by a real single validator, records checked
against the database and the Merkle root."""

from __future__ import annotations

import base64
from typing import Any

from consensus_shell_support import agree_with_peer

from consensus.models import Block
from settlement.protocol.merkle import MerkleTree, leaf_hash


def store_blocks(peer: Any, dispatched: list[Any], count: int, *, per_block: int = 2) -> list[int]:
    """Agree at least ``count`` new blocks with the in-process peer; returns the new heights."""
    before = Block.objects.count()
    while Block.objects.count() < before + count:
        start = Block.objects.count()
        agree_with_peer(peer, dispatched, [f"payload-{start}-{item}".encode() for item in range(per_block)])
    return list(range(before, Block.objects.count()))


def check_block_record(record: dict[str, Any]) -> None:
    """The record matches the stored block, and its leaves fold to the block's signed root."""
    block = Block.objects.get(height=record["height"])
    assert record["hash"] == bytes(block.block_hash).hex()
    assert record["previous"] == bytes(block.previous_hash).hex()
    assert record["root"] == bytes(block.merkle_root).hex()
    assert record["tree_size"] == block.tree_size == len(record["observations"])
    assert [item["index"] for item in record["observations"]] == list(range(block.tree_size))
    assert record["signatures"] == block.signatures
    leaves = []
    for item in record["observations"]:
        leaf = b"p" + item["kind"].encode() + b"\n" + base64.b64decode(item["payload"])
        assert leaf_hash(leaf).hex() == item["leaf_hash"]
        leaves.append(leaf)
    assert MerkleTree.from_entries(leaves).root.hex() == record["root"]
    assert record["complete"] is True
    assert record["next_height"] == record["height"] + 1
