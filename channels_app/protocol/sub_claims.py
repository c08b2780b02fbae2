"""Getting locked funds out on-chain: the next step for a ledger channel whose registered (and
paid) state still locks funds for sub-channels (nanocontracts, virtual channels).

When a virtual channel's other end stops answering, no release can be agreed off-chain. The
Adjudicator then pays each lock per the sub-channel's own final on-chain state
(``claimSubAllocation``): the sub-channel must be registered and past its challenge period, and
the ledger channel concluded. This module decides, from what the chain says and the
both-signed states we hold, the one next step: register the sub-channel with our latest state,
claim a lock, or wait. Pure: the shell reads the chain and sends what it is told.

Claims go in the order of the registered state's sub-allocations (always the first one left),
so the locks still on-chain are a suffix of that list, which is how the contract's fingerprint
is matched without storing anything more.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace

from channels_app.protocol.channel_state import ChannelParams, ChannelState
from channels_app.protocol.eip712 import OnChainStatus, outcome_fingerprint
from channels_app.protocol.state import SignedState
from channels_app.protocol.types import ChannelId, Timestamp


@dataclass(frozen=True, slots=True)
class RegisterSubChannel:
    """Nobody registered the sub-channel yet: register our latest both-signed state of it."""

    params: ChannelParams
    signed: SignedState


@dataclass(frozen=True, slots=True)
class ClaimSubAllocation:
    """Call ``claimSubAllocation(params, parent_state, index, sub_params, sub_state)``."""

    parent_state: ChannelState
    """The registered state with only the locks still on-chain (the contract's fingerprint)."""
    index: int
    sub_params: ChannelParams
    sub_state: ChannelState


@dataclass(frozen=True, slots=True)
class AllClaimed:
    """No lock is left on-chain for this channel."""


@dataclass(frozen=True, slots=True)
class KnownSubChannel:
    """What we hold of a sub-channel: its fixed part and every both-signed state we keep."""

    params: ChannelParams
    states: Sequence[SignedState]

    @property
    def latest(self) -> SignedState:
        return max(self.states, key=lambda signed: signed.state.version)


Step = RegisterSubChannel | ClaimSubAllocation | AllClaimed | None


def remaining_locks(registered: ChannelState, status: OnChainStatus) -> ChannelState | None:
    """``registered`` with the locks still on-chain, or None if the chain recorded another outcome."""
    subs = registered.sub_allocations
    for start in range(len(subs) + 1):
        candidate = replace(registered, sub_allocations=subs[start:])
        if outcome_fingerprint(candidate) == status.fingerprint:
            return candidate
    return None


def next_claim_step(
    *,
    registered: ChannelState,
    status: OnChainStatus,
    sub_statuses: Mapping[ChannelId, OnChainStatus],
    known: Mapping[ChannelId, KnownSubChannel],
    now: Timestamp,
) -> Step:
    """The next on-chain step to get a paid ledger channel's locked funds out (None: wait, or
    nothing we can do: we hold no state of the sub-channel that the chain recorded)."""
    if not status.paid or not status.finalizes_at or status.finalizes_at > now:
        return None  # concludeRegistered pays the free balances first; claims follow
    remaining = remaining_locks(registered, status)
    if remaining is None:
        return None
    if not remaining.sub_allocations:
        return AllClaimed()
    sub = remaining.sub_allocations[0]
    ours = known.get(sub.channel_id)
    sub_status = sub_statuses.get(sub.channel_id)
    if ours is None or sub_status is None:
        return None
    if not sub_status.finalizes_at:
        return RegisterSubChannel(ours.params, ours.latest)
    if sub_status.finalizes_at > now:
        return None  # its challenge period runs; a later state may still refute
    for signed in ours.states:
        if outcome_fingerprint(signed.state) == sub_status.fingerprint:
            return ClaimSubAllocation(remaining, 0, ours.params, signed.state)
    return None
