"""Each way an append can be refused: a typed error with a stable code, and nothing changed."""

import pytest
from ledger_protocol_world import ASSETS, World, eur, key_for

from ledgers.protocol.chain import check_append, cosign, next_entry, sign_entry
from ledgers.protocol.entries import Entry, Millis
from ledgers.protocol.errors import (
    AmountOverflow,
    BadAmount,
    BadBody,
    BadEntrySignature,
    BadTime,
    CreditLimitExceeded,
    InsufficientFunds,
    LedgerError,
    MissingSignature,
    NotAccepted,
    NotIssuer,
    UnknownAsset,
    UnknownKind,
    WrongHeight,
    WrongLedger,
    WrongPrev,
)

A = "bank-a.test"


@pytest.fixture
def world():
    world = World()
    world.open_ledger(A, "alice")
    world.open_ledger(A, "bob")
    world.issue("ubi:bank-a.test:alice", eur(A), 1000)
    return world


def debit(world, amount="100", **overrides):
    body = {
        "transfer": "t-1",
        "side": "debit",
        "asset": eur(A),
        "amount": amount,
        "counterparty": "ubi:bank-a.test:bob",
    }
    return world.entry("ubi:bank-a.test:alice", "transfer", {**body, **overrides})


def refused(world, entry, error, *, party_signature="sign", **kwargs):
    row = world.ledgers[entry.ledger]
    before = (row.head, dict(row.balances))
    signature = sign_entry(entry, key=row.owner) if party_signature == "sign" else party_signature
    arguments = {
        "head": row.head,
        "entry": entry,
        "party_key": row.owner.public_key,
        "party_signature": signature,
        "balances": row.balances,
        "holds": row.holds,
        "credit_lines": row.credit_lines,
        "party_accepted": row.accepted,
        "assets": ASSETS,
        **kwargs,
    }
    with pytest.raises(error) as caught:
        check_append(**arguments)
    assert (row.head, row.balances) == before
    assert isinstance(caught.value, LedgerError)
    assert caught.value.code == error.code
    assert str(caught.value)
    return caught.value


def test_a_valid_debit_is_accepted_and_moves_the_balance(world):
    appended = world.check(debit(world))
    assert appended.deltas == {eur(A): -100}
    assert appended.balances == {eur(A): 900}
    assert appended.head.next_height == 2
    assert appended.head.last_hash == appended.hash


def test_an_entry_for_another_ledger_is_refused(world):
    entry = debit(world)
    other = world.ledgers["ubi:bank-a.test:bob"]
    with pytest.raises(WrongLedger):
        check_append(
            head=other.head,
            entry=entry,
            party_key=other.owner.public_key,
            party_signature=None,
            balances={},
            assets=ASSETS,
        )


def test_a_skipped_height_is_refused(world):
    entry = debit(world)
    refused(world, Entry(**{**entry.__dict__, "height": entry.height + 1}), WrongHeight)


def test_a_replayed_height_is_refused(world):
    entry = debit(world)
    world.save(world.check(entry))
    refused(world, entry, WrongHeight)


def test_a_wrong_prev_is_refused(world):
    entry = debit(world)
    refused(world, Entry(**{**entry.__dict__, "prev": bytes(32)}), WrongPrev)


def test_time_cannot_go_backwards(world):
    entry = debit(world)
    refused(world, Entry(**{**entry.__dict__, "time": Millis(entry.time - 10)}), BadTime)


def test_time_cannot_be_far_in_the_future(world):
    entry = debit(world)
    refused(world, entry, BadTime, now=Millis(entry.time - 10 * 60 * 1000))


def test_a_party_not_accepted_gets_nothing_appended(world):
    world.ledgers["ubi:bank-a.test:alice"].accepted = False
    refused(world, debit(world), NotAccepted)


def test_an_unknown_kind_is_refused(world):
    refused(world, world.entry("ubi:bank-a.test:alice", "lottery", {}), UnknownKind)


def test_an_unknown_asset_is_refused(world):
    refused(world, debit(world, asset="bank-a.test/JPY"), UnknownAsset)


@pytest.mark.parametrize("amount", ["0", "-5", "1.5", "abc", 100, 100.0, None])
def test_non_positive_or_non_integer_amounts_are_refused(world, amount):
    # The body is checked before signatures, so even an unsignable float gets bad_amount.
    refused(world, debit(world, amount=amount), BadAmount, party_signature=bytes(64))


def test_an_overflowing_amount_is_refused(world):
    refused(world, debit(world, amount=str(2**63)), AmountOverflow)


def test_a_credit_that_would_overflow_the_balance_is_refused(world):
    row = world.ledgers["ubi:bank-a.test:alice"]
    entry = world.entry(
        "ubi:bank-a.test:alice", "issue", {"asset": eur(A), "amount": str(2**63 - 1), "reference": "r"}
    )
    with pytest.raises(AmountOverflow):
        check_append(
            head=row.head,
            entry=entry,
            party_key=row.owner.public_key,
            party_signature=None,
            balances=row.balances,
            assets=ASSETS,
        )


def test_issuing_beyond_the_maximum_outstanding_supply_is_refused(world):
    entry = world.entry(
        "ubi:bank-a.test:bob", "issue", {"asset": eur(A), "amount": str(2**63 - 1), "reference": "r"}
    )
    refused(world, entry, AmountOverflow, party_signature=None, outstanding={eur(A): 1000})


def test_a_body_with_missing_or_extra_fields_is_refused(world):
    refused(world, world.entry("ubi:bank-a.test:alice", "transfer", {"asset": eur(A)}), BadBody)


def test_a_transfer_to_a_ledger_of_another_bank_is_refused(world):
    refused(world, debit(world, counterparty="ubi:bank-b.test:bob"), BadBody)


def test_a_bad_party_signature_is_refused(world):
    error = refused(world, debit(world), BadEntrySignature, party_signature=key_for("mallory").public_key * 2)
    assert error.code == "bad_signature"


def test_a_signature_on_another_entry_is_refused(world):
    other = debit(world, amount="1")
    refused(
        world,
        debit(world),
        BadEntrySignature,
        party_signature=sign_entry(other, key=key_for("ubi:bank-a.test:alice")),
    )


def test_a_debit_without_the_party_signature_is_refused(world):
    refused(world, debit(world), MissingSignature, party_signature=None)


def test_a_bad_validator_signature_is_refused(world):
    row = world.ledgers["ubi:bank-a.test:alice"]
    refused(
        world,
        debit(world),
        BadEntrySignature,
        validator_key=row.validator.public_key,
        validator_signature=bytes(64),
    )


def test_more_than_the_balance_is_insufficient_funds(world):
    refused(world, debit(world, amount="1001"), InsufficientFunds)


def test_exactly_the_balance_can_be_spent(world):
    assert world.check(debit(world, amount="1000")).balances == {eur(A): 0}


def test_a_credit_line_allows_a_negative_balance_down_to_its_limit(world):
    world.ledgers["ubi:bank-a.test:alice"].credit_lines[eur(A)] = 500
    assert world.check(debit(world, amount="1500")).balances == {eur(A): -500}
    refused(world, debit(world, amount="1501"), CreditLimitExceeded)


def test_held_funds_cannot_be_spent(world):
    offer = {
        "maker_ledger": "ubi:bank-a.test:alice",
        "give_asset": eur(A),
        "give_amount": "800",
        "want_asset": "bank-b.test/USD",
        "want_amount": "900",
        "expires_at": 2_000_000_000_000,
        "reference": "o1",
    }
    world.append("ubi:bank-a.test:alice", "offer", {"offer": offer})
    refused(world, debit(world, amount="201"), InsufficientFunds)
    assert world.check(debit(world, amount="200")).balances == {eur(A): 800}


def test_only_the_issuer_bank_may_issue(world):
    entry = world.entry(
        "ubi:bank-a.test:bob", "issue", {"asset": eur("bank-b.test"), "amount": "5", "reference": "r"}
    )
    refused(world, entry, NotIssuer, party_signature=None)


def test_redeeming_more_than_held_is_insufficient_funds(world):
    entry = world.entry(
        "ubi:bank-a.test:alice", "redeem", {"asset": eur(A), "amount": "1001", "reference": "w"}
    )
    refused(world, entry, InsufficientFunds)


def test_the_validator_signs_only_a_checked_entry_and_it_verifies(world):
    appended = world.check(debit(world))
    row = world.ledgers["ubi:bank-a.test:alice"]
    again = check_append(
        head=row.head,
        entry=appended.entry,
        party_key=row.owner.public_key,
        party_signature=appended.party_signature,
        balances=row.balances,
        assets=ASSETS,
        validator_key=row.validator.public_key,
        validator_signature=appended.validator_signature,
    )
    assert again.hash == appended.hash
    assert cosign(again, validator_key=row.validator).validator_signature == appended.validator_signature


def test_next_entry_never_goes_back_in_time(world):
    head = world.ledgers["ubi:bank-a.test:alice"].head
    assert next_entry(head=head, kind="cancel", body={}, time=Millis(0)).time == head.last_time
