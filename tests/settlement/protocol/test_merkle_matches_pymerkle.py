"""Our roots, audit paths and consistency proofs agree with pymerkle, an independent RFC 9162 tree."""

from __future__ import annotations

import pytest
from pymerkle import InmemoryTree

from settlement.protocol.merkle import MerkleTree, leaf_hash, verify_consistency

SIZES = [*range(1, 40), 63, 64, 65, 127, 128, 129, 1000, 1024, 1025]


def _entries(size: int) -> list[bytes]:
    return [f"entry {index}".encode() * (index % 3 + 1) for index in range(size)]


@pytest.mark.parametrize("size", SIZES)
def test_root_equals_pymerkle_root_for_every_prefix(size: int) -> None:
    entries = _entries(size)
    ours = MerkleTree.from_entries(entries)
    theirs = InmemoryTree.init_from_entries(entries)
    assert ours.root == theirs.get_root()
    for prefix in {1, size // 3 + 1, size // 2 + 1, size - 1, size} - {0}:
        assert ours.root_at(prefix) == theirs.get_root(prefix)


@pytest.mark.parametrize("size", SIZES)
def test_audit_path_equals_pymerkle_path_without_its_leading_leaf(size: int) -> None:
    # pymerkle's path starts with the leaf hash itself; RFC 9162's audit path does not.
    entries = _entries(size)
    ours = MerkleTree.from_entries(entries)
    theirs = InmemoryTree.init_from_entries(entries)
    indexes = range(size) if size <= 65 else range(0, size, max(1, size // 50))
    for tree_size in {size, max(1, size - 1), size // 2 + 1}:
        for index in (index for index in indexes if index < tree_size):
            proof = theirs.prove_inclusion(index + 1, tree_size)
            assert list(ours.inclusion_proof(index, tree_size).audit_path) == proof.path[1:]
            assert proof.path[0] == leaf_hash(entries[index])


@pytest.mark.parametrize("size", SIZES)
def test_our_consistency_proofs_verify_between_pymerkle_roots(size: int) -> None:
    # pymerkle lays its consistency paths out differently from the RFC, so we compare the
    # roots the proofs bind: ours must prove exactly pymerkle's prior and later states.
    entries = _entries(size)
    ours = MerkleTree.from_entries(entries)
    theirs = InmemoryTree.init_from_entries(entries)
    for first in sorted({1, 2, size // 2, size - 1, size} & set(range(1, size + 1))):
        proof = ours.consistency_proof(first)
        verify_consistency(first, size, theirs.get_root(first), theirs.get_root(), proof.path)
