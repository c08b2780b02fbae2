"""Reads of the consensus shell: blocks, proofs, anchors and the validator's status.

Two Merkle trees, both RFC 9162 (``settlement.protocol.merkle``):

- a block's tree: leaf i is the i-th observation's bytes (``BlockObservation.data``: a tag byte,
  then the kind, a newline and the payload); its root is the block's ``merkle_root``, which the
  validators sign inside the block header. Inclusion proofs are against it.
- the block log: leaf i is the 32-byte header hash of block i (``Block.block_hash``); its size is
  a number of blocks and each block stores the log's root at its own size (``log_root``, size
  height + 1). Consistency proofs are between two sizes of this log: they show that the history
  of blocks a client saw at size m is a prefix of the one at size n.
"""

from __future__ import annotations

from bisect import bisect_left
from dataclasses import dataclass
from typing import Any

from django.db.models import QuerySet
from django.utils import timezone

from consensus.models import Accusation, Anchor, Block, BlockObservation, ConsensusState, PendingObservation
from consensus.services import STATE_PK, ConsensusShellError, gossip_refusals, observation_parts
from settlement.protocol.merkle import ConsistencyProof, InclusionProof, MerkleTree, leaf_hash


def block_list() -> QuerySet[Block]:
    return Block.objects.order_by("-height")


def block_get(*, height: int) -> Block:
    block = Block.objects.filter(height=height).first()
    if block is None:
        raise ConsensusShellError(f"there is no block {height}", code="unknown_block", http_status=404)
    return block


def block_observations(block: Block, *, limit: int = 500, offset: int = 0) -> list[dict[str, Any]]:
    rows = BlockObservation.objects.filter(block=block).order_by("index")[offset : offset + limit]
    result = []
    for row in rows:
        data = bytes(row.data)
        kind, payload = observation_parts(data)
        result.append({"index": row.index, "kind": kind, "data": data, "payload": payload})
    return result


def block_anchor(block: Block) -> Anchor | None:
    """The first anchor that covers ``block``: the lowest anchored height at or above it (an
    anchor holds the block log's root, so it covers every block up to its height)."""
    return Anchor.objects.filter(height__gte=block.height).order_by("height").first()


def covering_anchors(heights: list[int]) -> dict[int, Anchor]:
    """``block_anchor`` for many heights in one query."""
    if not heights:
        return {}
    anchors = list(
        Anchor.objects.filter(height__gte=min(heights)).order_by("height")[: max(heights) - min(heights) + 1]
    )
    anchored = [anchor.height for anchor in anchors]
    found: dict[int, Anchor] = {}
    for height in heights:
        position = bisect_left(anchored, height)
        if position < len(anchors):
            found[height] = anchors[position]
    return found


def inclusion_proof(*, height: int, index: int) -> tuple[Block, bytes, InclusionProof]:
    """The observation at ``index`` of block ``height`` and its RFC 9162 audit path."""
    block = block_get(height=height)
    if not 0 <= index < block.tree_size:
        raise ConsensusShellError(
            f"block {height} has {block.tree_size} observations (indexes 0 to {block.tree_size - 1})",
            code="unknown_leaf",
            http_status=404,
        )
    leaves = [
        bytes(item)
        for item in BlockObservation.objects.filter(block=block)
        .order_by("index")
        .values_list("data", flat=True)
    ]
    tree = MerkleTree.from_entries(leaves)
    return block, leaves[index], tree.inclusion_proof(index)


def consistency_proof(*, first: int, second: int) -> tuple[bytes, bytes, ConsistencyProof]:
    """Roots of the block log at sizes ``first`` and ``second`` and the proof between them."""
    size = Block.objects.count()
    if not 0 < first <= second <= size:
        raise ConsensusShellError(
            f"sizes must satisfy 0 < first <= second <= {size} (the number of blocks)",
            code="bad_tree_size",
        )
    hashes = Block.objects.order_by("height").values_list("block_hash", flat=True)[:second]
    tree = MerkleTree(leaf_hash(bytes(item)) for item in hashes)
    return tree.root_at(first), tree.root, tree.consistency_proof(first, second)


@dataclass(frozen=True)
class ValidatorRow:
    name: str
    validator_id: str
    is_us: bool
    status: str
    last_heard_at: str | None
    last_error: str


def _age_seconds(iso: str | None) -> float | None:
    if not iso:
        return None
    from datetime import datetime

    return (timezone.now() - datetime.fromisoformat(iso)).total_seconds()


def consensus_status() -> dict[str, Any]:
    state = ConsensusState.objects.defer("snapshot").filter(pk=STATE_PK).first()
    refusals = gossip_refusals()
    accusations = list(Accusation.objects.all()[:100])
    latest = Block.objects.order_by("-height").first()
    if state is None:
        return {
            "status": "not started",
            "validators": [],
            "accusations": accusations,
            "latest_block": latest,
            "refused": int(refusals.get("total", 0)),
        }
    rows = []
    for key, name in sorted(state.validators.items(), key=lambda item: item[1]):
        is_us = key == state.our_id
        entry = state.peers.get(name, {})
        age = _age_seconds(entry.get("last_heard_at"))
        if is_us:
            status = "this node"
        elif age is None:
            status = "not heard yet"
        elif age < 10:
            status = "gossiping"
        else:
            status = f"silent {int(age)} s"
        rows.append(
            ValidatorRow(
                name=name,
                validator_id=key,
                is_us=is_us,
                status=status,
                last_heard_at=entry.get("last_heard_at"),
                last_error=entry.get("last_error") or refusals.get(f"last:{name}", ""),
            )
        )
    age = (timezone.now() - state.updated_at).total_seconds()
    return {
        "status": "running" if age < 30 else f"idle {int(age)} s",
        "validators": rows,
        "epoch": state.epoch,
        "next_height": state.next_height,
        "events_in_graph": state.events_in_graph,
        "rounds_completed": state.rounds_completed,
        "rounds_per_second": round(state.rounds_per_second, 2),
        "snapshot_bytes": state.snapshot_bytes,
        "version": state.version,
        "refused": int(refusals.get("total", 0)) + state.messages_rejected,
        "pending": PendingObservation.objects.exclude(status="agreed").count(),
        "accusations": accusations,
        "latest_block": latest,
        "updated_at": state.updated_at,
    }


def anchor_list() -> QuerySet[Anchor]:
    return Anchor.objects.order_by("-height")
