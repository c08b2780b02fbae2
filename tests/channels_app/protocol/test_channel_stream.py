"""Micro-payment streams (seed 000): hash-linked payments, reordering within a window,
duplicates dropped, the balance after each payment, checkpoints every m payments or on timeout."""

from __future__ import annotations

from dataclasses import replace

import pytest
from channel_protocol_world import DOMAIN, Party, open_channel, pay

from channels_app.protocol import proposals
from channels_app.protocol.errors import BadSignature, BrokenHashChain, OutsideWindow, UpdatePending
from channels_app.protocol.events import (
    CheckpointDue,
    PaymentDuplicateDropped,
    PaymentReceived,
    RefuteRequired,
    SendCheckpoint,
    StateAccepted,
)
from channels_app.protocol.state import StreamPayment
from channels_app.protocol.state_changes import (
    CheckpointSigned,
    CountersignatureReceived,
    RegisteredObserved,
    StreamClosed,
    StreamOpened,
    StreamPaymentReceived,
    StreamPaymentSent,
    Tick,
)
from channels_app.protocol.transition import transition
from channels_app.protocol.types import ETH, Timestamp, Version


def _stream(window: int = 4, every: int = 100, timeout: int = 60, count: int = 6):
    alice, bob = Party("alice"), Party("bob")
    params = open_channel(alice, bob, {ETH: (1_000, 0)})
    for party in (alice, bob):
        party.apply(Tick(Timestamp(10_000)))
        party.apply(StreamOpened(params.channel_id, alice.address, window, every, timeout))
    payments: list[StreamPayment] = []
    for amount in range(1, count + 1):
        payment = proposals.stream_payment(alice.channel(params.channel_id), ETH, amount, alice.key, DOMAIN)
        alice.apply(StreamPaymentSent(payment))
        payments.append(payment)
    return alice, bob, params.channel_id, payments


def _received(events) -> list[tuple[int, int]]:
    return [(e.sequence, e.balance_after) for e in events if isinstance(e, PaymentReceived)]


def test_in_order_payments_keep_the_balance_after_each() -> None:
    _alice, bob, channel_id, payments = _stream()
    for payment in payments:
        bob.apply(StreamPaymentReceived(payment))
    assert _received(bob.events) == [(1, 1), (2, 3), (3, 6), (4, 10), (5, 15), (6, 21)]
    assert bob.channel(channel_id).receiving_stream.balances_after[-1] == (6, 21)


def test_payments_out_of_order_within_the_window_are_put_back_in_order() -> None:
    _alice, bob, _channel_id, payments = _stream()
    for index in (2, 1, 3, 0, 5, 4):
        bob.apply(StreamPaymentReceived(payments[index]))
    assert [sequence for sequence, _ in _received(bob.events)] == [1, 2, 3, 4, 5, 6]


def test_duplicates_are_dropped_whether_applied_or_still_waiting() -> None:
    _alice, bob, _channel_id, payments = _stream()
    bob.apply(StreamPaymentReceived(payments[0]))
    assert bob.apply(StreamPaymentReceived(payments[0])) == (
        PaymentDuplicateDropped(payments[0].channel_id, 1),
    )
    bob.apply(StreamPaymentReceived(payments[2]))
    assert bob.apply(StreamPaymentReceived(payments[2])) == (
        PaymentDuplicateDropped(payments[2].channel_id, 3),
    )
    bob.apply(StreamPaymentReceived(payments[1]))
    assert [sequence for sequence, _ in _received(bob.events)] == [1, 2, 3]


def test_a_payment_beyond_the_window_is_refused() -> None:
    _alice, bob, _channel_id, payments = _stream(window=2)
    with pytest.raises(OutsideWindow):
        transition(bob.node, StreamPaymentReceived(payments[2]))


def test_a_payment_that_does_not_point_to_its_predecessor_is_refused() -> None:
    _alice, bob, _channel_id, payments = _stream()
    bob.apply(StreamPaymentReceived(payments[0]))
    unlinked = replace(payments[1], previous_hash=b"\x00" * 32)
    with pytest.raises(BrokenHashChain):
        transition(bob.node, StreamPaymentReceived(unlinked))
    # The link is checked even when the successor arrived first.
    bob.apply(StreamPaymentReceived(payments[2]))
    with pytest.raises(BrokenHashChain):
        transition(bob.node, StreamPaymentReceived(unlinked))


def test_a_payment_not_signed_by_the_payer_is_refused() -> None:
    _alice, bob, _channel_id, payments = _stream()
    forged = replace(payments[0], signature=bob.sign(payments[0].state))
    with pytest.raises(BadSignature):
        transition(bob.node, StreamPaymentReceived(forged))


def test_a_checkpoint_is_due_every_m_payments() -> None:
    _alice, bob, channel_id, payments = _stream(every=3)
    due = []
    for payment in payments[:3]:
        due += [e for e in bob.apply(StreamPaymentReceived(payment)) if isinstance(e, CheckpointDue)]
    assert due == [CheckpointDue(channel_id, payments[2].state)]


def test_a_checkpoint_is_due_after_the_timeout_even_with_few_payments() -> None:
    _alice, bob, channel_id, payments = _stream(every=100, timeout=60)
    bob.apply(StreamPaymentReceived(payments[0]))
    assert bob.apply(Tick(Timestamp(10_059))) == ()
    assert bob.apply(Tick(Timestamp(10_060))) == (CheckpointDue(channel_id, payments[0].state),)
    assert bob.apply(Tick(Timestamp(10_061))) == ()


def test_a_disputed_channel_asks_for_no_stream_checkpoint_that_would_end_the_challenge() -> None:
    _alice, bob, channel_id, payments = _stream(every=100, timeout=60)
    bob.apply(StreamPaymentReceived(payments[0]))
    bob.apply(RegisteredObserved(channel_id, bob.channel(channel_id).latest.state.version, Timestamp(20_000)))
    assert bob.apply(Tick(Timestamp(10_060))) == ()


def test_a_checkpoint_signed_once_a_dispute_runs_refutes_instead_of_ending_the_challenge() -> None:
    _alice, bob, channel_id, payments = _stream(every=3)
    for payment in payments[:3]:
        bob.apply(StreamPaymentReceived(payment))
    bob.apply(RegisteredObserved(channel_id, Version(0), Timestamp(20_000)))
    state = payments[2].state
    events = bob.apply(CheckpointSigned(channel_id, state.version, bob.sign(state)))
    signed = bob.channel(channel_id).latest
    assert signed.state == state
    assert RefuteRequired(channel_id, Version(0), signed) in events
    assert not any(isinstance(event, SendCheckpoint) for event in events)


def test_a_signed_checkpoint_becomes_the_both_signed_latest_state_on_both_sides() -> None:
    alice, bob, channel_id, payments = _stream(every=3)
    for payment in payments[:3]:
        bob.apply(StreamPaymentReceived(payment))
    state = payments[2].state
    events = bob.apply(CheckpointSigned(channel_id, state.version, bob.sign(state)))
    signed = bob.channel(channel_id).latest
    assert signed.state == state
    assert SendCheckpoint(channel_id, signed) in events
    assert StateAccepted(channel_id, signed) in events
    alice.apply(CountersignatureReceived(channel_id, state.version, bob.sign(state)))
    assert alice.channel(channel_id).latest == signed
    assert [p.sequence for p in alice.channel(channel_id).sending_stream.unacknowledged] == [4, 5, 6]
    # The stream goes on from where it was; the checkpoint does not break the hash chain.
    for payment in payments[3:]:
        bob.apply(StreamPaymentReceived(payment))
    assert _received(bob.events)[-1] == (6, 21)


def test_a_stream_closes_only_once_everything_it_carried_is_checkpointed() -> None:
    alice, bob, channel_id, payments = _stream(every=3)
    for payment in payments[:3]:
        bob.apply(StreamPaymentReceived(payment))
    with pytest.raises(UpdatePending):
        transition(bob.node, StreamClosed(channel_id))
    with pytest.raises(UpdatePending):
        pay(alice, bob, channel_id, 1)  # ordinary updates wait for the stream to end
    state = payments[2].state
    bob.apply(CheckpointSigned(channel_id, state.version, bob.sign(state)))
    bob.apply(StreamClosed(channel_id))
    assert bob.channel(channel_id).receiving_stream is None
    # Alice sent six; only three are countersigned, so her side stays open until the rest are.
    alice.apply(CountersignatureReceived(channel_id, state.version, bob.sign(state)))
    with pytest.raises(UpdatePending):
        transition(alice.node, StreamClosed(channel_id))
