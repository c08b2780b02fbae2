"""Writes of channels: every change goes through :func:`_apply` (lock, transition, save, log),
and what the rules ask for (transactions, messages, alerts) is carried out after commit.

The node's own view of a channel is the only one persisted. For a custodial counterparty the
node also holds the counterparty's key: it checks each proposal *as the counterparty* (the
same rules, from the other index) before signing for it, so the counterparty is protected by
the same checks a self-custody counterparty would run itself.
"""

from __future__ import annotations

import functools
import logging
import queue
import random
import threading
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, replace
from typing import Any

from django.db import transaction
from django.utils import timezone
from eth_utils import to_checksum_address

from channels_app import codec
from channels_app.models import (
    Channel,
    ChannelPhase,
    ChannelState,
    ChannelStateChange,
    DisputeAction,
    DisputeRecord,
    OnChainTransaction,
    Stream,
    StreamPayment,
    StreamStatus,
    SubAllocation,
    TransactionStatus,
    VirtualChannel,
    VirtualRole,
)
from channels_app.protocol import eip712, events, proposals, state_changes
from channels_app.protocol.architecture import Event
from channels_app.protocol.channel_state import ChannelParams
from channels_app.protocol.channel_state import ChannelState as ProtocolState
from channels_app.protocol.errors import BadState, ChannelClosed, UnknownChannel, WrongPhase
from channels_app.protocol.state import Channel as ProtocolChannel
from channels_app.protocol.state import ChannelKind, NodeChannels, SignedState
from channels_app.protocol.state import StreamPayment as ProtocolStreamPayment
from channels_app.protocol.transition import transition
from channels_app.protocol.types import ETH, Address, ChannelId, Timestamp, Version, Wei, address
from settlement import ethereum, keystore
from settlement.audit import audit_record
from settlement.counterparties.models import Counterparty, Custody
from settlement.counterparties.selectors import counterparty_require_accepted

logger = logging.getLogger("parsec.channels")

CHANNELS_GROUP = "channels"
"""Every channels page listens here, the list and each channel's page; an announcement names
the channels that changed, and a channel's page looks again only when its channel is named."""
ANNOUNCED_CHANNELS_MAX = 500
"""Beyond this many changed channels in one announcement, it names none: every page looks
again (a burst that large changes most of what is shown anyway)."""


# ---------------------------------------------------------------- chain context


@functools.lru_cache(maxsize=4)
def _domain_for(chain_id: int, adjudicator: str) -> eip712.Domain:
    return eip712.Domain(chain_id, address(adjudicator))


def domain() -> eip712.Domain:
    return _domain_for(ethereum.chain_id(), ethereum.contract_address("Adjudicator"))


def node_address() -> Address:
    return address(ethereum.address_of(keystore.node_ethereum_private_key()))


def demo_coin_address() -> Address:
    return address(ethereum.contract_address("DemoStableCoin"))


def _custodial_key(counterparty: Counterparty) -> bytes:
    if counterparty.custody != Custody.CUSTODIAL:
        raise WrongPhase("this counterparty holds its own keys; its signature comes through the API")
    return keystore.open_custodial(counterparty.custodial_keys.sealed_ethereum)


def _key_for_sender(sender: str) -> bytes:
    if sender.lower() == node_address():
        return keystore.node_ethereum_private_key()
    counterparty = Counterparty.objects.get(ethereum_address__iexact=sender, custody=Custody.CUSTODIAL)
    return _custodial_key(counterparty)


def _hex(data: bytes) -> str:
    return "0x" + data.hex()


# ---------------------------------------------------------------- apply: lock, transition, save, log


@dataclass
class Applied:
    channel: Channel
    events: tuple[Event, ...]

    def first(self, kind: type) -> Any:
        return next((event for event in self.events if isinstance(event, kind)), None)


def _row_locked(channel_id: str) -> Channel:
    try:
        return Channel.objects.select_for_update().get(channel_id=channel_id.lower())
    except Channel.DoesNotExist:
        raise UnknownChannel(f"no channel {channel_id} is known here") from None


def _sub_ids(channel: ProtocolChannel) -> set[str]:
    return {_hex(sub.channel_id) for sub in channel.latest.state.sub_allocations}


def _sub_rows(row: Channel, changes: Iterable[object] = ()) -> list[Channel]:
    """The rows of the sub-channels ``row`` funds now or would fund after ``changes``; locked
    in id order (after the parent), so two services never wait on each other in a circle."""
    channel = row.protocol_channel
    ids = _sub_ids(channel)
    if channel.pending is not None:
        # The countersignature on our pending lock (a virtual channel across nodes arrives
        # later, see channels_app.virtual) opens the sub-channel it funds: load that row too.
        ids |= {_hex(sub.channel_id) for sub in channel.pending.state.sub_allocations}
    for change in changes:
        proposed = getattr(change, "state", None)
        if isinstance(proposed, ProtocolState):
            ids |= {_hex(sub.channel_id) for sub in proposed.sub_allocations}
    ids.discard(row.channel_id)
    if not ids:
        return []
    return list(Channel.objects.select_for_update().filter(channel_id__in=sorted(ids)).order_by("channel_id"))


def _sub_channel_records(rows: Sequence[Channel], changes: Iterable[object]) -> dict[ChannelId, Any]:
    """Sub-channels we fund but do not take part in (virtual channels we mediate), as the rules
    know them: their fixed part and the latest both-signed state we hold."""
    from channels_app.protocol.state import SubChannelRecord

    ids: set[str] = set()
    for row in rows:
        if row.machine is not None:
            ids |= _sub_ids(row.protocol_channel)
    for change in changes:
        proposed = getattr(change, "state", None)
        if isinstance(proposed, ProtocolState):
            ids |= {_hex(sub.channel_id) for sub in proposed.sub_allocations}
    if not ids:
        return {}
    return {
        ChannelId(bytes.fromhex(record.channel_id[2:])): SubChannelRecord(
            codec.decode(record.params), codec.decode(record.latest)
        )
        for record in VirtualChannel.objects.filter(channel_id__in=ids, role=VirtualRole.INTERMEDIARY)
    }


def _node_channels(rows: Sequence[Channel], now: int) -> NodeChannels:
    channels = {row.id_bytes: row.protocol_channel for row in rows if row.machine is not None}
    return NodeChannels(
        us=address(rows[0].our_address), domain=domain(), now=Timestamp(now), channels=channels
    )


def _balances(channel: ProtocolChannel) -> list[dict[str, Any]]:
    latest = channel.latest.state
    locked: dict[str, int] = {}
    for sub in latest.sub_allocations:
        locked[sub.asset] = locked.get(sub.asset, 0) + sub.amount
    return [
        {
            "asset": allocation.asset,
            "ours": str(allocation.balance(channel.our_index)),
            "theirs": str(allocation.balance(channel.their_index)),
            "locked": str(locked.get(allocation.asset, 0)),
        }
        for allocation in latest.allocations
    ]


def _apply(
    channel_id: str,
    changes: Iterable[object],
    *,
    actor: Any,
    create: Channel | None = None,
    also: Sequence[str] = (),
) -> Applied:
    """Apply ``changes`` to one channel (and the sub-channels it funds) atomically.

    ``also`` names other ledger channels the change may touch (the mirror lock of a virtual
    channel we mediate). Must run inside ``transaction.atomic``. A refused change raises
    ``ChannelError`` and the caller's transaction rolls back: nothing is stored.
    """
    changes = list(changes)
    row = create if create is not None else _row_locked(channel_id)
    rows = [row]
    if also:
        rows += list(
            Channel.objects.select_for_update()
            .filter(channel_id__in=sorted(set(also) - {row.channel_id}))
            .order_by("channel_id")
        )
    if row.machine is not None:
        rows += _sub_rows(row, changes)
    state = _node_channels(rows, row.clock)
    state = replace(state, sub_channels=_sub_channel_records(rows, changes))
    had_locks = {
        channel_id for channel_id, channel in state.channels.items() if channel.latest.state.sub_allocations
    }
    produced: list[Event] = []
    names: list[str] = []
    pending = list(changes)
    while pending:
        change = pending.pop(0)
        if isinstance(change, state_changes.Tick):
            change = state_changes.Tick(Timestamp(max(change.now, state.now)))
        result = transition(state, change)
        state = result.new_state
        names.append(type(change).__name__)
        produced += result.events
        pending += _follow_ups(state, result.events)
        if isinstance(change, state_changes.Tick) and not result.events and len(changes) == 1:
            # Beat ticks disputed channels every few seconds; a tick that changes nothing but
            # the clock (kept on the row) is not worth a log row each time.
            continue
        ChannelStateChange.objects.create(
            channel=row,
            change=type(change).__name__,
            payload=codec.encode(change),
            events=[type(event).__name__ for event in result.events],
            actor=_actor(actor),
        )
    by_id = {r.channel_id: r for r in rows}
    for channel in state.channels.values():
        target = by_id.get(_hex(channel.channel_id))
        if target is None:
            continue
        target.machine_store(channel)
        target.phase = channel.phase.value
        target.balances = _balances(channel)
        target.clock = state.now
        target.updated_at = timezone.now()
        target.save()
    for record in state.sub_channels.values():
        VirtualChannel.objects.update_or_create(
            channel_id=_hex(record.params.channel_id),
            defaults={
                "role": VirtualRole.INTERMEDIARY,
                "params": codec.encode(record.params),
                "latest": codec.encode(record.latest),
                "version": record.latest.state.version,
            },
        )
    _record_events(row, produced, actor, had_locks)
    return Applied(row, tuple(produced))


def _actor(actor: Any) -> str:
    from settlement.audit import actor_name

    return actor_name(actor)


def _follow_ups(state: NodeChannels, produced: Sequence[Event]) -> list[object]:
    """Changes the shell feeds straight back: a stream checkpoint is countersigned at once."""
    follow: list[object] = []
    for event in produced:
        if isinstance(event, events.CheckpointDue):
            signature = eip712.sign_state(keystore.node_ethereum_private_key(), state.domain, event.state)
            follow.append(state_changes.CheckpointSigned(event.channel_id, event.state.version, signature))
    return follow


def _row(channel_id: bytes) -> Channel:
    return Channel.objects.get(channel_id=_hex(channel_id))


def _record_events(row: Channel, produced: Sequence[Event], actor: Any, had_locks: set[ChannelId]) -> None:
    """What must be stored with the change (signed states, intents), in the same transaction;
    the rest runs after commit."""
    adjudicator = ethereum.contract_address("Adjudicator")
    for event in produced:
        if isinstance(event, events.StateAccepted):
            target = row if row.id_bytes == event.channel_id else _row(event.channel_id)
            _state_persist(target, event.signed, had_locks=event.channel_id in had_locks)
        elif isinstance(event, events.SendDeposit):
            _deposit_intents(row, node_address(), event.asset, event.amount)
        elif isinstance(event, events.ChannelFinalised):
            target = _row(event.channel_id)
            if target.kind == ChannelKind.LEDGER.value:
                _intent(target, "conclude", adjudicator, _call("conclude", target, event.signed))
        elif isinstance(event, events.SendRegister):
            tx = _intent(row, "register", adjudicator, _call("register", row, event.signed))
            DisputeRecord.objects.create(
                channel=row,
                action=DisputeAction.REGISTERED_OURS,
                our_version=event.signed.state.version,
                transaction=tx,
                detail="registered our latest both-signed state to settle by dispute",
            )
            audit_record(actor=actor, action="channel.dispute", target=row, after={"version": row.version})
        elif isinstance(event, events.RefuteRequired):
            tx = _intent(row, "refute", adjudicator, _call("register", row, event.signed))
            DisputeRecord.objects.create(
                channel=row,
                action=DisputeAction.REFUTED,
                registered_version=event.registered_version,
                our_version=event.signed.state.version,
                transaction=tx,
                detail=f"version {event.registered_version} was registered; we hold {event.signed.state.version}",
            )
            audit_record(
                actor="watcher",
                action="channel.refute",
                target=row,
                before={"registered_version": event.registered_version},
                after={"our_version": event.signed.state.version},
                reason="a stale state was registered on-chain",
            )
        elif isinstance(event, events.ConcludeDue):
            registered = ChannelState.objects.filter(channel=row, version=event.registered_version).first()
            if registered is None:
                logger.warning(
                    "channel %s: no state of version %s to conclude", row.channel_id, event.registered_version
                )
                continue
            params = eip712.params_as_abi_tuple(row.protocol_params)
            data = ethereum.encode_call(
                "Adjudicator",
                "concludeRegistered",
                params,
                eip712.state_as_abi_tuple(registered.protocol_state),
            )
            tx = _intent(row, "conclude_registered", adjudicator, data)
            DisputeRecord.objects.create(
                channel=row,
                action=DisputeAction.CONCLUDE_SENT,
                registered_version=event.registered_version,
                transaction=tx,
                detail="the challenge period is over",
            )
        elif isinstance(event, events.SendCheckpoint):
            _intent(_row(event.channel_id), "checkpoint", adjudicator, _call("checkpoint", row, event.signed))
            Stream.objects.filter(channel=row, status=StreamStatus.OPEN).update(
                last_checkpoint_version=event.signed.state.version, last_checkpoint_at=timezone.now()
            )
        elif isinstance(event, events.PaymentReceived):
            _stream_payment_persist(row, event)
        elif isinstance(event, events.ChannelSettled):
            audit_record(
                actor=actor,
                action="channel.settled",
                target=_row(event.channel_id),
                after={"version": event.version},
            )
        elif isinstance(event, events.ChannelFunded):
            audit_record(actor=actor, action="channel.funded", target=_row(event.channel_id))
    channel_id = row.channel_id
    transaction.on_commit(lambda: _announce(channel_id))


_announcements: queue.SimpleQueue[list[str]] = queue.SimpleQueue()
_announcer_lock = threading.Lock()
_announcer: threading.Thread | None = None


def _announce(channel_id: str) -> None:
    channels_announce([channel_id])


def channels_announce(channel_ids: Iterable[str]) -> None:
    """Tell the pages that these channels changed, from a background thread: a page refresh is
    not worth holding up a payment, and a burst of changes (a batch of hundreds of updates)
    becomes one message. One group for all the channels pages rather than one per channel:
    a group per channel cost two Redis round trips per changed channel, whether or not anyone
    was looking, which was more CPU than a batched update's own SQL."""
    global _announcer
    _announcements.put(list(channel_ids))
    with _announcer_lock:
        if _announcer is None or not _announcer.is_alive():
            _announcer = threading.Thread(target=_announce_forever, name="channel-announcer", daemon=True)
            _announcer.start()


def _announce_forever() -> None:
    from asgiref.sync import async_to_sync
    from channels.layers import get_channel_layer

    while True:
        changed = set(_announcements.get())
        while not _announcements.empty():
            changed.update(_announcements.get_nowait())
        event: dict[str, Any] = {"type": "channels.changed"}
        if len(changed) <= ANNOUNCED_CHANNELS_MAX:
            event["channel_ids"] = sorted(changed)
        try:
            layer = get_channel_layer()
            if layer is not None:
                async_to_sync(layer.group_send)(CHANNELS_GROUP, event)
        except Exception:  # best effort, as settlement.health.broadcast: pages re-read anyway
            logger.warning("could not tell the pages about %d changed channels", len(changed))


def _state_persist(row: Channel, signed: SignedState, *, had_locks: bool = True) -> None:
    # ON CONFLICT DO NOTHING: a replayed StateAccepted (a retried request) stores nothing twice.
    ChannelState.objects.bulk_create(
        [
            ChannelState(
                channel=row,
                version=signed.state.version,
                signed=codec.signed_state_bytes(signed),
                is_final=signed.state.is_final,
                digest=_hex(eip712.state_digest(domain(), signed.state)),
            )
        ],
        ignore_conflicts=True,
    )
    current = {sub.channel_id: sub for sub in signed.state.sub_allocations}
    if current:
        SubAllocation.objects.bulk_create(
            [
                SubAllocation(
                    channel=row,
                    sub_channel_id=_hex(sub.channel_id),
                    asset=sub.asset,
                    amount=sub.amount,
                    locked_in_version=signed.state.version,
                )
                for sub in current.values()
            ],
            ignore_conflicts=True,
        )
    if had_locks:
        SubAllocation.objects.filter(channel=row, released_in_version__isnull=True).exclude(
            sub_channel_id__in=[_hex(i) for i in current]
        ).update(released_in_version=signed.state.version)


def _call(function: str, row: Channel, signed: SignedState) -> str:
    return ethereum.encode_call(
        "Adjudicator",
        function,
        eip712.params_as_abi_tuple(row.protocol_params),
        eip712.state_as_abi_tuple(signed.state),
        [eip712.signature_as_abi_tuple(s) for s in signed.signatures],
    )


def _intent(
    row: Channel | None, purpose: str, to: str, data: str, *, sender: str = "", value: int = 0
) -> OnChainTransaction:
    """Record a transaction before sending it; it is sent after commit (and by the follower,
    should this process die first)."""
    from django.conf import settings

    tx = OnChainTransaction.objects.create(
        purpose=purpose,
        channel=row,
        sender=to_checksum_address(sender or node_address()),
        to=to,
        data=data,
        value=value,
        confirmations_needed=settings.ETH_CONFIRMATIONS,
    )
    transaction.on_commit(lambda: transaction_submit(tx_id=tx.pk))
    return tx


def _deposit_intents(row: Channel, sender: str, asset: str, amount: int) -> list[OnChainTransaction]:
    adjudicator = ethereum.contract_address("Adjudicator")
    intents = []
    if asset != ETH:
        approve = ethereum.encode_call("DemoStableCoin", "approve", adjudicator, amount)
        intents.append(_intent(row, "approve", to_checksum_address(asset), approve, sender=sender))
    data = ethereum.encode_call("Adjudicator", "deposit", row.id_bytes, to_checksum_address(asset), amount)
    intents.append(
        _intent(row, "deposit", adjudicator, data, sender=sender, value=amount if asset == ETH else 0)
    )
    return intents


# ---------------------------------------------------------------- transactions


def transaction_submit(*, tx_id: int) -> None:
    """Send a recorded transaction that is not on its way yet. Safe to run twice."""
    with transaction.atomic():
        tx = OnChainTransaction.objects.select_for_update(skip_locked=True).filter(pk=tx_id).first()
        if tx is None or tx.status != TransactionStatus.PENDING:
            return
        try:
            sent = ethereum.transaction_send(
                to=tx.to, data=tx.data, value=int(tx.value), private_key=_key_for_sender(tx.sender)
            )
        except ethereum.EthereumError as error:
            tx.error = str(error)[:300]
            tx.attempts += 1
            tx.save(update_fields=["error", "attempts"])
            return
        tx.tx_hash, tx.nonce, tx.status = sent.tx_hash, sent.nonce, TransactionStatus.SUBMITTED
        tx.attempts += 1
        tx.updated_at = timezone.now()
        tx.save()
        channel_id = tx.channel.channel_id if tx.channel is not None else None
    if channel_id:
        _announce(channel_id)


def onchain_transactions_follow() -> int:
    """Move each open transaction along: submitted → mined → n/N confirmations → final; send
    again one a reorganisation dropped. Returns how many changed."""
    changed = 0
    latest = ethereum.block("latest")
    if latest is None:
        return 0
    for tx_id in OnChainTransaction.objects.exclude(
        status__in=[TransactionStatus.FINAL, TransactionStatus.REVERTED, TransactionStatus.DROPPED]
    ).values_list("pk", flat=True):
        if _transaction_follow(tx_id, latest.number):
            changed += 1
    return changed


def _transaction_follow(tx_id: int, latest: int) -> bool:
    resend = False
    with transaction.atomic():
        tx = OnChainTransaction.objects.select_for_update(skip_locked=True).filter(pk=tx_id).first()
        if tx is None:
            return False
        before = (tx.status, tx.confirmations, tx.block_hash)
        if tx.status == TransactionStatus.PENDING:
            resend = True
        else:
            found = ethereum.receipt(tx.tx_hash)
            canonical = found is not None and _still_canonical(found)
            if found is not None and canonical:
                tx.block_number = int(found["blockNumber"])
                tx.block_hash = _hex(bytes(found["blockHash"]))
                tx.gas_used = int(found["gasUsed"])
                tx.confirmations = max(0, latest - tx.block_number + 1)
                if int(found["status"]) == 0:
                    tx.status = TransactionStatus.REVERTED
                elif tx.confirmations >= tx.confirmations_needed:
                    tx.status = TransactionStatus.FINAL
                else:
                    tx.status = TransactionStatus.MINED
            elif tx.status == TransactionStatus.MINED or not _known_to_node(tx.tx_hash):
                # A reorganisation took its block away (or the node forgot it): send it again,
                # unless the chain no longer needs it (the stale registration it refuted went
                # with the same reorganisation, or someone else concluded meanwhile).
                tx.previous_hashes = [*tx.previous_hashes, tx.tx_hash]
                tx.block_number, tx.block_hash, tx.confirmations = None, "", 0
                if _still_needed(tx):
                    logger.warning(
                        "transaction %s (%s) was dropped; sending it again", tx.tx_hash, tx.purpose
                    )
                    tx.status = TransactionStatus.PENDING
                    resend = True
                else:
                    tx.status = TransactionStatus.DROPPED
        changed = before != (tx.status, tx.confirmations, tx.block_hash)
        if changed:
            tx.updated_at = timezone.now()
            tx.save()
        channel_id = tx.channel.channel_id if tx.channel is not None else None
    if resend:
        transaction_submit(tx_id=tx_id)
    if changed and channel_id:
        _announce(channel_id)
    return changed


def _still_needed(tx: OnChainTransaction) -> bool:
    """Whether a dropped channel transaction still has work to do on-chain."""
    if tx.channel is None or tx.purpose not in ("refute", "checkpoint", "conclude", "conclude_registered"):
        return True
    try:
        word = ethereum.contract("Adjudicator").functions.statusOf(tx.channel.id_bytes).call()
    except Exception:  # the RPC is down: send again, the contract refuses what is not needed
        return True
    status = eip712.OnChainStatus.from_word(int(word))
    if tx.purpose in ("conclude", "conclude_registered"):
        return not status.paid
    if tx.purpose == "refute":
        return bool(status.finalizes_at) and status.version < tx.channel.version
    return status.version < tx.channel.version  # a checkpoint


def _still_canonical(found: dict[str, Any]) -> bool:
    current = ethereum.block(int(found["blockNumber"]))
    return current is not None and current.hash == _hex(bytes(found["blockHash"]))


def _known_to_node(tx_hash: str) -> bool:
    try:
        return ethereum.web3().eth.get_transaction(tx_hash) is not None  # type: ignore[arg-type]
    except Exception:  # TransactionNotFound
        return False


# ---------------------------------------------------------------- opening and funding


def _as_counterparty(channel: ProtocolChannel) -> ProtocolChannel:
    return replace(channel, our_index=channel.their_index)


def _counterparty_view(row: Channel, changes: Iterable[object] = ()) -> NodeChannels:
    """The channel (and the sub-channels a change touches) as the counterparty sees it."""
    channel = _as_counterparty(row.protocol_channel)
    channels = {channel.channel_id: channel}
    for sub in _sub_rows(row, changes):
        if sub.machine is not None:
            sub_channel = _as_counterparty(sub.protocol_channel)
            channels[sub_channel.channel_id] = sub_channel
    return NodeChannels(us=channel.us, domain=domain(), now=Timestamp(row.clock), channels=channels)


@transaction.atomic
def channel_open(
    *,
    counterparty: Counterparty,
    deposits: dict[str, tuple[int, int]],
    actor: Any,
    challenge_duration: int | None = None,
) -> Channel:
    """Open a ledger channel between the node (A) and a counterparty (B).

    ``deposits`` maps an asset to (node's deposit, counterparty's deposit). A custodial
    counterparty's signature is made here; a self-custody one sends it later
    (:func:`channel_open_countersign`).
    """
    from django.conf import settings

    counterparty = Counterparty.objects.select_for_update().get(pk=counterparty.pk)
    counterparty_require_accepted(counterparty)
    if not deposits or any(ours < 0 or theirs < 0 for ours, theirs in deposits.values()):
        raise BadState("name at least one asset, with deposits of zero or more")
    ours = node_address()
    params = proposals.channel_params(
        ethereum.chain_id(),
        (ours, address(counterparty.ethereum_address)),
        challenge_duration or settings.ETH_CHALLENGE_SECONDS,
        random.SystemRandom(),
    )
    opening = proposals.opening_state(params, {address(asset): pair for asset, pair in deposits.items()})
    node_signature = eip712.sign_state(keystore.node_ethereum_private_key(), domain(), opening)
    row = Channel.objects.create(
        channel_id=_hex(params.channel_id),
        counterparty=counterparty,
        our_address=ours,
        their_address=params.participants[1],
        our_index=0,
        params=codec.encode(params),
        phase=ChannelPhase.PROPOSED,
        opening={"state": codec.encode(opening), "signature": _hex(node_signature)},
        clock=_chain_time(),
    )
    audit_record(
        actor=actor,
        action="channel.open",
        target=row,
        after={"deposits": {a: list(d) for a, d in deposits.items()}},
    )
    if counterparty.custody == Custody.CUSTODIAL:
        their_signature = eip712.sign_state(_custodial_key(counterparty), domain(), opening)
        _opened(row, params, opening, node_signature, their_signature, actor)
    return row


@transaction.atomic
def channel_open_countersign(*, channel: Channel, signature: bytes, actor: Any) -> Channel:
    """A self-custody counterparty's signature on the opening state completes the opening."""
    row = _row_locked(channel.channel_id)
    if row.phase != ChannelPhase.PROPOSED or row.opening is None:
        raise WrongPhase("this channel is already open")
    opening: ProtocolState = codec.decode(row.opening["state"])
    node_signature = bytes.fromhex(row.opening["signature"][2:])
    _opened(row, row.protocol_params, opening, node_signature, signature, actor)
    return row


def _opened(
    row: Channel, params: ChannelParams, opening: ProtocolState, ours: bytes, theirs: bytes, actor: Any
) -> None:
    signed = SignedState(opening, (eip712.Signature(ours), eip712.Signature(theirs)))
    _apply(
        row.channel_id,
        [state_changes.ChannelOpened(params, ChannelKind.LEDGER, signed)],
        actor=actor,
        create=row,
    )


def _chain_time() -> int:
    latest = ethereum.block("latest")
    return latest.timestamp if latest else 0


@transaction.atomic
def channel_deposit(
    *, channel: Channel, asset: str, amount: int, actor: Any, by_counterparty: bool = False
) -> list[OnChainTransaction]:
    """Deposit the agreed share of ``asset``: the node's, or a custodial counterparty's."""
    row = _row_locked(channel.channel_id)
    _require_opened(row)
    change = state_changes.DepositRequested(row.id_bytes, address(asset), Wei(amount))
    if not by_counterparty:
        applied = _apply(row.channel_id, [change], actor=actor)
        audit_record(
            actor=actor,
            action="channel.deposit",
            target=row,
            after={"asset": asset, "amount": str(amount), "by": "node"},
        )
        return list(
            OnChainTransaction.objects.filter(
                channel=applied.channel, purpose__in=["approve", "deposit"]
            ).order_by("-id")[: 2 if asset != ETH else 1]
        )
    if row.counterparty is None:
        raise WrongPhase("a peer node deposits its own share")
    _custodial_key(row.counterparty)  # refuses a self-custody counterparty
    transition(_counterparty_view(row), change)  # the same rule: not below the agreed share
    audit_record(
        actor=actor,
        action="channel.deposit",
        target=row,
        after={"asset": asset, "amount": str(amount), "by": "counterparty"},
    )
    return _deposit_intents(row, row.their_address, address(asset), amount)


def _require_opened(row: Channel) -> None:
    if row.phase == ChannelPhase.PROPOSED:
        raise WrongPhase("the channel awaits the counterparty's signature on the opening state")


# ---------------------------------------------------------------- updates


@dataclass
class UpdateResult:
    channel: Channel
    state: ProtocolState
    signature: bytes
    countersignature: bytes | None


def _propose(row: Channel, new: ProtocolState, actor: Any) -> UpdateResult:
    """Our proposal; a custodial counterparty checks and countersigns it at once."""
    signature = eip712.sign_state(keystore.node_ethereum_private_key(), domain(), new)
    change = state_changes.UpdateProposed(row.id_bytes, new, signature)
    if row.counterparty is not None and row.counterparty.custody == Custody.CUSTODIAL:
        their_key = _custodial_key(row.counterparty)
        countersignature = eip712.sign_state(their_key, domain(), new)
        # The counterparty's own checks, before its key signs anything.
        proposal = state_changes.ProposalReceived(row.id_bytes, new, signature, countersignature)
        transition(_counterparty_view(row, [proposal]), proposal)
        applied = _apply(
            row.channel_id,
            [change, state_changes.CountersignatureReceived(row.id_bytes, new.version, countersignature)],
            actor=actor,
        )
        return UpdateResult(applied.channel, new, signature, countersignature)
    applied = _apply(row.channel_id, [change], actor=actor)
    return UpdateResult(applied.channel, new, signature, None)


def _open_channel(row: Channel) -> ProtocolChannel:
    _require_opened(row)
    if row.phase == ChannelPhase.CONCLUDED:
        raise ChannelClosed("the channel is concluded; it takes no more updates")
    return row.protocol_channel


def channel_pay(
    *, channel: Channel, asset: str, amount: int, actor: Any, from_counterparty: bool = False
) -> UpdateResult:
    """See :func:`_channel_pay`; with a peer node, the committed proposal then travels to it
    for its countersignature."""
    result = _channel_pay(
        channel=channel, asset=asset, amount=amount, actor=actor, from_counterparty=from_counterparty
    )
    if result.channel.peer_id is not None and result.countersignature is None:
        result.channel = peer_proposal_deliver(result)
    return result


@transaction.atomic
def _channel_pay(
    *, channel: Channel, asset: str, amount: int, actor: Any, from_counterparty: bool = False
) -> UpdateResult:
    """Move ``amount`` of ``asset`` to the counterparty (or, for a custodial counterparty on
    its instruction, from it to the node)."""
    row = _row_locked(channel.channel_id)
    machine = _open_channel(row)
    if not from_counterparty:
        return _propose(row, proposals.payment(machine, address(asset), amount), actor)
    if row.counterparty is None:
        raise WrongPhase("a peer node pays through its own node")
    their_key = _custodial_key(row.counterparty)
    new = proposals.payment(_as_counterparty(machine), address(asset), amount)
    return channel_proposal_receive(
        channel=row, state=new, signature=eip712.sign_state(their_key, domain(), new), actor=actor
    )


@transaction.atomic
def channel_proposal_receive(
    *, channel: Channel, state: ProtocolState, signature: bytes, actor: Any
) -> UpdateResult:
    """The counterparty proposes ``state``: check, countersign, persist, then answer."""
    row = _row_locked(channel.channel_id)
    _open_channel(row)
    countersignature = eip712.sign_state(keystore.node_ethereum_private_key(), domain(), state)
    applied = _apply(
        row.channel_id,
        [state_changes.ProposalReceived(row.id_bytes, state, eip712.Signature(signature), countersignature)],
        actor=actor,
    )
    if applied.first(events.VirtualLockHeld) is not None:
        # The rules hold an intermediary's countersignature until the mirror lock arrives.
        return UpdateResult(applied.channel, state, signature, None)
    return UpdateResult(applied.channel, state, signature, countersignature)


@transaction.atomic
def channel_countersignature_receive(
    *, channel: Channel, version: int, signature: bytes, actor: Any
) -> Channel:
    row = _row_locked(channel.channel_id)
    _open_channel(row)
    change = state_changes.CountersignatureReceived(
        row.id_bytes, Version(version), eip712.Signature(signature)
    )
    return _apply(row.channel_id, [change], actor=actor).channel


def channel_close(*, channel: Channel, actor: Any) -> UpdateResult:
    result = _channel_close(channel=channel, actor=actor)
    if result.channel.peer_id is not None and result.countersignature is None:
        result.channel = peer_proposal_deliver(result)
    return result


@transaction.atomic
def _channel_close(*, channel: Channel, actor: Any) -> UpdateResult:
    """Cooperative settlement: both sign a final state, then ``conclude`` pays out at once."""
    row = _row_locked(channel.channel_id)
    machine = _open_channel(row)
    result = _propose(row, proposals.close(machine), actor)
    audit_record(actor=actor, action="channel.close", target=row, after={"version": result.state.version})
    return result


@transaction.atomic
def channel_dispute(*, channel: Channel, actor: Any) -> Channel:
    """Disputed settlement: register our latest both-signed state; conclude after the period."""
    row = _row_locked(channel.channel_id)
    _require_opened(row)
    return _apply(row.channel_id, [state_changes.DisputeRequested(row.id_bytes)], actor=actor).channel


@transaction.atomic
def channel_checkpoint(*, channel: Channel, actor: Any) -> OnChainTransaction:
    """Record the latest both-signed state on-chain as the floor for any dispute."""
    row = _row_locked(channel.channel_id)
    machine = _open_channel(row)
    latest = machine.latest
    if latest.state.version == 0 or (machine.checkpointed_version or 0) >= latest.state.version:
        raise WrongPhase("the latest state is already on-chain (or is the opening state)")
    audit_record(
        actor=actor, action="channel.checkpoint", target=row, after={"version": latest.state.version}
    )
    tx = _intent(
        row, "checkpoint", ethereum.contract_address("Adjudicator"), _call("checkpoint", row, latest)
    )
    transaction.on_commit(lambda: _announce(row.channel_id))
    return tx


@transaction.atomic
def channel_withdraw(*, channel: Channel, asset: str, receiver: str, actor: Any) -> OnChainTransaction:
    """Take out the node's credit (a payout the contract could not push) to ``receiver``."""
    row = _row_locked(channel.channel_id)
    adjudicator = ethereum.contract("Adjudicator")
    available = int(
        adjudicator.functions.credit(
            row.id_bytes, to_checksum_address(row.our_address), to_checksum_address(asset)
        ).call()
    )
    if available <= 0:
        raise BadState("the node has no credit of this asset in this channel")
    order = eip712.Withdrawal(
        row.id_bytes, address(row.our_address), address(asset), address(receiver), Wei(available)
    )
    signature = eip712.sign_digest(
        keystore.node_ethereum_private_key(), eip712.withdrawal_digest(domain(), order)
    )
    data = ethereum.encode_call(
        "Adjudicator",
        "withdraw",
        (
            order.channel_id,
            to_checksum_address(order.participant),
            to_checksum_address(order.asset),
            to_checksum_address(order.receiver),
            order.amount,
        ),
        eip712.signature_as_abi_tuple(signature),
    )
    audit_record(
        actor=actor, action="channel.withdraw", target=row, after={"asset": asset, "amount": str(available)}
    )
    return _intent(row, "withdraw", adjudicator.address, data)


# ---------------------------------------------------------------- streams


@transaction.atomic
def stream_open(
    *, channel: Channel, asset: str, window: int, checkpoint_every: int, checkpoint_timeout: int, actor: Any
) -> Stream:
    """A stream from the counterparty to the node (the node receives and checkpoints)."""
    row = _row_locked(channel.channel_id)
    _open_channel(row)
    change = state_changes.StreamOpened(
        row.id_bytes, address(row.their_address), window, checkpoint_every, checkpoint_timeout
    )
    _apply(row.channel_id, [change], actor=actor)
    return Stream.objects.create(
        channel=row,
        payer_address=row.their_address,
        asset=address(asset),
        window=window,
        checkpoint_every=checkpoint_every,
        checkpoint_timeout=checkpoint_timeout,
        last_checkpoint_version=row.version,
    )


@transaction.atomic
def stream_payment_receive(*, channel: Channel, payment: ProtocolStreamPayment, actor: Any) -> Applied:
    row = _row_locked(channel.channel_id)
    _open_channel(row)
    return _apply(row.channel_id, [state_changes.StreamPaymentReceived(payment)], actor=actor)


@transaction.atomic
def stream_pay_custodial(*, channel: Channel, amount: int, actor: Any) -> Applied:
    """A custodial counterparty pays the next micro-payment (the node signs for it)."""
    row = _row_locked(channel.channel_id)
    machine = _open_channel(row)
    stream = machine.receiving_stream
    if stream is None or row.counterparty is None:
        raise WrongPhase("no stream from the counterparty runs on this channel")
    key = _custodial_key(row.counterparty)
    open_stream = Stream.objects.get(channel=row, status=StreamStatus.OPEN)
    previous = stream.base if stream.last_payment is None else stream.last_payment.state
    allocation = previous.allocation(address(open_stream.asset))
    payer = stream.payer_index
    if allocation.balance(payer) < amount or amount <= 0:
        raise BadState(f"the counterparty has only {allocation.balance(payer)} to pay")
    moved = allocation.with_balance(payer, allocation.balance(payer) - amount).with_balance(
        1 - payer, allocation.balance(1 - payer) + amount
    )
    new = previous.next(
        allocations=[moved if a.asset == moved.asset else a for a in previous.allocations],
        sub_allocations=previous.sub_allocations,
    )
    payment = ProtocolStreamPayment(
        channel_id=row.id_bytes,
        sequence=stream.last_sequence + 1,
        previous_hash=stream.last_hash,
        asset=moved.asset,
        amount=Wei(amount),
        state=new,
        signature=eip712.sign_state(key, domain(), new),
    )
    return _apply(row.channel_id, [state_changes.StreamPaymentReceived(payment)], actor=actor)


def _stream_payment_persist(row: Channel, event: events.PaymentReceived) -> None:
    stream = Stream.objects.filter(channel=row, status=StreamStatus.OPEN).first()
    if stream is None:
        return
    machine = row.protocol_channel
    applied = machine.receiving_stream.last_payment if machine.receiving_stream else None
    StreamPayment.objects.get_or_create(
        stream=stream,
        sequence=event.sequence,
        defaults={
            "amount": event.amount,
            "balance_after": event.balance_after,
            "version": applied.state.version if applied and applied.sequence == event.sequence else 0,
            "payment": codec.encode(applied) if applied and applied.sequence == event.sequence else {},
        },
    )
    stream.payments_received = max(stream.payments_received, event.sequence)
    stream.save(update_fields=["payments_received"])


@transaction.atomic
def channel_tick(*, channel: Channel, now: int, actor: Any = "beat") -> Applied:
    row = _row_locked(channel.channel_id)
    return _apply(row.channel_id, [state_changes.Tick(Timestamp(now))], actor=actor)


def streams_checkpoint_due(now: int) -> int:
    """Beat: a stream checkpoints after ``checkpoint_timeout`` seconds even without m payments."""
    count = 0
    for channel_id in (
        Stream.objects.filter(status=StreamStatus.OPEN)
        .values_list("channel__channel_id", flat=True)
        .distinct()
    ):
        with transaction.atomic():
            row = _row_locked(channel_id)
            if row.machine is None or row.protocol_channel.receiving_stream is None:
                continue
            applied = _apply(row.channel_id, [state_changes.Tick(Timestamp(now))], actor="beat")
            count += sum(isinstance(e, events.SendCheckpoint) for e in applied.events)
    return count


# ---------------------------------------------------------------- the watcher's changes


def channel_observe(*, channel_id: str, changes: list[object], actor: Any = "watcher") -> Applied | None:
    """Apply chain observations to a channel of ours (inside the watcher's transaction)."""
    row = Channel.objects.select_for_update().filter(channel_id=channel_id).first()
    if row is None or row.machine is None:
        return None
    if row.phase == ChannelPhase.CONCLUDED and any(
        isinstance(c, state_changes.ConcludedObserved) for c in changes
    ):
        return None  # seen before (a rewind after a reorganisation replays events)
    return _apply(channel_id, changes, actor=actor)


def now_seconds() -> int:
    """The rules' clock: the chain's time, or the wall clock if the chain has not moved lately
    (a chain that mines only on demand). Challenge periods end by the chain's clock, so the
    rules never take a time earlier than the chain's."""
    return max(int(timezone.now().timestamp()), _chain_time())


# ---------------------------------------------------------------- between two nodes


def params_document(params: ChannelParams) -> dict[str, Any]:
    return {
        "chain_id": params.chain_id,
        "participants": list(params.participants),
        "nonce": str(params.nonce),
        "challenge_duration": params.challenge_duration,
    }


def params_from_document(document: dict[str, Any]) -> ChannelParams:
    try:
        participants = (address(document["participants"][0]), address(document["participants"][1]))
        return ChannelParams(
            int(document["chain_id"]),
            participants,
            int(document["nonce"]),
            int(document["challenge_duration"]),
        )
    except (KeyError, IndexError, TypeError, ValueError) as error:
        raise BadState(f"the channel's fixed part is malformed: {error}") from None


@transaction.atomic
def peer_channel_accept(
    *, peer: Any, params: ChannelParams, opening: ProtocolState, signature: bytes
) -> Channel:
    """A peer node opens a channel with us: check, countersign, persist (before answering)."""
    if not peer.ethereum_address or params.participants[0] != address(peer.ethereum_address):
        raise BadState("the channel's participant A must be the requesting node's Ethereum address")
    if params.participants[1] != node_address():
        raise BadState("the channel's participant B must be this node")
    if Channel.objects.filter(channel_id=_hex(params.channel_id)).exists():
        raise BadState("this channel is already open")
    countersignature = eip712.sign_state(keystore.node_ethereum_private_key(), domain(), opening)
    row = Channel.objects.create(
        channel_id=_hex(params.channel_id),
        peer=peer,
        our_address=params.participants[1],
        their_address=params.participants[0],
        our_index=1,
        params=codec.encode(params),
        phase=ChannelPhase.PROPOSED,
        opening={"state": codec.encode(opening), "signature": _hex(countersignature)},
        clock=_chain_time(),
    )
    signed = SignedState(opening, (eip712.Signature(signature), countersignature))
    _apply(
        row.channel_id,
        [state_changes.ChannelOpened(params, ChannelKind.LEDGER, signed)],
        actor=f"peer:{peer.name}",
    )
    return row


def peer_channel_open(
    *, peer: Any, deposits: dict[str, tuple[int, int]], actor: Any, challenge_duration: int | None = None
) -> Channel:
    """Open a channel with a peer node over the signed transport; it countersigns the opening."""
    from django.conf import settings

    from settlement.transport import peer_request

    if not peer.ethereum_address:
        raise BadState(f"{peer.name} has not published an Ethereum address")
    params = proposals.channel_params(
        ethereum.chain_id(),
        (node_address(), address(peer.ethereum_address)),
        challenge_duration or settings.ETH_CHALLENGE_SECONDS,
        random.SystemRandom(),
    )
    opening = proposals.opening_state(params, {address(asset): pair for asset, pair in deposits.items()})
    signature = eip712.sign_state(keystore.node_ethereum_private_key(), domain(), opening)
    from channels_app.api import state_output

    answer = peer_request(
        peer,
        "POST",
        "/node-api/channels/open",
        json_body={
            "params": params_document(params),
            "state": state_output(opening),
            "signature": _hex(signature),
        },
        idempotency_key=f"channel-open-{_hex(params.channel_id)}",
    )
    if not answer.ok:
        raise BadState(f"{peer.name} refused the channel: {answer.body[:200]!r}")
    countersignature = bytes.fromhex(answer.json()["signature"][2:])
    with transaction.atomic():
        row = Channel.objects.create(
            channel_id=_hex(params.channel_id),
            peer=peer,
            our_address=params.participants[0],
            their_address=params.participants[1],
            our_index=0,
            params=codec.encode(params),
            phase=ChannelPhase.PROPOSED,
            opening={"state": codec.encode(opening), "signature": _hex(signature)},
            clock=_chain_time(),
        )
        _opened(row, params, opening, signature, countersignature, actor)
    return row


def peer_proposal_deliver(result: UpdateResult) -> Channel:
    """Send our committed proposal to the peer node; its countersignature (made after it
    persisted the state) completes the update here."""
    from channels_app.api import state_output
    from settlement.transport import peer_request

    row = result.channel
    if row.peer is None:
        raise WrongPhase("this channel is not with a peer node")
    answer = peer_request(
        row.peer,
        "POST",
        f"/node-api/channels/{row.channel_id}/proposals",
        json_body={"state": state_output(result.state), "signature": _hex(result.signature)},
        idempotency_key=f"proposal-{row.channel_id}-{result.state.version}",
    )
    if not answer.ok:
        raise BadState(
            f"{row.peer.name if row.peer else 'the peer'} refused the update: {answer.body[:200]!r}"
        )
    countersignature = bytes.fromhex(answer.json()["countersignature"][2:])
    return channel_countersignature_receive(
        channel=row, version=result.state.version, signature=countersignature, actor=f"peer:{row.peer}"
    )


# ---------------------------------------------------------------- nanocontracts


@transaction.atomic
def nanocontract_open(*, channel: Channel, asset: str, ours: int, theirs: int, actor: Any) -> Channel:
    """A nanocontract (multistate channel): a sub-channel between the same two participants,
    funded by a lock in the ledger channel, with no on-chain transaction. Custodial
    counterparties only: both opening signatures and the lock are made here."""
    row = _row_locked(channel.channel_id)
    parent = _open_channel(row)
    if row.counterparty is None:
        raise WrongPhase("nanocontracts with peer nodes are not offered yet")
    their_key = _custodial_key(row.counterparty)
    params = row.protocol_params
    sub_params = proposals.channel_params(
        params.chain_id, params.participants, params.challenge_duration, random.SystemRandom()
    )
    pair = (ours, theirs) if row.our_index == 0 else (theirs, ours)
    opening = proposals.opening_state(sub_params, {address(asset): pair})
    signatures = {
        row.our_index: eip712.sign_state(keystore.node_ethereum_private_key(), domain(), opening),
        1 - row.our_index: eip712.sign_state(their_key, domain(), opening),
    }
    sub = Channel.objects.create(
        channel_id=_hex(sub_params.channel_id),
        kind=ChannelKind.NANOCONTRACT.value,
        counterparty=row.counterparty,
        our_address=row.our_address,
        their_address=row.their_address,
        our_index=row.our_index,
        params=codec.encode(sub_params),
        phase=ChannelPhase.PROPOSED,
        clock=row.clock,
    )
    signed = SignedState(opening, (signatures[0], signatures[1]))
    _apply(
        sub.channel_id,
        [state_changes.ChannelOpened(sub_params, ChannelKind.NANOCONTRACT, signed)],
        actor=actor,
        create=sub,
    )
    _propose(row, proposals.lock(parent, sub_params, address(asset), ours, theirs), actor)
    sub.refresh_from_db()
    return sub


@transaction.atomic
def nanocontract_release(*, channel: Channel, actor: Any) -> UpdateResult:
    """Fold a final nanocontract back into its ledger channel's balances."""
    # Lock order: the ledger channel first, then its sub-channels (as _apply does).
    sub = Channel.objects.get(pk=channel.pk)
    if sub.kind != ChannelKind.NANOCONTRACT.value or sub.machine is None:
        raise WrongPhase("only a nanocontract is released into its ledger channel")
    sub_channel = sub.protocol_channel
    if not sub_channel.latest.state.is_final:
        raise WrongPhase("close the nanocontract (a final state) before releasing it")
    parent = SubAllocation.objects.filter(
        sub_channel_id=sub.channel_id, released_in_version__isnull=True
    ).first()
    if parent is None:
        raise WrongPhase("no ledger channel holds a lock for this nanocontract")
    row = _row_locked(parent.channel.channel_id)
    sub = _row_locked(sub.channel_id)
    sub_channel = sub.protocol_channel
    new = proposals.release(row.protocol_channel, sub_channel.params, sub_channel.latest.state)
    return _propose(row, new, actor)


# ---------------------------------------------------------------- virtual channels (we are Ingrid)


def _custodial_view(row: Channel) -> tuple[ProtocolChannel, bytes]:
    if row.counterparty is None:
        raise WrongPhase("virtual channels through this node join two custodial counterparties")
    return _as_counterparty(row.protocol_channel), _custodial_key(row.counterparty)


@transaction.atomic
def virtual_channel_open(
    *, first: Channel, second: Channel, asset: str, first_amount: int, second_amount: int, actor: Any
) -> VirtualChannel:
    """A virtual channel between the counterparties of two of our ledger channels, through the
    node (Perun's Ingrid), with no on-chain transaction.

    The node holds both counterparties' keys (custodial), so it makes their signatures; as
    Ingrid it runs the intermediary's rules: it holds its countersignature on the first lock
    until the mirror lock arrives, and is neutral whatever the two pay each other.
    """
    ids = sorted({first.channel_id, second.channel_id})
    if len(ids) != 2:
        raise BadState("a virtual channel joins two different ledger channels")
    rows = {
        row.channel_id: row
        for row in Channel.objects.select_for_update().filter(channel_id__in=ids).order_by("channel_id")
    }
    first, second = rows[first.channel_id], rows[second.channel_id]
    (first_view, first_key), (second_view, second_key) = _custodial_view(first), _custodial_view(second)
    _open_channel(first)
    _open_channel(second)
    ends = (first_view.us, second_view.us)
    if ends[0] == ends[1]:
        raise BadState("the two ends of a virtual channel are different counterparties")
    params = first.protocol_params
    virtual = proposals.channel_params(
        params.chain_id, ends, params.challenge_duration, random.SystemRandom()
    )
    opening = proposals.opening_state(virtual, {address(asset): (first_amount, second_amount)})
    signed = SignedState(
        opening,
        (eip712.sign_state(first_key, domain(), opening), eip712.sign_state(second_key, domain(), opening)),
    )
    evidence = state_changes.SubChannelEvidence(virtual, signed)
    _apply(
        first.channel_id,
        [state_changes.SubChannelStateReceived(evidence)],
        actor=actor,
        also=[second.channel_id],
    )
    node_key = keystore.node_ethereum_private_key()
    for row, key, ours, theirs in (
        (first, first_key, first_amount, second_amount),
        (second, second_key, second_amount, first_amount),
    ):
        row.refresh_from_db()
        lock = proposals.lock(_as_counterparty(row.protocol_channel), virtual, address(asset), ours, theirs)
        change = state_changes.ProposalReceived(
            row.id_bytes,
            lock,
            eip712.sign_state(key, domain(), lock),
            eip712.sign_state(node_key, domain(), lock),
        )
        other = second if row is first else first
        _apply(row.channel_id, [change], actor=actor, also=[other.channel_id])
    audit_record(
        actor=actor,
        action="virtual_channel.open",
        target=("channels_app.virtualchannel", _hex(virtual.channel_id)),
    )
    return VirtualChannel.objects.get(channel_id=_hex(virtual.channel_id))


@transaction.atomic
def virtual_channel_settle(
    *, virtual: VirtualChannel, first_balance: int, second_balance: int, actor: Any
) -> VirtualChannel:
    """Alice and Bob agree a final state; each ledger channel releases its lock with it as
    evidence. Ingrid checks the evidence and that she loses nothing."""
    params: ChannelParams = codec.decode(virtual.params)
    latest: SignedState = codec.decode(virtual.latest)
    locks = list(
        SubAllocation.objects.filter(
            sub_channel_id=virtual.channel_id, released_in_version__isnull=True
        ).select_related("channel")
    )
    if len(locks) != 2:
        raise WrongPhase("this virtual channel is not locked in two of our ledger channels")
    rows = {
        row.channel_id: row
        for row in Channel.objects.select_for_update()
        .filter(channel_id__in=sorted(lock.channel.channel_id for lock in locks))
        .order_by("channel_id")
    }
    by_end = {}
    for row in rows.values():
        view, key = _custodial_view(row)
        by_end[view.us] = (row, key)
    allocation = latest.state.allocations[0]
    final = ProtocolState(
        params.channel_id,
        Version(latest.state.version + 1),
        (type(allocation)(allocation.asset, Wei(first_balance), Wei(second_balance)),),
        is_final=True,
    )
    keys = [by_end[end][1] for end in params.participants]
    signed = SignedState(
        final, (eip712.sign_state(keys[0], domain(), final), eip712.sign_state(keys[1], domain(), final))
    )
    evidence = state_changes.SubChannelEvidence(params, signed)
    node_key = keystore.node_ethereum_private_key()
    for end in params.participants:
        row, key = by_end[end]
        row.refresh_from_db()
        release = proposals.release(_as_counterparty(row.protocol_channel), params, final)
        change = state_changes.ProposalReceived(
            row.id_bytes,
            release,
            eip712.sign_state(key, domain(), release),
            eip712.sign_state(node_key, domain(), release),
            evidence=(evidence,),
        )
        _apply(row.channel_id, [change], actor=actor, also=[r for r in rows if r != row.channel_id])
    audit_record(
        actor=actor,
        action="virtual_channel.settle",
        target=("channels_app.virtualchannel", virtual.channel_id),
    )
    return VirtualChannel.objects.get(pk=virtual.pk)
