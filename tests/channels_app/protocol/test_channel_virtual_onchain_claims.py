"""When an end of a virtual channel stops answering, everyone still gets their money on-chain:
the ledger channels are registered and concluded, the virtual channel registered with the
latest state, and each lock claimed per that state (``sub_claims.next_claim_step`` decides the
step, ``sub_allocation_payout`` is the contract's rule). Hypothesis checks, for any deposits,
participant order and payments inside the virtual channel, that money is conserved in each
ledger channel and that Ingrid ends with exactly what she deposited."""

from __future__ import annotations

from channel_protocol_world import Party, deliver_countersignatures, open_channel, pay, propose
from hypothesis import given, settings
from hypothesis import strategies as st

from channels_app.protocol import proposals
from channels_app.protocol.channel_state import ChannelParams, ChannelState
from channels_app.protocol.eip712 import OnChainStatus, outcome_fingerprint
from channels_app.protocol.state import ChannelKind
from channels_app.protocol.state_changes import SubChannelEvidence, SubChannelStateReceived
from channels_app.protocol.sub_claims import (
    AllClaimed,
    ClaimSubAllocation,
    KnownSubChannel,
    RegisterSubChannel,
    next_claim_step,
    remaining_locks,
)
from channels_app.protocol.types import ETH, Timestamp

NOW = Timestamp(10_000)


def _final_status(state: ChannelState, *, paid: bool) -> OnChainStatus:
    """What the Adjudicator records once ``state`` is registered and its period is over."""
    return OnChainStatus(state.version, NOW - 1, paid, outcome_fingerprint(state))


def _open(
    alice: Party,
    ingrid: Party,
    bob: Party,
    bob_first: bool,
    deposits: tuple[int, int, int, int],
    puts: tuple[int, int],
):
    alice_x, ingrid_x, ingrid_y, bob_y = deposits
    x = open_channel(alice, ingrid, {ETH: (alice_x, ingrid_x)}, nonce=1)
    if bob_first:
        y = open_channel(bob, ingrid, {ETH: (bob_y, ingrid_y)}, nonce=2)
    else:
        y = open_channel(ingrid, bob, {ETH: (ingrid_y, bob_y)}, nonce=2)
    v = open_channel(alice, bob, {ETH: puts}, nonce=3, kind=ChannelKind.VIRTUAL)
    ingrid.apply(SubChannelStateReceived(SubChannelEvidence(v, alice.channel(v.channel_id).latest)))
    propose(alice, ingrid, x.channel_id, proposals.lock(alice.channel(x.channel_id), v, ETH, *puts))
    events = propose(
        bob, ingrid, y.channel_id, proposals.lock(bob.channel(y.channel_id), v, ETH, puts[1], puts[0])
    )
    deliver_countersignatures(events, {x.channel_id: alice, y.channel_id: bob})
    return x, y, v


def _settle_on_chain(
    owner: Party, ledger: ChannelParams, v: ChannelParams, v_status: OnChainStatus, v_states
) -> dict[str, int]:
    """Conclude ``ledger`` with its latest state, then claim its lock as ``owner`` would."""
    registered = owner.channel(ledger.channel_id).latest.state
    status = _final_status(registered, paid=True)
    paid = {p: registered.allocation(ETH).balance(i) for i, p in enumerate(ledger.participants)}
    known = {v.channel_id: KnownSubChannel(v, tuple(v_states))}
    step = next_claim_step(
        registered=registered, status=status, sub_statuses={v.channel_id: v_status}, known=known, now=NOW
    )
    assert isinstance(step, ClaimSubAllocation)
    sub = step.parent_state.sub_allocations[step.index]
    to_a, to_b = proposals.sub_allocation_payout(ledger, sub, step.sub_params, step.sub_state)
    paid[ledger.participants[0]] += to_a
    paid[ledger.participants[1]] += to_b
    claimed = ChannelState(registered.channel_id, registered.version, registered.allocations, ())
    after = OnChainStatus(status.version, status.finalizes_at, True, outcome_fingerprint(claimed))
    assert isinstance(
        next_claim_step(registered=registered, status=after, sub_statuses={}, known=known, now=NOW),
        AllClaimed,
    )
    # Money is conserved in the ledger channel: it pays out exactly what it holds.
    assert sum(paid.values()) == sum(registered.totals().values())
    return {p: paid[p] for p in ledger.participants}


@settings(max_examples=40, deadline=None)
@given(
    bob_first=st.booleans(),
    deposits=st.tuples(*(st.integers(0, 500) for _ in range(4))),
    puts=st.tuples(st.integers(0, 200), st.integers(0, 200)),
    payments=st.lists(st.tuples(st.booleans(), st.integers(1, 100)), max_size=8),
)
def test_bob_stops_answering_and_everyone_still_gets_their_money_on_chain(
    bob_first, deposits, puts, payments
):
    alice_x, ingrid_x, ingrid_y, bob_y = deposits
    if sum(puts) == 0 or puts[0] > min(alice_x, ingrid_y) or puts[1] > min(bob_y, ingrid_x):
        return  # the locks could not be funded
    alice, ingrid, bob = Party("alice"), Party("ingrid"), Party("bob")
    x, y, v = _open(alice, ingrid, bob, bob_first, deposits, puts)
    for alice_pays, amount in payments:
        payer, payee = (alice, bob) if alice_pays else (bob, alice)
        channel = payer.channel(v.channel_id)
        if channel.latest.state.allocation(ETH).balance(channel.our_index) >= amount:
            pay(payer, payee, v.channel_id, amount)
    # Bob stops answering. Alice registers the latest virtual state she holds; it becomes final.
    alice_states = [alice.channel(v.channel_id).latest]
    latest_v = alice_states[0].state
    v_status = _final_status(latest_v, paid=False)
    from_x = _settle_on_chain(alice, x, v, v_status, alice_states)
    # Bob, whenever he comes back, claims his lock in Ingrid-Bob per the same registered state.
    from_y = _settle_on_chain(bob, y, v, v_status, [bob.channel(v.channel_id).latest])

    final = latest_v.allocation(ETH)
    assert from_x[alice.address] == alice_x - puts[0] + final.balance_a
    assert from_y[bob.address] == bob_y - puts[1] + final.balance_b
    assert from_x[ingrid.address] + from_y[ingrid.address] == ingrid_x + ingrid_y  # neutral


def test_an_unregistered_virtual_channel_is_registered_first_and_a_running_period_waits():
    alice, ingrid, bob = Party("alice"), Party("ingrid"), Party("bob")
    x, _y, v = _open(alice, ingrid, bob, True, (100, 100, 100, 100), (30, 10))
    pay(alice, bob, v.channel_id, 5)
    registered = alice.channel(x.channel_id).latest.state
    status = _final_status(registered, paid=True)
    opening = alice.channel(v.channel_id).agreed_deposits
    known = {v.channel_id: KnownSubChannel(v, (alice.channel(v.channel_id).latest,))}
    nothing = OnChainStatus(0, 0, False, 0)
    step = next_claim_step(
        registered=registered, status=status, sub_statuses={v.channel_id: nothing}, known=known, now=NOW
    )
    assert step == RegisterSubChannel(v, alice.channel(v.channel_id).latest)
    running = OnChainStatus(1, NOW + 60, False, outcome_fingerprint(opening))
    assert (
        next_claim_step(
            registered=registered, status=status, sub_statuses={v.channel_id: running}, known=known, now=NOW
        )
        is None
    )
    # A final outcome we hold no state for (the opening, here) cannot be claimed by us.
    stale = OnChainStatus(0, NOW - 1, False, outcome_fingerprint(opening))
    assert (
        next_claim_step(
            registered=registered, status=status, sub_statuses={v.channel_id: stale}, known=known, now=NOW
        )
        is None
    )
    # Before the ledger channel is concluded (paid), nothing is claimed.
    unpaid = _final_status(registered, paid=False)
    assert (
        next_claim_step(registered=registered, status=unpaid, sub_statuses={}, known=known, now=NOW) is None
    )


def test_the_locks_left_on_chain_are_found_from_the_fingerprint():
    alice, ingrid, bob = Party("alice"), Party("ingrid"), Party("bob")
    x, _y, _v = _open(alice, ingrid, bob, False, (100, 100, 100, 100), (30, 10))
    registered = alice.channel(x.channel_id).latest.state
    assert remaining_locks(registered, _final_status(registered, paid=True)) == registered
    other = OnChainStatus(1, NOW, True, 12345)
    assert remaining_locks(registered, other) is None
