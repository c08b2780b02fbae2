"""A tiny in-memory shell for the channel protocol tests: participants with keys and their
``NodeChannels``, and the message exchange the Django services will do over the transport."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field

from channels_app.protocol import proposals
from channels_app.protocol.architecture import Event
from channels_app.protocol.channel_state import Allocation, ChannelParams, ChannelState
from channels_app.protocol.eip712 import Domain, Signer, address_of_key
from channels_app.protocol.events import SendCountersignature, SendProposal
from channels_app.protocol.state import ChannelKind, NodeChannels, SignedState
from channels_app.protocol.state_changes import (
    ChannelOpened,
    CountersignatureReceived,
    DepositObserved,
    ProposalReceived,
    SubChannelEvidence,
    UpdateProposed,
)
from channels_app.protocol.transition import transition
from channels_app.protocol.types import ETH, Address, ChannelId, Version, Wei, address

CHAIN_ID = 31337
DOMAIN = Domain(CHAIN_ID, address("0x" + "a5" * 20))
USD = address("0x" + "d0" * 20)


def key_for(name: str) -> bytes:
    return hashlib.sha256(name.encode()).digest()


@dataclass
class Party:
    name: str
    key: bytes = field(init=False)
    signer: Signer = field(init=False)
    address: Address = field(init=False)
    node: NodeChannels = field(init=False)
    events: list[Event] = field(default_factory=list)

    def __post_init__(self) -> None:
        self.key = key_for(self.name)
        self.signer = Signer(self.key)
        self.address = address_of_key(self.key)
        self.node = NodeChannels(us=self.address, domain=DOMAIN)

    def apply(self, change: object) -> tuple[Event, ...]:
        result = transition(self.node, change)
        self.node = result.new_state
        self.events.extend(result.events)
        return result.events

    def sign(self, state: ChannelState) -> bytes:
        return self.signer.sign_state(DOMAIN, state)

    def channel(self, channel_id: ChannelId):
        return self.node.channels[channel_id]


def both_signed(params: ChannelParams, state: ChannelState, parties: dict[Address, Party]) -> SignedState:
    first, second = (parties[p] for p in params.participants)
    return SignedState(state, (first.sign(state), second.sign(state)))  # type: ignore[arg-type]


def open_channel(
    a: Party,
    b: Party,
    deposits: dict[Address, tuple[int, int]],
    *,
    nonce: int = 1,
    kind: ChannelKind = ChannelKind.LEDGER,
    fund: bool = True,
) -> ChannelParams:
    """Open (and, for a ledger channel, fund) a channel between ``a`` and ``b`` on both sides."""
    params = ChannelParams(CHAIN_ID, (a.address, b.address), nonce, 600)
    opening = ChannelState(
        params.channel_id,
        Version(0),
        tuple(Allocation(asset, Wei(x), Wei(y)) for asset, (x, y) in deposits.items()),
    )
    signed = both_signed(params, opening, {a.address: a, b.address: b})
    for party in (a, b):
        party.apply(ChannelOpened(params, kind, signed))
    if fund and kind is ChannelKind.LEDGER:
        for party in (a, b):
            for asset, (x, y) in deposits.items():
                party.apply(DepositObserved(params.channel_id, asset, Wei(x + y)))
    return params


def propose(
    proposer: Party,
    receiver: Party,
    channel_id: ChannelId,
    state: ChannelState,
    evidence: tuple[SubChannelEvidence, ...] = (),
) -> tuple[Event, ...]:
    """Propose and deliver; return the receiver's events (countersignatures not yet delivered)."""
    events = proposer.apply(UpdateProposed(channel_id, state, proposer.sign(state)))
    proposal = next(e for e in events if isinstance(e, SendProposal))
    return receiver.apply(
        ProposalReceived(channel_id, proposal.state, proposal.signature, receiver.sign(state), evidence)
    )


def deliver_countersignatures(events: tuple[Event, ...], to: dict[ChannelId, Party]) -> None:
    """Carry each SendCountersignature event to the party waiting for it on that channel."""
    for event in events:
        if isinstance(event, SendCountersignature) and event.channel_id in to:
            to[event.channel_id].apply(
                CountersignatureReceived(event.channel_id, event.version, event.signature)
            )


def update(
    proposer: Party,
    receiver: Party,
    channel_id: ChannelId,
    state: ChannelState,
    evidence: tuple[SubChannelEvidence, ...] = (),
) -> None:
    """The full exchange: propose, check and countersign, receive the countersignature."""
    events = propose(proposer, receiver, channel_id, state, evidence)
    deliver_countersignatures(events, {channel_id: proposer})


def pay(payer: Party, payee: Party, channel_id: ChannelId, amount: int, asset: Address = ETH) -> None:
    update(payer, payee, channel_id, proposals.payment(payer.channel(channel_id), asset, amount))
