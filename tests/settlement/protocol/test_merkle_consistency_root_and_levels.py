"""``root_from_consistency_proof`` yields exactly the second root a consistency path proves (and
refuses a path that does not lead back to the first root); ``level_bytes`` lays the tree out so
that a node's offset follows from the size alone, which is how receipts read audit paths."""

from __future__ import annotations

import pytest

from settlement.protocol.merkle import (
    InvalidProof,
    MerkleTree,
    leaf_hash,
    root_from_consistency_proof,
)

TREE = MerkleTree.from_entries([bytes([index]) * (index + 1) for index in range(33)])


def test_every_consistency_path_yields_the_second_root() -> None:
    for second in range(1, 34):
        for first in range(1, second + 1):
            proof = TREE.consistency_proof(first, second)
            assert root_from_consistency_proof(
                first, second, TREE.root_at(first), proof.path
            ) == TREE.root_at(second)


def test_a_path_that_does_not_lead_back_to_the_first_root_is_refused() -> None:
    proof = TREE.consistency_proof(5, 20)
    with pytest.raises(InvalidProof):
        root_from_consistency_proof(5, 20, TREE.root_at(6), proof.path)
    with pytest.raises(InvalidProof):
        root_from_consistency_proof(0, 20, TREE.root_at(5), ())
    with pytest.raises(InvalidProof):
        root_from_consistency_proof(21, 20, TREE.root_at(5), proof.path)


def test_level_bytes_hold_every_level_bottom_up() -> None:
    data = TREE.level_bytes()
    sizes = [33]
    while sizes[-1] > 1:
        sizes.append((sizes[-1] + 1) // 2)
    assert len(data) == 32 * sum(sizes)
    assert data[:32] == leaf_hash(bytes([0]))
    assert data[-32:] == TREE.root
    offset = 0
    for size in sizes[:-1]:
        offset += 32 * size
    assert data[offset : offset + 32] == TREE.root
