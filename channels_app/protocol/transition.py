"""The channel rules: ``transition(state, change) -> TransitionResult(new_state, events)``.

One handler per state change, chosen with ``functools.singledispatch`` (as in Raiden's
``raiden/transfer/node.py``). Every handler either returns a new :class:`NodeChannels` and the
events to carry out, or raises a :class:`ChannelError` and changes nothing.

The invariants the hypothesis state machine checks:
- money is conserved: every accepted state distributes exactly what the channel holds;
- versions only grow, by one per agreed update (a stream checkpoint jumps over the payments
  it covers, each of which was itself one version above the one before);
- no state becomes ``latest`` without both participants' valid signatures.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Mapping

from channels_app.protocol.architecture import Event, TransitionResult, replace
from channels_app.protocol.channel_state import (
    ChannelParams,
    ChannelState,
    SubAllocation,
    check_conserved,
    check_next_conserved,
)
from channels_app.protocol.eip712 import Signature, verify_own_state_signature, verify_state_signature
from channels_app.protocol.errors import (
    BadState,
    BrokenHashChain,
    ChannelClosed,
    DepositBelowAgreed,
    NoPendingUpdate,
    NotConserved,
    NotFunded,
    OutsideWindow,
    SubAllocationError,
    Unfavourable,
    UnknownChannel,
    UpdatePending,
    WrongPhase,
    WrongVersion,
)
from channels_app.protocol.events import (
    ChannelFinalised,
    ChannelFunded,
    ChannelSettled,
    CheckpointDue,
    ConcludeDue,
    DepositRequired,
    PaymentDuplicateDropped,
    PaymentReceived,
    RefuteRequired,
    SendCheckpoint,
    SendCountersignature,
    SendDeposit,
    SendProposal,
    SendRegister,
    SendStreamPayment,
    StateAccepted,
    SubChannelRecorded,
    VirtualLockHeld,
)
from channels_app.protocol.proposals import stream_genesis_hash, stream_payment_hash, sub_allocation_payout
from channels_app.protocol.state import (
    Channel,
    ChannelKind,
    Dispute,
    HeldProposal,
    NodeChannels,
    PendingUpdate,
    Phase,
    SignedState,
    StreamPayment,
    StreamReceiver,
    StreamSender,
    SubChannelRecord,
)
from channels_app.protocol.state_changes import (
    ChannelOpened,
    CheckpointObserved,
    CheckpointSigned,
    ConcludedObserved,
    CountersignatureReceived,
    DepositObserved,
    DepositRequested,
    DisputeRequested,
    ProposalReceived,
    RegisteredObserved,
    StreamClosed,
    StreamOpened,
    StreamPaymentReceived,
    StreamPaymentSent,
    SubChannelEvidence,
    SubChannelStateReceived,
    Tick,
    UpdateProposed,
)
from channels_app.protocol.types import Address, ChannelId, Timestamp, Version, Wei

Result = TransitionResult[NodeChannels]
# Built as TransitionResult(...): calling the subscripted alias costs microseconds per
# transition (typing records __orig_class__ on every instance), a few percent of an update.


def transition(state: NodeChannels, change: object) -> Result:
    """Apply one state change; raise a ``ChannelError`` (and change nothing) to refuse it."""
    # The handler found once per type: singledispatch's own lookup (a weak-key cache behind
    # a wrapper) cost a microsecond per call, three times per update.
    handler = _handlers.get(type(change))
    if handler is None:
        handler = _handlers[type(change)] = _handle.dispatch(type(change))
    return handler(change, state)


@functools.singledispatch
def _handle(change: object, state: NodeChannels) -> Result:
    raise TypeError(f"no transition for {type(change).__name__}")


_handlers: dict[type, Callable[..., Result]] = {}


# ---------------------------------------------------------------- helpers


def _channel(state: NodeChannels, channel_id: ChannelId) -> Channel:
    try:
        return state.channels[channel_id]
    except KeyError:
        raise UnknownChannel(f"no channel {channel_id.hex()} is known here") from None


def _with_channel(state: NodeChannels, channel: Channel) -> NodeChannels:
    channels = dict(state.channels)
    channels[channel.channel_id] = channel
    return replace(state, channels=channels)


def _verify_both(state: NodeChannels, params: ChannelParams, signed: SignedState) -> None:
    for participant, signature in zip(params.participants, signed.signatures, strict=True):
        verify_state_signature(state.domain, signed.state, participant, signature)


def _signed(channel: Channel, new: ChannelState, ours: Signature, theirs: Signature) -> SignedState:
    pair = (ours, theirs) if channel.our_index == 0 else (theirs, ours)
    return SignedState(new, pair)


def _require_updatable(channel: Channel) -> None:
    if channel.phase is Phase.FUNDING:
        raise NotFunded("the agreed deposits are not all on-chain yet; the channel cannot be updated")
    if channel.phase in (Phase.FINAL, Phase.CONCLUDED):
        raise ChannelClosed("the channel is closed; it takes no more updates")
    if channel.phase is Phase.DISPUTE:
        raise ChannelClosed("the channel is in dispute on-chain; settle it there")


def _check_next(channel: Channel, new: ChannelState) -> None:
    """Version + 1, the right channel, conservation per asset, a sane final state."""
    current = channel.latest.state
    if new.channel_id != channel.channel_id:
        raise BadState("the state belongs to another channel")
    if new.version != current.version + 1:
        raise WrongVersion(f"expected version {current.version + 1}, got {new.version}")
    check_next_conserved(current, new)
    if new.is_final and new.sub_allocations:
        raise SubAllocationError("release every sub-allocation before closing the channel")


def _sub_channel(state: NodeChannels, channel_id: ChannelId) -> tuple[ChannelParams, ChannelState]:
    if channel_id in state.channels:
        sub = state.channels[channel_id]
        return sub.params, sub.latest.state
    if channel_id in state.sub_channels:
        record = state.sub_channels[channel_id]
        return record.params, record.latest.state
    raise UnknownChannel(f"sub-channel {channel_id.hex()} is not known here; send its signed state first")


def _our_value(state: NodeChannels, channel: Channel, channel_state: ChannelState) -> dict[Address, int]:
    """Per asset, what we could take out of ``channel_state``: our balance plus our share of
    every sub-allocation per the latest sub-channel state we know."""
    value: dict[Address, int] = {a.asset: a.balance(channel.our_index) for a in channel_state.allocations}
    for sub in channel_state.sub_allocations:
        sub_params, sub_state = _sub_channel(state, sub.channel_id)
        payout = sub_allocation_payout(channel.params, sub, sub_params, sub_state)
        value[sub.asset] += payout[channel.our_index]
    return value


def _check_not_unfavourable(state: NodeChannels, channel: Channel, new: ChannelState) -> None:
    """Refuse an update that lowers what we could take out of the channel, for any asset."""
    current = channel.latest.state
    if len(current.allocations) == len(new.allocations) == 1 and not (
        current.sub_allocations or new.sub_allocations
    ):
        # One asset, nothing locked (the common case): our balance alone, without the maps.
        # check_next_conserved already refused a change of asset.
        before_amount = current.allocations[0].balance(channel.our_index)
        after_amount = new.allocations[0].balance(channel.our_index)
        if after_amount < before_amount:
            asset = current.allocations[0].asset
            raise Unfavourable(
                f"the update would lower what we can claim of asset {asset} from {before_amount} to {after_amount}"
            )
        return
    before = _our_value(state, channel, current)
    after = _our_value(state, channel, new)
    for asset, amount in before.items():
        if after[asset] < amount:
            raise Unfavourable(
                f"the update would lower what we can claim of asset {asset} from {amount} to {after[asset]}"
            )


def _check_sub_changes(state: NodeChannels, channel: Channel, new: ChannelState) -> None:
    """A sub-allocation may appear only for a known sub-channel, and leave only once final."""
    if not new.sub_allocations and not channel.latest.state.sub_allocations:
        return
    old_ids = {s.channel_id for s in channel.latest.state.sub_allocations}
    new_ids = {s.channel_id for s in new.sub_allocations}
    for channel_id in new_ids - old_ids:
        _sub_channel(state, channel_id)
    for channel_id in old_ids - new_ids:
        _, sub_state = _sub_channel(state, channel_id)
        if not sub_state.is_final:
            raise SubAllocationError("a sub-allocation is released only once its sub-channel is final")


def _accept(state: NodeChannels, channel: Channel, signed: SignedState) -> tuple[NodeChannels, list[Event]]:
    """Make ``signed`` the latest state; a final one closes the channel for updates.

    A sub-channel of ours opens when a ledger channel of ours locks funds for it, and is done
    when that lock is released.
    """
    final = signed.state.is_final
    old_subs, new_subs = channel.latest.state.sub_allocations, signed.state.sub_allocations
    channel = replace(channel, latest=signed, pending=None, phase=Phase.FINAL if final else channel.phase)
    state = _with_channel(state, channel)
    events: list[Event] = [StateAccepted(channel.channel_id, signed)]
    if final:
        events.append(ChannelFinalised(channel.channel_id, signed))
    if not old_subs and not new_subs:  # most updates lock and release nothing
        return state, events
    before = {sub.channel_id for sub in old_subs}
    after = {sub.channel_id for sub in new_subs}
    for sub_id in after - before:
        sub = state.channels.get(sub_id)
        if sub is not None and sub.phase is Phase.FUNDING:
            state = _with_channel(state, replace(sub, phase=Phase.OPEN))
            events.append(ChannelFunded(sub_id))
    for sub_id in before - after:
        sub = state.channels.get(sub_id)
        if sub is not None and sub.phase is not Phase.CONCLUDED:
            state = _with_channel(state, replace(sub, phase=Phase.CONCLUDED))
            events.append(ChannelSettled(sub_id, sub.latest.state.version))
    return state, events


# ---------------------------------------------------------------- opening and funding


def _funded(channel: Channel) -> bool:
    return all(
        channel.holdings.get(allocation.asset, 0) >= allocation.total
        for allocation in channel.agreed_deposits.allocations
    )


@_handle.register
def _(change: ChannelOpened, state: NodeChannels) -> Result:
    params, opening = change.params, change.opening
    if params.channel_id in state.channels:
        raise BadState("this channel is already open")
    if opening.state.channel_id != params.channel_id:
        raise BadState("the opening state belongs to another channel")
    if opening.state.version != 0:
        raise WrongVersion(f"a channel opens at version 0, got {opening.state.version}")
    if opening.state.is_final or opening.state.sub_allocations:
        raise BadState("an opening state is not final and locks nothing")
    if params.chain_id != state.domain.chain_id:
        raise BadState("the channel is for another chain")
    our_index = params.index_of(state.us)
    _verify_both(state, params, opening)
    # A sub-channel is funded by a lock in a ledger channel (see _accept), a ledger channel on-chain.
    needs_funds = change.kind is not ChannelKind.LEDGER or any(a.total for a in opening.state.allocations)
    channel = Channel(
        params=params,
        kind=change.kind,
        our_index=our_index,
        phase=Phase.FUNDING if needs_funds else Phase.OPEN,
        latest=opening,
        agreed_deposits=opening.state,
    )
    events: list[Event] = [StateAccepted(channel.channel_id, opening)]
    if needs_funds and change.kind is ChannelKind.LEDGER:
        for allocation in opening.state.allocations:
            for index, participant in enumerate(params.participants):
                if allocation.balance(index):
                    events.append(
                        DepositRequired(
                            channel.channel_id, participant, allocation.asset, allocation.balance(index)
                        )
                    )
    return TransitionResult(_with_channel(state, channel), tuple(events))


@_handle.register
def _(change: DepositRequested, state: NodeChannels) -> Result:
    channel = _channel(state, change.channel_id)
    if channel.kind is not ChannelKind.LEDGER:
        raise WrongPhase("only a ledger channel is funded on-chain")
    if channel.phase is Phase.CONCLUDED:
        raise ChannelClosed("the channel is concluded; a deposit would be lost")
    agreed = channel.agreed_deposits.allocation(change.asset).balance(channel.our_index)
    if change.amount < agreed:
        raise DepositBelowAgreed(
            f"we agreed to deposit {agreed} of asset {change.asset}, not {change.amount}"
        )
    return TransitionResult(state, (SendDeposit(channel.channel_id, change.asset, change.amount),))


@_handle.register
def _(change: DepositObserved, state: NodeChannels) -> Result:
    channel = _channel(state, change.channel_id)
    holdings = dict(channel.holdings)
    # The event carries the total, so replaying it (after a restart or a reorg) is harmless.
    holdings[change.asset] = change.holdings
    channel = replace(channel, holdings=holdings)
    events: tuple[Event, ...] = ()
    if channel.phase is Phase.FUNDING and _funded(channel):
        channel = replace(channel, phase=Phase.OPEN)
        events = (ChannelFunded(channel.channel_id),)
    return TransitionResult(_with_channel(state, channel), events)


# ---------------------------------------------------------------- updates


@_handle.register
def _(change: UpdateProposed, state: NodeChannels) -> Result:
    channel = _channel(state, change.channel_id)
    _require_updatable(channel)
    if channel.pending is not None or channel.held is not None:
        raise UpdatePending("an update of ours awaits the counterparty's signature")
    if channel.sending_stream is not None or channel.receiving_stream is not None:
        raise UpdatePending("a micro-payment stream runs on this channel")
    _check_next(channel, change.state)
    _check_sub_changes(state, channel, change.state)
    if _new_foreign_subs(state, channel, change.state):
        raise SubAllocationError("an intermediary does not propose virtual-channel locks; the end parties do")
    verify_own_state_signature(state.domain, change.state, channel.us, change.signature)
    channel = replace(channel, pending=PendingUpdate(change.state, change.signature))
    return TransitionResult(
        _with_channel(state, channel),
        (SendProposal(channel.channel_id, change.state, change.signature),),
    )


def _record_evidence(state: NodeChannels, evidence: SubChannelEvidence) -> tuple[NodeChannels, list[Event]]:
    params, signed = evidence.params, evidence.signed
    channel_id = params.channel_id
    if signed.state.channel_id != channel_id:
        raise BadState("the sub-channel state belongs to another channel")
    _verify_both(state, params, signed)
    if channel_id in state.channels:
        sub = state.channels[channel_id]
        if signed.state.version > sub.latest.state.version:
            check_conserved(sub.latest.state.totals(), signed.state)
            state, events = _accept(state, sub, signed)
            return state, events
        return state, []
    known = state.sub_channels.get(channel_id)
    if known is not None:
        if signed.state.version <= known.latest.state.version:
            return state, []
        check_conserved(known.latest.state.totals(), signed.state)
    sub_channels = dict(state.sub_channels)
    sub_channels[channel_id] = SubChannelRecord(params, signed)
    return replace(state, sub_channels=sub_channels), [SubChannelRecorded(channel_id, signed.state.version)]


@_handle.register
def _(change: SubChannelStateReceived, state: NodeChannels) -> Result:
    new_state, events = _record_evidence(state, change.evidence)
    return TransitionResult(new_state, tuple(events))


@_handle.register
def _(change: ProposalReceived, state: NodeChannels) -> Result:
    channel = _channel(state, change.channel_id)
    _require_updatable(channel)
    if channel.pending is not None:
        # Both proposed at once; ours stands and theirs is refused (they will see ours).
        raise UpdatePending("we proposed an update ourselves; it must be answered first")
    if channel.held is not None:
        raise UpdatePending("a virtual-channel lock on this channel waits for its mirror")
    _check_next(channel, change.state)
    verify_state_signature(state.domain, change.state, channel.them, change.signature)
    verify_own_state_signature(state.domain, change.state, channel.us, change.countersignature)
    events: list[Event] = []
    for evidence in change.evidence:
        state, recorded = _record_evidence(state, evidence)
        events += recorded
    _check_sub_changes(state, channel, change.state)
    _check_not_unfavourable(state, channel, change.state)
    foreign = _new_foreign_subs(state, channel, change.state)
    if foreign:
        return _intermediary_lock(state, channel, change, foreign, events)
    signed = _signed(channel, change.state, change.countersignature, change.signature)
    state, accepted = _accept(state, _channel(state, channel.channel_id), signed)
    # Persist (StateAccepted), then acknowledge: the order the shell carries events out in.
    events += accepted
    events.append(SendCountersignature(channel.channel_id, change.state.version, change.countersignature))
    return TransitionResult(state, tuple(events))


def _new_foreign_subs(state: NodeChannels, channel: Channel, new: ChannelState) -> list[SubAllocation]:
    """Sub-allocations ``new`` adds for sub-channels we do not take part in (we are Ingrid)."""
    if not new.sub_allocations:
        return []
    old_ids = {s.channel_id for s in channel.latest.state.sub_allocations}
    return [
        sub
        for sub in new.sub_allocations
        if sub.channel_id not in old_ids and sub.channel_id not in state.channels
    ]


def _intermediary_lock(
    state: NodeChannels,
    channel: Channel,
    change: ProposalReceived,
    foreign: list[SubAllocation],
    events: list[Event],
) -> Result:
    """Hold the first lock of a virtual channel; release both countersignatures on the second.

    Perun's intermediary must never be bound by one lock without the other: with only
    Alice-Ingrid locked, Alice and Bob could move Bob's share to Alice and Ingrid would pay it
    with nothing locked on Bob's side. So Ingrid's countersignature on the first lock stays
    here until the mirror lock (same sub-channel, same asset and amount, proposed by the
    virtual channel's other end) is checked too.
    """
    if len(foreign) != 1:
        raise SubAllocationError("one virtual-channel lock per update")
    sub = foreign[0]
    sub_params = state.sub_channels[sub.channel_id].params
    if channel.them not in sub_params.participants:
        raise SubAllocationError("the virtual channel does not include the party proposing its lock")
    other_end = sub_params.participants[1 - sub_params.index_of(channel.them)]
    held_here = HeldProposal(change.state, change.signature, change.countersignature)
    for mirror in state.channels.values():
        held = mirror.held
        if mirror.channel_id == channel.channel_id or held is None or mirror.them != other_end:
            continue
        if held.state.sub_allocation(sub.channel_id) != sub:
            continue
        # Both locks are checked: release both countersignatures at once.
        for side, proposal in ((channel, held_here), (replace(mirror, held=None), held)):
            signed = _signed(side, proposal.state, proposal.countersignature, proposal.signature)
            state, accepted = _accept(state, replace(side, held=None), signed)
            events += accepted
            events.append(
                SendCountersignature(side.channel_id, proposal.state.version, proposal.countersignature)
            )
        return TransitionResult(state, tuple(events))
    state = _with_channel(state, replace(channel, held=held_here))
    events.append(VirtualLockHeld(channel.channel_id, sub.channel_id))
    return TransitionResult(state, tuple(events))


@_handle.register
def _(change: CountersignatureReceived, state: NodeChannels) -> Result:
    channel = _channel(state, change.channel_id)
    if channel.sending_stream is not None:
        return _stream_checkpoint_countersigned(state, channel, change)
    pending = channel.pending
    if pending is None:
        raise NoPendingUpdate("we have no update waiting for a countersignature")
    if change.version != pending.state.version:
        raise WrongVersion(f"our pending update is version {pending.state.version}, not {change.version}")
    verify_state_signature(state.domain, pending.state, channel.them, change.signature)
    state, events = _accept(
        state, channel, _signed(channel, pending.state, pending.signature, change.signature)
    )
    return TransitionResult(state, tuple(events))


# ---------------------------------------------------------------- on-chain


@_handle.register
def _(change: DisputeRequested, state: NodeChannels) -> Result:
    channel = _channel(state, change.channel_id)
    if channel.phase is Phase.CONCLUDED:
        raise ChannelClosed("the channel is already concluded")
    if channel.phase is Phase.FUNDING:
        raise NotFunded("nothing to dispute before the channel is funded")
    return TransitionResult(state, (SendRegister(channel.channel_id, channel.latest),))


@_handle.register
def _(change: CheckpointObserved, state: NodeChannels) -> Result:
    channel = _channel(state, change.channel_id)
    channel = replace(channel, checkpointed_version=change.version)
    if channel.dispute is not None and change.version > channel.dispute.registered_version:
        # A checkpoint above the registered version ends the challenge in the Adjudicator.
        channel = replace(
            channel, dispute=None, phase=Phase.FINAL if channel.latest.state.is_final else Phase.OPEN
        )
    return TransitionResult(_with_channel(state, channel), ())


@_handle.register
def _(change: RegisteredObserved, state: NodeChannels) -> Result:
    channel = _channel(state, change.channel_id)
    if channel.phase is Phase.CONCLUDED:
        raise ChannelClosed("the channel is already concluded")
    dispute = Dispute(Version(change.version), Timestamp(change.finalizes_at))
    channel = replace(channel, dispute=dispute, phase=Phase.DISPUTE, pending=None, held=None)
    events: list[Event] = []
    if channel.latest.state.version > change.version and change.finalizes_at > state.now:
        # The watcher's duty: a stale state is on-chain and we hold a later one.
        events.append(RefuteRequired(channel.channel_id, Version(change.version), channel.latest))
    return TransitionResult(_with_channel(state, channel), tuple(events))


@_handle.register
def _(change: ConcludedObserved, state: NodeChannels) -> Result:
    channel = _channel(state, change.channel_id)
    channel = replace(
        channel,
        phase=Phase.CONCLUDED,
        pending=None,
        receiving_stream=None,
        sending_stream=None,
    )
    return TransitionResult(
        _with_channel(state, channel), (ChannelSettled(channel.channel_id, change.version),)
    )


@_handle.register
def _(change: Tick, state: NodeChannels) -> Result:
    if change.now < state.now:
        raise BadState("the clock does not go backwards")
    state = replace(state, now=change.now)
    events: list[Event] = []
    for channel in list(state.channels.values()):
        dispute = channel.dispute
        if (
            channel.phase is Phase.DISPUTE
            and dispute is not None
            and not dispute.conclude_requested
            and change.now >= dispute.finalizes_at
        ):
            events.append(ConcludeDue(channel.channel_id, dispute.registered_version))
            state = _with_channel(state, replace(channel, dispute=replace(dispute, conclude_requested=True)))
            channel = state.channels[channel.channel_id]
        stream = channel.receiving_stream
        if (
            stream is not None
            # Once a dispute runs the stream is over: a checkpoint now would end the challenge
            # the operator started (the Adjudicator lets a higher checkpoint do that).
            and channel.phase is Phase.OPEN
            and stream.last_payment is not None
            and stream.since_checkpoint > 0
            and not stream.checkpoint_requested
            and change.now - stream.last_checkpoint_at >= stream.checkpoint_timeout
        ):
            events.append(CheckpointDue(channel.channel_id, stream.last_payment.state))
            stream = replace(stream, checkpoint_requested=True)
            state = _with_channel(state, replace(channel, receiving_stream=stream))
    return TransitionResult(state, tuple(events))


# ---------------------------------------------------------------- micro-payment streams


@_handle.register
def _(change: StreamOpened, state: NodeChannels) -> Result:
    channel = _channel(state, change.channel_id)
    _require_updatable(channel)
    if channel.pending is not None:
        raise UpdatePending("an update awaits a countersignature; start the stream after it")
    if channel.sending_stream is not None or channel.receiving_stream is not None:
        raise UpdatePending("a stream already runs on this channel")
    if change.window < 1 or change.checkpoint_every < 1 or change.checkpoint_timeout < 1:
        raise BadState("window, checkpoint interval and timeout are positive")
    payer_index = channel.params.index_of(change.payer)
    base = channel.latest.state
    if payer_index == channel.our_index:
        channel = replace(channel, sending_stream=StreamSender(payer_index, base, None, ()))
    else:
        receiver = StreamReceiver(
            window=change.window,
            checkpoint_every=change.checkpoint_every,
            checkpoint_timeout=change.checkpoint_timeout,
            payer_index=payer_index,
            base=base,
            last_sequence=0,
            last_hash=stream_genesis_hash(base),
            last_payment=None,
            buffer={},
            balances_after=(),
            since_checkpoint=0,
            last_checkpoint_at=state.now,
        )
        channel = replace(channel, receiving_stream=receiver)
    return TransitionResult(_with_channel(state, channel), ())


@_handle.register
def _(change: StreamClosed, state: NodeChannels) -> Result:
    """End a stream once everything it carried is in a both-signed state."""
    channel = _channel(state, change.channel_id)
    if channel.receiving_stream is not None:
        if channel.receiving_stream.since_checkpoint or channel.receiving_stream.buffer:
            raise UpdatePending("payments since the last checkpoint must be checkpointed first")
        channel = replace(channel, receiving_stream=None)
    elif channel.sending_stream is not None:
        if channel.sending_stream.unacknowledged:
            raise UpdatePending("payments since the last checkpoint are not countersigned yet")
        channel = replace(channel, sending_stream=None)
    else:
        raise WrongPhase("no stream runs on this channel")
    return TransitionResult(_with_channel(state, channel), ())


def _check_link(
    previous_state: ChannelState, previous_hash: bytes, payment: StreamPayment, payer: int
) -> None:
    """``payment`` follows directly from the state and hash before it and moves ``amount``."""
    if payment.previous_hash != previous_hash:
        raise BrokenHashChain(f"payment {payment.sequence} does not point to the payment before it")
    new = payment.state
    if new.version != previous_state.version + 1:
        raise WrongVersion(f"payment {payment.sequence} has version {new.version}")
    if new.is_final or new.sub_allocations != previous_state.sub_allocations:
        raise BadState("a stream payment only moves a free balance")
    check_conserved(previous_state.totals(), new)
    before, after = previous_state.allocation(payment.asset), new.allocation(payment.asset)
    if payment.amount <= 0 or after.balance(1 - payer) - before.balance(1 - payer) != payment.amount:
        raise NotConserved(f"payment {payment.sequence} does not move its amount of {payment.amount} to us")
    for allocation in new.allocations:
        if allocation.asset != payment.asset and allocation != previous_state.allocation(allocation.asset):
            raise NotConserved("a stream payment changes only the asset it pays in")


def _stream_neighbours(
    stream: StreamReceiver, sequence: int
) -> tuple[tuple[ChannelState, bytes] | None, StreamPayment | None]:
    if sequence == stream.last_sequence + 1:
        previous_state = stream.base if stream.last_payment is None else stream.last_payment.state
        before: tuple[ChannelState, bytes] | None = (previous_state, stream.last_hash)
    elif sequence - 1 in stream.buffer:
        previous = stream.buffer[sequence - 1]
        before = (previous.state, stream_payment_hash(previous))
    else:
        before = None
    return before, stream.buffer.get(sequence + 1)


@_handle.register
def _(change: StreamPaymentReceived, state: NodeChannels) -> Result:
    payment = change.payment
    channel = _channel(state, payment.channel_id)
    stream = channel.receiving_stream
    if stream is None:
        raise WrongPhase("no stream is open towards us on this channel")
    _require_updatable(channel)
    sequence = payment.sequence
    if sequence <= stream.last_sequence or (sequence in stream.buffer and stream.buffer[sequence] == payment):
        return TransitionResult(state, (PaymentDuplicateDropped(channel.channel_id, sequence),))
    if sequence in stream.buffer:
        raise BrokenHashChain(f"a different payment {sequence} is already waiting here")
    if sequence > stream.last_sequence + stream.window:
        raise OutsideWindow(
            f"payment {sequence} is more than {stream.window} ahead of the next expected, "
            f"{stream.last_sequence + 1}"
        )
    verify_state_signature(state.domain, payment.state, channel.them, payment.signature)
    if payment.state.version != stream.base.version + sequence:
        raise WrongVersion(f"payment {sequence} should carry version {stream.base.version + sequence}")
    before, after = _stream_neighbours(stream, sequence)
    if before is not None:
        _check_link(before[0], before[1], payment, stream.payer_index)
    if after is not None:
        _check_link(payment.state, stream_payment_hash(payment), after, stream.payer_index)

    buffer = dict(stream.buffer)
    buffer[sequence] = payment
    events: list[Event] = []
    balances = list(stream.balances_after)
    receiver = 1 - stream.payer_index
    last_sequence, last_hash, last_payment = stream.last_sequence, stream.last_hash, stream.last_payment
    since, requested = stream.since_checkpoint, stream.checkpoint_requested
    while last_sequence + 1 in buffer:
        applied = buffer.pop(last_sequence + 1)
        last_sequence, last_hash, last_payment = applied.sequence, stream_payment_hash(applied), applied
        balance = applied.state.allocation(applied.asset).balance(receiver)
        balances.append((applied.sequence, balance))
        since += 1
        events.append(PaymentReceived(channel.channel_id, applied.sequence, applied.amount, Wei(balance)))
        if since % stream.checkpoint_every == 0 and not requested:
            events.append(CheckpointDue(channel.channel_id, applied.state))
            requested = True
    stream = replace(
        stream,
        buffer=buffer,
        balances_after=tuple(balances),
        last_sequence=last_sequence,
        last_hash=last_hash,
        last_payment=last_payment,
        since_checkpoint=since,
        checkpoint_requested=requested,
    )
    return TransitionResult(_with_channel(state, replace(channel, receiving_stream=stream)), tuple(events))


@_handle.register
def _(change: CheckpointSigned, state: NodeChannels) -> Result:
    channel = _channel(state, change.channel_id)
    stream = channel.receiving_stream
    if stream is None or stream.last_payment is None:
        raise WrongPhase("there is no stream payment to checkpoint")
    payment = stream.last_payment
    if change.version != payment.state.version:
        raise WrongVersion(f"the latest payment is version {payment.state.version}, not {change.version}")
    verify_own_state_signature(state.domain, payment.state, channel.us, change.signature)
    signed = _signed(channel, payment.state, change.signature, payment.signature)
    stream = replace(
        stream,
        since_checkpoint=0,
        last_checkpoint_at=state.now,
        checkpoint_requested=False,
        balances_after=(),
    )
    state, events = _accept(state, replace(channel, receiving_stream=stream), signed)
    events.append(SendCountersignature(channel.channel_id, change.version, change.signature))
    if channel.dispute is not None and change.version > channel.dispute.registered_version:
        # A challenge runs (a checkpoint was due just before the registration was seen): an
        # on-chain checkpoint would end it, registering the later state refutes within it.
        events.append(RefuteRequired(channel.channel_id, channel.dispute.registered_version, signed))
    else:
        events.append(SendCheckpoint(channel.channel_id, signed))
    return TransitionResult(state, tuple(events))


@_handle.register
def _(change: StreamPaymentSent, state: NodeChannels) -> Result:
    payment = change.payment
    channel = _channel(state, payment.channel_id)
    stream = channel.sending_stream
    if stream is None:
        raise WrongPhase("no stream from us is open on this channel")
    _require_updatable(channel)
    verify_own_state_signature(state.domain, payment.state, channel.us, payment.signature)
    previous = stream.last_sent
    if previous is None:
        expected_sequence, previous_state, previous_hash = 1, stream.base, stream_genesis_hash(stream.base)
    else:
        expected_sequence, previous_state = previous.sequence + 1, previous.state
        previous_hash = stream_payment_hash(previous)
    if payment.sequence != expected_sequence:
        raise WrongVersion(f"the next payment is number {expected_sequence}, not {payment.sequence}")
    _check_link_sent(previous_state, previous_hash, payment, stream.payer_index)
    stream = replace(stream, last_sent=payment, unacknowledged=(*stream.unacknowledged, payment))
    channel = replace(channel, sending_stream=stream)
    return TransitionResult(
        _with_channel(state, channel), (SendStreamPayment(channel.channel_id, payment.sequence),)
    )


def _check_link_sent(
    previous_state: ChannelState, previous_hash: bytes, payment: StreamPayment, payer: int
) -> None:
    if payment.previous_hash != previous_hash:
        raise BrokenHashChain("the payment does not point to our previous payment")
    if payment.state.version != previous_state.version + 1:
        raise WrongVersion(f"the payment should carry version {previous_state.version + 1}")
    check_conserved(previous_state.totals(), payment.state)
    before, after = previous_state.allocation(payment.asset), payment.state.allocation(payment.asset)
    if before.balance(payer) - after.balance(payer) != payment.amount:
        raise NotConserved("the payment does not move exactly its amount")


def _stream_checkpoint_countersigned(
    state: NodeChannels, channel: Channel, change: CountersignatureReceived
) -> Result:
    stream = channel.sending_stream
    assert stream is not None
    for position, payment in enumerate(stream.unacknowledged):
        if payment.state.version == change.version:
            verify_state_signature(state.domain, payment.state, channel.them, change.signature)
            signed = _signed(channel, payment.state, payment.signature, change.signature)
            remaining = stream.unacknowledged[position + 1 :]
            channel = replace(channel, sending_stream=replace(stream, unacknowledged=remaining))
            new_state, events = _accept(state, channel, signed)
            return TransitionResult(new_state, tuple(events))
    raise NoPendingUpdate(
        f"we sent no stream payment with version {change.version} since the last checkpoint"
    )


def latest_balances(channel: Channel) -> Mapping[Address, tuple[Wei, Wei]]:
    """Per asset, the (A, B) free balances of the latest both-signed state."""
    return {a.asset: (a.balance_a, a.balance_b) for a in channel.latest.state.allocations}
