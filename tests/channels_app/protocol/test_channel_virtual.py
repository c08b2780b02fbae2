"""Virtual channels of length 2 (Perun): Alice and Bob open a channel through Ingrid by locking
funds in Alice-Ingrid and Ingrid-Bob, pay each other without Ingrid, and close it back into
both ledger channels; Ingrid ends exactly where she started."""

from __future__ import annotations

import pytest
from channel_protocol_world import (
    Party,
    both_signed,
    deliver_countersignatures,
    open_channel,
    pay,
    propose,
    update,
)

from channels_app.protocol import proposals
from channels_app.protocol.channel_state import ChannelParams
from channels_app.protocol.errors import SubAllocationError, Unfavourable
from channels_app.protocol.events import SendCountersignature, VirtualLockHeld
from channels_app.protocol.state import ChannelKind, SignedState
from channels_app.protocol.state_changes import (
    ProposalReceived,
    SubChannelEvidence,
    SubChannelStateReceived,
    UpdateProposed,
)
from channels_app.protocol.transition import transition
from channels_app.protocol.types import ETH


def _ingrid_total(ingrid: Party, *ledgers: ChannelParams) -> int:
    total = 0
    for params in ledgers:
        channel = ingrid.channel(params.channel_id)
        total += channel.latest.state.allocation(ETH).balance(channel.our_index)
    return total


def _open_virtual(alice: Party, ingrid: Party, bob: Party):
    # Ingrid-Bob has Bob first: the participant order of the two ledger channels is free.
    x = open_channel(alice, ingrid, {ETH: (100, 100)}, nonce=1)
    y = open_channel(bob, ingrid, {ETH: (100, 100)}, nonce=2)
    v = open_channel(alice, bob, {ETH: (30, 10)}, nonce=3, kind=ChannelKind.VIRTUAL)
    opening = alice.channel(v.channel_id).latest
    ingrid.apply(SubChannelStateReceived(SubChannelEvidence(v, opening)))
    # Alice-Ingrid locks Alice's 30 and Ingrid's 10 (standing in for Bob); Ingrid-Bob the mirror.
    held = propose(alice, ingrid, x.channel_id, proposals.lock(alice.channel(x.channel_id), v, ETH, 30, 10))
    assert not any(isinstance(e, SendCountersignature) for e in held)
    both = propose(bob, ingrid, y.channel_id, proposals.lock(bob.channel(y.channel_id), v, ETH, 10, 30))
    deliver_countersignatures(both, {x.channel_id: alice, y.channel_id: bob})
    return x, y, v


def test_opening_through_ingrid_touches_no_chain_and_locks_in_both_ledger_channels() -> None:
    alice, ingrid, bob = Party("alice"), Party("ingrid"), Party("bob")
    x, y, v = _open_virtual(alice, ingrid, bob)
    assert ingrid.channel(x.channel_id).latest.state.sub_allocations[0].channel_id == v.channel_id
    assert ingrid.channel(y.channel_id).latest.state.sub_allocations[0].amount == 40
    assert _ingrid_total(ingrid, x, y) == 200 - 10 - 30


def test_alice_and_bob_pay_each_other_without_ingrid() -> None:
    alice, ingrid, bob = Party("alice"), Party("ingrid"), Party("bob")
    _x, _y, v = _open_virtual(alice, ingrid, bob)
    seen_by_ingrid = len(ingrid.events)
    pay(alice, bob, v.channel_id, 12)
    pay(alice, bob, v.channel_id, 3)
    assert bob.channel(v.channel_id).latest.state.allocation(ETH).balance_b == 25
    assert len(ingrid.events) == seen_by_ingrid


def test_closing_moves_the_final_balances_into_both_ledger_channels_neutral_for_ingrid() -> None:
    alice, ingrid, bob = Party("alice"), Party("ingrid"), Party("bob")
    x, y, v = _open_virtual(alice, ingrid, bob)
    pay(alice, bob, v.channel_id, 15)
    update(alice, bob, v.channel_id, proposals.close(alice.channel(v.channel_id)))
    final: SignedState = alice.channel(v.channel_id).latest
    evidence = (SubChannelEvidence(v, final),)
    update(
        alice, ingrid, x.channel_id, proposals.release(alice.channel(x.channel_id), v, final.state), evidence
    )
    update(bob, ingrid, y.channel_id, proposals.release(bob.channel(y.channel_id), v, final.state), evidence)
    x_state = ingrid.channel(x.channel_id).latest.state.allocation(ETH)
    y_state = ingrid.channel(y.channel_id).latest.state.allocation(ETH)
    assert (x_state.balance_a, x_state.balance_b) == (85, 115)  # Alice paid 15, Ingrid got Bob's 25
    assert (y_state.balance_a, y_state.balance_b) == (115, 85)  # Bob got his 25, Ingrid Alice's 15
    assert _ingrid_total(ingrid, x, y) == 200


def test_ingrid_refuses_a_release_that_does_not_follow_the_final_virtual_state() -> None:
    alice, ingrid, bob = Party("alice"), Party("ingrid"), Party("bob")
    _x, y, v = _open_virtual(alice, ingrid, bob)
    pay(alice, bob, v.channel_id, 15)
    update(alice, bob, v.channel_id, proposals.close(alice.channel(v.channel_id)))
    final = alice.channel(v.channel_id).latest
    ingrid.apply(SubChannelStateReceived(SubChannelEvidence(v, final)))
    # Bob releases Ingrid-Bob as if Alice had paid him 30, not 15.
    forged = final.state.next(is_final=True)
    forged = type(forged)(
        forged.channel_id,
        forged.version,
        (forged.allocation(ETH).with_balance(0, 0).with_balance(1, 40),),
        (),
        True,
    )
    current = bob.channel(y.channel_id).latest.state
    greedy = proposals.release(bob.channel(y.channel_id), v, forged)
    with pytest.raises(Unfavourable):
        transition(ingrid.node, ProposalReceived(y.channel_id, greedy, bob.sign(greedy), ingrid.sign(greedy)))
    assert ingrid.channel(y.channel_id).latest.state == current


def test_a_virtual_state_signed_by_only_one_side_is_not_evidence() -> None:
    alice, ingrid, bob = Party("alice"), Party("ingrid"), Party("bob")
    _x, _y, v = _open_virtual(alice, ingrid, bob)
    state = proposals.close(alice.channel(v.channel_id))
    forged = both_signed(v, state, {alice.address: alice, bob.address: alice})
    with pytest.raises(Exception, match="signature"):
        transition(ingrid.node, SubChannelStateReceived(SubChannelEvidence(v, forged)))


def test_payout_mapping_matches_the_adjudicator_rule_for_crossed_participant_order() -> None:
    alice, ingrid, bob = Party("alice"), Party("ingrid"), Party("bob")
    x, y, v = _open_virtual(alice, ingrid, bob)
    final = proposals.payment(alice.channel(v.channel_id), ETH, 15)  # Alice 15, Bob 25
    x_sub = ingrid.channel(x.channel_id).latest.state.sub_allocations[0]
    y_sub = ingrid.channel(y.channel_id).latest.state.sub_allocations[0]
    assert proposals.sub_allocation_payout(x, x_sub, v, final) == (15, 25)  # (Alice, Ingrid)
    assert proposals.sub_allocation_payout(y, y_sub, v, final) == (25, 15)  # (Bob, Ingrid)


def test_ingrid_holds_her_countersignature_on_the_first_lock_until_the_mirror_lock_arrives() -> None:
    alice, ingrid, bob = Party("alice"), Party("ingrid"), Party("bob")
    x = open_channel(alice, ingrid, {ETH: (100, 100)}, nonce=1)
    y = open_channel(bob, ingrid, {ETH: (100, 100)}, nonce=2)
    v = open_channel(alice, bob, {ETH: (30, 10)}, nonce=3, kind=ChannelKind.VIRTUAL)
    ingrid.apply(SubChannelStateReceived(SubChannelEvidence(v, alice.channel(v.channel_id).latest)))
    first = propose(alice, ingrid, x.channel_id, proposals.lock(alice.channel(x.channel_id), v, ETH, 30, 10))
    assert first == (VirtualLockHeld(x.channel_id, v.channel_id),)
    assert ingrid.channel(x.channel_id).latest.state.sub_allocations == ()
    assert alice.channel(x.channel_id).pending is not None
    second = propose(bob, ingrid, y.channel_id, proposals.lock(bob.channel(y.channel_id), v, ETH, 10, 30))
    released = {e.channel_id for e in second if isinstance(e, SendCountersignature)}
    assert released == {x.channel_id, y.channel_id}
    deliver_countersignatures(second, {x.channel_id: alice, y.channel_id: bob})
    assert alice.channel(x.channel_id).latest == ingrid.channel(x.channel_id).latest
    assert bob.channel(y.channel_id).latest == ingrid.channel(y.channel_id).latest


def test_a_lock_with_a_different_amount_is_not_taken_as_the_mirror() -> None:
    alice, ingrid, bob = Party("alice"), Party("ingrid"), Party("bob")
    x = open_channel(alice, ingrid, {ETH: (100, 100)}, nonce=1)
    y = open_channel(bob, ingrid, {ETH: (100, 100)}, nonce=2)
    v = open_channel(alice, bob, {ETH: (30, 10)}, nonce=3, kind=ChannelKind.VIRTUAL)
    ingrid.apply(SubChannelStateReceived(SubChannelEvidence(v, alice.channel(v.channel_id).latest)))
    propose(alice, ingrid, x.channel_id, proposals.lock(alice.channel(x.channel_id), v, ETH, 30, 10))
    # Bob locks only 5 of Ingrid's: the sub-allocation no longer conserves the virtual channel.
    short = proposals.lock(bob.channel(y.channel_id), v, ETH, 10, 5)
    with pytest.raises(SubAllocationError):
        transition(ingrid.node, ProposalReceived(y.channel_id, short, bob.sign(short), ingrid.sign(short)))


def test_ingrid_does_not_propose_a_virtual_lock_herself() -> None:
    alice, ingrid, bob = Party("alice"), Party("ingrid"), Party("bob")
    x = open_channel(alice, ingrid, {ETH: (100, 100)}, nonce=1)
    v = open_channel(alice, bob, {ETH: (30, 10)}, nonce=3, kind=ChannelKind.VIRTUAL)
    ingrid.apply(SubChannelStateReceived(SubChannelEvidence(v, alice.channel(v.channel_id).latest)))
    state = proposals.lock(ingrid.channel(x.channel_id), v, ETH, 10, 30)
    with pytest.raises(SubAllocationError):
        transition(ingrid.node, UpdateProposed(x.channel_id, state, ingrid.sign(state)))
