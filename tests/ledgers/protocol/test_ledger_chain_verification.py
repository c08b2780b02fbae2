"""An exported chain verifies link by link, and two copies are compared to their first divergence."""

import json

from ledger_protocol_world import ASSETS, World, eur, key_for

from ledgers.protocol.chain import compare_chains, verify_chain
from ledgers.protocol.entries import Entry, SignedEntry

A = "bank-a.test"


def busy_ledger():
    world = World()
    alice, bob = world.open_ledger(A, "alice"), world.open_ledger(A, "bob")
    world.issue(alice, eur(A), 1000)
    for amount in (100, 250, 5):
        world.append(
            alice,
            "transfer",
            {
                "transfer": f"t{amount}",
                "side": "debit",
                "asset": eur(A),
                "amount": str(amount),
                "counterparty": bob,
            },
        )
    world.append(alice, "redeem", {"asset": eur(A), "amount": "45", "reference": "w"})
    return world, alice


def verify(alice, entries):
    return verify_chain(
        entries,
        ledger=alice,
        party_key=key_for(alice).public_key,
        validator_key=key_for(A).public_key,
        assets=ASSETS,
    )


def exported(world, alice):
    return [
        SignedEntry.from_json(item)
        for item in json.loads(json.dumps([e.to_json() for e in world.ledgers[alice].entries]))
    ]


def test_an_exported_chain_verifies_and_recomputes_balances_and_head():
    world, alice = busy_ledger()
    report = verify(alice, exported(world, alice))
    assert report.ok, report.problem
    assert report.verified == 5
    assert report.head == world.ledgers[alice].head
    assert report.balances == {eur(A): 600}


def test_a_changed_body_is_caught_at_its_height():
    world, alice = busy_ledger()
    entries = exported(world, alice)
    tampered = Entry(**{**entries[2].entry.__dict__, "body": {**entries[2].entry.body, "amount": "1"}})
    entries[2] = SignedEntry(tampered, entries[2].party_signature, entries[2].validator_signature)
    report = verify(alice, entries)
    assert (report.problem.height, report.problem.code) == (2, "bad_signature")
    assert report.verified == 2


def test_a_removed_entry_is_caught_as_a_height_gap():
    world, alice = busy_ledger()
    entries = exported(world, alice)
    del entries[1]
    report = verify(alice, entries)
    assert (report.problem.height, report.problem.code) == (2, "wrong_height")


def test_an_entry_without_the_validator_signature_does_not_verify():
    world, alice = busy_ledger()
    entries = exported(world, alice)
    entries[3] = SignedEntry(entries[3].entry, entries[3].party_signature, None)
    assert verify(alice, entries).problem.code == "missing_signature"


def test_a_chain_signed_by_another_validator_does_not_verify():
    world, alice = busy_ledger()
    report = verify_chain(
        exported(world, alice),
        ledger=alice,
        party_key=key_for(alice).public_key,
        validator_key=key_for("bank-b.test").public_key,
        assets=ASSETS,
    )
    assert (report.problem.height, report.problem.code) == (0, "bad_signature")


def test_a_chain_resumes_from_a_known_head():
    world, alice = busy_ledger()
    entries = exported(world, alice)
    first = verify(alice, entries[:2])
    rest = verify_chain(
        entries[2:],
        ledger=alice,
        party_key=key_for(alice).public_key,
        validator_key=key_for(A).public_key,
        assets=ASSETS,
        start=first.head,
        start_balances=first.balances,
    )
    assert rest.ok
    assert rest.head == world.ledgers[alice].head


def test_identical_copies_do_not_diverge():
    world, alice = busy_ledger()
    assert compare_chains(exported(world, alice), exported(world, alice)) is None


def test_the_first_different_entry_is_reported():
    world, alice = busy_ledger()
    ours, theirs = exported(world, alice), exported(world, alice)
    changed = Entry(**{**theirs[3].entry.__dict__, "time": theirs[3].entry.time + 1})
    theirs[3] = SignedEntry(changed, theirs[3].party_signature, theirs[3].validator_signature)
    divergence = compare_chains(ours, theirs)
    assert (divergence.height, divergence.reason) == (3, "different_entry")


def test_a_copy_that_is_behind_is_reported_as_missing_entries():
    world, alice = busy_ledger()
    entries = exported(world, alice)
    assert compare_chains(entries[:3], entries).reason == "missing_in_first"
    assert compare_chains(entries, entries[:3]).height == 3


def test_different_signatures_on_the_same_entry_are_reported():
    world, alice = busy_ledger()
    ours, theirs = exported(world, alice), exported(world, alice)
    theirs[1] = SignedEntry(theirs[1].entry, None, theirs[1].validator_signature)
    assert compare_chains(ours, theirs).reason == "different_signatures"
