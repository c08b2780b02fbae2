"""Property: every inclusion and consistency proof the tree builds is accepted by the verifier."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from settlement.protocol.merkle import (
    ConsistencyProof,
    InclusionProof,
    MerkleTree,
    leaf_hash,
    root_from_inclusion_proof,
    verify_consistency,
    verify_inclusion,
)

entries_lists = st.lists(st.binary(max_size=12), min_size=1, max_size=300)


@settings(max_examples=200, deadline=None)
@given(entries=entries_lists, data=st.data())
def test_every_inclusion_proof_verifies_against_the_root_of_its_size(
    entries: list[bytes], data: st.DataObject
) -> None:
    tree = MerkleTree.from_entries(entries)
    size = data.draw(st.integers(1, tree.size), label="tree_size")
    index = data.draw(st.integers(0, size - 1), label="leaf_index")
    proof = tree.inclusion_proof(index, size)
    verify_inclusion(leaf_hash(entries[index]), index, size, proof.audit_path, tree.root_at(size))
    assert root_from_inclusion_proof(
        leaf_hash(entries[index]), index, size, proof.audit_path
    ) == tree.root_at(size)


@settings(max_examples=200, deadline=None)
@given(entries=entries_lists, data=st.data())
def test_every_consistency_proof_verifies_between_the_two_roots(
    entries: list[bytes], data: st.DataObject
) -> None:
    tree = MerkleTree.from_entries(entries)
    second = data.draw(st.integers(1, tree.size), label="second_size")
    first = data.draw(st.integers(1, second), label="first_size")
    proof = tree.consistency_proof(first, second)
    verify_consistency(first, second, tree.root_at(first), tree.root_at(second), proof.path)


@settings(max_examples=100, deadline=None)
@given(entries=entries_lists, data=st.data())
def test_proofs_survive_a_json_round_trip(entries: list[bytes], data: st.DataObject) -> None:
    tree = MerkleTree.from_entries(entries)
    index = data.draw(st.integers(0, tree.size - 1))
    first = data.draw(st.integers(1, tree.size))
    inclusion = tree.inclusion_proof(index)
    consistency = tree.consistency_proof(first)
    assert InclusionProof.from_json(inclusion.to_json()) == inclusion
    assert ConsistencyProof.from_json(consistency.to_json()) == consistency


def test_a_proof_from_the_empty_tree_is_empty_and_verifies() -> None:
    tree = MerkleTree.from_entries([b"a", b"b"])
    verify_consistency(0, 2, tree.root_at(0), tree.root, [])


@settings(max_examples=100, deadline=None)
@given(entries=entries_lists)
def test_every_audit_path_at_once_is_each_leafs_inclusion_proof(entries: list[bytes]) -> None:
    # MerkleTree.audit_paths_bytes: a whole batch's paths, checked against a request's at once.
    tree = MerkleTree.from_entries(entries)
    paths = tree.audit_paths_bytes()
    assert len(paths) == tree.size
    for index, path in enumerate(paths):
        proof = tree.inclusion_proof(index)
        assert path == b"".join(proof.audit_path)
        verify_inclusion(leaf_hash(entries[index]), index, tree.size, proof.audit_path, tree.root)
