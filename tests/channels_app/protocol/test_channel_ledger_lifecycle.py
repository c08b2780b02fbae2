"""A ledger channel from opening to a cooperative close: deposits, funding, updates, final state."""

from __future__ import annotations

import random

import pytest
from channel_protocol_world import DOMAIN, USD, Party, open_channel, pay, update

from channels_app.protocol import proposals
from channels_app.protocol.eip712 import verify_state_signature
from channels_app.protocol.errors import ChannelClosed, NotFunded
from channels_app.protocol.events import ChannelFinalised, ChannelFunded, ChannelSettled, DepositRequired
from channels_app.protocol.state import Phase
from channels_app.protocol.state_changes import ConcludedObserved, DepositObserved, UpdateProposed
from channels_app.protocol.types import ETH, Version, Wei


def test_opening_asks_each_participant_for_its_agreed_deposit() -> None:
    alice, bob = Party("alice"), Party("bob")
    params = open_channel(alice, bob, {ETH: (100, 50), USD: (0, 7)}, fund=False)
    required = {(e.participant, e.asset, e.amount) for e in alice.events if isinstance(e, DepositRequired)}
    assert required == {(alice.address, ETH, 100), (bob.address, ETH, 50), (bob.address, USD, 7)}
    assert alice.channel(params.channel_id).phase is Phase.FUNDING


def test_channel_opens_only_once_every_asset_holds_the_agreed_total() -> None:
    alice, bob = Party("alice"), Party("bob")
    params = open_channel(alice, bob, {ETH: (100, 50), USD: (0, 7)}, fund=False)
    alice.apply(DepositObserved(params.channel_id, ETH, Wei(150)))
    assert alice.channel(params.channel_id).phase is Phase.FUNDING
    with pytest.raises(NotFunded):
        pay(alice, bob, params.channel_id, 1)
    events = alice.apply(DepositObserved(params.channel_id, USD, Wei(7)))
    assert events == (ChannelFunded(params.channel_id),)
    assert alice.channel(params.channel_id).phase is Phase.OPEN


def test_payments_move_balances_and_both_sides_hold_the_same_both_signed_state() -> None:
    alice, bob = Party("alice"), Party("bob")
    params = open_channel(alice, bob, {ETH: (100, 50)})
    pay(alice, bob, params.channel_id, 30)
    pay(bob, alice, params.channel_id, 5)
    latest = alice.channel(params.channel_id).latest
    assert latest == bob.channel(params.channel_id).latest
    assert latest.state.version == 2
    assert latest.state.allocation(ETH).balance_a == 75
    assert latest.state.allocation(ETH).balance_b == 75
    for participant, signature in zip(params.participants, latest.signatures, strict=True):
        verify_state_signature(DOMAIN, latest.state, participant, signature)


def test_final_state_closes_the_channel_for_updates_until_concluded_on_chain() -> None:
    alice, bob = Party("alice"), Party("bob")
    params = open_channel(alice, bob, {ETH: (100, 50)})
    pay(alice, bob, params.channel_id, 10)
    final = proposals.close(alice.channel(params.channel_id))
    update(alice, bob, params.channel_id, final)
    assert any(isinstance(e, ChannelFinalised) for e in bob.events)
    assert alice.channel(params.channel_id).phase is Phase.FINAL
    after = proposals.payment(alice.channel(params.channel_id), ETH, 1)
    with pytest.raises(ChannelClosed) as refused:
        alice.apply(UpdateProposed(params.channel_id, after, alice.sign(after)))
    assert refused.value.code == "channel_closed"
    events = alice.apply(ConcludedObserved(params.channel_id, Version(2)))
    assert events == (ChannelSettled(params.channel_id, Version(2)),)
    assert alice.channel(params.channel_id).phase is Phase.CONCLUDED


def test_new_channel_params_take_their_nonce_from_the_randomness_passed_in() -> None:
    alice, bob = Party("alice"), Party("bob")
    first = proposals.channel_params(31337, (alice.address, bob.address), 600, random.Random(7))
    again = proposals.channel_params(31337, (alice.address, bob.address), 600, random.Random(7))
    other = proposals.channel_params(31337, (alice.address, bob.address), 600, random.Random(8))
    assert first == again
    assert first.channel_id != other.channel_id
    opening = proposals.opening_state(first, {ETH: (5, 6)})
    assert opening.version == 0
    assert opening.allocation(ETH).total == 11
