"""The consensus part of a receipt, for any observation leaf (docs/receipt.md).

Given the leaf bytes of an agreed observation, find its block (``BlockObservation.digest``,
indexed), and gather what ``consensus.protocol.receipt`` needs: the leaf's audit path in the
block, the header fields and the validators' signatures, the block hash's path in the block log
at the block's own size, a consistency path to the newest anchor that covers the block, and that
anchor's Ethereum facts. The ledger receipt (``ledgers.receipts``) and, later, message receipts
build on it.

Speed (a receipt should take a few milliseconds, not a read of the whole block):

- the block's tree is written once to ``BlockTree`` (every level's hashes, uncompressed) the
  first time a receipt needs the block; afterwards an audit path is one query reading ``log2(n)``
  32-byte slices with ``substring``;
- the block log is a :class:`MerkleLog` kept in this process and extended with new blocks only;
- two queries, each reading only the columns it needs into tuples (no model instance, no ORM
  compilation on this path): the observation with its block and the anchor that covers the block
  (one ``LIMIT 1`` probe per status on ``anchor_usable_by_status_height``, joined laterally), and
  the audit path.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from django.db import connection, transaction

from consensus.anchoring import CONTRACT
from consensus.models import AnchorStatus, Block, BlockObservation, BlockTree
from consensus.protocol.receipt import AnchorSection, BlockSection, LogSection
from consensus.services import ConsensusShellError
from settlement import ethereum
from settlement.protocol.encoding import Digest, sha256
from settlement.protocol.merkle import MerkleLog, MerkleTree, leaf_hash

DIGEST = 32


class ReceiptNotReady(ConsensusShellError):  # noqa: N818 - the name is the API code
    """The observation is not in a block yet (or not agreed at all)."""

    code = "receipt_not_ready"
    http_status = 409


@dataclass(frozen=True)
class ObservationReceipt:
    """The consensus sections of a receipt; ``log`` and ``anchor`` are ``None`` until anchored."""

    block: BlockSection
    log: LogSection | None
    anchor: AnchorSection | None


# ----------------------------------------------------------------- the anchor


@dataclass(frozen=True)
class CoveringAnchor:
    """The anchor facts a receipt carries (``Anchor`` columns, read as a tuple)."""

    height: int
    log_root: bytes
    account: str
    tx_hash: str
    block_number: int
    log_index: int
    confirmations: int


_ANCHOR_COLUMNS = "height, log_root, account, tx_hash, block_number, log_index, confirmations"


def _covering_anchor_sql(height: str) -> str:
    """The covering anchor of the block at ``height``, an SQL expression: a placeholder, or the
    block's own column when the query is joined laterally to the block (observation_receipt).

    Among the mined anchors at or above that height, a final one if there is one (it will not be
    reorganised away), else the newest mined; the newest within each kind, so the consistency
    proof reaches as far as the chain has. One probe per status, each the first row of a backward
    scan of anchor_usable_by_status_height (whose condition is repeated so the planner can use
    it): the cost does not grow with the number of anchors. The statuses are this module's
    constants, never input."""
    probes = [
        f"""(SELECT {preference} AS preference, {_ANCHOR_COLUMNS} FROM consensus_anchor
             WHERE status = '{status.value}' AND height >= {height}
               AND log_index IS NOT NULL AND block_number IS NOT NULL
             ORDER BY height DESC LIMIT 1)"""  # noqa: S608 - constants; the height is a placeholder or a column
        for preference, status in enumerate((AnchorStatus.FINAL, AnchorStatus.MINED))
    ]
    return f"""SELECT {_ANCHOR_COLUMNS} FROM ({" UNION ALL ".join(probes)}) AS candidates
               ORDER BY preference LIMIT 1"""  # noqa: S608 - built of the probes above


_COVERING_ANCHOR_SQL = _covering_anchor_sql("%(height)s")


def covering_anchor(height: int) -> CoveringAnchor | None:
    """The anchor a receipt of a block at ``height`` points to, or ``None`` while no mined anchor
    covers it (``observation_receipt`` reads the same in its own query)."""
    with connection.cursor() as cursor:
        cursor.execute(_COVERING_ANCHOR_SQL, {"height": height})
        return _anchor_of(cursor.fetchone())


def _anchor_of(row: Sequence[Any] | None) -> CoveringAnchor | None:
    if row is None or row[0] is None:  # no row, or the lateral join found none
        return None
    height, log_root, account, tx_hash, block_number, log_index, confirmations = row
    return CoveringAnchor(height, bytes(log_root), account, tx_hash, block_number, log_index, confirmations)


def _anchor_section(anchor: CoveringAnchor) -> AnchorSection:
    account = anchor.account or ethereum.address_of(ethereum.node_private_key())
    return AnchorSection(
        chain_id=ethereum.chain_id(),
        contract=ethereum.contract_address(CONTRACT).lower(),
        account=account.lower(),
        height=anchor.height,
        tx=anchor.tx_hash.lower(),
        block_number=anchor.block_number,
        log_index=anchor.log_index,
        confirmations=max(1, anchor.confirmations),
        root="0x" + anchor.log_root.hex(),
    )


# The observation (its first agreement: block ids grow with heights, blocks are stored in order,
# so the lowest block id is the first block that holds it; found by the indexed digest), its
# block, and the anchor that covers that block: one round trip.
_OBSERVATION_SQL = f"""
    SELECT o.index, o.data, b.id, b.height, b.previous_hash, b.epoch, b.round, b.tree_size,
           b.signatures, b.validators, anchor.*
    FROM consensus_blockobservation o
    JOIN consensus_block b ON b.id = o.block_id
    LEFT JOIN LATERAL ({_covering_anchor_sql("b.height")}) AS anchor ON true
    WHERE o.digest = %s
    ORDER BY o.block_id
    LIMIT 1
"""  # noqa: S608 - constants of this module; the digest is a placeholder


def observation_receipt(*, leaf: bytes) -> ObservationReceipt:
    """The block, log and anchor sections for the observation whose Merkle leaf is ``leaf``.

    Raises :class:`ReceiptNotReady` while it is not in a block."""
    with connection.cursor() as cursor:
        cursor.execute(_OBSERVATION_SQL, [sha256(leaf)])
        found = cursor.fetchone()
    if found is None or bytes(found[1]) != leaf:
        raise ReceiptNotReady(
            "This observation is not in an agreed block yet; ask again once consensus has agreed it "
            "(usually within seconds)."
        )
    index, _, block_id, height, previous, epoch, round_, tree_size, signatures, validators = found[:10]
    # The JSON columns come back as text from a raw cursor (Django decodes them in JSONField).
    validator_keys = json.loads(validators)
    section = BlockSection(
        height=height,
        previous=bytes(previous),
        epoch=epoch,
        round=round_,
        count=tree_size,
        leaf_index=index,
        inclusion_path=_audit_path(block_id, tree_size, index),
        validators=tuple(bytes.fromhex(key) for key in validator_keys),
        signatures=_aligned_signatures(json.loads(signatures), validator_keys),
    )
    anchor = _anchor_of(found[10:])
    if anchor is None:
        return ObservationReceipt(section, None, None)
    log = _block_log(anchor.height + 1, anchor.log_root)
    if bytes(log.root_at(anchor.height + 1)) != anchor.log_root:
        # Never expected: the anchored root is read from these very blocks. A receipt that
        # would not verify is not issued; the block is then receipted as not yet anchored.
        return ObservationReceipt(section, None, None)
    log_section = LogSection(
        inclusion_path=log.inclusion_proof(height, height + 1).audit_path,
        consistency_path=log.consistency_proof(height + 1, anchor.height + 1).path,
    )
    return ObservationReceipt(section, log_section, _anchor_section(anchor))


def _aligned_signatures(signatures: list[dict[str, Any]], validators: list[str]) -> tuple[bytes | None, ...]:
    by_validator = {item["validator"]: bytes.fromhex(item["signature"]) for item in signatures}
    return tuple(by_validator.get(key) for key in validators)


# ----------------------------------------------------------------- the block's tree


def _level_sizes(count: int) -> list[int]:
    sizes = [count]
    while sizes[-1] > 1:
        sizes.append((sizes[-1] + 1) // 2)
    return sizes


def _path_offsets(count: int, index: int) -> list[int]:
    """Byte offsets in ``BlockTree.levels`` of the leaf's siblings, bottom up (RFC 9162's order):
    a node with no sibling on its level was promoted and adds nothing to the path."""
    offsets, start, position = [], 0, index
    for size in _level_sizes(count)[:-1]:
        sibling = position ^ 1
        if sibling < size:
            offsets.append(start + DIGEST * sibling)
        start += DIGEST * size
        position >>= 1
    return offsets


def block_tree_ensure(block: Block) -> None:
    """Write the block's tree levels once (idempotent; a race writes the same bytes)."""
    if BlockTree.objects.filter(block=block).exists():
        return
    leaves = [
        bytes(item)
        for item in BlockObservation.objects.filter(block=block)
        .order_by("index")
        .values_list("data", flat=True)
    ]
    tree = MerkleTree.from_entries(leaves)
    if tree.root != bytes(block.merkle_root):
        raise ConsensusShellError(f"the stored observations of block {block.height} do not give its root")
    with transaction.atomic():
        BlockTree.objects.bulk_create(
            [BlockTree(block=block, levels=tree.level_bytes())], ignore_conflicts=True
        )


def _audit_path(block_id: int, tree_size: int, index: int) -> tuple[Digest, ...]:
    offsets = _path_offsets(tree_size, index)
    if not offsets:
        return ()
    # PostgreSQL's substring is 1-based; every slice comes from one read of the row.
    columns = ", ".join(["substring(levels from %s for 32)"] * len(offsets))
    query = f"SELECT {columns} FROM consensus_blocktree WHERE block_id = %s"  # noqa: S608 - only placeholders
    parameters = [*(offset + 1 for offset in offsets), block_id]
    with connection.cursor() as cursor:
        cursor.execute(query, parameters)
        row = cursor.fetchone()
        if row is None:  # the first receipt of this block: write its tree, then read the path
            block_tree_ensure(Block.objects.get(pk=block_id))
            cursor.execute(query, parameters)
            row = cursor.fetchone()
    return tuple(Digest(bytes(item)) for item in row)


# ----------------------------------------------------------------- the block log


class _LogCache:
    """The block log in this process, extended with new blocks only."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.log = MerkleLog()


_log_cache = _LogCache()


def _block_log(size: int, root: bytes) -> MerkleLog:
    """A log holding at least ``size`` blocks whose root at ``size`` is ``root`` (the anchored
    root, read from the database): when the cached log agrees, no query is needed; otherwise it
    is extended with the blocks it lacks, or rebuilt (a restored or reset database)."""
    with _log_cache.lock:
        cache = _log_cache
        if cache.log.size >= size and bytes(cache.log.root_at(size)) == root:
            return cache.log
        if cache.log.size >= size:
            cache.log = MerkleLog()
        rows = Block.objects.filter(height__gte=cache.log.size).order_by("height")
        for height, block_hash in rows.values_list("height", "block_hash"):
            if height != cache.log.size:
                raise ConsensusShellError(f"block {cache.log.size} is missing from the block log")
            cache.log.append(leaf_hash(bytes(block_hash)))
        if cache.log.size >= size and bytes(cache.log.root_at(size)) != root:
            # Extended on a stale prefix (the database was replaced): start from scratch once.
            cache.log = MerkleLog(
                leaf_hash(bytes(item))
                for item in Block.objects.order_by("height").values_list("block_hash", flat=True)
            )
        return cache.log
