"""The watcher: follows the Adjudicator's events from the last processed block.

One poll is one database transaction: the cursor row is locked (a second worker skips the
poll instead of doing it twice), the events from the block after the cursor to the chain's
head are applied to our channels, and the cursor moves to the head with the head's hash. A
crash loses nothing: the cursor did not move, and the next poll applies the same events again
(each observation carries totals or versions, so applying it twice changes nothing). When the
block at the cursor no longer has the hash we recorded, the chain was reorganised under us:
the cursor steps back ``ETH_REORG_REWIND_BLOCKS`` and the events are read again.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

from django.conf import settings
from django.db import transaction
from django.utils import timezone

from channels_app import services, virtual
from channels_app.models import Channel, ChannelPhase, DisputeAction, DisputeRecord, WatcherCursor
from channels_app.protocol import state_changes
from channels_app.protocol.errors import ChannelError
from channels_app.protocol.types import ChannelId, Timestamp, Version, Wei, address
from settlement import ethereum
from settlement.audit import audit_record

logger = logging.getLogger("parsec.channels.watcher")

CURSOR_NAME = "adjudicator"
MAX_BLOCKS_PER_POLL = 2000


@dataclass(frozen=True)
class PollResult:
    from_block: int
    to_block: int
    events: int
    rewound: bool


def _change_for(event: ethereum.ChainEvent) -> object | None:
    args = event.args
    channel_id = ChannelId(bytes(args["channelId"]))
    if event.name == "Deposited":
        return state_changes.DepositObserved(channel_id, address(args["asset"]), Wei(int(args["holdings"])))
    if event.name == "Registered":
        return state_changes.RegisteredObserved(
            channel_id, Version(args["version"]), Timestamp(args["finalizesAt"])
        )
    if event.name == "Checkpointed":
        return state_changes.CheckpointObserved(channel_id, Version(args["version"]))
    if event.name == "Concluded":
        return state_changes.ConcludedObserved(channel_id, Version(args["version"]))
    return None


def _cursor() -> WatcherCursor | None:
    start = max(0, ethereum.contract_deploy_block("Adjudicator") - 1)
    WatcherCursor.objects.get_or_create(name=CURSOR_NAME, defaults={"block_number": start, "block_hash": ""})
    return WatcherCursor.objects.select_for_update(skip_locked=True).filter(name=CURSOR_NAME).first()


def watcher_poll() -> PollResult | None:
    """Process new blocks once; ``None`` if another worker is polling right now."""
    with transaction.atomic():
        cursor = _cursor()
        if cursor is None:
            return None
        head = ethereum.block("latest")
        if head is None:
            return None
        rewound = False
        if cursor.block_hash:
            seen = ethereum.block(cursor.block_number)
            if seen is None or seen.hash != cursor.block_hash:
                floor = max(0, ethereum.contract_deploy_block("Adjudicator") - 1)
                rewound_to = max(floor, cursor.block_number - settings.ETH_REORG_REWIND_BLOCKS)
                DisputeRecord.objects.create(
                    action=DisputeAction.REORG,
                    block_number=cursor.block_number,
                    detail=f"block {cursor.block_number} changed hash; read again from {rewound_to + 1}",
                )
                audit_record(
                    actor="watcher",
                    action="chain.reorg",
                    target=cursor,
                    before={"block": cursor.block_number, "hash": cursor.block_hash},
                    after={"block": rewound_to},
                )
                cursor.block_number, rewound = rewound_to, True
        start = cursor.block_number + 1
        end = min(head.number, start + MAX_BLOCKS_PER_POLL - 1)
        found = ethereum.events("Adjudicator", start, end) if end >= start else []
        for event in found:
            _observe(event, head.timestamp)
        _tick_disputes(head.timestamp)
        # Concluded ledger channels that still lock funds for a sub-channel: claim them.
        virtual.sub_allocations_claim_due(head.timestamp)
        if end >= start or rewound or not cursor.block_hash:
            last = ethereum.block(max(end, cursor.block_number))
            if last is not None:
                cursor.block_number, cursor.block_hash = last.number, last.hash
                cursor.updated_at = timezone.now()
                cursor.save()
    return PollResult(start, end, len(found), rewound)


def _observe(event: ethereum.ChainEvent, now: int) -> None:
    change = _change_for(event)
    if change is None:
        return
    channel_id = "0x" + bytes(event.args["channelId"]).hex()
    try:
        with transaction.atomic():  # a savepoint: one refused observation does not stop the poll
            applied = services.channel_observe(
                channel_id=channel_id, changes=[state_changes.Tick(Timestamp(now)), change]
            )
            if applied is not None:
                _record(applied.channel, event, change)
            elif isinstance(change, state_changes.RegisteredObserved):
                # Not our channel: maybe a virtual channel we mediate, whose state we need.
                virtual.registered_state_learn(channel_id=channel_id, transaction_hash=event.transaction_hash)
    except ChannelError as error:
        logger.info("watcher: %s on %s not applied: %s", event.name, channel_id, error.message)


def _record(channel: Channel, event: ethereum.ChainEvent, change: object) -> None:
    our_version = channel.version
    if isinstance(change, state_changes.RegisteredObserved):
        DisputeRecord.objects.create(
            channel=channel,
            action=DisputeAction.REGISTERED_SEEN,
            registered_version=change.version,
            our_version=our_version,
            finalizes_at=change.finalizes_at,
            block_number=event.block_number,
            detail=(
                "a stale state: refuting"
                if change.version < our_version
                else "our latest state is registered"
            ),
        )
    elif isinstance(change, state_changes.CheckpointObserved):
        DisputeRecord.objects.create(
            channel=channel,
            action=DisputeAction.CHECKPOINT_SEEN,
            registered_version=change.version,
            our_version=our_version,
            block_number=event.block_number,
        )
    elif isinstance(change, state_changes.ConcludedObserved):
        DisputeRecord.objects.create(
            channel=channel,
            action=DisputeAction.CONCLUDED_SEEN,
            registered_version=change.version,
            our_version=our_version,
            block_number=event.block_number,
        )


def _tick_disputes(now: int) -> None:
    """The clock for challenge periods is the chain's: conclude once a deadline has passed."""
    for channel_id in Channel.objects.filter(phase=ChannelPhase.DISPUTE).values_list("channel_id", flat=True):
        with transaction.atomic():
            services.channel_observe(channel_id=channel_id, changes=[state_changes.Tick(Timestamp(now))])
