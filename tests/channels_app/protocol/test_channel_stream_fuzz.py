"""Hypothesis delivers a micro-payment stream in any order, with duplicates and clock ticks, and
checks that the receiver applies exactly the payments in sequence, with the right balance after
each, never buffers beyond its window, and checkpoints every m payments."""

from __future__ import annotations

from channel_protocol_world import DOMAIN, Party, open_channel
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, initialize, invariant, precondition, rule

from channels_app.protocol import proposals
from channels_app.protocol.errors import OutsideWindow
from channels_app.protocol.events import CheckpointDue, PaymentReceived
from channels_app.protocol.state import StreamPayment
from channels_app.protocol.state_changes import (
    CheckpointSigned,
    CountersignatureReceived,
    StreamOpened,
    StreamPaymentReceived,
    StreamPaymentSent,
    Tick,
)
from channels_app.protocol.types import ETH, Timestamp

WINDOW, EVERY, TIMEOUT = 4, 5, 30


class StreamMachine(RuleBasedStateMachine):
    @initialize()
    def open(self) -> None:
        self.alice, self.bob = Party("alice"), Party("bob")
        self.params = open_channel(self.alice, self.bob, {ETH: (10_000, 0)})
        self.now = 1_000
        for party in (self.alice, self.bob):
            party.apply(Tick(Timestamp(self.now)))
            party.apply(StreamOpened(self.params.channel_id, self.alice.address, WINDOW, EVERY, TIMEOUT))
        self.sent: list[StreamPayment] = []
        self.applied: list[tuple[int, int]] = []
        self.checkpoint_due = False

    @property
    def stream(self):
        return self.bob.channel(self.params.channel_id).receiving_stream

    def _record(self, events) -> None:
        for event in events:
            if isinstance(event, PaymentReceived):
                self.applied.append((event.sequence, event.balance_after))
            if isinstance(event, CheckpointDue):
                self.checkpoint_due = True

    @precondition(lambda self: len(self.sent) < 40)
    @rule(amount=st.integers(1, 50))
    def alice_pays(self, amount: int) -> None:
        payment = proposals.stream_payment(
            self.alice.channel(self.params.channel_id), ETH, amount, self.alice.key, DOMAIN
        )
        self.alice.apply(StreamPaymentSent(payment))
        self.sent.append(payment)

    @precondition(lambda self: self.sent)
    @rule(data=st.data())
    def deliver_any(self, data: st.DataObject) -> None:
        payment = data.draw(st.sampled_from(self.sent))
        try:
            self._record(self.bob.apply(StreamPaymentReceived(payment)))
        except OutsideWindow:
            assert payment.sequence > self.stream.last_sequence + WINDOW

    @rule(seconds=st.integers(1, 20))
    def time_passes(self, seconds: int) -> None:
        self.now += seconds
        self._record(self.bob.apply(Tick(Timestamp(self.now))))

    @precondition(lambda self: self.checkpoint_due)
    @rule()
    def bob_signs_the_checkpoint(self) -> None:
        payment = self.stream.last_payment
        self.bob.apply(
            CheckpointSigned(self.params.channel_id, payment.state.version, self.bob.sign(payment.state))
        )
        self.alice.apply(
            CountersignatureReceived(
                self.params.channel_id, payment.state.version, self.bob.sign(payment.state)
            )
        )
        self.checkpoint_due = False

    @invariant()
    def payments_are_applied_once_and_in_order_with_the_balance_after_each(self) -> None:
        assert [sequence for sequence, _ in self.applied] == list(range(1, len(self.applied) + 1))
        running = 0
        for (sequence, balance), payment in zip(self.applied, self.sent, strict=False):
            running += payment.amount
            assert payment.sequence == sequence
            assert balance == running

    @invariant()
    def the_buffer_stays_inside_the_window(self) -> None:
        stream = self.stream
        assert all(stream.last_sequence < s <= stream.last_sequence + WINDOW for s in stream.buffer)

    @invariant()
    def a_checkpoint_is_asked_for_by_m_payments(self) -> None:
        assert self.stream.since_checkpoint < EVERY or self.checkpoint_due

    @invariant()
    def both_sides_hold_the_same_both_signed_state(self) -> None:
        channel = self.params.channel_id
        assert self.alice.channel(channel).latest == self.bob.channel(channel).latest
        assert self.bob.channel(channel).latest.state.totals() == {ETH: 10_000}


StreamMachine.TestCase.settings = settings(
    max_examples=25, stateful_step_count=40, deadline=None, suppress_health_check=[HealthCheck.too_slow]
)
test_channel_stream_machine = StreamMachine.TestCase
