"""The committed Merkle vectors (RFC 6962 reference leaves) still hold: roots and every proof."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from settlement.protocol.merkle import (
    ConsistencyProof,
    InclusionProof,
    MerkleTree,
    leaf_hash,
    verify_consistency,
    verify_inclusion,
)

VECTORS = json.loads((Path(__file__).resolve().parents[2] / "vectors" / "merkle.json").read_text())
ENTRIES = [bytes.fromhex(leaf) for leaf in VECTORS["leaves_hex"]]
TREE = MerkleTree.from_entries(ENTRIES)
ROOTS = [bytes.fromhex(root) for root in VECTORS["roots_hex"]]


def test_leaf_hashes_and_roots_match() -> None:
    assert [leaf_hash(entry).hex() for entry in ENTRIES] == VECTORS["leaf_hashes_hex"]
    assert [TREE.root_at(size) for size in range(len(ENTRIES) + 1)] == ROOTS


@pytest.mark.parametrize(
    "document", VECTORS["inclusion_proofs"], ids=lambda d: f"{d['leaf_index']}of{d['tree_size']}"
)
def test_inclusion_proofs_match_and_verify(document: dict[str, Any]) -> None:
    proof = InclusionProof.from_json(document)
    assert TREE.inclusion_proof(proof.leaf_index, proof.tree_size) == proof
    verify_inclusion(
        TREE.leaf(proof.leaf_index),
        proof.leaf_index,
        proof.tree_size,
        proof.audit_path,
        ROOTS[proof.tree_size],
    )


@pytest.mark.parametrize(
    "document", VECTORS["consistency_proofs"], ids=lambda d: f"{d['first_size']}to{d['second_size']}"
)
def test_consistency_proofs_match_and_verify(document: dict[str, Any]) -> None:
    proof = ConsistencyProof.from_json(document)
    assert TREE.consistency_proof(proof.first_size, proof.second_size) == proof
    verify_consistency(
        proof.first_size, proof.second_size, ROOTS[proof.first_size], ROOTS[proof.second_size], proof.path
    )
