"""Payments between banks: hold, co-sign, finalise with every signature, or void on timeout."""

import json

import pytest
from ledger_protocol_world import ASSETS, World, eur, key_for

from ledgers.protocol.catalogue import Hold
from ledgers.protocol.errors import (
    BadEntrySignature,
    BadRoute,
    BadTransition,
    CreditLimitExceeded,
    InsufficientFunds,
    MissingSignature,
    NotAccepted,
    PaymentExpired,
)
from ledgers.protocol.identifiers import correspondent_ledger_id
from ledgers.protocol.interbank import (
    ClockTick,
    CosignReceived,
    CosignRefused,
    CosignRequested,
    Finalise,
    HoldPlaced,
    HoldReleased,
    PaymentFinalised,
    PaymentPhase,
    PaymentProof,
    PaymentVoided,
    ReadyToFinalise,
    check_cosign,
    cosign_payment,
    payment_transition,
    plan_leg_entries,
    plan_route,
    sign_payment,
    start_outgoing_payment,
    verify_payment_proof,
    verify_void_notice,
)

A, B, C = "bank-a.test", "bank-b.test", "bank-c.test"
NOW = 1_700_000_000_000


def setup(credit_line=10_000):
    world = World()
    world.open_correspondents(credit_line=credit_line)
    alice, bob = world.open_ledger(A, "alice"), world.open_ledger(B, "bob")
    world.issue(alice, eur(A), 1000)
    return world, alice, bob


def instruction_for(alice, bob, *, via=(), amount=300, expires_at=NOW + 30_000):
    banks = (A, *via, B)
    return plan_route(
        reference="pay-1",
        sender=alice,
        recipient=bob,
        amount=amount,
        assets=[eur(bank) for bank in banks],
        created_at=NOW,
        expires_at=expires_at,
    )


def start(world, alice, instruction, *, now=NOW):
    return start_outgoing_payment(
        instruction=instruction,
        sender_key=key_for(alice).public_key,
        sender_signature=sign_payment(instruction, key=key_for(alice)),
        sender=world.ledgers[alice].view(),
        assets=ASSETS,
        now=now,
    )


def cosign_at(world, instruction, bank, *, now=NOW + 1):
    leg = instruction.legs[instruction.banks.index(bank)]
    hold = check_cosign(
        instruction=instruction,
        sender_key=key_for(instruction.sender).public_key,
        sender_signature=sign_payment(instruction, key=key_for(instruction.sender)),
        bank=bank,
        debit=world.ledgers[leg.debit].view(),
        credit_accepted=world.ledgers[leg.credit].accepted,
        assets=ASSETS,
        now=now,
    )
    world.ledgers[leg.debit].holds[hold.key] = hold
    return CosignReceived(
        bank=bank,
        key=key_for(bank).public_key,
        signature=cosign_payment(instruction, key=key_for(bank)),
        now=now,
    )


def apply_legs(world, proof):
    for index, bank in enumerate(proof.instruction.banks):
        leg = proof.instruction.legs[index]
        debit, credit = plan_leg_entries(
            proof=proof,
            bank=bank,
            debit_head=world.ledgers[leg.debit].head,
            credit_head=world.ledgers[leg.credit].head,
            time=world.now(),
        )
        world.save(world.check(debit, party_signs=False))
        world.save(world.check(credit, party_signs=False))


def run_to_final(world, alice, instruction):
    result = start(world, alice, instruction)
    for hold_placed in (e for e in result.events if isinstance(e, HoldPlaced)):
        world.ledgers[hold_placed.ledger].holds[hold_placed.hold.key] = hold_placed.hold
    state = result.state
    for bank in instruction.banks[1:]:
        state = payment_transition(state, cosign_at(world, instruction, bank), origin_key=key_for(A)).state
    result = payment_transition(state, Finalise(origin_key=key_for(A), now=NOW + 2), origin_key=key_for(A))
    return result


def test_starting_a_payment_holds_the_amount_and_asks_every_other_bank():
    world, alice, bob = setup()
    instruction = instruction_for(alice, bob, via=(C,))
    result = start(world, alice, instruction)
    assert result.state.phase is PaymentPhase.HELD
    assert result.events[0] == HoldPlaced(
        ledger=alice, hold=Hold(key=f"payment:{instruction.id}", asset=eur(A), amount=300)
    )
    assert [e.bank for e in result.events if isinstance(e, CosignRequested)] == [C, B]


def test_a_direct_payment_is_final_with_sender_bank_a_and_bank_b_signatures():
    world, alice, bob = setup()
    instruction = instruction_for(alice, bob)
    result = run_to_final(world, alice, instruction)
    assert result.state.phase is PaymentPhase.FINAL
    (finalised,) = result.events
    assert isinstance(finalised, PaymentFinalised)
    assert set(finalised.proof.bank_signatures) == {A, B}
    verify_payment_proof(
        finalised.proof, trusted_bank_keys={A: key_for(A).public_key, B: key_for(B).public_key}
    )


def test_a_final_proof_verifies_offline_from_its_json():
    world, alice, bob = setup()
    proof = run_to_final(world, alice, instruction_for(alice, bob)).state.proof
    document = json.loads(json.dumps(proof.to_json()))
    verify_payment_proof(PaymentProof.from_json(document))


def test_a_proof_missing_a_bank_signature_is_not_final():
    world, alice, bob = setup()
    proof = run_to_final(world, alice, instruction_for(alice, bob)).state.proof
    partial = PaymentProof(
        instruction=proof.instruction,
        sender_key=proof.sender_key,
        sender_signature=proof.sender_signature,
        bank_keys={A: proof.bank_keys[A]},
        bank_signatures={A: proof.bank_signatures[A]},
    )
    with pytest.raises(BadTransition):
        verify_payment_proof(partial)


def test_a_proof_with_a_changed_amount_does_not_verify():
    world, alice, bob = setup()
    document = run_to_final(world, alice, instruction_for(alice, bob)).state.proof.to_json()
    document["instruction"]["amount"] = "3000"
    with pytest.raises(BadEntrySignature):
        verify_payment_proof(PaymentProof.from_json(document))


def test_a_proof_signed_with_an_untrusted_bank_key_is_refused():
    world, alice, bob = setup()
    proof = run_to_final(world, alice, instruction_for(alice, bob)).state.proof
    with pytest.raises(BadRoute):
        verify_payment_proof(
            proof, trusted_bank_keys={A: key_for(A).public_key, B: key_for("impostor").public_key}
        )


def _kept_by_b(proof):
    """Bank B's copy when it co-signed: the sender's signature (checked then) and its own."""
    return PaymentProof(
        instruction=proof.instruction,
        sender_key=proof.sender_key,
        sender_signature=proof.sender_signature,
        bank_keys={B: proof.bank_keys[B]},
        bank_signatures={B: proof.bank_signatures[B]},
    )


def _with(proof, **changes):
    fields = {
        "instruction": proof.instruction,
        "sender_key": proof.sender_key,
        "sender_signature": proof.sender_signature,
        "bank_keys": proof.bank_keys,
        "bank_signatures": proof.bank_signatures,
    }
    return PaymentProof(**{**fields, **changes})


def _flipped(signature):
    return bytes([signature[0] ^ 1]) + signature[1:]


TRUSTED = {A: key_for(A).public_key, B: key_for(B).public_key}


def test_a_final_proof_checked_against_bank_bs_copy_verifies_and_a_forged_origin_signature_does_not():
    world, alice, bob = setup()
    proof = run_to_final(world, alice, instruction_for(alice, bob)).state.proof
    kept = _kept_by_b(proof)
    verify_payment_proof(proof, trusted_bank_keys=TRUSTED, verified_before=kept)
    forged = _with(proof, bank_signatures={**proof.bank_signatures, A: _flipped(proof.bank_signatures[A])})
    with pytest.raises(BadEntrySignature):
        verify_payment_proof(forged, trusted_bank_keys=TRUSTED, verified_before=kept)


def test_signatures_that_differ_from_the_kept_copy_are_verified_again():
    world, alice, bob = setup()
    proof = run_to_final(world, alice, instruction_for(alice, bob)).state.proof
    kept = _kept_by_b(proof)
    other_sender = _with(proof, sender_signature=_flipped(proof.sender_signature))
    with pytest.raises(BadEntrySignature):
        verify_payment_proof(other_sender, trusted_bank_keys=TRUSTED, verified_before=kept)
    other_b = _with(proof, bank_signatures={**proof.bank_signatures, B: _flipped(proof.bank_signatures[B])})
    with pytest.raises(BadEntrySignature):
        verify_payment_proof(other_b, trusted_bank_keys=TRUSTED, verified_before=kept)


def test_a_kept_copy_of_another_payment_vouches_for_nothing():
    world, alice, bob = setup()
    proof = run_to_final(world, alice, instruction_for(alice, bob)).state.proof
    other = run_to_final(world, alice, instruction_for(alice, bob, amount=200)).state.proof
    # Every signature of the other payment's proof is the real one, yet this proof's own must
    # verify: a copy with a different instruction id is ignored.
    tampered = _with(proof, sender_signature=other.sender_signature)
    with pytest.raises(BadEntrySignature):
        verify_payment_proof(tampered, trusted_bank_keys=TRUSTED, verified_before=_kept_by_b(other))


def test_settling_a_direct_payment_moves_claims_between_the_banks_accounts():
    world, alice, bob = setup()
    proof = run_to_final(world, alice, instruction_for(alice, bob)).state.proof
    apply_legs(world, proof)
    assert world.ledgers[alice].balances[eur(A)] == 700
    assert world.ledgers[alice].holds == {}  # the debit consumed the hold
    assert world.ledgers[correspondent_ledger_id(kept_by=A, for_bank=B)].balances[eur(A)] == 300
    assert world.ledgers[correspondent_ledger_id(kept_by=B, for_bank=A)].balances[eur(B)] == -300
    assert world.ledgers[bob].balances[eur(B)] == 300


def test_a_correspondent_path_settles_the_banks_accounts_at_the_correspondent():
    world, alice, bob = setup()
    result = run_to_final(world, alice, instruction_for(alice, bob, via=(C,)))
    assert set(result.state.proof.bank_signatures) == {A, B, C}
    apply_legs(world, result.state.proof)
    # Pic. 5/6: at the correspondent, A's account goes down and B's goes up.
    assert world.ledgers[correspondent_ledger_id(kept_by=C, for_bank=A)].balances[eur(C)] == -300
    assert world.ledgers[correspondent_ledger_id(kept_by=C, for_bank=B)].balances[eur(C)] == 300
    assert world.ledgers[bob].balances[eur(B)] == 300
    for row in world.ledgers.values():
        assert row.holds == {}


def test_the_origin_cannot_finalise_before_every_cosignature():
    world, alice, bob = setup()
    instruction = instruction_for(alice, bob, via=(C,))
    state = start(world, alice, instruction).state
    state = payment_transition(state, cosign_at(world, instruction, C), origin_key=key_for(A)).state
    with pytest.raises(BadTransition):
        payment_transition(state, Finalise(origin_key=key_for(A), now=NOW + 2), origin_key=key_for(A))


def test_the_last_cosignature_makes_the_payment_ready_to_finalise():
    world, alice, bob = setup()
    instruction = instruction_for(alice, bob)
    state = start(world, alice, instruction).state
    result = payment_transition(state, cosign_at(world, instruction, B), origin_key=key_for(A))
    assert result.events == (ReadyToFinalise(instruction.id),)


def test_a_duplicate_cosignature_changes_nothing():
    world, alice, bob = setup()
    instruction = instruction_for(alice, bob, via=(C,))
    state = start(world, alice, instruction).state
    change = cosign_at(world, instruction, C)
    once = payment_transition(state, change, origin_key=key_for(A))
    twice = payment_transition(once.state, change, origin_key=key_for(A))
    assert twice.state == once.state
    assert twice.events == ()


def test_a_forged_cosignature_is_refused():
    world, alice, bob = setup()
    instruction = instruction_for(alice, bob)
    state = start(world, alice, instruction).state
    forged = CosignReceived(bank=B, key=key_for(B).public_key, signature=bytes(64), now=NOW + 1)
    with pytest.raises(BadEntrySignature):
        payment_transition(state, forged, origin_key=key_for(A))


def test_a_timeout_voids_the_hold_with_a_signed_notice():
    world, alice, bob = setup()
    instruction = instruction_for(alice, bob)
    state = start(world, alice, instruction).state
    still = payment_transition(state, ClockTick(now=instruction.expires_at - 1), origin_key=key_for(A))
    assert still.state.phase is PaymentPhase.HELD
    assert still.events == ()
    result = payment_transition(state, ClockTick(now=instruction.expires_at), origin_key=key_for(A))
    assert result.state.phase is PaymentPhase.VOIDED
    released, voided = result.events
    assert released == HoldReleased(ledger=alice, key=f"payment:{instruction.id}")
    assert isinstance(voided, PaymentVoided)
    verify_void_notice(instruction, origin_key=key_for(A).public_key, signature=voided.void_signature)


def test_a_cosignature_after_the_deadline_voids_instead_of_finalising():
    world, alice, bob = setup()
    instruction = instruction_for(alice, bob)
    state = start(world, alice, instruction).state
    late = cosign_at(world, instruction, B)
    late = CosignReceived(bank=late.bank, key=late.key, signature=late.signature, now=instruction.expires_at)
    result = payment_transition(state, late, origin_key=key_for(A))
    assert result.state.phase is PaymentPhase.VOIDED
    with pytest.raises(PaymentExpired):
        payment_transition(result.state, late, origin_key=key_for(A))


def test_a_refusal_voids_the_payment_and_releases_the_hold():
    world, alice, bob = setup()
    state = start(world, alice, instruction_for(alice, bob)).state
    result = payment_transition(
        state, CosignRefused(bank=B, code="not_accepted", now=NOW + 1), origin_key=key_for(A)
    )
    assert result.state.phase is PaymentPhase.VOIDED
    assert "not_accepted" in result.state.void_reason
    assert isinstance(result.events[0], HoldReleased)


def test_a_final_payment_ignores_the_clock():
    world, alice, bob = setup()
    final = run_to_final(world, alice, instruction_for(alice, bob)).state
    result = payment_transition(final, ClockTick(now=NOW + 10**9), origin_key=key_for(A))
    assert result.state == final
    assert result.events == ()


def test_bank_a_refuses_to_hold_more_than_the_sender_has():
    world, alice, bob = setup()
    with pytest.raises(InsufficientFunds):
        start(world, alice, instruction_for(alice, bob, amount=1001))


def test_bank_a_refuses_a_sender_not_accepted():
    world, alice, bob = setup()
    world.ledgers[alice].accepted = False
    with pytest.raises(NotAccepted):
        start(world, alice, instruction_for(alice, bob))


def test_bank_a_refuses_an_expired_instruction():
    world, alice, bob = setup()
    instruction = instruction_for(alice, bob)
    with pytest.raises(PaymentExpired):
        start(world, alice, instruction, now=instruction.expires_at)


def test_bank_a_refuses_a_sender_signature_on_another_payment():
    world, alice, bob = setup()
    instruction, other = instruction_for(alice, bob), instruction_for(alice, bob, amount=1)
    with pytest.raises(BadEntrySignature):
        start_outgoing_payment(
            instruction=instruction,
            sender_key=key_for(alice).public_key,
            sender_signature=sign_payment(other, key=key_for(alice)),
            sender=world.ledgers[alice].view(),
            assets=ASSETS,
            now=NOW,
        )


def start_with_signer(world, alice, instruction, *, signer, now=NOW):
    return start_outgoing_payment(
        instruction=instruction,
        sender_key=key_for(alice).public_key,
        sender=world.ledgers[alice].view(),
        assets=ASSETS,
        now=now,
        sender_signer=signer,
    )


def test_a_custodial_sender_is_signed_for_after_the_checks_with_a_signature_that_verifies():
    world, alice, bob = setup()
    instruction = instruction_for(alice, bob)
    result = start_with_signer(world, alice, instruction, signer=key_for(alice))
    proof = result.state.proof
    assert proof.sender_signature == sign_payment(instruction, key=key_for(alice))
    # The same state as with the sender's own signature: bank B verifies it as it always does.
    assert result == start(world, alice, instruction)
    check_cosign(
        instruction=instruction,
        sender_key=proof.sender_key,
        sender_signature=proof.sender_signature,
        bank=B,
        debit=world.ledgers[correspondent_ledger_id(kept_by=B, for_bank=A)].view(),
        credit_accepted=True,
        assets=ASSETS,
        now=NOW + 1,
    )


def test_the_key_held_for_a_sender_must_be_the_senders_key():
    world, alice, bob = setup()
    with pytest.raises(BadEntrySignature):
        start_with_signer(world, alice, instruction_for(alice, bob), signer=key_for(bob))


def test_a_refused_payment_is_never_signed_for_the_custodial_sender():
    world, alice, bob = setup()
    with pytest.raises(InsufficientFunds):
        start_with_signer(world, alice, instruction_for(alice, bob, amount=5000), signer=key_for(alice))
    with pytest.raises(PaymentExpired):
        start_with_signer(world, alice, instruction_for(alice, bob), signer=key_for(alice), now=NOW + 30_000)


def test_a_payment_with_neither_a_sender_signature_nor_its_key_is_refused():
    world, alice, bob = setup()
    with pytest.raises(MissingSignature):
        start_with_signer(world, alice, instruction_for(alice, bob), signer=None)


def test_bank_b_refuses_a_recipient_not_accepted():
    world, alice, bob = setup()
    world.ledgers[bob].accepted = False
    with pytest.raises(NotAccepted):
        cosign_at(world, instruction_for(alice, bob), B)


def test_bank_b_enforces_its_credit_limit_to_bank_a():
    world, alice, bob = setup(credit_line=250)
    with pytest.raises(CreditLimitExceeded) as caught:
        cosign_at(world, instruction_for(alice, bob, amount=300), B)
    assert caught.value.code == "credit_limit_exceeded"
    cosign_at(world, instruction_for(alice, bob, amount=250), B)


def test_pending_payments_count_against_the_credit_limit():
    world, alice, bob = setup(credit_line=500)
    cosign_at(world, instruction_for(alice, bob, amount=300), B)
    second = plan_route(
        reference="pay-2",
        sender=alice,
        recipient=bob,
        amount=300,
        assets=[eur(A), eur(B)],
        created_at=NOW,
        expires_at=NOW + 30_000,
    )
    with pytest.raises(CreditLimitExceeded):
        cosign_at(world, second, B)


def test_bank_b_refuses_an_expired_payment():
    world, alice, bob = setup()
    instruction = instruction_for(alice, bob)
    with pytest.raises(PaymentExpired):
        cosign_at(world, instruction, B, now=instruction.expires_at)


@pytest.mark.parametrize(
    "mutate",
    [
        lambda legs: legs[:1],  # one leg is a transfer within a bank, not a payment between banks
        lambda legs: [legs[0], legs[0]],  # the same bank twice
        lambda legs: [legs[0], {**legs[1], "asset": "bank-b.test/USD"}],  # a different currency
        lambda legs: [legs[0], {**legs[1], "asset": "bank-a.test/EUR"}],  # not bank B's own IOU
        lambda legs: [legs[0], {**legs[1], "debit": "ubi:bank-b.test:mallory"}],  # not A's account at B
        lambda legs: [{**legs[0], "credit": "ubi:bank-a.test:mallory"}, legs[1]],  # not B's account at A
        lambda legs: [legs[0], {**legs[1], "credit": "ubi:bank-c.test:bob"}],  # a ledger B does not keep
    ],
)
def test_malformed_routes_are_refused(mutate):
    instruction = instruction_for("ubi:bank-a.test:alice", "ubi:bank-b.test:bob")
    document = instruction.to_json()
    document["legs"] = mutate(document["legs"])
    with pytest.raises(BadRoute):
        verify_payment_proof(
            PaymentProof(
                instruction=type(instruction).from_json(document),
                sender_key=key_for("x").public_key,
                sender_signature=bytes(64),
            )
        )


@pytest.mark.parametrize(
    "mutate",
    [
        lambda d: {**d, "type": "something-else"},
        lambda d: {**d, "sender_key": "zz"},
        lambda d: {**d, "banks": {"Not A Bank": {"key": "00" * 32, "signature": "00" * 64}}},
        lambda d: {**d, "banks": []},
        lambda d: {**d, "instruction": {**d["instruction"], "legs": "A to B"}},
    ],
)
def test_malformed_proof_json_is_refused_with_a_typed_error(mutate):
    world, alice, bob = setup()
    document = run_to_final(world, alice, instruction_for(alice, bob)).state.proof.to_json()
    with pytest.raises(BadRoute) as caught:
        PaymentProof.from_json(mutate(document))
    assert caught.value.code == "bad_route"
