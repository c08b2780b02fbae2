"""Hypothesis opens, uses and closes virtual channels Alice-Bob through Ingrid in random ways
and checks that Ingrid's money across her two ledger channels never changes."""

from __future__ import annotations

from channel_protocol_world import Party, deliver_countersignatures, open_channel, pay, propose, update
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, initialize, invariant, precondition, rule

from channels_app.protocol import proposals
from channels_app.protocol.channel_state import ChannelParams
from channels_app.protocol.state import ChannelKind
from channels_app.protocol.state_changes import SubChannelEvidence, SubChannelStateReceived
from channels_app.protocol.types import ETH

DEPOSIT = 1_000


class VirtualMachine(RuleBasedStateMachine):
    @initialize(bob_first=st.booleans())
    def open(self, bob_first: bool) -> None:
        self.alice, self.ingrid, self.bob = Party("alice"), Party("ingrid"), Party("bob")
        self.x = open_channel(self.alice, self.ingrid, {ETH: (DEPOSIT, DEPOSIT)}, nonce=1)
        if bob_first:
            self.y = open_channel(self.bob, self.ingrid, {ETH: (DEPOSIT, DEPOSIT)}, nonce=2)
        else:
            self.y = open_channel(self.ingrid, self.bob, {ETH: (DEPOSIT, DEPOSIT)}, nonce=2)
        self.virtual: ChannelParams | None = None
        self.nonce = 10

    def _free(self, party: Party, params: ChannelParams) -> int:
        channel = party.channel(params.channel_id)
        return channel.latest.state.allocation(ETH).balance(channel.our_index)

    @precondition(lambda self: self.virtual is None)
    @rule(alice_puts=st.integers(0, 300), bob_puts=st.integers(0, 300))
    def open_virtual(self, alice_puts: int, bob_puts: int) -> None:
        if alice_puts + bob_puts == 0:
            return
        if min(self._free(self.alice, self.x), self._free(self.ingrid, self.y)) < alice_puts:
            return
        if min(self._free(self.bob, self.y), self._free(self.ingrid, self.x)) < bob_puts:
            return
        self.nonce += 1
        v = open_channel(
            self.alice, self.bob, {ETH: (alice_puts, bob_puts)}, nonce=self.nonce, kind=ChannelKind.VIRTUAL
        )
        self.ingrid.apply(
            SubChannelStateReceived(SubChannelEvidence(v, self.alice.channel(v.channel_id).latest))
        )
        propose(
            self.alice,
            self.ingrid,
            self.x.channel_id,
            proposals.lock(self.alice.channel(self.x.channel_id), v, ETH, alice_puts, bob_puts),
        )
        events = propose(
            self.bob,
            self.ingrid,
            self.y.channel_id,
            proposals.lock(self.bob.channel(self.y.channel_id), v, ETH, bob_puts, alice_puts),
        )
        deliver_countersignatures(events, {self.x.channel_id: self.alice, self.y.channel_id: self.bob})
        self.virtual = v

    @precondition(lambda self: self.virtual is not None)
    @rule(alice_pays=st.booleans(), amount=st.integers(1, 200))
    def pay_inside(self, alice_pays: bool, amount: int) -> None:
        assert self.virtual is not None
        payer, payee = (self.alice, self.bob) if alice_pays else (self.bob, self.alice)
        channel = payer.channel(self.virtual.channel_id)
        if channel.latest.state.allocation(ETH).balance(channel.our_index) >= amount:
            pay(payer, payee, self.virtual.channel_id, amount)

    @precondition(lambda self: self.virtual is not None)
    @rule(alice_closes=st.booleans())
    def close_virtual(self, alice_closes: bool) -> None:
        assert self.virtual is not None
        v = self.virtual
        first, second = (self.alice, self.bob) if alice_closes else (self.bob, self.alice)
        update(first, second, v.channel_id, proposals.close(first.channel(v.channel_id)))
        final = self.alice.channel(v.channel_id).latest
        evidence = (SubChannelEvidence(v, final),)
        update(
            self.alice,
            self.ingrid,
            self.x.channel_id,
            proposals.release(self.alice.channel(self.x.channel_id), v, final.state),
            evidence,
        )
        update(
            self.bob,
            self.ingrid,
            self.y.channel_id,
            proposals.release(self.bob.channel(self.y.channel_id), v, final.state),
            evidence,
        )
        self.virtual = None

    @invariant()
    def ingrid_is_neutral(self) -> None:
        total = self._free(self.ingrid, self.x) + self._free(self.ingrid, self.y)
        if self.virtual is None:
            assert total == 2 * DEPOSIT
        else:
            # While it is open, what Ingrid locked equals what the virtual channel holds.
            assert (
                total + self.alice.channel(self.virtual.channel_id).latest.state.allocation(ETH).total
                == 2 * DEPOSIT
            )

    @invariant()
    def everyone_agrees_on_each_ledger_channel(self) -> None:
        assert self.alice.channel(self.x.channel_id).latest == self.ingrid.channel(self.x.channel_id).latest
        assert self.bob.channel(self.y.channel_id).latest == self.ingrid.channel(self.y.channel_id).latest

    @invariant()
    def alice_and_bob_keep_what_they_paid_each_other(self) -> None:
        alice_total = self._free(self.alice, self.x)
        bob_total = self._free(self.bob, self.y)
        if self.virtual is not None:
            v = self.alice.channel(self.virtual.channel_id).latest.state.allocation(ETH)
            alice_total, bob_total = alice_total + v.balance_a, bob_total + v.balance_b
        assert alice_total + bob_total == 2 * DEPOSIT


VirtualMachine.TestCase.settings = settings(
    max_examples=20, stateful_step_count=20, deadline=None, suppress_health_check=[HealthCheck.too_slow]
)
test_channel_virtual_machine = VirtualMachine.TestCase
