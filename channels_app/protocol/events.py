"""Events: what the shell carries out after it has saved the new state."""

from __future__ import annotations

from dataclasses import dataclass

from channels_app.protocol.architecture import Event
from channels_app.protocol.channel_state import ChannelState
from channels_app.protocol.eip712 import Signature
from channels_app.protocol.state import SignedState
from channels_app.protocol.types import Address, ChannelId, Version, Wei


@dataclass(frozen=True, slots=True)
class DepositRequired(Event):
    """The opening state says ``participant`` deposits ``amount`` of ``asset``."""

    channel_id: ChannelId
    participant: Address
    asset: Address
    amount: Wei


@dataclass(frozen=True, slots=True)
class SendDeposit(Event):
    channel_id: ChannelId
    asset: Address
    amount: Wei


@dataclass(frozen=True, slots=True)
class ChannelFunded(Event):
    channel_id: ChannelId


@dataclass(frozen=True, slots=True)
class SendProposal(Event):
    channel_id: ChannelId
    state: ChannelState
    signature: Signature


@dataclass(frozen=True, slots=True)
class SendCountersignature(Event):
    channel_id: ChannelId
    version: Version
    signature: Signature


@dataclass(frozen=True, slots=True)
class StateAccepted(Event):
    """A new both-signed state: persist it before acknowledging anything."""

    channel_id: ChannelId
    signed: SignedState


@dataclass(frozen=True, slots=True)
class ChannelFinalised(Event):
    """Both signed a final state; a ledger channel can now conclude on-chain at once."""

    channel_id: ChannelId
    signed: SignedState


@dataclass(frozen=True, slots=True)
class SubChannelRecorded(Event):
    channel_id: ChannelId
    version: Version


@dataclass(frozen=True, slots=True)
class VirtualLockHeld(Event):
    """We checked a lock for a virtual channel we mediate; we answer once its mirror arrives."""

    channel_id: ChannelId
    virtual_channel_id: ChannelId


@dataclass(frozen=True, slots=True)
class SendRegister(Event):
    channel_id: ChannelId
    signed: SignedState


@dataclass(frozen=True, slots=True)
class RefuteRequired(Event):
    """A stale state is registered on-chain; register ours (higher) before the deadline."""

    channel_id: ChannelId
    registered_version: Version
    signed: SignedState


@dataclass(frozen=True, slots=True)
class ConcludeDue(Event):
    """The challenge period is over: call ``concludeRegistered`` with the registered state."""

    channel_id: ChannelId
    registered_version: Version


@dataclass(frozen=True, slots=True)
class ChannelSettled(Event):
    channel_id: ChannelId
    version: Version


@dataclass(frozen=True, slots=True)
class SendStreamPayment(Event):
    channel_id: ChannelId
    sequence: int


@dataclass(frozen=True, slots=True)
class PaymentReceived(Event):
    channel_id: ChannelId
    sequence: int
    amount: Wei
    balance_after: Wei


@dataclass(frozen=True, slots=True)
class PaymentDuplicateDropped(Event):
    channel_id: ChannelId
    sequence: int


@dataclass(frozen=True, slots=True)
class CheckpointDue(Event):
    """Countersign ``state`` (the payer's latest) and feed back ``CheckpointSigned``."""

    channel_id: ChannelId
    state: ChannelState


@dataclass(frozen=True, slots=True)
class SendCheckpoint(Event):
    """Record ``signed`` on-chain with ``checkpoint`` (and send the countersignature)."""

    channel_id: ChannelId
    signed: SignedState
