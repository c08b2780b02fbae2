"""State changes: every input the channel rules react to."""

from __future__ import annotations

from dataclasses import dataclass

from channels_app.protocol.architecture import StateChange
from channels_app.protocol.channel_state import ChannelParams, ChannelState
from channels_app.protocol.eip712 import Signature
from channels_app.protocol.state import ChannelKind, SignedState, StreamPayment
from channels_app.protocol.types import Address, ChannelId, Timestamp, Version, Wei

# --- opening and funding


@dataclass(frozen=True, slots=True)
class ChannelOpened(StateChange):
    """Both signed the opening state (version 0); its allocation is the agreed deposits.

    A sub-channel (nanocontract or virtual) needs no deposits: it is funded when a parent
    ledger channel locks a sub-allocation for it.
    """

    params: ChannelParams
    kind: ChannelKind
    opening: SignedState


@dataclass(frozen=True, slots=True)
class DepositRequested(StateChange):
    """We are asked to deposit ``amount`` of ``asset`` into a ledger channel."""

    channel_id: ChannelId
    asset: Address
    amount: Wei


@dataclass(frozen=True, slots=True)
class DepositObserved(StateChange):
    """The Adjudicator's Deposited event: the channel now holds ``holdings`` of ``asset``."""

    channel_id: ChannelId
    asset: Address
    holdings: Wei


# --- off-chain updates


@dataclass(frozen=True, slots=True)
class UpdateProposed(StateChange):
    """We propose ``state`` (the shell signed it with our key)."""

    channel_id: ChannelId
    state: ChannelState
    signature: Signature


@dataclass(frozen=True, slots=True)
class ProposalReceived(StateChange):
    """The counterparty proposes ``state``.

    ``countersignature`` is ours, made by the shell; it is sent only if the transition accepts
    the proposal. ``evidence`` carries sub-channel states the proposal relies on (the final
    state of a virtual channel being released), so an intermediary can check them.
    """

    channel_id: ChannelId
    state: ChannelState
    signature: Signature
    countersignature: Signature
    evidence: tuple[SubChannelEvidence, ...] = ()


@dataclass(frozen=True, slots=True)
class CountersignatureReceived(StateChange):
    channel_id: ChannelId
    version: Version
    signature: Signature


@dataclass(frozen=True, slots=True)
class SubChannelEvidence:
    params: ChannelParams
    signed: SignedState


@dataclass(frozen=True, slots=True)
class SubChannelStateReceived(StateChange):
    """A both-signed state of a sub-channel we fund as intermediary but do not take part in."""

    evidence: SubChannelEvidence


# --- on-chain


@dataclass(frozen=True, slots=True)
class DisputeRequested(StateChange):
    """An operator (or the control topic) asks to settle by dispute: register our latest state."""

    channel_id: ChannelId


@dataclass(frozen=True, slots=True)
class CheckpointObserved(StateChange):
    channel_id: ChannelId
    version: Version


@dataclass(frozen=True, slots=True)
class RegisteredObserved(StateChange):
    """The Adjudicator's Registered event: a state is registered, refutable until the deadline."""

    channel_id: ChannelId
    version: Version
    finalizes_at: Timestamp


@dataclass(frozen=True, slots=True)
class ConcludedObserved(StateChange):
    channel_id: ChannelId
    version: Version


@dataclass(frozen=True, slots=True)
class Tick(StateChange):
    """The clock: time-outs (challenge periods, stream checkpoints) are decided here."""

    now: Timestamp


# --- micro-payment streams


@dataclass(frozen=True, slots=True)
class StreamOpened(StateChange):
    """Start a stream over an open channel, from its latest both-signed state."""

    channel_id: ChannelId
    payer: Address
    window: int
    checkpoint_every: int
    checkpoint_timeout: int


@dataclass(frozen=True, slots=True)
class StreamClosed(StateChange):
    channel_id: ChannelId


@dataclass(frozen=True, slots=True)
class StreamPaymentSent(StateChange):
    """We (the payer) made and signed ``payment`` (see ``proposals.stream_payment``)."""

    payment: StreamPayment


@dataclass(frozen=True, slots=True)
class StreamPaymentReceived(StateChange):
    payment: StreamPayment


@dataclass(frozen=True, slots=True)
class CheckpointSigned(StateChange):
    """We (the receiver) countersigned the latest payment for a checkpoint."""

    channel_id: ChannelId
    version: Version
    signature: Signature
