"""Building the next state: payments, locks, releases, closing, stream payments.

These are helpers for the side that proposes; the side that receives checks the result with
the transition rules, so nothing here is trusted by the other party.
"""

from __future__ import annotations

import random
from collections.abc import Mapping

from channels_app.protocol.channel_state import (
    Allocation,
    ChannelParams,
    ChannelState,
    SubAllocation,
)
from channels_app.protocol.eip712 import Domain, sign_state, state_struct_hash
from channels_app.protocol.errors import BadState, SubAllocationError
from channels_app.protocol.keccak import keccak
from channels_app.protocol.state import Channel, StreamPayment
from channels_app.protocol.types import Address, Version, Wei


def channel_params(
    chain_id: int,
    participants: tuple[Address, Address],
    challenge_duration: int,
    rng: random.Random,
) -> ChannelParams:
    """A new channel's fixed part; the nonce comes from the randomness the caller passes in
    (``random.SystemRandom()`` in the shell, a seeded ``Random`` in tests)."""
    return ChannelParams(chain_id, participants, rng.getrandbits(64), challenge_duration)


def opening_state(params: ChannelParams, deposits: Mapping[Address, tuple[int, int]]) -> ChannelState:
    """Version 0: per asset, what participant A and participant B agree to deposit."""
    return ChannelState(
        params.channel_id,
        Version(0),
        tuple(Allocation(asset, Wei(a), Wei(b)) for asset, (a, b) in deposits.items()),
    )


def _base(channel: Channel) -> ChannelState:
    return channel.latest.state


def _replace_allocation(state: ChannelState, new: Allocation) -> tuple[Allocation, ...]:
    if len(state.allocations) == 1 and state.allocations[0].asset == new.asset:
        return (new,)  # one asset: no generator to run
    return tuple(new if allocation.asset == new.asset else allocation for allocation in state.allocations)


def _moved(allocation: Allocation, index: int, delta: int) -> Allocation:
    value = allocation.balance(index) + delta
    if value < 0:
        raise BadState(
            f"participant {index} has only {allocation.balance(index)} of asset {allocation.asset}"
        )
    return allocation.with_balance(index, value)


def payment(channel: Channel, asset: Address, amount: int) -> ChannelState:
    """The next state with ``amount`` of ``asset`` moved from us to the counterparty."""
    if amount <= 0:
        raise BadState("a payment moves a positive amount")
    state = _base(channel)
    current = state.allocation(asset)
    ours = current.balance(channel.our_index) - amount
    if ours < 0:
        raise BadState(
            f"participant {channel.our_index} has only {current.balance(channel.our_index)} of asset {asset}"
        )
    theirs = current.balance(channel.their_index) + amount
    # One new allocation (the constructor checks the 256-bit bound on the receiver's side).
    moved = (
        Allocation(current.asset, Wei(ours), Wei(theirs))
        if channel.our_index == 0
        else Allocation(current.asset, Wei(theirs), Wei(ours))
    )
    return state.next(allocations=_replace_allocation(state, moved))


def lock(channel: Channel, sub_params: ChannelParams, asset: Address, ours: int, theirs: int) -> ChannelState:
    """The next state locking ``ours + theirs`` for a sub-channel (nanocontract or virtual).

    For a virtual channel Alice-Bob through Ingrid, Alice-Ingrid locks Alice's deposit and
    Ingrid's matching share of Bob's, and Ingrid-Bob the mirror image.
    """
    state = _base(channel)
    sub_id = sub_params.channel_id
    if state.sub_allocation(sub_id) is not None:
        raise SubAllocationError("this sub-channel is already funded from this channel")
    allocation = _moved(state.allocation(asset), channel.our_index, -ours)
    allocation = _moved(allocation, channel.their_index, -theirs)
    return state.next(
        allocations=_replace_allocation(state, allocation),
        sub_allocations=(*state.sub_allocations, SubAllocation(sub_id, asset, Wei(ours + theirs))),
    )


def sub_allocation_payout(
    params: ChannelParams, sub: SubAllocation, sub_params: ChannelParams, sub_state: ChannelState
) -> tuple[int, int]:
    """What the parent's participants (A, B) get from ``sub`` per the sub-channel's state.

    The same rule as ``Adjudicator._subPayout``: the sub-channel participant who is also in the
    parent channel gets their balance, the parent's other participant the counterpart's.
    """
    if sub_params.channel_id != sub.channel_id or sub_state.channel_id != sub.channel_id:
        raise SubAllocationError("the sub-channel state belongs to another channel")
    allocation = sub_state.allocation(sub.asset)
    if allocation.total != sub.amount:
        raise SubAllocationError(
            f"the sub-channel distributes {allocation.total} but {sub.amount} is locked for it"
        )
    parent, child = params.participants, sub_params.participants
    if child[0] == parent[0] or child[1] == parent[1]:
        return allocation.balance_a, allocation.balance_b
    if child[0] == parent[1] or child[1] == parent[0]:
        return allocation.balance_b, allocation.balance_a
    raise SubAllocationError("the sub-channel shares no participant with this channel")


def release(channel: Channel, sub_params: ChannelParams, sub_final: ChannelState) -> ChannelState:
    """The next state with a sub-allocation folded back into the balances."""
    state = _base(channel)
    sub = state.sub_allocation(sub_params.channel_id)
    if sub is None:
        raise SubAllocationError("no sub-allocation for this sub-channel")
    if not sub_final.is_final:
        raise SubAllocationError("a sub-allocation is released only with the sub-channel's final state")
    to_a, to_b = sub_allocation_payout(channel.params, sub, sub_params, sub_final)
    allocation = state.allocation(sub.asset)
    allocation = Allocation(
        allocation.asset, Wei(allocation.balance_a + to_a), Wei(allocation.balance_b + to_b)
    )
    return state.next(
        allocations=_replace_allocation(state, allocation),
        sub_allocations=tuple(s for s in state.sub_allocations if s.channel_id != sub.channel_id),
    )


def close(channel: Channel) -> ChannelState:
    """The final state: the same distribution, no further updates."""
    return _base(channel).next(is_final=True)


def stream_payment_hash(payment: StreamPayment) -> bytes:
    return keccak(
        payment.previous_hash
        + payment.sequence.to_bytes(8, "big")
        + payment.amount.to_bytes(32, "big")
        + state_struct_hash(payment.state)
    )


def stream_genesis_hash(base: ChannelState) -> bytes:
    """What the first payment of a stream points back to: the state the stream starts from."""
    return state_struct_hash(base)


def stream_payment(
    channel: Channel,
    asset: Address,
    amount: int,
    private_key: bytes,
    domain: Domain,
) -> StreamPayment:
    """The payer's next micro-payment, signed; feed it back as ``StreamPaymentSent``."""
    if channel.sending_stream is None:
        raise BadState("no stream is open on this channel")
    previous = channel.sending_stream.last_sent
    base = channel.sending_stream.base if previous is None else previous.state
    index = channel.sending_stream.payer_index
    allocation = _moved(base.allocation(asset), index, -amount)
    allocation = _moved(allocation, 1 - index, amount)
    state = ChannelState(
        channel_id=base.channel_id,
        version=Version(base.version + 1),
        allocations=_replace_allocation(base, allocation),
        sub_allocations=base.sub_allocations,
    )
    sequence = 1 if previous is None else previous.sequence + 1
    previous_hash = stream_genesis_hash(base) if previous is None else stream_payment_hash(previous)
    return StreamPayment(
        channel_id=base.channel_id,
        sequence=sequence,
        previous_hash=previous_hash,
        asset=asset,
        amount=Wei(amount),
        state=state,
        signature=sign_state(private_key, domain, state),
    )
