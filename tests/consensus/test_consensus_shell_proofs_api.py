"""Proofs from the API verify: inclusion (an observation in its block) and consistency (between
two sizes of the block log), with settlement.protocol.merkle and with a few lines of hashlib."""

from __future__ import annotations

import hashlib

import pytest
from consensus_shell_support import agree_with_peer, dispatched, two_validators

from consensus.models import Block
from consensus.protocol.block import merkle_root as protocol_merkle_root
from settlement.protocol.merkle import (
    InvalidProof,
    MerkleTree,
    leaf_hash,
    verify_consistency,
    verify_inclusion,
)

__all__ = ["dispatched", "two_validators"]


def _leaf(data: bytes) -> bytes:
    return hashlib.sha256(b"\x00" + data).digest()


def _node(left: bytes, right: bytes) -> bytes:
    return hashlib.sha256(b"\x01" + left + right).digest()


def _root_by_hand(leaf: bytes, index: int, size: int, path: list[bytes]) -> bytes:
    """RFC 9162 §2.1.3.2, written out independently of the project's code."""
    fn, sn, r = index, size - 1, _leaf(leaf)
    for p in path:
        if sn == 0:
            raise AssertionError("path too long")
        if fn & 1 or fn == sn:
            r = _node(p, r)
            if not fn & 1:
                while fn & 1 == 0 and fn != 0:
                    fn >>= 1
                    sn >>= 1
        else:
            r = _node(r, p)
        fn >>= 1
        sn >>= 1
    assert sn == 0
    return r


@pytest.fixture
def blocks(two_validators, dispatched, client, make_user):
    client.force_login(make_user("auditor", "auditor"))
    agree_with_peer(
        two_validators, dispatched, [f"first batch {number:03d}".encode() for number in range(13)]
    )
    agree_with_peer(
        two_validators, dispatched, [f"second batch {number:03d}".encode() for number in range(7)]
    )
    agree_with_peer(two_validators, dispatched, [b"third"])
    stored = list(Block.objects.order_by("height"))
    assert any(block.tree_size >= 4 for block in stored)
    return stored


def test_every_inclusion_proof_of_a_block_verifies_against_its_signed_root(blocks, client):
    for block in blocks:
        detail = client.get(f"/api/blocks/{block.height}/").json()
        assert detail["merkle_root"] == bytes(block.merkle_root).hex()
        assert detail["header"]["root"] == detail["merkle_root"]
        assert len(detail["observations"]) == block.tree_size
        for index in range(block.tree_size):
            answer = client.get(f"/api/blocks/{block.height}/proof/{index}/")
            assert answer.status_code == 200
            proof = answer.json()
            leaf = bytes.fromhex(proof["leaf"])
            path = [bytes.fromhex(item) for item in proof["inclusion_path"]]
            root = bytes.fromhex(detail["merkle_root"])
            assert proof["tree_size"] == block.tree_size
            assert bytes.fromhex(proof["leaf_hash"]) == _leaf(leaf)
            verify_inclusion(leaf_hash(leaf), proof["leaf_index"], proof["tree_size"], path, root)
            assert _root_by_hand(leaf, index, block.tree_size, path) == root


def test_a_proof_for_another_leaf_or_root_does_not_verify(blocks, client):
    block = max(blocks, key=lambda item: item.tree_size)
    proof = client.get(f"/api/blocks/{block.height}/proof/2/").json()
    path = [bytes.fromhex(item) for item in proof["inclusion_path"]]
    with pytest.raises(InvalidProof):
        verify_inclusion(leaf_hash(b"p" + b"forged"), 2, proof["tree_size"], path, bytes(block.merkle_root))
    with pytest.raises(InvalidProof):
        verify_inclusion(
            bytes.fromhex(proof["leaf_hash"]), 3, proof["tree_size"], path, bytes(block.merkle_root)
        )


def test_consistency_proofs_between_sizes_of_the_block_log_verify(blocks, client):
    size = len(blocks)
    assert size >= 2
    for first in range(1, size + 1):
        for second in range(first, size + 1):
            answer = client.get(f"/api/blocks/consistency?first={first}&second={second}")
            assert answer.status_code == 200, answer.content
            proof = answer.json()
            # Each block carries the log's root at its own size: the proof binds those roots.
            assert proof["first_root"] == bytes(blocks[first - 1].log_root).hex()
            assert proof["second_root"] == bytes(blocks[second - 1].log_root).hex()
            verify_consistency(
                first,
                second,
                bytes.fromhex(proof["first_root"]),
                bytes.fromhex(proof["second_root"]),
                [bytes.fromhex(item) for item in proof["consistency_path"]],
            )
    # The log's leaves are the block hashes: recompute the root of all blocks by hand.
    level = [_leaf(bytes(block.block_hash)) for block in blocks]
    while len(level) > 1:
        level = [_node(level[i], level[i + 1]) for i in range(0, len(level) - 1, 2)] + (
            [level[-1]] if len(level) % 2 else []
        )
    assert level[0] == bytes(blocks[-1].log_root)


BAD_REQUESTS = [
    ("/api/blocks/999/", 404, "unknown_block"),
    ("/api/blocks/0/proof/999/", 404, "unknown_leaf"),
    ("/api/blocks/999/proof/0/", 404, "unknown_block"),
    ("/api/blocks/consistency?first=0&second=1", 400, "invalid"),
    ("/api/blocks/consistency?first=3&second=2", 400, "bad_tree_size"),
    ("/api/blocks/consistency?first=1&second=999", 400, "bad_tree_size"),
    ("/api/blocks/consistency?first=x&second=1", 400, "invalid"),
    ("/api/blocks/consistency", 400, "invalid"),
    ("/api/blocks/?limit=0", 400, "invalid"),
    ("/api/anchors/?limit=-1", 400, "invalid"),
]


def test_bad_requests_get_a_code_and_a_sentence(blocks, client):
    for url, status, code in BAD_REQUESTS:
        answer = client.get(url)
        assert (url, answer.status_code, answer.json()["error"]["code"]) == (url, status, code)
        assert answer.json()["error"]["message"]


def test_status_and_lists_answer(blocks, client):
    status = client.get("/api/consensus/status").json()
    assert status["next_height"] == len(blocks)
    assert sorted(row["is_us"] for row in status["validators"]) == [False, True]
    listed = client.get("/api/blocks/").json()
    assert [item["height"] for item in listed] == [block.height for block in reversed(blocks)]
    assert client.get("/api/anchors/").json() == []


def test_the_protocols_block_root_is_the_rfc_9162_root_of_settlement_merkle(blocks):
    for size in [*range(0, 20), 64, 65, 100]:
        leaves = [f"leaf {number}".encode() for number in range(size)]
        assert protocol_merkle_root(leaves) == MerkleTree.from_entries(leaves).root
    for block in blocks:
        leaves = [bytes(item) for item in block.observations.order_by("index").values_list("data", flat=True)]
        assert MerkleTree.from_entries(leaves).root == bytes(block.merkle_root)
