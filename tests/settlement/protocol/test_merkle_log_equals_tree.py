"""An append-only MerkleLog, grown one leaf at a time, has the tree's roots and proofs at every size."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from settlement.protocol.merkle import EMPTY_ROOT, MerkleError, MerkleLog, MerkleTree, leaf_hash


@settings(max_examples=100, deadline=None)
@given(entries=st.lists(st.binary(max_size=6), max_size=150), data=st.data())
def test_log_root_and_proofs_equal_the_tree_of_the_same_leaves(
    entries: list[bytes], data: st.DataObject
) -> None:
    log = MerkleLog()
    roots = [log.root]
    for entry in entries:
        log.append_entry(entry)
        roots.append(log.root)
    tree = MerkleTree.from_entries(entries)
    assert roots == [tree.root_at(size) for size in range(len(entries) + 1)]
    assert [log.root_at(size) for size in range(len(entries) + 1)] == roots
    if entries:
        size = data.draw(st.integers(1, len(entries)))
        index = data.draw(st.integers(0, size - 1))
        first = data.draw(st.integers(1, size))
        assert log.inclusion_proof(index, size) == tree.inclusion_proof(index, size)
        assert log.consistency_proof(first, size) == tree.consistency_proof(first, size)
        assert log.inclusion_proof(index) == tree.inclusion_proof(index)
        assert log.snapshot().root == tree.root


def test_an_empty_log_has_the_empty_root() -> None:
    assert MerkleLog().root == EMPTY_ROOT


def test_appending_returns_the_index_and_extend_equals_appends() -> None:
    hashes = [leaf_hash(bytes([index])) for index in range(10)]
    log = MerkleLog()
    assert [log.append(digest) for digest in hashes] == list(range(10))
    assert MerkleLog(hashes).root == log.root
    assert log.leaf(3) == hashes[3]


def test_appending_something_that_is_not_a_digest_is_refused() -> None:
    with pytest.raises(MerkleError):
        MerkleLog().append(b"short")
