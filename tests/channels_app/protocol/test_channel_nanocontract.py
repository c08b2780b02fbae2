"""Nanocontracts: sub-allocations that lock funds in a ledger channel, each with its own state,
created, updated and released without touching the chain."""

from __future__ import annotations

import pytest
from channel_protocol_world import Party, open_channel, pay, update

from channels_app.protocol import proposals
from channels_app.protocol.channel_state import SubAllocation
from channels_app.protocol.errors import NotFunded, SubAllocationError, Unfavourable, UnknownChannel
from channels_app.protocol.events import ChannelFunded, ChannelSettled
from channels_app.protocol.state import ChannelKind, Phase
from channels_app.protocol.state_changes import ProposalReceived
from channels_app.protocol.transition import transition
from channels_app.protocol.types import ETH, Wei


def _world():
    alice, bob = Party("alice"), Party("bob")
    ledger = open_channel(alice, bob, {ETH: (100, 100)})
    nano = open_channel(alice, bob, {ETH: (20, 5)}, nonce=2, kind=ChannelKind.NANOCONTRACT)
    return alice, bob, ledger, nano


def test_creating_a_nanocontract_locks_both_shares_in_a_sub_allocation() -> None:
    alice, bob, ledger, nano = _world()
    update(alice, bob, ledger.channel_id, proposals.lock(alice.channel(ledger.channel_id), nano, ETH, 20, 5))
    state = bob.channel(ledger.channel_id).latest.state
    assert state.allocation(ETH).balance_a == 80
    assert state.allocation(ETH).balance_b == 95
    assert state.sub_allocations == (SubAllocation(nano.channel_id, ETH, Wei(25)),)
    assert state.totals() == {ETH: 200}


def test_a_nanocontract_updates_inside_its_own_state_while_the_ledger_channel_stays_put() -> None:
    alice, bob, ledger, nano = _world()
    update(alice, bob, ledger.channel_id, proposals.lock(alice.channel(ledger.channel_id), nano, ETH, 20, 5))
    ledger_version = alice.channel(ledger.channel_id).latest.state.version
    pay(alice, bob, nano.channel_id, 15)
    assert bob.channel(nano.channel_id).latest.state.allocation(ETH).balance_b == 20
    assert alice.channel(ledger.channel_id).latest.state.version == ledger_version


def test_releasing_a_final_nanocontract_folds_its_outcome_back_into_the_balances() -> None:
    alice, bob, ledger, nano = _world()
    update(alice, bob, ledger.channel_id, proposals.lock(alice.channel(ledger.channel_id), nano, ETH, 20, 5))
    pay(alice, bob, nano.channel_id, 15)
    update(alice, bob, nano.channel_id, proposals.close(alice.channel(nano.channel_id)))
    final = alice.channel(nano.channel_id).latest.state
    update(bob, alice, ledger.channel_id, proposals.release(bob.channel(ledger.channel_id), nano, final))
    state = alice.channel(ledger.channel_id).latest.state
    assert state.sub_allocations == ()
    assert (state.allocation(ETH).balance_a, state.allocation(ETH).balance_b) == (85, 115)


def test_a_nanocontract_is_not_released_before_it_is_final() -> None:
    alice, bob, ledger, nano = _world()
    update(alice, bob, ledger.channel_id, proposals.lock(alice.channel(ledger.channel_id), nano, ETH, 20, 5))
    current = alice.channel(ledger.channel_id).latest.state
    early = current.next(allocations=[current.allocation(ETH).with_balance(0, 105)], sub_allocations=[])
    with pytest.raises(SubAllocationError):
        transition(bob.node, ProposalReceived(ledger.channel_id, early, alice.sign(early), bob.sign(early)))


def test_a_release_with_the_wrong_split_is_refused_by_the_side_it_shortchanges() -> None:
    alice, bob, ledger, nano = _world()
    update(alice, bob, ledger.channel_id, proposals.lock(alice.channel(ledger.channel_id), nano, ETH, 20, 5))
    pay(alice, bob, nano.channel_id, 15)
    update(alice, bob, nano.channel_id, proposals.close(alice.channel(nano.channel_id)))
    current = alice.channel(ledger.channel_id).latest.state
    # Alice releases as if she still had her 20: 100 / 100 instead of 85 / 115.
    wrong = current.next(
        allocations=[current.allocation(ETH).with_balance(0, 100).with_balance(1, 100)], sub_allocations=[]
    )
    with pytest.raises(Unfavourable):
        transition(bob.node, ProposalReceived(ledger.channel_id, wrong, alice.sign(wrong), bob.sign(wrong)))


def test_a_lock_for_a_sub_channel_nobody_showed_us_is_refused() -> None:
    alice, bob = Party("alice"), Party("bob")
    ledger = open_channel(alice, bob, {ETH: (100, 100)})
    carol = Party("carol")
    ghost = open_channel(alice, carol, {ETH: (10, 0)}, nonce=9, kind=ChannelKind.NANOCONTRACT)
    locked = proposals.lock(alice.channel(ledger.channel_id), ghost, ETH, 10, 0)
    with pytest.raises(UnknownChannel):
        transition(
            bob.node, ProposalReceived(ledger.channel_id, locked, alice.sign(locked), bob.sign(locked))
        )


def test_a_nanocontract_takes_updates_only_once_locked_and_is_settled_by_its_release() -> None:
    alice, bob, ledger, nano = _world()
    assert alice.channel(nano.channel_id).phase is Phase.FUNDING
    with pytest.raises(NotFunded):
        pay(alice, bob, nano.channel_id, 1)
    update(alice, bob, ledger.channel_id, proposals.lock(alice.channel(ledger.channel_id), nano, ETH, 20, 5))
    assert ChannelFunded(nano.channel_id) in bob.events
    assert bob.channel(nano.channel_id).phase is Phase.OPEN
    update(alice, bob, nano.channel_id, proposals.close(alice.channel(nano.channel_id)))
    final = alice.channel(nano.channel_id).latest.state
    update(bob, alice, ledger.channel_id, proposals.release(bob.channel(ledger.channel_id), nano, final))
    assert alice.channel(nano.channel_id).phase is Phase.CONCLUDED
    assert ChannelSettled(nano.channel_id, final.version) in alice.events
