"""Bad requests and malformed proofs raise typed errors, never IndexError or a wrong answer."""

from __future__ import annotations

from typing import Any

import pytest

from settlement.protocol.merkle import (
    ConsistencyProof,
    InclusionProof,
    InvalidProof,
    MerkleError,
    MerkleTree,
    ProofRequestError,
    merkle_root,
    verify_consistency,
    verify_inclusion,
)

TREE = MerkleTree.from_entries([b"a", b"b", b"c", b"d", b"e"])


@pytest.mark.parametrize(("index", "size"), [(-1, None), (5, None), (3, 3), (0, 0), (0, 6), (True, None)])
def test_inclusion_proof_for_a_leaf_or_size_the_tree_lacks_is_refused(index: Any, size: Any) -> None:
    with pytest.raises(ProofRequestError):
        TREE.inclusion_proof(index, size)


@pytest.mark.parametrize(("first", "second"), [(0, None), (6, None), (3, 2), (1, 6), (-1, 3)])
def test_consistency_proof_for_impossible_sizes_is_refused(first: int, second: Any) -> None:
    with pytest.raises(ProofRequestError):
        TREE.consistency_proof(first, second)


def test_leaf_hashes_of_the_wrong_length_are_refused() -> None:
    with pytest.raises(MerkleError, match="leaf hash 1"):
        MerkleTree([bytes(32), bytes(31)])
    with pytest.raises(MerkleError):
        merkle_root([bytes(33)])


def test_merkle_root_of_leaf_hashes_equals_the_tree_root() -> None:
    leaves = [TREE.leaf(index) for index in range(TREE.size)]
    assert merkle_root(leaves) == TREE.root == MerkleTree(leaves).root


def test_verifier_refuses_digests_of_the_wrong_length() -> None:
    proof = TREE.inclusion_proof(2)
    with pytest.raises(InvalidProof, match="32-byte"):
        verify_inclusion(TREE.leaf(2)[:31], 2, 5, proof.audit_path, TREE.root)
    with pytest.raises(InvalidProof, match="32-byte"):
        verify_inclusion(TREE.leaf(2), 2, 5, [*proof.audit_path[:-1], b"x"], TREE.root)
    with pytest.raises(InvalidProof, match="32-byte"):
        verify_consistency(2, 5, TREE.root_at(2), TREE.root + b"\x00", TREE.consistency_proof(2).path)


def test_consistency_between_equal_sizes_needs_an_empty_path_and_equal_roots() -> None:
    verify_consistency(5, 5, TREE.root, TREE.root, [])
    with pytest.raises(InvalidProof):
        verify_consistency(5, 5, TREE.root, TREE.root_at(4), [])
    with pytest.raises(InvalidProof):
        verify_consistency(5, 5, TREE.root, TREE.root, [TREE.root])
    with pytest.raises(InvalidProof):
        verify_consistency(0, 5, TREE.root_at(0), TREE.root, [TREE.root])


def test_first_size_larger_than_second_is_refused() -> None:
    with pytest.raises(InvalidProof, match="larger"):
        verify_consistency(5, 4, TREE.root, TREE.root_at(4), TREE.consistency_proof(4).path)


@pytest.mark.parametrize(
    "document",
    [
        {},
        {"leaf_index": 0, "tree_size": 5},
        {"leaf_index": "0", "tree_size": 5, "inclusion_path": []},
        {"leaf_index": -1, "tree_size": 5, "inclusion_path": []},
        {"leaf_index": 0, "tree_size": 2**64, "inclusion_path": []},
        {"leaf_index": 0, "tree_size": 5, "inclusion_path": ["zz" * 32]},
        {"leaf_index": 0, "tree_size": 5, "inclusion_path": ["00" * 31]},
        {"leaf_index": 0, "tree_size": 5, "inclusion_path": "00" * 32},
        {"leaf_index": 0, "tree_size": 5, "inclusion_path": ["00" * 32] * 129},
        [],
    ],
)
def test_malformed_inclusion_proof_documents_are_refused(document: Any) -> None:
    with pytest.raises(InvalidProof):
        InclusionProof.from_json(document)


@pytest.mark.parametrize(
    "document",
    [
        {"first_size": 1, "second_size": 5},
        {"first_size": True, "second_size": 5, "consistency_path": []},
        {"first_size": 1, "second_size": 5, "consistency_path": [5]},
    ],
)
def test_malformed_consistency_proof_documents_are_refused(document: Any) -> None:
    with pytest.raises(InvalidProof):
        ConsistencyProof.from_json(document)
