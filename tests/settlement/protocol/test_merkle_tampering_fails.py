"""Property: changing any byte, index, size, root or path length makes verification fail."""

from __future__ import annotations

import pytest
from hypothesis import assume, given, settings
from hypothesis import strategies as st

from settlement.protocol.merkle import InvalidProof, MerkleTree, verify_consistency, verify_inclusion

entries_lists = st.lists(st.binary(max_size=8), min_size=2, max_size=200, unique=True)


def _inclusion_length(index: int, size: int) -> int:
    """How many hashes PATH(index, D[size]) holds (RFC 9162 §2.1.3.1)."""
    length, start, end = 0, 0, size
    while end - start > 1:
        k = 1 << ((end - start - 1).bit_length() - 1)
        start, end = (start, start + k) if index < start + k else (start + k, end)
        length += 1
    return length


def _consistency_length(first: int, second: int) -> int:
    """How many hashes PROOF(first, D[second]) holds (RFC 9162 §2.1.4.1)."""
    if first in (0, second):
        return 0
    length, start, end, whole = 0, 0, second, True
    while first != end - start:
        k = 1 << ((end - start - 1).bit_length() - 1)
        if first <= k:
            end = start + k
        else:
            first, start, whole = first - k, start + k, False
        length += 1
    return length + (not whole)


def _flip(digest: bytes, position: int, bit: int) -> bytes:
    changed = bytearray(digest)
    changed[position % len(changed)] ^= 1 << bit
    return bytes(changed)


@settings(max_examples=150, deadline=None)
@given(entries=entries_lists, data=st.data())
def test_inclusion_fails_when_any_input_is_altered(entries: list[bytes], data: st.DataObject) -> None:
    tree = MerkleTree.from_entries(entries)
    size = tree.size
    index = data.draw(st.integers(0, size - 1))
    proof = tree.inclusion_proof(index)
    leaf, path, root = tree.leaf(index), list(proof.audit_path), tree.root
    position, bit = data.draw(st.integers(0, 31)), data.draw(st.integers(0, 7))

    with pytest.raises(InvalidProof):
        verify_inclusion(_flip(leaf, position, bit), index, size, path, root)
    with pytest.raises(InvalidProof):
        verify_inclusion(leaf, index, size, path, _flip(root, position, bit))
    if path:
        element = data.draw(st.integers(0, len(path) - 1))
        tampered: list[bytes] = [*path]
        tampered[element] = _flip(tampered[element], position, bit)
        with pytest.raises(InvalidProof):
            verify_inclusion(leaf, index, size, tampered, root)
        with pytest.raises(InvalidProof):
            verify_inclusion(leaf, index, size, path[:-1], root)
    with pytest.raises(InvalidProof):
        verify_inclusion(leaf, index, size, [*path, root], root)
    other_index = data.draw(st.integers(0, size))
    assume(other_index != index)
    with pytest.raises(InvalidProof):
        verify_inclusion(leaf, other_index, size, path, root)


@settings(max_examples=150, deadline=None)
@given(entries=entries_lists, data=st.data())
def test_inclusion_fails_for_any_tree_size_with_another_path_shape(
    entries: list[bytes], data: st.DataObject
) -> None:
    # The root, not the path, binds the size: leaf 0 has the same path in trees of 5 and 6
    # leaves. That is RFC 9162's design (a signed tree head signs size and root together),
    # so the property is: a size whose audit path differs in length is refused.
    tree = MerkleTree.from_entries(entries)
    index = data.draw(st.integers(0, tree.size - 1))
    proof = tree.inclusion_proof(index)
    other_size = data.draw(st.integers(0, 2 * tree.size))
    assume(other_size <= index or _inclusion_length(index, other_size) != len(proof.audit_path))
    with pytest.raises(InvalidProof):
        verify_inclusion(tree.leaf(index), index, other_size, proof.audit_path, tree.root)


@settings(max_examples=150, deadline=None)
@given(entries=entries_lists, data=st.data())
def test_consistency_fails_when_any_input_is_altered(entries: list[bytes], data: st.DataObject) -> None:
    tree = MerkleTree.from_entries(entries)
    second = tree.size
    first = data.draw(st.integers(1, second - 1))
    path = list(tree.consistency_proof(first).path)
    first_root, second_root = tree.root_at(first), tree.root
    position, bit = data.draw(st.integers(0, 31)), data.draw(st.integers(0, 7))

    with pytest.raises(InvalidProof):
        verify_consistency(first, second, _flip(first_root, position, bit), second_root, path)
    with pytest.raises(InvalidProof):
        verify_consistency(first, second, first_root, _flip(second_root, position, bit), path)
    element = data.draw(st.integers(0, len(path) - 1))
    tampered: list[bytes] = [*path]
    tampered[element] = _flip(tampered[element], position, bit)
    with pytest.raises(InvalidProof):
        verify_consistency(first, second, first_root, second_root, tampered)
    with pytest.raises(InvalidProof):
        verify_consistency(first, second, first_root, second_root, path[:-1])
    with pytest.raises(InvalidProof):
        verify_consistency(first, second, first_root, second_root, [*path, second_root])
    other_first = data.draw(st.integers(1, second))
    assume(other_first != first)
    # A first size with the same path shape is bound by first_root instead: see below.
    assume(_consistency_length(other_first, second) != len(path))
    with pytest.raises(InvalidProof):
        verify_consistency(other_first, second, first_root, second_root, path)


@settings(max_examples=100, deadline=None)
@given(entries=entries_lists, data=st.data())
def test_consistency_fails_for_any_second_size_with_another_path_shape(
    entries: list[bytes], data: st.DataObject
) -> None:
    # As for inclusion: the roots bind the sizes, so sizes with the same path shape pass.
    tree = MerkleTree.from_entries(entries)
    first = data.draw(st.integers(1, tree.size - 1))
    path = tree.consistency_proof(first).path
    other_second = data.draw(st.integers(first, 2 * tree.size))
    assume(_consistency_length(first, other_second) != len(path))
    with pytest.raises(InvalidProof):
        verify_consistency(first, other_second, tree.root_at(first), tree.root, path)


@pytest.mark.parametrize("size", range(1, 40))
def test_path_length_helpers_agree_with_the_tree(size: int) -> None:
    tree = MerkleTree.from_entries([bytes([index]) for index in range(size)])
    for index in range(size):
        assert _inclusion_length(index, size) == len(tree.inclusion_proof(index).audit_path)
    for first in range(1, size + 1):
        assert _consistency_length(first, size) == len(tree.consistency_proof(first).path)
