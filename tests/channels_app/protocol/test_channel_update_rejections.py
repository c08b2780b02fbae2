"""Every bad update is refused with a typed error (code and sentence) and changes nothing."""

from __future__ import annotations

from dataclasses import replace

import pytest
from channel_protocol_world import Party, open_channel, pay

from channels_app.protocol import proposals
from channels_app.protocol.channel_state import Allocation, ChannelState
from channels_app.protocol.errors import (
    BadSignature,
    ChannelError,
    DepositBelowAgreed,
    NotConserved,
    Unfavourable,
    UnknownChannel,
    UpdatePending,
    WrongVersion,
)
from channels_app.protocol.events import SendDeposit
from channels_app.protocol.state_changes import DepositRequested, ProposalReceived, UpdateProposed
from channels_app.protocol.transition import transition
from channels_app.protocol.types import ETH, ChannelId, Version, Wei


@pytest.fixture
def channel() -> tuple[Party, Party, ChannelId]:
    alice, bob = Party("alice"), Party("bob")
    params = open_channel(alice, bob, {ETH: (100, 50)})
    pay(alice, bob, params.channel_id, 10)
    return alice, bob, params.channel_id


def _refused(party: Party, change: object, error: type[ChannelError]) -> ChannelError:
    before = party.node
    with pytest.raises(error) as raised:
        transition(party.node, change)
    assert party.node is before
    assert raised.value.code
    assert raised.value.message
    assert raised.value.as_dict() == {"code": raised.value.code, "message": raised.value.message}
    return raised.value


def _received(bob: Party, channel_id: ChannelId, state: ChannelState, signer: Party) -> ProposalReceived:
    return ProposalReceived(channel_id, state, signer.sign(state), bob.sign(state))


def test_a_version_that_is_not_the_next_one_is_refused(channel) -> None:
    alice, bob, channel_id = channel
    good = proposals.payment(alice.channel(channel_id), ETH, 1)
    for version in (good.version - 1, good.version + 1, 0):
        stale = replace(good, version=Version(version))
        error = _refused(bob, _received(bob, channel_id, stale, alice), WrongVersion)
        assert error.code == "wrong_version"


def test_a_proposal_not_signed_by_the_counterparty_is_refused(channel) -> None:
    alice, bob, channel_id = channel
    state = proposals.payment(alice.channel(channel_id), ETH, 1)
    mallory = Party("mallory")
    _refused(bob, _received(bob, channel_id, state, mallory), BadSignature)
    missing = ProposalReceived(channel_id, state, b"", bob.sign(state))  # type: ignore[arg-type]
    _refused(bob, missing, BadSignature)
    other_state = proposals.payment(alice.channel(channel_id), ETH, 2)
    swapped = ProposalReceived(channel_id, state, alice.sign(other_state), bob.sign(state))
    _refused(bob, swapped, BadSignature)


def test_our_own_countersignature_must_be_valid_too(channel) -> None:
    alice, bob, channel_id = channel
    state = proposals.payment(alice.channel(channel_id), ETH, 1)
    change = ProposalReceived(channel_id, state, alice.sign(state), alice.sign(state))
    _refused(bob, change, BadSignature)


def test_an_update_that_creates_or_destroys_money_is_refused(channel) -> None:
    alice, bob, channel_id = channel
    current = alice.channel(channel_id).latest.state
    allocation = current.allocation(ETH)
    richer = current.next(allocations=[Allocation(ETH, allocation.balance_a, Wei(allocation.balance_b + 1))])
    error = _refused(bob, _received(bob, channel_id, richer, alice), NotConserved)
    assert "holds 150" in error.message
    _refused(alice, UpdateProposed(channel_id, richer, alice.sign(richer)), NotConserved)
    dropped = current.next(allocations=[])
    _refused(bob, _received(bob, channel_id, dropped, alice), NotConserved)


def test_the_counterparty_cannot_pay_itself_from_our_balance(channel) -> None:
    alice, bob, channel_id = channel
    current = alice.channel(channel_id).latest.state
    allocation = current.allocation(ETH)
    # Alice proposes that Bob pays her 10: conserving, correctly versioned, signed by her.
    theft = current.next(
        allocations=[Allocation(ETH, Wei(allocation.balance_a + 10), Wei(allocation.balance_b - 10))]
    )
    _refused(bob, _received(bob, channel_id, theft, alice), Unfavourable)


def test_an_unknown_channel_is_refused(channel) -> None:
    alice, bob, channel_id = channel
    state = proposals.payment(alice.channel(channel_id), ETH, 1)
    elsewhere = ChannelId(b"\x99" * 32)
    error = _refused(
        bob, ProposalReceived(elsewhere, state, alice.sign(state), bob.sign(state)), UnknownChannel
    )
    assert error.code == "unknown_channel"


def test_a_second_proposal_waits_for_the_first_to_be_countersigned(channel) -> None:
    alice, bob, channel_id = channel
    first = proposals.payment(alice.channel(channel_id), ETH, 1)
    alice.apply(UpdateProposed(channel_id, first, alice.sign(first)))
    _refused(alice, UpdateProposed(channel_id, first, alice.sign(first)), UpdatePending)
    crossing = proposals.payment(bob.channel(channel_id), ETH, 1)
    _refused(
        alice, ProposalReceived(channel_id, crossing, bob.sign(crossing), alice.sign(crossing)), UpdatePending
    )


def test_a_deposit_below_what_was_agreed_is_refused(channel) -> None:
    alice, _bob, channel_id = channel
    error = _refused(alice, DepositRequested(channel_id, ETH, Wei(99)), DepositBelowAgreed)
    assert "agreed to deposit 100" in error.message
    result = transition(alice.node, DepositRequested(channel_id, ETH, Wei(100)))
    assert result.events == (SendDeposit(channel_id, ETH, Wei(100)),)
