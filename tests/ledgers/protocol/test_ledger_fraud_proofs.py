"""Fraud proofs are JSON documents that verify offline, and only real fraud verifies."""

import json

import pytest
from ledger_protocol_trade import B, full_trade, settle_maker, settle_taker
from ledger_protocol_world import World, eur, key_for

from ledgers.protocol.chain import check_append, cosign, sign_entry
from ledgers.protocol.entries import SignedEntry
from ledgers.protocol.fraud import equivocation_proof, unapplied_take_proof, verify_fraud_proof

A = "bank-a.test"


def two_entries_at_one_height():
    world = World()
    alice, bob, carol = (world.open_ledger(A, name) for name in ("alice", "bob", "carol"))
    world.issue(alice, eur(A), 100)
    signed = []
    for recipient in (bob, carol):
        entry = world.entry(
            alice,
            "transfer",
            {
                "transfer": f"t-{recipient}",
                "side": "debit",
                "asset": eur(A),
                "amount": "100",
                "counterparty": recipient,
            },
        )
        signed.append(world.check(entry).signed())  # both checked against the same head: a fork
    return world, signed


def roundtrip(document):
    return json.loads(json.dumps(document))


def test_two_validator_signed_entries_at_one_height_prove_equivocation():
    _, (first, second) = two_entries_at_one_height()
    verdict = verify_fraud_proof(
        roundtrip(equivocation_proof(validator_key=key_for(A).public_key, first=first, second=second))
    )
    assert verdict.proven, verdict.reason
    assert verdict.accused_key == key_for(A).public_key.hex()
    assert verdict.kind == "ledger-equivocation"


def test_the_same_entry_twice_is_not_equivocation():
    _, (first, _) = two_entries_at_one_height()
    verdict = verify_fraud_proof(
        equivocation_proof(validator_key=key_for(A).public_key, first=first, second=first)
    )
    assert not verdict.proven
    assert verdict.code == "bad_fraud_proof"


def test_entries_at_different_heights_are_not_equivocation():
    world, (first, _) = two_entries_at_one_height()
    world.save(world.check(first.entry))
    later = world.check(world.entry(first.entry.ledger, "cancel", {"offer": "0" * 64})).signed()
    verdict = verify_fraud_proof(
        equivocation_proof(validator_key=key_for(A).public_key, first=first, second=later)
    )
    assert not verdict.proven


def test_equivocation_cannot_be_pinned_on_another_key():
    _, (first, second) = two_entries_at_one_height()
    verdict = verify_fraud_proof(
        equivocation_proof(validator_key=key_for(B).public_key, first=first, second=second)
    )
    assert not verdict.proven
    assert verdict.code == "bad_signature"


def test_entries_signed_only_by_the_party_are_not_the_validators_fraud():
    _, (first, second) = two_entries_at_one_height()
    unsigned = SignedEntry(
        entry=second.entry, party_signature=second.party_signature, validator_signature=None
    )
    assert not verify_fraud_proof(
        equivocation_proof(validator_key=key_for(A).public_key, first=first, second=unsigned)
    ).proven


@pytest.mark.parametrize(
    "document", [None, [], {}, {"type": "ledger-equivocation"}, {"type": "x", "validator_key": "00" * 32}]
)
def test_garbage_is_never_a_proof_and_never_raises(document):
    assert not verify_fraud_proof(document).proven


def taker_ledger_after_deadline(world, accepted, *, apply):
    bob = accepted.signed_take.take.taker_ledger
    if apply:
        settle_taker(world, accepted)
    world.clock = accepted.settle_by + 1
    world.issue(bob, "bank-b.test/USD", 1)  # the bank keeps signing on Bob's ledger after the deadline
    return world.ledgers[bob].entries


def test_an_accepted_take_never_applied_by_the_takers_bank_is_proven():
    world, _alice, _bob, _, accepted = full_trade()
    settle_maker(world, accepted)
    segment = taker_ledger_after_deadline(world, accepted, apply=False)
    proof = unapplied_take_proof(
        accepted=accepted, side="taker", validator_key=key_for(B).public_key, segment=segment
    )
    verdict = verify_fraud_proof(roundtrip(proof))
    assert verdict.proven, verdict.reason
    assert verdict.accused_key == key_for(B).public_key.hex()


def test_an_applied_take_is_not_fraud():
    world, _alice, _bob, _, accepted = full_trade()
    segment = taker_ledger_after_deadline(world, accepted, apply=True)
    proof = unapplied_take_proof(
        accepted=accepted, side="taker", validator_key=key_for(B).public_key, segment=segment
    )
    verdict = verify_fraud_proof(proof)
    assert not verdict.proven
    assert "applied" in verdict.reason


def test_a_segment_that_stops_before_the_deadline_proves_nothing():
    world, _alice, bob, _, accepted = full_trade()
    segment = world.ledgers[bob].entries
    proof = unapplied_take_proof(
        accepted=accepted, side="taker", validator_key=key_for(B).public_key, segment=segment
    )
    assert not verify_fraud_proof(proof).proven


def test_a_segment_with_a_gap_proves_nothing():
    world, _alice, bob, _, accepted = full_trade()
    settle_taker(world, accepted)
    world.clock = accepted.settle_by + 1
    world.issue(bob, "bank-b.test/USD", 1)
    entries = world.ledgers[bob].entries
    without_the_take = [entries[0], entries[2]]  # hiding the entry that applied it
    proof = unapplied_take_proof(
        accepted=accepted, side="taker", validator_key=key_for(B).public_key, segment=without_the_take
    )
    assert not verify_fraud_proof(proof).proven


def test_an_unapplied_take_cannot_be_pinned_on_the_other_bank():
    world, _alice, _bob, _, accepted = full_trade()
    segment = taker_ledger_after_deadline(world, accepted, apply=False)
    proof = unapplied_take_proof(
        accepted=accepted, side="taker", validator_key=key_for(A).public_key, segment=segment
    )
    assert not verify_fraud_proof(proof).proven


def test_a_forged_acceptance_proves_nothing():
    world, _alice, _bob, _, accepted = full_trade()
    segment = taker_ledger_after_deadline(world, accepted, apply=False)
    document = unapplied_take_proof(
        accepted=accepted, side="taker", validator_key=key_for(B).public_key, segment=segment
    )
    document["accepted"]["settle_by"] = accepted.settle_by - 5_000
    assert not verify_fraud_proof(document).proven


def test_a_validator_signature_made_by_check_append_matches_what_the_proof_checks():
    # The proof verifies the same bytes the append path signs; guard against the two drifting.
    world = World()
    alice = world.open_ledger(A, "alice")
    entry = world.entry(alice, "issue", {"asset": eur(A), "amount": "1", "reference": "r"})
    row = world.ledgers[alice]
    appended = cosign(
        check_append(
            head=row.head,
            entry=entry,
            party_key=row.owner.public_key,
            party_signature=sign_entry(entry, key=row.owner),
            balances={},
            assets={eur(A): world_asset()},
        ),
        validator_key=row.validator,
    )
    verdict = verify_fraud_proof(
        equivocation_proof(
            validator_key=row.validator.public_key, first=appended.signed(), second=appended.signed()
        )
    )
    assert (
        verdict.code == "bad_fraud_proof"
    )  # same entry: the signatures verified, then refused as not a fork


def world_asset():
    from ledger_protocol_world import ASSETS

    return ASSETS[eur(A)]


def test_an_unapplied_take_on_the_makers_side_is_proven_against_the_makers_bank():
    world, alice, _bob, _, accepted = full_trade()
    settle_taker(world, accepted)  # the taker's bank did its part; the maker's bank did not
    world.clock = accepted.settle_by + 1
    world.issue(alice, eur(A), 1)
    proof = unapplied_take_proof(
        accepted=accepted,
        side="maker",
        validator_key=key_for(A).public_key,
        segment=world.ledgers[alice].entries,
    )
    verdict = verify_fraud_proof(roundtrip(proof))
    assert verdict.proven, verdict.reason
    assert verdict.accused_key == key_for(A).public_key.hex()


def final_payment_and_void():
    from ledgers.protocol.interbank import PaymentProof, plan_route, sign_payment, sign_void_notice

    instruction = plan_route(
        reference="p",
        sender="ubi:bank-a.test:alice",
        recipient="ubi:bank-b.test:bob",
        amount=5,
        assets=["bank-a.test/EUR", "bank-b.test/EUR"],
        created_at=1,
        expires_at=2,
    )
    alice = key_for("ubi:bank-a.test:alice")
    proof = PaymentProof(
        instruction=instruction,
        sender_key=alice.public_key,
        sender_signature=sign_payment(instruction, key=alice),
    )
    for bank in (B, A):
        proof = proof.with_bank_signature(
            bank=bank, key=key_for(bank).public_key, signature=sign_payment(instruction, key=key_for(bank))
        )
    return proof, sign_void_notice(instruction, key=key_for(A))


def test_a_payment_signed_both_final_and_void_by_its_origin_bank_is_proven():
    from ledgers.protocol.fraud import voided_and_final_proof

    proof, void_signature = final_payment_and_void()
    verdict = verify_fraud_proof(
        roundtrip(voided_and_final_proof(proof=proof, void_signature=void_signature))
    )
    assert verdict.proven, verdict.reason
    assert verdict.accused_key == key_for(A).public_key.hex()


def test_a_void_notice_signed_by_someone_else_proves_nothing():
    from ledgers.protocol.fraud import voided_and_final_proof
    from ledgers.protocol.interbank import sign_void_notice

    proof, _ = final_payment_and_void()
    forged = sign_void_notice(proof.instruction, key=key_for(B))
    assert not verify_fraud_proof(voided_and_final_proof(proof=proof, void_signature=forged)).proven
