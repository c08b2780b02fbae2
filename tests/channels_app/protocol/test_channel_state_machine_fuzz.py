"""Hypothesis drives two participants through random honest and dishonest exchanges (after
Raiden's raiden/tests/fuzz/test_state_changes.py) and checks after every step that money is
conserved, versions only grow, and every accepted state carries both valid signatures."""

from __future__ import annotations

from dataclasses import replace

from channel_protocol_world import DOMAIN, USD, Party, open_channel, pay, update
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, initialize, invariant, precondition, rule

from channels_app.protocol import proposals
from channels_app.protocol.channel_state import ChannelParams
from channels_app.protocol.eip712 import verify_state_signature
from channels_app.protocol.errors import BadSignature, ChannelError
from channels_app.protocol.state import ChannelKind
from channels_app.protocol.state_changes import CountersignatureReceived, ProposalReceived, UpdateProposed
from channels_app.protocol.transition import transition
from channels_app.protocol.types import ETH

ASSETS = (ETH, USD)


class ChannelMachine(RuleBasedStateMachine):
    @initialize()
    def open(self) -> None:
        self.alice, self.bob, self.mallory = Party("alice"), Party("bob"), Party("mallory")
        self.ledger = open_channel(self.alice, self.bob, {ETH: (1_000, 500), USD: (50, 50)})
        self.totals = {ETH: 1_500, USD: 100}
        self.nano: ChannelParams | None = None
        self.nonce = 10
        self.versions = {"alice": 0, "bob": 0}

    def _parties(self, alice_first: bool) -> tuple[Party, Party]:
        return (self.alice, self.bob) if alice_first else (self.bob, self.alice)

    # ------------------------------------------------------------ honest steps

    @rule(alice_pays=st.booleans(), asset=st.sampled_from(ASSETS), amount=st.integers(1, 400))
    def honest_payment(self, alice_pays: bool, asset: str, amount: int) -> None:
        payer, payee = self._parties(alice_pays)
        channel = payer.channel(self.ledger.channel_id)
        if channel.latest.state.allocation(asset).balance(channel.our_index) < amount:  # type: ignore[arg-type]
            return
        pay(payer, payee, self.ledger.channel_id, amount, asset)  # type: ignore[arg-type]

    @precondition(lambda self: self.nano is None)
    @rule(alice_first=st.booleans(), ours=st.integers(0, 30), theirs=st.integers(0, 30))
    def lock_nanocontract(self, alice_first: bool, ours: int, theirs: int) -> None:
        if ours + theirs == 0:
            return
        first, second = self._parties(alice_first)
        channel = first.channel(self.ledger.channel_id)
        eth = channel.latest.state.allocation(ETH)
        if eth.balance(channel.our_index) < ours or eth.balance(channel.their_index) < theirs:
            return
        self.nonce += 1
        nano = open_channel(
            first, second, {ETH: (ours, theirs)}, nonce=self.nonce, kind=ChannelKind.NANOCONTRACT
        )
        update(first, second, self.ledger.channel_id, proposals.lock(channel, nano, ETH, ours, theirs))
        self.nano = nano

    @precondition(lambda self: self.nano is not None)
    @rule(alice_pays=st.booleans(), amount=st.integers(1, 20))
    def nanocontract_payment(self, alice_pays: bool, amount: int) -> None:
        assert self.nano is not None
        payer, payee = self._parties(alice_pays)
        channel = payer.channel(self.nano.channel_id)
        if (
            channel.phase.value != "open"
            or channel.latest.state.allocation(ETH).balance(channel.our_index) < amount
        ):
            return
        pay(payer, payee, self.nano.channel_id, amount)

    @precondition(lambda self: self.nano is not None)
    @rule(alice_first=st.booleans())
    def release_nanocontract(self, alice_first: bool) -> None:
        assert self.nano is not None
        first, second = self._parties(alice_first)
        if first.channel(self.nano.channel_id).phase.value == "open":
            update(first, second, self.nano.channel_id, proposals.close(first.channel(self.nano.channel_id)))
        final = first.channel(self.nano.channel_id).latest.state
        update(
            first,
            second,
            self.ledger.channel_id,
            proposals.release(first.channel(self.ledger.channel_id), self.nano, final),
        )
        self.nano = None

    # ------------------------------------------------------------ dishonest steps

    @rule(
        alice_proposes=st.booleans(),
        attack=st.sampled_from(["version", "inflate", "deflate", "forged", "steal", "garbage"]),
        amount=st.integers(1, 10**30),
    )
    def dishonest_proposal_is_refused_and_changes_nothing(
        self, alice_proposes: bool, attack: str, amount: int
    ) -> None:
        proposer, receiver = self._parties(alice_proposes)
        channel = proposer.channel(self.ledger.channel_id)
        current = channel.latest.state
        eth = current.allocation(ETH)
        them = channel.their_index
        signer = proposer
        if attack == "version":
            state = replace(current.next(), version=current.version + 1 + amount % 5 + 1)
        elif attack == "inflate":
            state = current.next(
                allocations=[eth.with_balance(0, eth.balance_a + amount), current.allocation(USD)]
            )
        elif attack == "deflate":
            state = current.next(
                allocations=[
                    eth.with_balance(0, max(0, eth.balance_a - amount))
                    if eth.balance_a
                    else eth.with_balance(1, max(0, eth.balance_b - amount)),
                    current.allocation(USD),
                ]
            )
            if state.totals() == current.totals():
                return
        elif attack == "steal":
            taken = min(amount, eth.balance(them))
            if taken == 0:
                return
            stolen = eth.with_balance(them, eth.balance(them) - taken).with_balance(
                1 - them, eth.balance(1 - them) + taken
            )
            state = current.next(allocations=[stolen, current.allocation(USD)])
        else:
            state = proposals.close(channel)
            signer = self.mallory
        signature = signer.sign(state)
        if attack == "garbage":
            signature = bytes(65)
        before = receiver.node
        try:
            transition(
                receiver.node,
                ProposalReceived(self.ledger.channel_id, state, signature, receiver.sign(state)),
            )
        except ChannelError:
            pass
        else:
            raise AssertionError(f"a {attack} proposal was accepted")
        assert receiver.node is before

    @rule(alice_proposes=st.booleans())
    def forged_countersignature_is_refused(self, alice_proposes: bool) -> None:
        proposer, receiver = self._parties(alice_proposes)
        channel = proposer.channel(self.ledger.channel_id)
        if channel.latest.state.allocation(USD).balance(channel.our_index) < 1:
            return
        state = proposals.payment(channel, USD, 1)
        proposer.apply(UpdateProposed(self.ledger.channel_id, state, proposer.sign(state)))
        try:
            proposer.apply(
                CountersignatureReceived(self.ledger.channel_id, state.version, self.mallory.sign(state))
            )
        except BadSignature:
            pass
        else:
            raise AssertionError("a countersignature by a stranger was accepted")
        receiver.apply(
            ProposalReceived(self.ledger.channel_id, state, proposer.sign(state), receiver.sign(state))
        )
        proposer.apply(CountersignatureReceived(self.ledger.channel_id, state.version, receiver.sign(state)))

    # ------------------------------------------------------------ invariants

    @invariant()
    def money_is_conserved(self) -> None:
        for party in (self.alice, self.bob):
            assert party.channel(self.ledger.channel_id).latest.state.totals() == self.totals

    @invariant()
    def both_sides_agree_and_versions_only_grow(self) -> None:
        alice_latest = self.alice.channel(self.ledger.channel_id).latest
        assert alice_latest == self.bob.channel(self.ledger.channel_id).latest
        for name, party in (("alice", self.alice), ("bob", self.bob)):
            version = party.channel(self.ledger.channel_id).latest.state.version
            assert version >= self.versions[name]
            self.versions[name] = version

    @invariant()
    def every_accepted_state_carries_both_valid_signatures(self) -> None:
        channel_ids = [self.ledger.channel_id] + ([self.nano.channel_id] if self.nano else [])
        for channel_id in channel_ids:
            channel = self.alice.channel(channel_id)
            for participant, signature in zip(
                channel.params.participants, channel.latest.signatures, strict=True
            ):
                verify_state_signature(DOMAIN, channel.latest.state, participant, signature)

    @invariant()
    def a_nanocontract_distributes_exactly_what_is_locked_for_it(self) -> None:
        if self.nano is None:
            return
        ledger = self.alice.channel(self.ledger.channel_id).latest.state
        sub = ledger.sub_allocation(self.nano.channel_id)
        assert sub is not None
        assert self.alice.channel(self.nano.channel_id).latest.state.allocation(ETH).total == sub.amount


ChannelMachine.TestCase.settings = settings(
    max_examples=30,
    stateful_step_count=25,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow],
)
test_channel_state_machine = ChannelMachine.TestCase
