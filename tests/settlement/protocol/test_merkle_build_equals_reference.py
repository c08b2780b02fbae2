"""The optimised tree building gives byte for byte what a straightforward RFC 9162 tree gives:
the recursive MTH of §2.1.1 and a naive level-by-level build with plain concatenation, for
any entries and any size (hypothesis), through every way of building a tree."""

from __future__ import annotations

import hashlib
import subprocess
import sys

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from settlement.protocol import _rfc9162_native as native
from settlement.protocol import merkle
from settlement.protocol.merkle import MerkleLog, MerkleTree, inclusion_proof, leaf_hash, merkle_root


def _sha(data: bytes) -> bytes:
    return hashlib.sha256(data).digest()


def _reference_root(entries: list[bytes]) -> bytes:
    """MTH(D[n]) as RFC 9162 §2.1.1 writes it, recursion and all."""
    if not entries:
        return _sha(b"")
    if len(entries) == 1:
        return _sha(b"\x00" + entries[0])
    k = 1
    while k * 2 < len(entries):
        k *= 2
    return _sha(b"\x01" + _reference_root(entries[:k]) + _reference_root(entries[k:]))


def _reference_levels(entries: list[bytes]) -> list[list[bytes]]:
    """Level by level, the unpaired last node promoted: the simplest loop that can be written."""
    level = [_sha(b"\x00" + entry) for entry in entries]
    levels = [level]
    while len(level) > 1:
        parents = []
        for position in range(0, len(level) - 1, 2):
            parents.append(_sha(b"\x01" + level[position] + level[position + 1]))
        if len(level) % 2 == 1:
            parents.append(level[-1])
        level = parents
        levels.append(level)
    return levels


entries_strategy = st.lists(st.binary(max_size=80), max_size=300)


@settings(max_examples=150, derandomize=True)
@given(entries=entries_strategy)
def test_every_way_of_building_gives_the_reference_root(entries):
    expected = _reference_root(entries)
    leaves = [leaf_hash(entry) for entry in entries]
    assert MerkleTree.from_entries(entries).root == expected
    assert MerkleTree(leaves).root == expected
    assert merkle_root(leaves) == expected
    assert MerkleLog(leaves).root == expected


@settings(max_examples=100, derandomize=True)
@given(entries=entries_strategy.filter(bool), data=st.data())
def test_every_stored_node_and_path_equals_the_naive_build(entries, data):
    levels = _reference_levels(entries)
    tree = MerkleTree.from_entries(entries)
    assert tree._levels == levels
    index = data.draw(st.integers(0, len(entries) - 1))
    expected_path = []
    position = index
    for level in levels[:-1]:
        if position ^ 1 < len(level):
            expected_path.append(level[position ^ 1])
        position >>= 1
    assert list(tree.inclusion_proof(index).audit_path) == expected_path
    assert list(inclusion_proof(levels[0], index).audit_path) == expected_path


# The compiled level hasher (settlement/protocol/_rfc9162_native.c) against the pure-Python
# loops it replaces. `make install` builds it, so in this suite its absence is a failure, not a
# reason to skip: a silent fallback would leave the fast path untested.


def test_the_suite_runs_on_the_compiled_level_hasher():
    assert merkle.NATIVE_HASHING
    assert merkle._parent_level is native.parent_level
    assert merkle._leaf_hashes is native.leaf_hashes


@settings(max_examples=150, derandomize=True)
@given(entries=st.lists(st.binary(max_size=200), max_size=300))
def test_compiled_and_python_levels_are_the_same_bytes(entries):
    assert native.leaf_hashes(entries) == merkle._leaf_hashes_python(entries)
    level = merkle._leaf_hashes_python(entries)
    while len(level) > 1:
        assert native.parent_level(level) == merkle._parent_level_python(level)
        level = merkle._parent_level_python(level)
    assert native.parent_level(level) == level  # zero or one node: nothing to pair


@pytest.mark.parametrize(
    ("call", "argument", "error"),
    [
        (native.leaf_hashes, [b"ok", "text"], TypeError),
        (native.leaf_hashes, [bytearray(b"mutable")], TypeError),
        (native.leaf_hashes, 7, TypeError),
        (native.parent_level, [b"\x00" * 32, b"\x00" * 31], ValueError),
        (native.parent_level, [b"\x00" * 32, b"\x00" * 32, b"short"], ValueError),
        (native.parent_level, [b"\x00" * 32, None], TypeError),
    ],
)
def test_the_compiled_hasher_refuses_what_is_not_a_list_of_bytes(call, argument, error):
    with pytest.raises(error):
        call(argument)


def test_a_checkout_without_the_compiled_hasher_builds_the_same_tree_in_python():
    # A fresh interpreter where the module cannot be imported, as on a machine that never ran make.
    entries = [i.to_bytes(2, "big") * (i % 50) for i in range(1000)]
    script = (
        "import sys; sys.modules['settlement.protocol._rfc9162_native'] = None\n"
        "from settlement.protocol import merkle\n"
        "assert not merkle.NATIVE_HASHING\n"
        "entries = [bytes.fromhex(line) for line in sys.stdin.read().split(',')]\n"
        "print(merkle.MerkleTree.from_entries(entries).root.hex())\n"
    )
    given_entries = ",".join(entry.hex() for entry in entries)
    result = subprocess.run(
        [sys.executable, "-c", script], input=given_entries, capture_output=True, text=True, check=True
    )
    assert result.stdout.strip() == MerkleTree.from_entries(entries).root.hex()
