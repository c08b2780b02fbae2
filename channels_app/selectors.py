"""Reads of channels: lists, one channel, its dispute as the dispute view shows it."""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any

from django.db.models import QuerySet, Sum

from channels_app.models import (
    Channel,
    ChannelPhase,
    ChannelState,
    DisputeRecord,
    OnChainTransaction,
)
from channels_app.protocol.eip712 import OnChainStatus, outcome_fingerprint
from channels_app.protocol.errors import UnknownChannel
from channels_app.protocol.types import ETH
from settlement import ethereum


def channel_list(*, phase: str = "") -> QuerySet[Channel]:
    channels = Channel.objects.select_related("counterparty", "peer")
    return channels.filter(phase=phase) if phase else channels


def channel_get(*, channel_id: str) -> Channel:
    """By its 0x hex id (any case)."""
    found = channel_list().filter(channel_id=channel_id.lower()).first()
    if found is None:
        raise UnknownChannel(f"no channel {channel_id} is known here")
    return found


def asset_label(asset: str) -> str:
    if asset == ETH:
        return "ETH"
    try:
        if asset.lower() == ethereum.contract_address("DemoStableCoin").lower():
            return "PUSD"
    except ethereum.EthereumError:
        pass
    return asset[:10] + "…"


def balance_rows(channel: Channel) -> list[dict[str, Any]]:
    """Per asset: our share of the channel in percent, for the balance bars."""
    rows = []
    for item in channel.balances:
        ours, theirs, locked = int(item["ours"]), int(item["theirs"]), int(item["locked"])
        total = ours + theirs + locked
        rows.append(
            {
                **item,
                "label": asset_label(item["asset"]),
                "total": str(total),
                "ours_percent": round(100 * ours / total, 2) if total else 0,
                "locked_percent": round(100 * locked / total, 2) if total else 0,
            }
        )
    return rows


def state_history(channel: Channel, limit: int = 50) -> list[ChannelState]:
    return list(ChannelState.objects.filter(channel=channel).order_by("-version")[:limit])


def channel_transactions(channel: Channel) -> QuerySet[OnChainTransaction]:
    return OnChainTransaction.objects.filter(channel=channel).order_by("-created_at", "-id")


@dataclass
class DisputeView:
    phase: str
    on_chain: OnChainStatus | None
    registered_is_ours_latest: bool | None
    our_version: int
    chain_time: int
    seconds_left: int | None
    blocks_left: int | None
    deadline_wall_clock: float | None
    next_actor: str
    gas_spent: int
    records: list[DisputeRecord] = field(default_factory=list)
    our_latest: Any = None
    registered_state: Any = None


def _seconds_per_block(head: ethereum.BlockRef) -> float:
    back = ethereum.block(max(0, head.number - 50))
    if back is None or back.number == head.number or head.timestamp <= back.timestamp:
        return 12.0
    return max(1.0, (head.timestamp - back.timestamp) / (head.number - back.number))


def dispute_view(channel: Channel) -> DisputeView:
    """Phase, time left (blocks and wall clock), who acts next, on-chain beside ours, gas, watcher."""
    status: OnChainStatus | None = None
    head = None
    try:
        status = OnChainStatus.from_word(
            int(ethereum.contract("Adjudicator").functions.statusOf(channel.id_bytes).call())
        )
        head = ethereum.block("latest")
    except Exception:  # the RPC is down: show what we know
        status = None
    latest = ChannelState.objects.filter(channel=channel).order_by("-version").first()
    registered = None
    matches = None
    if status is not None and status.version:
        row = ChannelState.objects.filter(channel=channel, version=status.version).first()
        registered = row.protocol_state if row else None
        matches = bool(latest and latest.version == status.version)
        if registered is not None and outcome_fingerprint(registered) != status.fingerprint:
            registered = None
    seconds_left = blocks_left = None
    deadline = None
    if status is not None and head is not None and status.finalizes_at and not status.paid:
        seconds_left = max(0, status.finalizes_at - head.timestamp)
        blocks_left = int(seconds_left / _seconds_per_block(head) + 0.999)
        deadline = time.time() + seconds_left
    gas = OnChainTransaction.objects.filter(channel=channel).aggregate(total=Sum("gas_used"))["total"] or 0
    return DisputeView(
        phase=channel.phase,
        on_chain=status,
        registered_is_ours_latest=matches,
        our_version=channel.version,
        chain_time=head.timestamp if head else 0,
        seconds_left=seconds_left,
        blocks_left=blocks_left,
        deadline_wall_clock=deadline,
        next_actor=_next_actor(channel, status, seconds_left, matches),
        gas_spent=int(gas),
        records=list(DisputeRecord.objects.filter(channel=channel).select_related("transaction")[:30]),
        our_latest=latest.protocol_state if latest else None,
        registered_state=registered,
    )


def _next_actor(
    channel: Channel, status: OnChainStatus | None, seconds_left: int | None, matches: bool | None
) -> str:
    if channel.phase == ChannelPhase.CONCLUDED:
        return "nobody: the channel is concluded"
    if status is None or not status.finalizes_at:
        return "nobody on-chain: no challenge is running"
    if status.paid:
        return "nobody: paid out"
    if seconds_left:
        if matches:
            return "the counterparty, if it holds a later state (ours is registered); otherwise wait"
        return "us: refute with our later state (the watcher does this on its own)"
    return "anyone: conclude the registered state (the watcher does this on its own)"
