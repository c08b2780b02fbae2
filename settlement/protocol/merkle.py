"""RFC 9162 (Certificate Transparency v2) §2.1 Merkle trees with SHA-256.

Hashing, audit paths and consistency proofs exactly as the RFC specifies them, so that any
RFC 9162 / RFC 6962 verifier (transparency-dev/merkle, the CT reference code) accepts them:

- leaf hash ``SHA-256(0x00 || data)``, node hash ``SHA-256(0x01 || left || right)``;
- the root of an empty tree is ``SHA-256("")``;
- a tree of ``n > 1`` leaves splits at ``k``, the largest power of two smaller than ``n``.

Such a tree is the same as one built level by level where an unpaired last node is promoted
unchanged to the next level (never duplicated, unlike Bitcoin). :class:`MerkleTree` builds
those levels once, with exactly ``n - 1`` node hashes, and then answers every root and proof
by lookups: ``O(log n)`` per proof instead of rehashing subtrees. :class:`MerkleLog` is the
append-only variant for a log that grows (one node hash per append, proofs at any past size).

Verification follows the RFC's iterative algorithms (§2.1.3.2 and §2.1.4.2) literally, and
raises :class:`InvalidProof` rather than returning ``False`` so that a caller cannot forget
to look at the answer.
"""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from types import ModuleType
from typing import Any, cast

from settlement.protocol.encoding import Digest

_native: ModuleType | None
try:
    # A whole level hashed per call (settlement/protocol/_rfc9162_native.c, built by make): the
    # same bytes as the loops below, at about twice their speed.
    from settlement.protocol import _rfc9162_native as _native
except ImportError:  # a checkout where it was never built: the pure-Python loops serve
    _native = None

__all__ = [
    "EMPTY_ROOT",
    "NATIVE_HASHING",
    "ConsistencyProof",
    "InclusionProof",
    "InvalidProof",
    "MerkleError",
    "MerkleLog",
    "MerkleTree",
    "ProofRequestError",
    "consistency_proof",
    "inclusion_proof",
    "leaf_hash",
    "merkle_root",
    "node_hash",
    "root_from_consistency_proof",
    "root_from_inclusion_proof",
    "verify_consistency",
    "verify_inclusion",
]

_sha256 = hashlib.sha256
_LEAF_PREFIX = b"\x00"
_NODE_PREFIX = b"\x01"
DIGEST_SIZE = 32

# A 64-bit tree size bounds every well-formed path at 64 hashes (inclusion) or 2*64
# (consistency); anything longer is refused before any hashing is done.
MAX_TREE_SIZE = 2**64 - 1
_MAX_PATH = 2 * 64

EMPTY_ROOT = Digest(_sha256(b"").digest())
"""MTH({}) = SHA-256 of the empty string (RFC 9162 §2.1.1)."""


class MerkleError(ValueError):
    """Base class of every Merkle error."""


class ProofRequestError(MerkleError):
    """A proof was asked for a leaf index or tree size that the tree does not have."""


class InvalidProof(MerkleError):  # noqa: N818 - the name is the interface
    """A proof that does not verify, or is malformed (wrong lengths, sizes or digests)."""


def leaf_hash(data: bytes) -> Digest:
    """``SHA-256(0x00 || data)``: the hash of one entry."""
    return Digest(_sha256(_LEAF_PREFIX + data).digest())


def node_hash(left: bytes, right: bytes) -> Digest:
    """``SHA-256(0x01 || left || right)``: the hash of an interior node."""
    return Digest(_sha256(_NODE_PREFIX + left + right).digest())


def _split(width: int) -> int:
    """The largest power of two strictly smaller than ``width`` (``width >= 2``)."""
    return 1 << ((width - 1).bit_length() - 1)


def _check_digest(value: object, what: str, error: type[MerkleError]) -> bytes:
    if not isinstance(value, (bytes, bytearray)) or len(value) != DIGEST_SIZE:
        raise error(f"{what} must be a {DIGEST_SIZE}-byte digest")
    return bytes(value)


def _parent_level_python(level: list[bytes]) -> list[bytes]:
    """Hash neighbours pairwise; an unpaired last node is promoted, which is RFC 9162's shape."""
    sha = _sha256
    prefix = _NODE_PREFIX
    pairs = iter(level)  # zip(it, it) walks neighbours without copying the level twice
    parents = [sha(prefix + left + right).digest() for left, right in zip(pairs, pairs, strict=False)]
    if len(level) % 2:
        parents.append(level[-1])
    return parents


def _leaf_hashes_python(entries: Iterable[bytes]) -> list[bytes]:
    sha = _sha256
    return [sha(_LEAF_PREFIX + entry).digest() for entry in entries]


NATIVE_HASHING = _native is not None
_parent_level: Callable[[list[bytes]], list[bytes]] = (
    _native.parent_level if _native else _parent_level_python
)
_leaf_hashes: Callable[[list[bytes]], list[bytes]] = _native.leaf_hashes if _native else _leaf_hashes_python


def _build_levels(leaf_hashes: list[bytes]) -> list[list[bytes]]:
    """All levels of the tree, leaves first, root last."""
    levels = [leaf_hashes]
    while len(levels[-1]) > 1:
        levels.append(_parent_level(levels[-1]))
    return levels


def _require_tree_size(tree_size: int, limit: int) -> None:
    if isinstance(tree_size, bool) or not isinstance(tree_size, int) or not 0 <= tree_size <= limit:
        raise ProofRequestError(f"tree size {tree_size!r} is not between 0 and {limit}")


def _require_index(index: int, tree_size: int) -> None:
    if isinstance(index, bool) or not isinstance(index, int) or not 0 <= index < tree_size:
        raise ProofRequestError(f"leaf index {index!r} is not below the tree size {tree_size}")


def _fold_range(levels: list[list[bytes]], start: int, end: int) -> bytes:
    """MTH(D[start:end]) for a right-edge node that is not stored, from the perfect subtrees
    it splits into (largest first, as RFC 9162 splits): ``O(log n)`` hashes."""
    width = end - start
    pieces = []
    position = start
    for height in range(width.bit_length() - 1, -1, -1):
        if width >> height & 1:
            pieces.append(levels[height][position >> height])
            position += 1 << height
    result = pieces[-1]
    for piece in reversed(pieces[:-1]):
        result = _sha256(_NODE_PREFIX + piece + result).digest()
    return result


def _inclusion_path(node: Callable[[int, int], bytes], leaf_index: int, tree_size: int) -> list[bytes]:
    """PATH(m, D[n]) unrolled: descend from the root, collect siblings, list them bottom-up."""
    path = []
    start, end = 0, tree_size
    while end - start > 1:
        k = _split(end - start)
        if leaf_index < start + k:
            path.append(node(start + k, end))
            end = start + k
        else:
            path.append(node(start, start + k))
            start += k
    path.reverse()
    return path


def _consistency_path(node: Callable[[int, int], bytes], first_size: int, second_size: int) -> list[bytes]:
    """SUBPROOF(m, D[n], true) unrolled: descend towards the boundary at m, collect siblings."""
    path = []
    remaining, start, end, is_whole_first_tree = first_size, 0, second_size, True
    while remaining != end - start:
        k = _split(end - start)
        if remaining <= k:
            path.append(node(start + k, end))
            end = start + k
        else:
            path.append(node(start, start + k))
            remaining -= k
            start += k
            is_whole_first_tree = False
    if not is_whole_first_tree:
        path.append(node(start, end))
    path.reverse()
    return path


@dataclass(frozen=True)
class InclusionProof:
    """An audit path (RFC 9162 §2.1.3): the leaf's siblings from the bottom of the tree up."""

    leaf_index: int
    tree_size: int
    audit_path: tuple[Digest, ...]

    def to_json(self) -> dict[str, Any]:
        return {
            "leaf_index": self.leaf_index,
            "tree_size": self.tree_size,
            "inclusion_path": [digest.hex() for digest in self.audit_path],
        }

    @classmethod
    def from_json(cls, data: Any) -> InclusionProof:
        try:
            leaf_index, tree_size, path = data["leaf_index"], data["tree_size"], data["inclusion_path"]
        except (KeyError, TypeError) as error:
            raise InvalidProof("an inclusion proof needs leaf_index, tree_size and inclusion_path") from error
        _check_size(leaf_index, "leaf_index")
        _check_size(tree_size, "tree_size")
        return cls(leaf_index, tree_size, _path_from_hex(path))


@dataclass(frozen=True)
class ConsistencyProof:
    """A consistency path (RFC 9162 §2.1.4) between a tree of ``first_size`` and one of ``second_size``."""

    first_size: int
    second_size: int
    path: tuple[Digest, ...]

    def to_json(self) -> dict[str, Any]:
        return {
            "first_size": self.first_size,
            "second_size": self.second_size,
            "consistency_path": [digest.hex() for digest in self.path],
        }

    @classmethod
    def from_json(cls, data: Any) -> ConsistencyProof:
        try:
            first, second, path = data["first_size"], data["second_size"], data["consistency_path"]
        except (KeyError, TypeError) as error:
            raise InvalidProof(
                "a consistency proof needs first_size, second_size and consistency_path"
            ) from error
        _check_size(first, "first_size")
        _check_size(second, "second_size")
        return cls(first, second, _path_from_hex(path))


def _check_size(value: object, what: str) -> int:
    # bool is an int in Python; True as a tree size is a bug, not a size.
    if not isinstance(value, int) or isinstance(value, bool) or not 0 <= value <= MAX_TREE_SIZE:
        raise InvalidProof(f"{what} must be an integer between 0 and 2**64-1")
    return value


def _path_from_hex(path: object) -> tuple[Digest, ...]:
    if not isinstance(path, list) or len(path) > _MAX_PATH:
        raise InvalidProof(f"a proof path is a list of at most {_MAX_PATH} hex digests")
    digests = []
    for item in path:
        try:
            digest = bytes.fromhex(item)
        except (TypeError, ValueError) as error:
            raise InvalidProof("a proof path holds hex digests") from error
        digests.append(Digest(_check_digest(digest, "each path element", InvalidProof)))
    return tuple(digests)


class MerkleTree:
    """An immutable RFC 9162 tree over a list of leaf hashes, with every node kept.

    Building costs ``n - 1`` hashes; the root, and the root of any earlier size, is then a
    lookup (or ``O(log n)`` hashes for an earlier size), and every proof ``O(log n)``.
    """

    __slots__ = ("_levels", "_size")

    def __init__(self, leaf_hashes: Iterable[bytes]) -> None:
        leaves = _checked_leaves(leaf_hashes)
        self._size = len(leaves)
        self._levels = _build_levels(leaves)

    @classmethod
    def from_entries(cls, entries: Iterable[bytes]) -> MerkleTree:
        """Build the tree over raw entries, hashing each as a leaf."""
        tree = cls.__new__(cls)
        leaves = _leaf_hashes(entries if isinstance(entries, list) else list(entries))
        tree._size = len(leaves)
        tree._levels = _build_levels(leaves)
        return tree

    @property
    def size(self) -> int:
        return self._size

    def __len__(self) -> int:
        return self._size

    @property
    def root(self) -> Digest:
        """MTH(D[n]) of the whole tree."""
        if self._size == 0:
            return EMPTY_ROOT
        return Digest(self._levels[-1][0])

    def leaf(self, index: int) -> Digest:
        self._check_index(index, self._size)
        return Digest(self._levels[0][index])

    def level_bytes(self) -> bytes:
        """Every stored hash, level by level (leaf hashes first, the root last), 32 bytes each.

        Level ``k`` holds ``ceil(n / 2**k)`` hashes, so a reader can find any node's offset from
        ``n`` alone and read an audit path without the rest (``consensus.receipts``)."""
        return b"".join(b"".join(level) for level in self._levels)

    def audit_paths_bytes(self) -> list[bytes]:
        """Every leaf's audit path in the whole tree (``inclusion_proof(i).audit_path`` joined),
        in leaf order: for checking the paths of a whole batch at once.

        Built from the root down (a node's path is its sibling, if it has one, then its parent's
        path): one concatenation per node instead of a walk up the tree per leaf."""
        if self._size == 0:
            return []
        paths = [b""]
        for level in reversed(self._levels[:-1]):
            width = len(level)
            paths = [
                (level[position ^ 1] if position ^ 1 < width else b"") + paths[position >> 1]
                for position in range(width)
            ]
        return paths

    def root_at(self, tree_size: int) -> Digest:
        """MTH(D[0:tree_size]): the root this tree had when it held ``tree_size`` leaves."""
        self._check_tree_size(tree_size)
        if tree_size == 0:
            return EMPTY_ROOT
        return Digest(self._node(0, tree_size))

    def inclusion_proof(self, leaf_index: int, tree_size: int | None = None) -> InclusionProof:
        """PATH(m, D[n]) of RFC 9162 §2.1.3.1 for leaf ``leaf_index`` (0-based)."""
        size = self._size if tree_size is None else tree_size
        self._check_tree_size(size)
        self._check_index(leaf_index, size)
        path: list[bytes] = []
        if size == self._size:
            # The stored levels are exactly this tree: siblings are neighbours on each level,
            # and a missing sibling means the node was promoted and adds nothing to the path.
            path = self._path_up(0, leaf_index)
        else:
            path = _inclusion_path(self._node, leaf_index, size)
        return InclusionProof(leaf_index, size, cast(tuple[Digest, ...], tuple(path)))

    def consistency_proof(self, first_size: int, second_size: int | None = None) -> ConsistencyProof:
        """PROOF(m, D[n]) of RFC 9162 §2.1.4.1 between sizes ``first_size`` and ``second_size``.

        ``0 < first_size <= second_size``; equal sizes give the empty proof.
        """
        second = self._size if second_size is None else second_size
        self._check_tree_size(second)
        if not 0 < first_size <= second:
            raise ProofRequestError(
                f"a consistency proof needs 0 < first_size <= second_size, got {first_size} and {second}"
            )
        if first_size == second:
            return ConsistencyProof(first_size, second, ())
        if second == self._size:
            # The boundary node: the largest perfect subtree that ends at first_size. Its
            # audit path in the second tree is the proof, preceded by the node itself unless
            # it is the whole first tree (RFC 9162 then leaves it out, the verifier has it).
            height = (first_size & -first_size).bit_length() - 1
            position = (first_size - 1) >> height
            path = self._path_up(height, position)
            if position:
                path.insert(0, self._levels[height][position])
            return ConsistencyProof(first_size, second, cast(tuple[Digest, ...], tuple(path)))
        path = _consistency_path(self._node, first_size, second)
        return ConsistencyProof(first_size, second, cast(tuple[Digest, ...], tuple(path)))

    def _path_up(self, height: int, position: int) -> list[bytes]:
        """Siblings of node ``position`` at ``height`` up to the root of the full tree.

        Siblings are neighbours on each stored level; a node without one was promoted and
        adds nothing to the path.
        """
        path: list[bytes] = []
        append = path.append
        for level in self._levels[height:-1]:
            sibling = position ^ 1
            if sibling < len(level):
                append(level[sibling])
            position >>= 1
        return path

    def _check_tree_size(self, tree_size: int) -> None:
        _require_tree_size(tree_size, self._size)

    @staticmethod
    def _check_index(index: int, tree_size: int) -> None:
        _require_index(index, tree_size)

    def _node(self, start: int, end: int) -> bytes:
        """MTH(D[start:end]) for a node of an RFC 9162 tree of ``end`` or more leaves.

        Every node of an RFC 9162 tree is either perfect (a power-of-two width, aligned) or on
        the right edge (``end == tree_size``); perfect nodes and the right edge of the full
        tree are stored, the right edge of an earlier size is folded from perfect subtrees.
        """
        width = end - start
        height = (width - 1).bit_length()
        if width & (width - 1) == 0 or end == self._size:
            return self._levels[height][start >> height]
        return _fold_range(self._levels, start, end)


class MerkleLog:
    """An append-only RFC 9162 tree: the shape of a log that grows block by block.

    Only perfect subtrees are stored, so appending costs one node hash amortised (never a
    rebuild), and nothing stored ever changes. The root folds the ``O(log n)`` peaks; proofs
    for the current or any earlier size fold at most one right-edge node each.
    """

    __slots__ = ("_levels", "_root", "_size")

    def __init__(self, leaf_hashes: Iterable[bytes] = ()) -> None:
        self._levels: list[list[bytes]] = [[]]
        self._size = 0
        self._root: bytes | None = EMPTY_ROOT
        self.extend(leaf_hashes)

    @property
    def size(self) -> int:
        return self._size

    def __len__(self) -> int:
        return self._size

    def append(self, leaf: bytes) -> int:
        """Append one leaf hash; return its index."""
        node = _check_digest(leaf, "a leaf hash", MerkleError)
        levels = self._levels
        levels[0].append(node)
        height = 0
        # A level of even length has just completed a pair: hash it into the level above.
        while len(levels[height]) % 2 == 0:
            node = _sha256(_NODE_PREFIX + levels[height][-2] + node).digest()
            height += 1
            if height == len(levels):
                levels.append([])
            levels[height].append(node)
        self._size += 1
        self._root = None
        return self._size - 1

    def append_entry(self, entry: bytes) -> int:
        """Hash ``entry`` as a leaf and append it; return its index."""
        return self.append(_sha256(_LEAF_PREFIX + entry).digest())

    def extend(self, leaf_hashes: Iterable[bytes]) -> None:
        for leaf in leaf_hashes:
            self.append(leaf)

    @property
    def root(self) -> Digest:
        if self._root is None:
            self._root = self._node(0, self._size)
        return Digest(self._root)

    def root_at(self, tree_size: int) -> Digest:
        _require_tree_size(tree_size, self._size)
        return EMPTY_ROOT if tree_size == 0 else Digest(self._node(0, tree_size))

    def leaf(self, index: int) -> Digest:
        _require_index(index, self._size)
        return Digest(self._levels[0][index])

    def inclusion_proof(self, leaf_index: int, tree_size: int | None = None) -> InclusionProof:
        size = self._size if tree_size is None else tree_size
        _require_tree_size(size, self._size)
        _require_index(leaf_index, size)
        path = _inclusion_path(self._node, leaf_index, size)
        return InclusionProof(leaf_index, size, cast(tuple[Digest, ...], tuple(path)))

    def consistency_proof(self, first_size: int, second_size: int | None = None) -> ConsistencyProof:
        second = self._size if second_size is None else second_size
        _require_tree_size(second, self._size)
        if not 0 < first_size <= second:
            raise ProofRequestError(
                f"a consistency proof needs 0 < first_size <= second_size, got {first_size} and {second}"
            )
        path = _consistency_path(self._node, first_size, second)
        return ConsistencyProof(first_size, second, cast(tuple[Digest, ...], tuple(path)))

    def snapshot(self) -> MerkleTree:
        """An immutable :class:`MerkleTree` of the current leaves (faster for many proofs)."""
        return MerkleTree(self._levels[0])

    def _node(self, start: int, end: int) -> bytes:
        width = end - start
        if width == 0:
            return EMPTY_ROOT
        if width & (width - 1) == 0:
            height = width.bit_length() - 1
            return self._levels[height][start >> height]
        return _fold_range(self._levels, start, end)


def _checked_leaves(leaf_hashes: Iterable[bytes]) -> list[bytes]:
    leaves = list(leaf_hashes)
    # map() keeps these checks in C: they must not cost what the hashing costs.
    if set(map(type, leaves)) - {bytes}:
        leaves = [_check_digest(digest, "each leaf hash", MerkleError) for digest in leaves]
    if set(map(len, leaves)) - {DIGEST_SIZE}:
        position = next(i for i, digest in enumerate(leaves) if len(digest) != DIGEST_SIZE)
        raise MerkleError(f"leaf hash {position} is not {DIGEST_SIZE} bytes")
    return leaves


def merkle_root(leaf_hashes: Iterable[bytes]) -> Digest:
    """MTH(D[n]) of a list of leaf hashes, keeping only one level in memory."""
    level = _checked_leaves(leaf_hashes)
    if not level:
        return EMPTY_ROOT
    while len(level) > 1:
        level = _parent_level(level)
    return Digest(level[0])


def inclusion_proof(leaf_hashes: Iterable[bytes], leaf_index: int) -> InclusionProof:
    """The audit path of one leaf, keeping one level in memory (for a single proof)."""
    level = _checked_leaves(leaf_hashes)
    size = len(level)
    _require_index(leaf_index, size)
    path = []
    position = leaf_index
    while len(level) > 1:
        sibling = position ^ 1
        if sibling < len(level):
            path.append(level[sibling])
        level = _parent_level(level)
        position >>= 1
    return InclusionProof(leaf_index, size, cast(tuple[Digest, ...], tuple(path)))


def consistency_proof(leaf_hashes: Iterable[bytes], first_size: int) -> ConsistencyProof:
    """The consistency path from ``first_size`` to ``len(leaf_hashes)``, one level in memory."""
    level = _checked_leaves(leaf_hashes)
    second = len(level)
    if isinstance(first_size, bool) or not isinstance(first_size, int) or not 0 < first_size <= second:
        raise ProofRequestError(f"a consistency proof needs 0 < first_size <= {second}, got {first_size!r}")
    if first_size == second:
        return ConsistencyProof(first_size, second, ())
    # As MerkleTree.consistency_proof: the boundary node (unless it is the whole first tree),
    # then its audit path in the second tree.
    height = (first_size & -first_size).bit_length() - 1
    position = (first_size - 1) >> height
    for _ in range(height):
        level = _parent_level(level)
    path = [level[position]] if position else []
    while len(level) > 1:
        sibling = position ^ 1
        if sibling < len(level):
            path.append(level[sibling])
        level = _parent_level(level)
        position >>= 1
    return ConsistencyProof(first_size, second, cast(tuple[Digest, ...], tuple(path)))


def _checked_path(path: Sequence[bytes], what: str) -> list[bytes]:
    """The path as a list of 32-byte ``bytes``, checked in bulk (map runs in C) before hashing."""
    if len(path) > _MAX_PATH:
        raise InvalidProof(f"the {what} is too long")
    elements = list(path)
    if set(map(type, elements)) - {bytes}:
        elements = [_check_digest(element, f"each {what} element", InvalidProof) for element in elements]
    if set(map(len, elements)) - {DIGEST_SIZE}:
        raise InvalidProof(f"each {what} element must be a {DIGEST_SIZE}-byte digest")
    return elements


def root_from_inclusion_proof(
    leaf: bytes, leaf_index: int, tree_size: int, audit_path: Sequence[bytes]
) -> Digest:
    """The root that ``audit_path`` leads to from ``leaf`` (RFC 9162 §2.1.3.2 steps 1 to 5).

    Raises :class:`InvalidProof` when the path cannot belong to a tree of ``tree_size``.
    """
    _check_size(leaf_index, "leaf_index")
    _check_size(tree_size, "tree_size")
    result = _check_digest(leaf, "the leaf hash", InvalidProof)
    if leaf_index >= tree_size:
        raise InvalidProof(f"leaf index {leaf_index} is not below the tree size {tree_size}")
    path = _checked_path(audit_path, "audit path")
    fn, sn = leaf_index, tree_size - 1
    sha = _sha256
    for sibling in path:
        if sn == 0:
            raise InvalidProof("the audit path is longer than the tree is deep")
        if fn & 1 or fn == sn:
            result = sha(_NODE_PREFIX + sibling + result).digest()
            if not fn & 1:
                while fn and not fn & 1:
                    fn >>= 1
                    sn >>= 1
        else:
            result = sha(_NODE_PREFIX + result + sibling).digest()
        fn >>= 1
        sn >>= 1
    if sn != 0:
        raise InvalidProof("the audit path is shorter than the tree is deep")
    return Digest(result)


def verify_inclusion(
    leaf: bytes, leaf_index: int, tree_size: int, audit_path: Sequence[bytes], root: bytes
) -> None:
    """Raise :class:`InvalidProof` unless ``audit_path`` proves ``leaf`` at ``leaf_index`` under ``root``."""
    expected = _check_digest(root, "the root", InvalidProof)
    computed = root_from_inclusion_proof(leaf, leaf_index, tree_size, audit_path)
    if not hmac.compare_digest(computed, expected):
        raise InvalidProof("the audit path does not lead to this root")


def root_from_consistency_proof(
    first_size: int, second_size: int, first_root: bytes, path: Sequence[bytes]
) -> Digest:
    """The second root that ``path`` proves the tree of ``first_size`` leaves (whose root is
    ``first_root``) grows into (RFC 9162 §2.1.4.2 steps 1 to 7, returning ``sr``).

    Raises :class:`InvalidProof` unless the path leads back to ``first_root``: only then is the
    second root it yields one the first tree is a prefix of. A receipt uses this to derive the
    anchored root instead of carrying it. ``first_size`` must be at least 1.
    """
    _check_size(first_size, "first_size")
    _check_size(second_size, "second_size")
    first_hash = _check_digest(first_root, "the first root", InvalidProof)
    if first_size == 0:
        raise InvalidProof("the empty tree is a prefix of every tree: it proves no second root")
    if first_size > second_size:
        raise InvalidProof(f"first size {first_size} is larger than second size {second_size}")
    elements = _checked_path(path, "consistency path")
    if first_size == second_size:
        if elements:
            raise InvalidProof("a proof between equal sizes is empty")
        return Digest(first_hash)
    # Step 1.
    if not elements:
        raise InvalidProof("the consistency path is empty")
    # Step 2: a power-of-two first tree is a node of the second, so the RFC leaves it out.
    if first_size & (first_size - 1) == 0:
        elements.insert(0, first_hash)
    # Steps 3 and 4.
    fn, sn = first_size - 1, second_size - 1
    while fn & 1:
        fn >>= 1
        sn >>= 1
    # Steps 5 and 6.
    fr = sr = elements[0]
    sha = _sha256
    for element in elements[1:]:
        if sn == 0:
            raise InvalidProof("the consistency path is longer than the tree is deep")
        if fn & 1 or fn == sn:
            fr = sha(_NODE_PREFIX + element + fr).digest()
            sr = sha(_NODE_PREFIX + element + sr).digest()
            if not fn & 1:
                while fn and not fn & 1:
                    fn >>= 1
                    sn >>= 1
        else:
            sr = sha(_NODE_PREFIX + sr + element).digest()
        fn >>= 1
        sn >>= 1
    # Step 7.
    if sn != 0:
        raise InvalidProof("the consistency path is shorter than the tree is deep")
    if not hmac.compare_digest(fr, first_hash):
        raise InvalidProof("the consistency path does not lead to the first root")
    return Digest(sr)


def verify_consistency(
    first_size: int,
    second_size: int,
    first_root: bytes,
    second_root: bytes,
    path: Sequence[bytes],
) -> None:
    """Raise :class:`InvalidProof` unless ``path`` proves the tree of ``first_size`` leaves is a
    prefix of the tree of ``second_size`` leaves (RFC 9162 §2.1.4.2).

    As in transparency-dev/merkle: equal sizes need an empty path and equal roots; a first size
    of 0 (the empty tree is a prefix of everything) needs an empty path.
    """
    _check_size(first_size, "first_size")
    _check_size(second_size, "second_size")
    _check_digest(first_root, "the first root", InvalidProof)
    second_hash = _check_digest(second_root, "the second root", InvalidProof)
    if first_size > second_size:
        raise InvalidProof(f"first size {first_size} is larger than second size {second_size}")
    if first_size == 0:
        if _checked_path(path, "consistency path"):
            raise InvalidProof("a proof from the empty tree is empty")
        return
    computed = root_from_consistency_proof(first_size, second_size, first_root, path)
    if not hmac.compare_digest(computed, second_hash):
        if first_size == second_size:
            raise InvalidProof("two trees of the same size have different roots")
        raise InvalidProof("the consistency path does not lead to the second root")
