"""What a node knows about its channels: frozen dataclasses, replaced on every transition."""

from __future__ import annotations

import enum
from collections.abc import Mapping
from dataclasses import dataclass, field

from channels_app.protocol.channel_state import ChannelParams, ChannelState
from channels_app.protocol.eip712 import Domain, Signature
from channels_app.protocol.types import Address, ChannelId, Timestamp, Version, Wei


class ChannelKind(enum.Enum):
    LEDGER = "ledger"
    """Funded on-chain in the Adjudicator."""
    NANOCONTRACT = "nanocontract"
    """Funded by a sub-allocation of a ledger channel between the same two participants."""
    VIRTUAL = "virtual"
    """Funded by one sub-allocation in each of two ledger channels through an intermediary."""


class Phase(enum.Enum):
    FUNDING = "funding"
    """The opening state is signed; the agreed deposits are not all on-chain yet."""
    OPEN = "open"
    FINAL = "final"
    """Both signed a final state: no more updates; conclude on-chain or release in the parent."""
    DISPUTE = "dispute"
    """A state is registered on-chain and the challenge period runs."""
    CONCLUDED = "concluded"


@dataclass(frozen=True, slots=True)
class SignedState:
    """A channel state with both participants' signatures, in participant order."""

    state: ChannelState
    signatures: tuple[Signature, Signature]


@dataclass(frozen=True, slots=True)
class PendingUpdate:
    """An update we proposed and signed; the counterparty has not countersigned yet."""

    state: ChannelState
    signature: Signature


@dataclass(frozen=True, slots=True)
class HeldProposal:
    """A checked proposal we have countersigned but not yet released (see ``held``)."""

    state: ChannelState
    signature: Signature
    countersignature: Signature


@dataclass(frozen=True, slots=True)
class Dispute:
    registered_version: Version
    finalizes_at: Timestamp
    conclude_requested: bool = False


@dataclass(frozen=True, slots=True)
class SubChannelRecord:
    """A sub-channel we help fund but do not take part in (Ingrid's view of Alice-Bob)."""

    params: ChannelParams
    latest: SignedState


@dataclass(frozen=True, slots=True)
class StreamPayment:
    """One micro-payment: the payer's signed channel state after paying ``amount``.

    ``previous_hash`` links it to the payment before (or, for the first, to the state the
    stream started from), so the receiver can put arrivals back in order and notice gaps.
    """

    channel_id: ChannelId
    sequence: int
    previous_hash: bytes
    asset: Address
    amount: Wei
    state: ChannelState
    signature: Signature


@dataclass(frozen=True, slots=True)
class StreamReceiver:
    """The receiving end of a micro-payment stream (seed 000)."""

    window: int
    """Payments may arrive up to this many sequence numbers ahead of the next expected one."""
    checkpoint_every: int
    """Ask for an on-chain checkpoint every m applied payments..."""
    checkpoint_timeout: int
    """...or this many seconds after the last checkpoint, whichever comes first."""
    payer_index: int
    base: ChannelState
    last_sequence: int
    last_hash: bytes
    last_payment: StreamPayment | None
    buffer: Mapping[int, StreamPayment]
    balances_after: tuple[tuple[int, Wei], ...]
    """(sequence, receiver's balance after it) for every payment since the last checkpoint."""
    since_checkpoint: int
    last_checkpoint_at: Timestamp
    checkpoint_requested: bool = False


@dataclass(frozen=True, slots=True)
class StreamSender:
    payer_index: int
    base: ChannelState
    last_sent: StreamPayment | None
    unacknowledged: tuple[StreamPayment, ...]
    """Payments since the last countersigned checkpoint, oldest first."""


@dataclass(frozen=True, slots=True)
class Channel:
    params: ChannelParams
    kind: ChannelKind
    our_index: int
    phase: Phase
    latest: SignedState
    agreed_deposits: ChannelState
    """The opening state (version 0): what each participant agreed to deposit."""
    holdings: Mapping[Address, Wei] = field(default_factory=dict)
    pending: PendingUpdate | None = None
    held: HeldProposal | None = None
    """An intermediary's lock for a virtual channel, held back until the mirror lock arrives
    from the other end: releasing both countersignatures together means the intermediary
    never has one lock without the other."""
    dispute: Dispute | None = None
    checkpointed_version: Version | None = None
    receiving_stream: StreamReceiver | None = None
    sending_stream: StreamSender | None = None

    @property
    def channel_id(self) -> ChannelId:
        return self.params.channel_id

    @property
    def their_index(self) -> int:
        return 1 - self.our_index

    @property
    def us(self) -> Address:
        return self.params.participants[self.our_index]

    @property
    def them(self) -> Address:
        return self.params.participants[self.their_index]


@dataclass(frozen=True, slots=True)
class NodeChannels:
    """Everything one participant knows about its channels: the state the transitions act on."""

    us: Address
    domain: Domain
    now: Timestamp = field(default_factory=lambda: Timestamp(0))
    channels: Mapping[ChannelId, Channel] = field(default_factory=dict)
    sub_channels: Mapping[ChannelId, SubChannelRecord] = field(default_factory=dict)
