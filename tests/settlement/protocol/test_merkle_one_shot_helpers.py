"""The one-shot helpers (one level in memory) give the same root and proofs as MerkleTree."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from settlement.protocol.merkle import (
    MerkleTree,
    ProofRequestError,
    consistency_proof,
    inclusion_proof,
    leaf_hash,
    merkle_root,
)


@settings(max_examples=150, deadline=None)
@given(entries=st.lists(st.binary(max_size=4), min_size=1, max_size=200), data=st.data())
def test_one_shot_root_and_proofs_equal_the_tree(entries: list[bytes], data: st.DataObject) -> None:
    leaves = [leaf_hash(entry) for entry in entries]
    tree = MerkleTree(leaves)
    index = data.draw(st.integers(0, len(leaves) - 1))
    first = data.draw(st.integers(1, len(leaves)))
    assert merkle_root(leaves) == tree.root
    assert inclusion_proof(leaves, index) == tree.inclusion_proof(index)
    assert consistency_proof(leaves, first) == tree.consistency_proof(first)


def test_one_shot_helpers_refuse_impossible_requests() -> None:
    leaves = [leaf_hash(b"a"), leaf_hash(b"b")]
    with pytest.raises(ProofRequestError):
        inclusion_proof(leaves, 2)
    with pytest.raises(ProofRequestError):
        consistency_proof(leaves, 0)
    with pytest.raises(ProofRequestError):
        consistency_proof(leaves, 3)
