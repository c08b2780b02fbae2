"""Anchoring the block log in the AnchorRegistry contract (ARCHITECTURE.md §6).

What is anchored is the RFC 9162 root of the *block log* at size ``height + 1`` (leaves: the
hashes of blocks 0..height, ``Block.log_root``), not one block's own root: so one anchor covers
every block up to its height, and a receipt ties any earlier block to it with the block's path
in the log and a consistency proof (docs/receipt.md).

Which heights: every ``ANCHOR_EVERY_BLOCKS``-th block (heights k-1, 2k-1, ...), and the newest
block whenever ``ANCHOR_EVERY_SECONDS`` passed since the last anchor was made (0: never by
time). Each anchor is ``anchor(height, log_root)`` from the node's Ethereum account, sent with
the shared gateway (``settlement.ethereum``: nonce lock, gas estimate), and then followed:
submitted → mined (transaction hash, block number, block hash, log index of ``Anchored``) →
final once ``ANCHOR_CONFIRMATIONS`` blocks deep (its own included) or at or below the chain's
``finalized`` block. A mined anchor whose block is no longer canonical (a reorganisation) goes
back to pending and is sent again; the dropped hash is kept in ``previous_tx_hashes``.
"""

from __future__ import annotations

import logging
from datetime import timedelta

from django.conf import settings
from django.db import transaction
from django.utils import timezone

from consensus.models import Anchor, AnchorStatus, Block
from settlement import ethereum, health

logger = logging.getLogger("parsec.consensus.anchoring")

CONTRACT = "AnchorRegistry"
# At most this many anchors are created or sent per tick: a long backlog drains over ticks.
MAX_PER_TICK = 20


def _hex(value: bytes) -> str:
    return "0x" + bytes(value).hex()


def anchors_due() -> int:
    """Create the Anchor rows the policy asks for; returns how many were made."""
    every = max(1, settings.ANCHOR_EVERY_BLOCKS)
    newest = Block.objects.order_by("-height").values_list("height", flat=True).first()
    if newest is None:
        return 0
    last = Anchor.objects.order_by("-height").first()
    start = last.height + 1 if last is not None else 0
    heights = [height for height in range(start, newest + 1) if (height + 1) % every == 0][:MAX_PER_TICK]
    if settings.ANCHOR_EVERY_SECONDS > 0 and newest not in heights and newest >= start:
        since = last.created_at if last is not None else None
        if since is None or timezone.now() - since >= timedelta(seconds=settings.ANCHOR_EVERY_SECONDS):
            heights.append(newest)
    roots = dict(Block.objects.filter(height__in=heights).values_list("height", "log_root"))
    made = Anchor.objects.bulk_create(
        [
            Anchor(
                height=height,
                log_root=bytes(roots[height]),
                confirmations_needed=settings.ANCHOR_CONFIRMATIONS,
            )
            for height in heights
        ],
        ignore_conflicts=True,
    )
    return len(made)


def anchor_send(*, anchor_id: int) -> Anchor | None:
    """Send one pending anchor. The row lock keeps two workers from sending it twice."""
    with transaction.atomic():
        anchor = Anchor.objects.select_for_update(skip_locked=True).filter(pk=anchor_id).first()
        if anchor is None or anchor.status != AnchorStatus.PENDING:
            return anchor
        data = ethereum.encode_call(CONTRACT, "anchor", anchor.height, bytes(anchor.log_root))
        sent = ethereum.transaction_send(to=ethereum.contract_address(CONTRACT), data=data)
        anchor.tx_hash = sent.tx_hash
        anchor.account = sent.sender.lower()
        anchor.status = AnchorStatus.SUBMITTED
        anchor.updated_at = timezone.now()
        anchor.save()
    logger.info("anchored the block log up to block %s in %s", anchor.height, anchor.tx_hash)
    return anchor


def _still_canonical(found: dict[str, object]) -> bool:
    current = ethereum.block(int(found["blockNumber"]))  # type: ignore[call-overload]
    return current is not None and current.hash == _hex(bytes(found["blockHash"]))  # type: ignore[call-overload]


def _known_to_node(tx_hash: str) -> bool:
    try:
        return ethereum.web3().eth.get_transaction(tx_hash) is not None  # type: ignore[arg-type]
    except Exception:  # web3 raises TransactionNotFound
        return False


def _log_index(found: dict[str, object]) -> int | None:
    address = ethereum.contract_address(CONTRACT).lower()
    for log in found.get("logs", []):  # type: ignore[attr-defined]
        if str(log["address"]).lower() == address:
            return int(log["logIndex"])
    return None


def anchor_follow(*, anchor_id: int, latest: int, finalized: int | None) -> bool:
    """Move one anchor along; send it again if a reorganisation dropped it. True if it changed."""
    with transaction.atomic():
        anchor = Anchor.objects.select_for_update(skip_locked=True).filter(pk=anchor_id).first()
        if anchor is None or anchor.status in (
            AnchorStatus.FINAL,
            AnchorStatus.REVERTED,
            AnchorStatus.PENDING,
        ):
            return False
        before = (anchor.status, anchor.confirmations, anchor.block_hash)
        found = ethereum.receipt(anchor.tx_hash)
        if found is not None and _still_canonical(found):
            anchor.block_number = int(found["blockNumber"])
            anchor.block_hash = _hex(bytes(found["blockHash"]))
            anchor.gas_used = int(found["gasUsed"])
            anchor.log_index = _log_index(found)
            anchor.confirmations = max(0, latest - anchor.block_number + 1)
            if int(found["status"]) == 0:
                anchor.status = AnchorStatus.REVERTED
            elif anchor.confirmations >= anchor.confirmations_needed or (
                finalized is not None and anchor.block_number <= finalized
            ):
                anchor.status = AnchorStatus.FINAL
            else:
                anchor.status = AnchorStatus.MINED
        elif anchor.status == AnchorStatus.MINED or not _known_to_node(anchor.tx_hash):
            logger.warning(
                "anchor of block %s (%s) was dropped by a reorg; sending again", anchor.height, anchor.tx_hash
            )
            anchor.previous_tx_hashes = [*anchor.previous_tx_hashes, anchor.tx_hash]
            anchor.status = AnchorStatus.PENDING
            anchor.tx_hash, anchor.block_number, anchor.block_hash = "", None, ""
            anchor.log_index, anchor.confirmations = None, 0
        changed = before != (anchor.status, anchor.confirmations, anchor.block_hash)
        if changed:
            anchor.updated_at = timezone.now()
            anchor.save()
    return changed


def anchors_tick() -> int:
    """Beat's tick: follow what was sent, create what is due, send what is pending."""
    try:
        latest_block = ethereum.block("latest")
        if latest_block is None:
            return 0
        finalized_block = ethereum.block("finalized")
        finalized = finalized_block.number if finalized_block is not None else None
        changed = 0
        open_ids = Anchor.objects.filter(status__in=[AnchorStatus.SUBMITTED, AnchorStatus.MINED]).values_list(
            "pk", flat=True
        )
        for anchor_id in list(open_ids):
            changed += anchor_follow(anchor_id=anchor_id, latest=latest_block.number, finalized=finalized)
        changed += anchors_due()
        pending = (
            Anchor.objects.filter(status=AnchorStatus.PENDING).order_by("height").values_list("pk", flat=True)
        )
        for anchor_id in list(pending[:MAX_PER_TICK]):
            anchor_send(anchor_id=anchor_id)
            changed += 1
    except ethereum.EthereumError as error:
        logger.warning("anchoring: %s", error)
        return 0
    if changed:
        health.broadcast("blocks", "blocks.changed")
    return changed
