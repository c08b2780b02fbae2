"""Disputes: a stale registered state calls for a refutation, the deadline calls for conclude,
a later checkpoint ends the challenge, and a concluded channel takes nothing more."""

from __future__ import annotations

import pytest
from channel_protocol_world import Party, open_channel, pay

from channels_app.protocol.errors import ChannelClosed
from channels_app.protocol.events import ConcludeDue, RefuteRequired, SendRegister
from channels_app.protocol.state import Phase
from channels_app.protocol.state_changes import (
    CheckpointObserved,
    ConcludedObserved,
    DisputeRequested,
    RegisteredObserved,
    Tick,
)
from channels_app.protocol.types import ETH, Timestamp, Version


def _channel_at_version_3():
    alice, bob = Party("alice"), Party("bob")
    params = open_channel(alice, bob, {ETH: (100, 100)})
    for _ in range(3):
        pay(alice, bob, params.channel_id, 1)
    alice.apply(Tick(Timestamp(1_000)))
    return alice, bob, params.channel_id


def test_a_stale_registered_state_asks_for_a_refutation_with_our_latest() -> None:
    alice, _bob, channel_id = _channel_at_version_3()
    events = alice.apply(RegisteredObserved(channel_id, Version(1), Timestamp(1_600)))
    assert events == (RefuteRequired(channel_id, Version(1), alice.channel(channel_id).latest),)
    assert alice.channel(channel_id).phase is Phase.DISPUTE


def test_registering_our_own_latest_state_asks_for_nothing() -> None:
    alice, _bob, channel_id = _channel_at_version_3()
    assert alice.apply(RegisteredObserved(channel_id, Version(3), Timestamp(1_600))) == ()


def test_after_the_deadline_conclude_is_due_exactly_once() -> None:
    alice, _bob, channel_id = _channel_at_version_3()
    alice.apply(RegisteredObserved(channel_id, Version(3), Timestamp(1_600)))
    assert alice.apply(Tick(Timestamp(1_599))) == ()
    assert alice.apply(Tick(Timestamp(1_600))) == (ConcludeDue(channel_id, Version(3)),)
    assert alice.apply(Tick(Timestamp(1_700))) == ()


def test_a_dispute_requested_by_the_operator_registers_our_latest_state() -> None:
    alice, _bob, channel_id = _channel_at_version_3()
    assert alice.apply(DisputeRequested(channel_id)) == (
        SendRegister(channel_id, alice.channel(channel_id).latest),
    )


def test_a_checkpoint_above_the_registered_version_ends_the_challenge() -> None:
    alice, _bob, channel_id = _channel_at_version_3()
    alice.apply(RegisteredObserved(channel_id, Version(1), Timestamp(1_600)))
    alice.apply(CheckpointObserved(channel_id, Version(3)))
    channel = alice.channel(channel_id)
    assert channel.phase is Phase.OPEN
    assert channel.dispute is None
    assert channel.checkpointed_version == 3


def test_a_concluded_channel_refuses_disputes_and_updates() -> None:
    alice, bob, channel_id = _channel_at_version_3()
    alice.apply(ConcludedObserved(channel_id, Version(3)))
    with pytest.raises(ChannelClosed):
        alice.apply(DisputeRequested(channel_id))
    with pytest.raises(ChannelClosed):
        pay(alice, bob, channel_id, 1)
