"""The consensus half of a receipt: proof that one observation leaf is in an agreed, certified
block, that the block is in the block log, and that the log was anchored on Ethereum (docs/receipt.md).

Pure: the shell (``consensus.receipts``) gathers the paths and signatures, this module states the
wire form and checks it. Nothing a verifier can recompute is carried: the block's Merkle root is
folded from the leaf and its path, the header and its hash are rebuilt from that root, the block
log's root at the block's own size is folded from the block hash, and the anchored root is folded
from that root by the consistency path. So a forged field cannot just be asserted; it has to make
the hashes and signatures come out, which needs the validators' keys.

Hashes and signatures travel as base64 (RFC 4648 §4, with padding, as RFC 9162 §5's JSON API
does); the few Ethereum values stay 0x-hex, the form a block explorer and JSON-RPC show.
"""

from __future__ import annotations

import base64
import binascii
import functools
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from consensus.protocol.block import BLOCK_KIND
from settlement.protocol.encoding import Digest, domain_bytes, sha256
from settlement.protocol.merkle import (
    InvalidProof,
    leaf_hash,
    root_from_consistency_proof,
    root_from_inclusion_proof,
)
from settlement.protocol.signing import is_valid_bytes

# A 64-bit tree is at most 64 levels deep; a longer path is malformed before any hashing.
MAX_PATH = 64
# A validator set larger than this is not a Parsec network (every event is checked by all).
MAX_VALIDATORS = 256
_MAX_INT = 2**53 - 1

ANCHORED_TOPIC = "0x0cd48d2f0de2b26babeaa563bc19f67e7b14bb998edeaabe4592e8b4472dda6b"
"""keccak256("Anchored(address,uint64,bytes32)"): topic 0 of the AnchorRegistry event
(tests/ledgers/protocol/test_receipt_anchor_topic.py compares it with eth_utils' keccak)."""

_HEX_32 = re.compile(r"0x[0-9a-f]{64}\Z")
_ADDRESS = re.compile(r"0x[0-9a-f]{40}\Z")


class ReceiptError(ValueError):
    """Base of every receipt error; ``check`` names the check that failed."""

    check = "format"

    def __init__(self, message: str, *, check: str | None = None) -> None:
        super().__init__(message)
        if check:
            self.check = check


class ReceiptFormatError(ReceiptError):
    """The document does not have the receipt's shape (a key missing or extra, a bad encoding)."""


class ReceiptCheckFailed(ReceiptError):  # noqa: N818 - the name says what happened
    """A well-formed receipt whose proof does not hold."""


# ----------------------------------------------------------------- strict JSON field readers


def b64(data: bytes) -> str:
    return base64.b64encode(data).decode("ascii")


def read_b64(value: object, *, what: str, size: int | None = None) -> bytes:
    """Standard base64 with padding, in its one canonical spelling (so no two texts decode to
    the same bytes and a changed character always changes the value)."""
    if not isinstance(value, str):
        raise ReceiptFormatError(f"{what} must be a base64 string")
    try:
        data = base64.b64decode(value, validate=True)
    except (binascii.Error, ValueError) as error:
        raise ReceiptFormatError(f"{what} is not base64") from error
    if b64(data) != value:
        raise ReceiptFormatError(f"{what} is not canonical base64")
    if size is not None and len(data) != size:
        raise ReceiptFormatError(f"{what} must be {size} bytes, not {len(data)}")
    return data


def read_int(value: object, *, what: str, minimum: int = 0) -> int:
    # bool is an int in Python; true as a height is a forgery, not a height.
    if isinstance(value, bool) or not isinstance(value, int) or not minimum <= value <= _MAX_INT:
        raise ReceiptFormatError(f"{what} must be an integer between {minimum} and 2**53-1")
    return value


def read_path(value: object, *, what: str, packed: bool = True) -> tuple[Digest, ...]:
    """An audit or consistency path. ``packed`` (receipt version 3): one base64 string of the
    hashes, 32 bytes each, bottom up (``""`` for an empty path), as the message section writes
    its path; else (version 2) a list of base64 hashes. 4 to 5 bytes fewer per hash, and one
    form each way."""
    if not packed:
        if not isinstance(value, list) or len(value) > MAX_PATH:
            raise ReceiptFormatError(f"{what} must be a list of at most {MAX_PATH} base64 digests")
        return tuple(Digest(read_b64(item, what=f"each element of {what}", size=32)) for item in value)
    raw = read_b64(value, what=what)
    if len(raw) % 32 or len(raw) > 32 * MAX_PATH:
        raise ReceiptFormatError(f"{what} must be base64 of at most {MAX_PATH} hashes of 32 bytes each")
    return tuple(Digest(raw[at : at + 32]) for at in range(0, len(raw), 32))


def path_to_json(path: tuple[Digest, ...] | tuple[bytes, ...], *, packed: bool = True) -> str | list[str]:
    """The form :func:`read_path` reads."""
    return b64(b"".join(path)) if packed else [b64(item) for item in path]


def read_object(value: object, *, what: str, keys: frozenset[str]) -> Mapping[str, Any]:
    """An object with exactly ``keys``: a missing key and an unknown one are both refused."""
    if not isinstance(value, Mapping):
        raise ReceiptFormatError(f"{what} must be an object")
    if set(value) != keys:
        missing, extra = sorted(keys - set(value)), sorted(set(value) - keys)
        parts = ([f"missing {', '.join(missing)}"] if missing else []) + (
            [f"unknown {', '.join(extra)}"] if extra else []
        )
        raise ReceiptFormatError(f"{what}: {'; '.join(parts)}")
    return value


def _read_hex(value: object, pattern: re.Pattern[str], *, what: str) -> str:
    if not isinstance(value, str) or not pattern.match(value):
        raise ReceiptFormatError(f"{what} must be lowercase 0x-hex ({pattern.pattern[2:-2]})")
    return value


# ----------------------------------------------------------------- the three sections


@dataclass(frozen=True)
class BlockSection:
    """The block header fields that cannot be derived, the leaf's path, the validators' signatures.

    ``signatures[i]`` is validator ``i``'s signature on the header, or ``None``: the list is
    aligned with ``validators`` so no key is written twice.
    """

    height: int
    previous: bytes
    epoch: int
    round: int
    count: int
    leaf_index: int
    inclusion_path: tuple[Digest, ...]
    validators: tuple[bytes, ...]
    signatures: tuple[bytes | None, ...]

    KEYS = frozenset(
        {
            "height",
            "previous",
            "epoch",
            "round",
            "count",
            "leaf_index",
            "inclusion_path",
            "validators",
            "signatures",
        }
    )

    def header(self, root: bytes) -> dict[str, Any]:
        """The header the validators signed (``consensus.protocol.block.Block.header``)."""
        return {
            "height": self.height,
            "previous": self.previous.hex(),
            "epoch": self.epoch,
            "round": self.round,
            "root": root.hex(),
            "count": self.count,
        }

    def to_json(self, *, packed_paths: bool = True) -> dict[str, Any]:
        return {
            "height": self.height,
            "previous": b64(self.previous),
            "epoch": self.epoch,
            "round": self.round,
            "count": self.count,
            "leaf_index": self.leaf_index,
            "inclusion_path": path_to_json(self.inclusion_path, packed=packed_paths),
            "validators": [b64(item) for item in self.validators],
            "signatures": [None if item is None else b64(item) for item in self.signatures],
        }

    @classmethod
    def from_json(cls, value: object, *, packed_paths: bool = True) -> BlockSection:
        data = read_object(value, what="block", keys=cls.KEYS)
        validators, signatures = data["validators"], data["signatures"]
        if not isinstance(validators, list) or not 0 < len(validators) <= MAX_VALIDATORS:
            raise ReceiptFormatError(f"block.validators must list 1 to {MAX_VALIDATORS} keys")
        if not isinstance(signatures, list) or len(signatures) != len(validators):
            raise ReceiptFormatError(
                "block.signatures must have one item (a signature or null) per validator"
            )
        return cls(
            height=read_int(data["height"], what="block.height"),
            previous=read_b64(data["previous"], what="block.previous", size=32),
            epoch=read_int(data["epoch"], what="block.epoch"),
            round=read_int(data["round"], what="block.round"),
            count=read_int(data["count"], what="block.count", minimum=1),
            leaf_index=read_int(data["leaf_index"], what="block.leaf_index"),
            inclusion_path=read_path(
                data["inclusion_path"], what="block.inclusion_path", packed=packed_paths
            ),
            validators=tuple(read_b64(item, what="each of block.validators", size=32) for item in validators),
            signatures=tuple(
                None if item is None else read_b64(item, what="each of block.signatures", size=64)
                for item in signatures
            ),
        )


@dataclass(frozen=True)
class LogSection:
    """The block hash's audit path in the block log at size ``height + 1`` (the log the block
    itself closed), and the consistency path from that size to the anchored size."""

    inclusion_path: tuple[Digest, ...]
    consistency_path: tuple[Digest, ...]

    KEYS = frozenset({"inclusion_path", "consistency_path"})

    def to_json(self, *, packed_paths: bool = True) -> dict[str, Any]:
        return {
            "inclusion_path": path_to_json(self.inclusion_path, packed=packed_paths),
            "consistency_path": path_to_json(self.consistency_path, packed=packed_paths),
        }

    @classmethod
    def from_json(cls, value: object, *, packed_paths: bool = True) -> LogSection | None:
        if value is None:
            return None
        data = read_object(value, what="log", keys=cls.KEYS)
        return cls(
            inclusion_path=read_path(data["inclusion_path"], what="log.inclusion_path", packed=packed_paths),
            consistency_path=read_path(
                data["consistency_path"], what="log.consistency_path", packed=packed_paths
            ),
        )


@dataclass(frozen=True)
class AnchorSection:
    """Where the block log's root at size ``height + 1`` was written on Ethereum.

    Offline these are the issuer's statements (signed, so attributable); ``--rpc`` checks each
    against the chain. ``confirmations`` is what the issuer saw when it issued the receipt.
    """

    chain_id: int
    contract: str
    account: str
    height: int
    tx: str
    block_number: int
    log_index: int
    confirmations: int
    root: str
    """The block log's root at size ``height + 1`` as the ``Anchored`` event holds it (0x-hex).
    Offline the verifier checks that the consistency path leads to it; ``--rpc`` that the chain
    holds it."""

    KEYS = frozenset(
        {
            "root",
            "chain_id",
            "contract",
            "account",
            "height",
            "tx",
            "block_number",
            "log_index",
            "confirmations",
        }
    )

    def to_json(self) -> dict[str, Any]:
        return {
            "chain_id": self.chain_id,
            "contract": self.contract,
            "account": self.account,
            "height": self.height,
            "tx": self.tx,
            "block_number": self.block_number,
            "log_index": self.log_index,
            "confirmations": self.confirmations,
            "root": self.root,
        }

    @classmethod
    def from_json(cls, value: object) -> AnchorSection | None:
        if value is None:
            return None
        data = read_object(value, what="anchor", keys=cls.KEYS)
        return cls(
            chain_id=read_int(data["chain_id"], what="anchor.chain_id", minimum=1),
            contract=_read_hex(data["contract"], _ADDRESS, what="anchor.contract"),
            account=_read_hex(data["account"], _ADDRESS, what="anchor.account"),
            height=read_int(data["height"], what="anchor.height"),
            tx=_read_hex(data["tx"], _HEX_32, what="anchor.tx"),
            block_number=read_int(data["block_number"], what="anchor.block_number"),
            log_index=read_int(data["log_index"], what="anchor.log_index"),
            confirmations=read_int(data["confirmations"], what="anchor.confirmations", minimum=1),
            root=_read_hex(data["root"], _HEX_32, what="anchor.root"),
        )


def anchor_to_json(anchor: AnchorSection | None) -> dict[str, Any] | None:
    return None if anchor is None else anchor.to_json()


def log_to_json(log: LogSection | None, *, packed_paths: bool = True) -> dict[str, Any] | None:
    return None if log is None else log.to_json(packed_paths=packed_paths)


class NotYet(Exception):  # noqa: N818 - a verdict, not an error
    """The block is not anchored yet: the receipt proves the block, not yet its anchor."""


NOT_YET = "the block is not anchored yet: ask for the receipt again later"


# ----------------------------------------------------------------- checks


@dataclass
class Derived:
    """What the checks recompute, in order; ``None`` until the check that computes it passed."""

    leaf: bytes | None = None
    block_root: Digest | None = None
    block_hash: Digest | None = None
    log_root: Digest | None = None
    anchored_root: Digest | None = None
    extra: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class Trust:
    """Keys the relying party knows out of band (docs/receipt.md, trust model). Without them the
    verifier still checks every proof, and prints the keys for the reader to compare."""

    validators: frozenset[bytes] | None = None
    issuer: bytes | None = None


class Skipped(Exception):  # noqa: N818 - a control-flow signal, not an error
    """A check that cannot run because one it depends on failed."""


def need(value: Any, what: str) -> Any:
    if value is None:
        raise Skipped(f"needs {what}, which an earlier check did not establish")
    return value


def check_block_inclusion(block: BlockSection, derived: Derived) -> str:
    leaf = need(derived.leaf, "the leaf")
    if block.leaf_index >= block.count:
        raise ReceiptCheckFailed(
            f"leaf index {block.leaf_index} is not below the block's {block.count} leaves"
        )
    try:
        derived.block_root = root_from_inclusion_proof(
            leaf_hash(leaf), block.leaf_index, block.count, block.inclusion_path
        )
    except InvalidProof as error:
        raise ReceiptCheckFailed(f"the audit path does not fit a tree of {block.count}: {error}") from error
    return (
        f"leaf {block.leaf_index} of {block.count}, {len(block.inclusion_path)} hashes "
        f"-> block root {derived.block_root.hex()}"
    )


# Every receipt of a block carries the same header and validator signatures, so a node issuing
# receipts (and a relying party checking many) would verify the same few signatures over and over.
# Ed25519 verification is a pure function of (key, message, signature): a remembered verdict for
# exactly those bytes is the verdict a fresh verification gives, so remembering it changes no
# outcome, only the cost (3 of a receipt's 6 verifications on a node). Bounded: a few hundred
# blocks' signatures.
@functools.lru_cache(maxsize=2048)
def _header_signature_holds(validator: bytes, message: bytes, signature: bytes) -> bool:
    return is_valid_bytes(validator, message, signature)


def forget_block_signature_verdicts() -> None:
    """Start from no remembered verdict (a benchmark of one relying party's single verification)."""
    _header_signature_holds.cache_clear()


def check_block_signatures(block: BlockSection, derived: Derived, trust: Trust) -> str:
    root = need(derived.block_root, "the block root")
    # The bytes the validators signed; the block hash is their SHA-256 (object_hash).
    message = domain_bytes(BLOCK_KIND, block.header(root))
    if len(set(block.validators)) != len(block.validators):
        raise ReceiptCheckFailed("a validator is listed twice")
    if trust.validators is not None and set(block.validators) != set(trust.validators):
        raise ReceiptCheckFailed("the validators listed are not the validator set you trust")
    valid = 0
    for validator, signature in zip(block.validators, block.signatures, strict=True):
        if signature is None:
            continue
        # A signature that is present must verify: a receipt carries nothing that does not.
        if not _header_signature_holds(validator, message, signature):
            raise ReceiptCheckFailed(
                f"the signature of validator {b64(validator)} does not verify on the header"
            )
        valid += 1
    if not 3 * valid > 2 * len(block.validators):
        raise ReceiptCheckFailed(f"{valid} of {len(block.validators)} validators signed; more than 2/3 must")
    derived.block_hash = sha256(message)
    pinned = "pinned" if trust.validators is not None else "not pinned: compare them with the network's"
    return (
        f"block {block.height} signed by {valid} of {len(block.validators)} validators (keys {pinned}); "
        f"block hash {derived.block_hash.hex()}"
    )


def check_log_inclusion(block: BlockSection, log: LogSection | None, derived: Derived) -> str:
    if log is None:
        raise NotYet(NOT_YET)
    block_hash = need(derived.block_hash, "the block hash")
    try:
        derived.log_root = root_from_inclusion_proof(
            leaf_hash(block_hash), block.height, block.height + 1, log.inclusion_path
        )
    except InvalidProof as error:
        raise ReceiptCheckFailed(f"the block's path in the block log does not fit: {error}") from error
    return f"block {block.height} is the last of a log of {block.height + 1} blocks, root {derived.log_root.hex()}"


def check_log_consistency(
    block: BlockSection, log: LogSection | None, anchor: AnchorSection | None, derived: Derived
) -> str:
    if log is None or anchor is None:
        raise NotYet(NOT_YET)
    log_root = need(derived.log_root, "the block log root")
    if anchor.height < block.height:
        raise ReceiptCheckFailed(f"the anchor at height {anchor.height} does not cover block {block.height}")
    try:
        computed = root_from_consistency_proof(
            block.height + 1, anchor.height + 1, log_root, log.consistency_path
        )
    except InvalidProof as error:
        raise ReceiptCheckFailed(f"the consistency path does not fit: {error}") from error
    if computed.hex() != anchor.root[2:]:
        raise ReceiptCheckFailed(
            f"the consistency path leads to 0x{computed.hex()}, not to the anchored root {anchor.root}"
        )
    derived.anchored_root = computed
    return (
        f"the log of {block.height + 1} blocks is a prefix of the anchored log of {anchor.height + 1} "
        f"blocks, root {anchor.root}"
    )


def check_anchor_offline(anchor: AnchorSection | None, derived: Derived) -> str:
    """The issuer's claims about the chain, to be checked there (``--rpc``)."""
    if anchor is None:
        raise NotYet(NOT_YET)
    need(derived.anchored_root, "the anchored root")
    return (
        f"claimed: Anchored(node={anchor.account}, height={anchor.height}, root={anchor.root}) "
        f"in tx {anchor.tx}, log {anchor.log_index}, Ethereum block {anchor.block_number} "
        f"on chain {anchor.chain_id}, contract {anchor.contract}; "
        f"{anchor.confirmations} confirmations when issued (check them on the chain with --rpc)"
    )
