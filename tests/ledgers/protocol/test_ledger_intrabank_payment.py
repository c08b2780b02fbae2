import pytest
from hypothesis import given
from hypothesis import strategies as st
from ledger_protocol_world import ASSETS, World, eur

from ledgers.protocol.chain import sign_entry
from ledgers.protocol.entries import verify_encoded
from ledgers.protocol.errors import BadBody, BadEntrySignature, InsufficientFunds, NotAccepted
from ledgers.protocol.identifiers import make_ledger_id
from ledgers.protocol.intrabank import check_intrabank_payment, lock_order, plan_intrabank_payment
from settlement.protocol.signing import SigningKey

A = "bank-a.test"


def setup():
    world = World()
    alice, bob = world.open_ledger(A, "alice"), world.open_ledger(A, "bob")
    world.issue(alice, eur(A), 1000)
    return world, alice, bob


def plan(world, sender, recipient, amount):
    return plan_intrabank_payment(
        transfer_id="idem-1",
        sender_head=world.ledgers[sender].head,
        recipient_head=world.ledgers[recipient].head,
        asset=eur(A),
        amount=amount,
        time=world.now(),
    )


def check(world, the_plan, sender, recipient):
    return check_intrabank_payment(
        plan=the_plan,
        sender=world.ledgers[sender].view(),
        recipient=world.ledgers[recipient].view(),
        debit_signature=sign_entry(the_plan.debit, key=world.ledgers[sender].owner),
        assets=ASSETS,
    )


@given(st.lists(st.from_regex(r"[a-z0-9]{1,8}", fullmatch=True), min_size=1, max_size=6))
def test_lock_order_is_sorted_and_the_same_whichever_way_the_money_goes(names):
    ledgers = [make_ledger_id(namespace=A, name=name) for name in names]
    assert lock_order(ledgers) == tuple(sorted(set(ledgers)))
    assert lock_order(reversed(ledgers)) == lock_order(ledgers)


def test_a_payment_debits_the_sender_and_credits_the_recipient():
    world, alice, bob = setup()
    the_plan = plan(world, alice, bob, 250)
    assert the_plan.lock_order == (alice, bob)
    debit, credit = check(world, the_plan, alice, bob)
    assert debit.balances == {eur(A): 750}
    assert credit.balances == {eur(A): 250}
    assert credit.party_signature is None  # a credit needs only the bank's signature
    assert debit.entry.body["transfer"] == credit.entry.body["transfer"] == "idem-1"


def test_insufficient_funds_refuses_both_entries():
    world, alice, bob = setup()
    with pytest.raises(InsufficientFunds):
        check(world, plan(world, alice, bob, 1001), alice, bob)


def test_a_recipient_not_accepted_refuses_the_payment():
    world, alice, bob = setup()
    world.ledgers[bob].accepted = False
    with pytest.raises(NotAccepted):
        check(world, plan(world, alice, bob, 10), alice, bob)


def test_paying_oneself_or_another_bank_is_not_an_intrabank_payment():
    world, alice, _ = setup()
    carol = world.open_ledger("bank-b.test", "carol")
    with pytest.raises(BadBody):
        plan(world, alice, alice, 10)
    with pytest.raises(BadBody):
        plan(world, alice, carol, 10)


def test_a_custodial_debit_is_signed_after_the_checks_with_the_key_the_bank_keeps():
    world, alice, bob = setup()
    the_plan = plan(world, alice, bob, 250)
    owner = world.ledgers[alice].owner
    debit, _ = check_intrabank_payment(
        plan=the_plan,
        sender=world.ledgers[alice].view(),
        recipient=world.ledgers[bob].view(),
        debit_signature=None,
        debit_signer=owner,
        assets=ASSETS,
    )
    # The signature the owner would have made, and it verifies under the ledger's party key.
    assert debit.party_signature == sign_entry(the_plan.debit, key=owner)
    verify_encoded(owner.public_key, debit.encoded, debit.party_signature, role="party")


def custodial_payment(world, sender, recipient, amount, *, signer=None, validator_signer=None):
    """check_intrabank_payment for a custodial sender: the debit signed with ``signer`` (by
    default the key the bank keeps for the sender), co-signed with ``validator_signer`` if given."""
    return check_intrabank_payment(
        plan=plan(world, sender, recipient, amount),
        sender=world.ledgers[sender].view(),
        recipient=world.ledgers[recipient].view(),
        debit_signature=None,
        debit_signer=signer or world.ledgers[sender].owner,
        validator_signer=validator_signer,
        assets=ASSETS,
    )


def test_a_kept_key_that_is_not_the_ledgers_party_key_is_a_bad_signature_before_funds():
    world, alice, bob = setup()
    for amount in (10, 10_000):  # affordable or not: the key is refused first
        with pytest.raises(BadEntrySignature):
            custodial_payment(world, alice, bob, amount, signer=SigningKey.generate())


def test_a_refused_custodial_debit_is_not_signed():
    world, alice, bob = setup()
    with pytest.raises(InsufficientFunds):
        custodial_payment(world, alice, bob, 1001)


def test_the_bank_co_signs_both_entries_only_once_both_passed(monkeypatch):
    """With the bank's key (``validator_signer``) both entries come back co-signed, the debit
    signed by its owner too; and a payment whose credit is refused (after the debit passed) is
    signed by nobody: no signature is made before both entries passed their checks."""
    from ledgers.protocol import chain

    world, alice, bob = setup()
    bank = world.ledgers[alice].validator
    debit, credit = custodial_payment(world, alice, bob, 250, validator_signer=bank)
    verify_encoded(world.ledgers[alice].owner.public_key, debit.encoded, debit.party_signature, role="party")
    for appended in (debit, credit):
        verify_encoded(bank.public_key, appended.encoded, appended.validator_signature, role="validator")
    assert credit.party_signature is None

    signed: list[bytes] = []
    real_sign = chain.sign_encoded
    monkeypatch.setattr(
        chain, "sign_encoded", lambda key, encoded: signed.append(encoded.message) or real_sign(key, encoded)
    )
    world.ledgers[bob].accepted = False
    with pytest.raises(NotAccepted):
        custodial_payment(world, alice, bob, 250, validator_signer=bank)
    assert signed == []
