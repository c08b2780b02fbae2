"""Proofs equal RFC 9162 §2.1's recursive definitions and the published CT reference tree."""

from __future__ import annotations

import hashlib

import pytest

from settlement.protocol.merkle import EMPTY_ROOT, MerkleTree, verify_consistency, verify_inclusion


def _hash(data: bytes) -> bytes:
    return hashlib.sha256(data).digest()


def _mth(entries: list[bytes]) -> bytes:
    """MTH(D[n]) exactly as RFC 9162 §2.1.1 writes it: recursive, no shortcuts."""
    if not entries:
        return _hash(b"")
    if len(entries) == 1:
        return _hash(b"\x00" + entries[0])
    k = 1 << ((len(entries) - 1).bit_length() - 1)
    return _hash(b"\x01" + _mth(entries[:k]) + _mth(entries[k:]))


def _path(m: int, entries: list[bytes]) -> list[bytes]:
    """PATH(m, D[n]) of RFC 9162 §2.1.3.1."""
    if len(entries) <= 1:
        return []
    k = 1 << ((len(entries) - 1).bit_length() - 1)
    if m < k:
        return [*_path(m, entries[:k]), _mth(entries[k:])]
    return [*_path(m - k, entries[k:]), _mth(entries[:k])]


def _subproof(m: int, entries: list[bytes], whole: bool) -> list[bytes]:
    """SUBPROOF(m, D[n], b) of RFC 9162 §2.1.4.1."""
    if m == len(entries):
        return [] if whole else [_mth(entries)]
    k = 1 << ((len(entries) - 1).bit_length() - 1)
    if m <= k:
        return [*_subproof(m, entries[:k], whole), _mth(entries[k:])]
    return [*_subproof(m - k, entries[k:], False), _mth(entries[:k])]


ENTRIES = [bytes([index]) * index for index in range(33)]
TREE = MerkleTree.from_entries(ENTRIES)


@pytest.mark.parametrize("size", range(len(ENTRIES) + 1))
def test_root_at_every_size_equals_the_recursive_mth(size: int) -> None:
    assert TREE.root_at(size) == _mth(ENTRIES[:size])
    assert MerkleTree.from_entries(ENTRIES[:size]).root == _mth(ENTRIES[:size])


def test_empty_tree_root_is_sha256_of_the_empty_string() -> None:
    assert (
        MerkleTree([]).root
        == EMPTY_ROOT
        == bytes.fromhex("e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855")
    )


@pytest.mark.parametrize("size", range(1, len(ENTRIES) + 1))
def test_inclusion_proofs_equal_rfc_path_for_current_and_older_sizes(size: int) -> None:
    smaller = MerkleTree.from_entries(ENTRIES[:size])
    for index in range(size):
        expected = _path(index, ENTRIES[:size])
        assert list(smaller.inclusion_proof(index).audit_path) == expected
        assert list(TREE.inclusion_proof(index, size).audit_path) == expected


@pytest.mark.parametrize("second", range(1, len(ENTRIES) + 1))
def test_consistency_proofs_equal_rfc_subproof_for_current_and_older_sizes(second: int) -> None:
    smaller = MerkleTree.from_entries(ENTRIES[:second])
    for first in range(1, second + 1):
        expected = _subproof(first, ENTRIES[:second], True)
        assert list(smaller.consistency_proof(first).path) == expected
        assert list(TREE.consistency_proof(first, second).path) == expected


# Published proofs for the RFC 6962 reference leaves (certificate-transparency test data,
# also transparency-dev/merkle testonly): written here from the source, not from our code.
CT_LEAVES = [
    bytes.fromhex(leaf)
    for leaf in [
        "",
        "00",
        "10",
        "2021",
        "3031",
        "40414243",
        "5051525354555657",
        "606162636465666768696a6b6c6d6e6f",
    ]
]
CT_ROOT_8 = "5dc9da79a70659a9ad559cb701ded9a2ab9d823aad2f4960cfe370eff4604328"
CT_ROOT_6 = "76e67dadbcdf1e10e1b74ddc608abd2f98dfb16fbce75277b5232a127f2087ef"
CT_ROOT_5 = "4e3bbb1f7b478dcfe71fb631631519a3bca12c9aefca1612bfce4c13a86264d4"
CT_ROOT_2 = "fac54203e7cc696cf0dfcb42c92a1d9dbaf70ad9e621f4bd8d98662f00e3c125"
CT_ROOT_1 = "6e340b9cffb37a989ca544e6bb780a2c78901d3fb33738768511a30617afa01d"
CT_INCLUSION = {
    (0, 8): [
        "96a296d224f285c67bee93c30f8a309157f0daa35dc5b87e410b78630a09cfc7",
        "5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e",
        "6b47aaf29ee3c2af9af889bc1fb9254dabd31177f16232dd6aab035ca39bf6e4",
    ],
    (5, 8): [
        "bc1a0643b12e4d2d7c77918f44e0f4f79a838b6cf9ec5b5c283e1f4d88599e6b",
        "ca854ea128ed050b41b35ffc1b87b8eb2bde461e9e3b5596ece6b9d5975a0ae0",
        "d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7",
    ],
}
CT_CONSISTENCY = {
    (1, 8): (
        CT_ROOT_1,
        CT_ROOT_8,
        [
            "96a296d224f285c67bee93c30f8a309157f0daa35dc5b87e410b78630a09cfc7",
            "5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e",
            "6b47aaf29ee3c2af9af889bc1fb9254dabd31177f16232dd6aab035ca39bf6e4",
        ],
    ),
    (6, 8): (
        CT_ROOT_6,
        CT_ROOT_8,
        [
            "0ebc5d3437fbe2db158b9f126a1d118e308181031d0a949f8dededebc558ef6a",
            "ca854ea128ed050b41b35ffc1b87b8eb2bde461e9e3b5596ece6b9d5975a0ae0",
            "d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7",
        ],
    ),
    (2, 5): (
        CT_ROOT_2,
        CT_ROOT_5,
        [
            "5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e",
            "bc1a0643b12e4d2d7c77918f44e0f4f79a838b6cf9ec5b5c283e1f4d88599e6b",
        ],
    ),
}


@pytest.mark.parametrize(("index", "size"), sorted(CT_INCLUSION))
def test_inclusion_proofs_match_the_published_ct_proofs(index: int, size: int) -> None:
    tree = MerkleTree.from_entries(CT_LEAVES[:size])
    assert [digest.hex() for digest in tree.inclusion_proof(index).audit_path] == CT_INCLUSION[index, size]
    verify_inclusion(
        tree.leaf(index), index, size, tree.inclusion_proof(index).audit_path, bytes.fromhex(CT_ROOT_8)
    )


@pytest.mark.parametrize(("first", "second"), sorted(CT_CONSISTENCY))
def test_consistency_proofs_match_the_published_ct_proofs(first: int, second: int) -> None:
    first_root, second_root, path = CT_CONSISTENCY[first, second]
    tree = MerkleTree.from_entries(CT_LEAVES[:second])
    assert [digest.hex() for digest in tree.consistency_proof(first).path] == path
    verify_consistency(
        first,
        second,
        bytes.fromhex(first_root),
        bytes.fromhex(second_root),
        [bytes.fromhex(digest) for digest in path],
    )
