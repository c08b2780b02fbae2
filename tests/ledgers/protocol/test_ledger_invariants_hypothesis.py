"""Random sequences of operations across three banks (issue, redeem, transfer, payments between
banks direct or through a correspondent with refusals and timeouts, exchange trades): the books
always balance.

Per asset, the sum of every ledger's balance equals issued minus redeemed; no balance goes below
minus its credit line; a refused operation changes nothing; every chain verifies."""

from dataclasses import replace

from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st
from ledger_protocol_world import ASSETS, BANKS, World, eur, key_for

from ledgers.protocol.chain import verify_chain
from ledgers.protocol.errors import LedgerError, OfferAlreadyTaken
from ledgers.protocol.exchange import (
    Offer,
    OfferBook,
    SignedOffer,
    SignedTake,
    Take,
    accept_take,
    check_take,
    plan_take_entries,
    sign_offer,
    sign_take,
)
from ledgers.protocol.identifiers import make_ledger_id
from ledgers.protocol.interbank import (
    ClockTick,
    CosignReceived,
    Finalise,
    HoldPlaced,
    PaymentFinalised,
    check_cosign,
    cosign_payment,
    payment_transition,
    plan_leg_entries,
    plan_route,
    sign_payment,
    start_outgoing_payment,
)
from ledgers.protocol.intrabank import check_intrabank_payment, plan_intrabank_payment
from ledgers.protocol.invariants import supply_mismatches

CUSTOMERS = ("alice", "bob")
CREDIT_LINE = 500

customer = st.tuples(st.sampled_from(BANKS), st.sampled_from(CUSTOMERS))
amount = st.integers(min_value=1, max_value=700)
operation = st.one_of(
    st.tuples(st.just("issue"), customer, amount),
    st.tuples(st.just("redeem"), customer, amount),
    st.tuples(st.just("transfer"), st.sampled_from(BANKS), amount),
    st.tuples(st.just("pay"), customer, customer, amount, st.booleans(), st.booleans()),
    st.tuples(st.just("trade"), customer, customer, amount, amount, st.booleans()),
)


def snapshot(world):
    return {ledger: (row.head, dict(row.balances), dict(row.holds)) for ledger, row in world.ledgers.items()}


def ledger_of(bank, name):
    return make_ledger_id(namespace=bank, name=name)


def pay_between_banks(world, sender, recipient, amount, via_correspondent, times_out):
    (bank_from, _), (bank_to, _) = sender, recipient
    if bank_from == bank_to:
        return
    via = tuple(b for b in BANKS if b not in (bank_from, bank_to)) if via_correspondent else ()
    route = (bank_from, *via, bank_to)
    now = world.now()
    instruction = plan_route(
        reference=f"p{now}",
        sender=ledger_of(*sender),
        recipient=ledger_of(*recipient),
        amount=amount,
        assets=[eur(bank) for bank in route],
        created_at=now,
        expires_at=now + 1_000,
    )
    sender_key = key_for(instruction.sender)
    signature = sign_payment(instruction, key=sender_key)
    result = start_outgoing_payment(
        instruction=instruction,
        sender_key=sender_key.public_key,
        sender_signature=signature,
        sender=world.ledgers[instruction.sender].view(),
        assets=ASSETS,
        now=now,
    )
    for effect in result.events:
        if isinstance(effect, HoldPlaced):
            world.ledgers[effect.ledger].holds[effect.hold.key] = effect.hold
    state, cosigner_holds = result.state, []
    for index, bank in enumerate(route[1:], start=1):
        leg = instruction.legs[index]
        try:
            hold = check_cosign(
                instruction=instruction,
                sender_key=sender_key.public_key,
                sender_signature=signature,
                bank=bank,
                debit=world.ledgers[leg.debit].view(),
                credit_accepted=True,
                assets=ASSETS,
                now=now,
            )
        except LedgerError as error:
            event(f"co-sign refused: {error.code}")
            break
        world.ledgers[leg.debit].holds[hold.key] = hold
        cosigner_holds.append((leg.debit, hold.key))
        change = CosignReceived(
            bank=bank,
            key=key_for(bank).public_key,
            signature=cosign_payment(instruction, key=key_for(bank)),
            now=now,
        )
        state = payment_transition(state, change, origin_key=key_for(bank_from)).state
    if times_out or len(state.proof.bank_signatures) < len(route) - 1:
        payment_transition(state, ClockTick(now=instruction.expires_at), origin_key=key_for(bank_from))
        # The void notice releases every hold: A's by its own event, the co-signers' on the notice.
        del world.ledgers[instruction.sender].holds[f"payment:{instruction.id}"]
        for ledger, key in cosigner_holds:
            del world.ledgers[ledger].holds[key]
        return
    (finalised,) = payment_transition(
        state, Finalise(origin_key=key_for(bank_from), now=now), origin_key=key_for(bank_from)
    ).events
    assert isinstance(finalised, PaymentFinalised)
    for index, bank in enumerate(route):
        leg = instruction.legs[index]
        debit, credit = plan_leg_entries(
            proof=finalised.proof,
            bank=bank,
            debit_head=world.ledgers[leg.debit].head,
            credit_head=world.ledgers[leg.credit].head,
            time=world.now(),
        )
        # Holds were checked at co-sign time, so a leg of a final payment must always apply.
        world.save(world.check(debit, party_signs=False))
        world.save(world.check(credit, party_signs=False))
    event(f"paid through {len(route)} banks")


def trade(world, maker, taker, give, want, second_taker_tries):
    """Maker offers its bank's EUR for the taker's bank's EUR; both legs settle or neither."""
    if maker[0] == taker[0]:
        return
    maker_ledger, taker_ledger = ledger_of(*maker), ledger_of(*taker)
    now = world.now()
    offer = Offer(
        maker_ledger=maker_ledger,
        give_asset=eur(maker[0]),
        give_amount=give,
        want_asset=eur(taker[0]),
        want_amount=want,
        expires_at=now + 1_000,
        reference=f"o{now}",
    )
    world.append(maker_ledger, "offer", {"offer": offer.to_json()})  # may be refused: nothing happened
    signed_offer = SignedOffer(
        offer=offer,
        maker_key=key_for(maker_ledger).public_key,
        maker_signature=sign_offer(offer, key=key_for(maker_ledger)),
        bank_key=key_for(maker[0]).public_key,
        bank_signature=sign_offer(offer, key=key_for(maker[0])),
    )
    take = Take(offer_id=offer.id, taker_ledger=taker_ledger, created_at=now, reference=f"t{now}")
    try:
        hold = check_take(
            signed_offer=signed_offer,
            take=take,
            taker=world.ledgers[taker_ledger].view(),
            assets=ASSETS,
            now=now,
        )
    except LedgerError as error:
        event(f"take refused: {error.code}")
        world.append(maker_ledger, "cancel", {"offer": offer.id})
        assert world.ledgers[maker_ledger].holds.get(f"offer:{offer.id}") is None
        return
    world.ledgers[taker_ledger].holds[hold.key] = hold
    signed_take = SignedTake(
        take=take,
        taker_key=key_for(taker_ledger).public_key,
        taker_signature=sign_take(take, key=key_for(taker_ledger)),
        bank_key=key_for(taker[0]).public_key,
        bank_signature=sign_take(take, key=key_for(taker[0])),
    )
    book, accepted = accept_take(
        OfferBook(signed_offer=signed_offer),
        signed_take=signed_take,
        taker_bank_key=key_for(taker[0]).public_key,
        bank_key=key_for(maker[0]),
        now=now,
        settle_within=1_000,
    )
    if second_taker_tries:
        try:
            accept_take(
                book,
                signed_take=replace(signed_take, take=replace(take, reference="another taker")),
                taker_bank_key=key_for(taker[0]).public_key,
                bank_key=key_for(maker[0]),
                now=now,
                settle_within=1_000,
            )
            raise AssertionError("a second take was accepted")
        except OfferAlreadyTaken:
            event("second take refused")
    maker_entry, taker_entry = plan_take_entries(
        accepted,
        maker_head=world.ledgers[maker_ledger].head,
        taker_head=world.ledgers[taker_ledger].head,
        time=world.now(),
    )
    # Both sides were held before acceptance, so neither append can fail: both legs settle.
    world.save(world.check(maker_entry, party_signs=False))
    world.save(world.check(taker_entry, party_signs=False))
    assert f"offer:{offer.id}" not in world.ledgers[maker_ledger].holds
    assert f"take:{take.id}" not in world.ledgers[taker_ledger].holds
    event("traded")


def run(world, op):
    kind = op[0]
    if kind == "issue":
        _, who, value = op
        world.issue(ledger_of(*who), eur(who[0]), value)
    elif kind == "redeem":
        _, who, value = op
        world.append(
            ledger_of(*who), "redeem", {"asset": eur(who[0]), "amount": str(value), "reference": "w"}
        )
    elif kind == "transfer":
        _, bank, value = op
        sender, recipient = ledger_of(bank, "alice"), ledger_of(bank, "bob")
        plan = plan_intrabank_payment(
            transfer_id=f"t{world.clock}",
            sender_head=world.ledgers[sender].head,
            recipient_head=world.ledgers[recipient].head,
            asset=eur(bank),
            amount=value,
            time=world.now(),
        )
        from ledgers.protocol.chain import cosign, sign_entry

        debit, credit = check_intrabank_payment(
            plan=plan,
            sender=world.ledgers[sender].view(),
            recipient=world.ledgers[recipient].view(),
            debit_signature=sign_entry(plan.debit, key=world.ledgers[sender].owner),
            assets=ASSETS,
        )
        world.save(cosign(debit, validator_key=key_for(bank)))
        world.save(cosign(credit, validator_key=key_for(bank)))
    elif kind == "trade":
        _, maker, taker, give, want, second = op
        trade(world, maker, taker, give, want, second)
    else:
        _, sender, recipient, value, via, times_out = op
        pay_between_banks(world, sender, recipient, value, via, times_out)


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(operation, max_size=30))
def test_books_balance_after_any_sequence_of_operations(operations):
    world = World()
    world.open_correspondents(credit_line=CREDIT_LINE)
    for bank in BANKS:
        for name in CUSTOMERS:
            world.issue(world.open_ledger(bank, name), eur(bank), 1000)
    for op in operations:
        before = snapshot(world)
        supply_before = len(world.supply)
        try:
            run(world, op)
            event(f"{op[0]} applied")
        except LedgerError as error:
            event(f"{op[0]} refused: {error.code}")
            # A refused operation appends nothing, moves nothing and leaves no hold behind.
            assert snapshot(world) == before
            assert len(world.supply) == supply_before
        assert (
            supply_mismatches(balances=[row.balances for row in world.ledgers.values()], supply=world.supply)
            == ()
        )
        for row in world.ledgers.values():
            for asset, balance in row.balances.items():
                assert balance >= -row.credit_lines.get(asset, 0)
    for ledger, row in world.ledgers.items():
        report = verify_chain(
            row.entries,
            ledger=ledger,
            party_key=row.owner.public_key,
            validator_key=row.validator.public_key,
            assets=ASSETS,
        )
        assert report.ok, report.problem
        assert report.head == row.head
        assert {a: b for a, b in report.balances.items() if b} == {a: b for a, b in row.balances.items() if b}


def test_the_invariant_check_notices_money_created_from_nothing():
    world = World()
    alice = world.open_ledger("bank-a.test", "alice")
    world.issue(alice, eur("bank-a.test"), 10)
    world.ledgers[alice].balances[eur("bank-a.test")] += 1
    (mismatch,) = supply_mismatches(
        balances=[row.balances for row in world.ledgers.values()], supply=world.supply
    )
    assert (mismatch.balances, mismatch.outstanding) == (11, 10)
