"""Every kind of bad input to the payments API: a 4xx with the rule's code and a sentence, and
nothing changed (no entry, no transfer, no hold, no balance moved, no height advanced)."""

from __future__ import annotations

import pytest

from ledgers import selectors, services
from ledgers.protocol.chain import next_entry, sign_entry
from ledgers.protocol.entries import SignedEntry
from settlement.counterparties.models import Counterparty
from settlement.protocol.signing import SigningKey
from tests.ledgers.ledger_shell_support import post_json, row_counts

URL = "/api/payments/"


def payment(alice, bob, eur, amount="1.00", **overrides):
    return {
        "idempotency_key": "k-1",
        "sender": alice.ubi,
        "recipient": bob.ubi,
        "asset": eur.uai,
        "amount": amount,
        **overrides,
    }


def refused(client, data, *, status, code, url=URL):
    before = row_counts()
    answer = post_json(client, url, data)
    assert answer.status_code == status, answer.content
    error = answer.json()["error"]
    assert error["code"] == code
    assert error["message"]
    assert row_counts() == before
    return error


@pytest.mark.parametrize(
    ("amount", "code"),
    [
        ("0", "bad_amount"),
        ("0.00", "bad_amount"),
        ("-1.00", "bad_amount"),
        ("1.005", "bad_amount"),
        ("1e3", "bad_amount"),
        (1.5, "bad_amount"),
        ("abc", "bad_amount"),
        (True, "bad_amount"),
        ("92233720368547758.08", "amount_overflow"),
        ("1" * 25, "amount_overflow"),
    ],
)
def test_a_bad_amount_is_refused_with_its_code_and_changes_nothing(
    operator_client, funded, make_party, eur, amount, code
):
    alice, bob = funded("10.00"), make_party()
    refused(operator_client, payment(alice, bob, eur, amount=amount), status=400, code=code)


def test_insufficient_funds_is_a_conflict_and_changes_nothing(operator_client, funded, make_party, eur):
    alice, bob = funded("10.00"), make_party()
    refused(operator_client, payment(alice, bob, eur, amount="10.01"), status=409, code="insufficient_funds")


def test_an_unknown_asset_is_refused(operator_client, funded, make_party, eur):
    alice, bob = funded("10.00"), make_party()
    data = payment(alice, bob, eur)
    data["asset"] = "bank-test.test/XYZ"
    refused(operator_client, data, status=400, code="unknown_asset")


def test_an_unknown_ledger_is_refused(operator_client, funded, eur):
    alice = funded("10.00")
    data = {**payment(alice, alice, eur), "recipient": "ubi:bank-test.test:nobody"}
    refused(operator_client, data, status=404, code="unknown_ledger")


@pytest.mark.parametrize("who", ["sender", "recipient"])
def test_a_counterparty_not_accepted_can_neither_pay_nor_be_paid(
    operator_client, funded, make_party, eur, who
):
    alice, bob = funded("10.00"), make_party()
    blocked = alice if who == "sender" else bob
    Counterparty.objects.filter(pk=blocked.counterparty.pk).update(kyc_status="NEEDS_INFO")
    refused(operator_client, payment(alice, bob, eur), status=409, code="not_accepted")


def test_opening_a_ledger_for_a_counterparty_not_accepted_is_refused(operator_client, node):
    from tests.ledgers.ledger_shell_support import make_counterparty

    counterparty, _ = make_counterparty("pending-pat", status="PROCESSING")
    Counterparty.objects.filter(pk=counterparty.pk).update(kyc_status="PROCESSING")
    refused(
        operator_client,
        {"name": "pat", "counterparty": counterparty.pk},
        status=409,
        code="counterparty_not_accepted",
        url="/api/ledgers/",
    )


def _self_custody_debit(alice, bob, eur, *, key=None, prev=None, amount="100"):
    ledger = selectors.ledger_get(ledger=alice.ubi)
    head = services.head_of(ledger)
    if prev is not None:
        from dataclasses import replace

        head = replace(head, last_hash=prev)
    entry = next_entry(
        head=head,
        kind="transfer",
        body={
            "transfer": "k-1",
            "asset": eur.uai,
            "amount": amount,
            "side": "debit",
            "counterparty": bob.ubi,
        },
        time=services.now_millis(),
    )
    signature = sign_entry(entry, key=key or alice.key)
    return SignedEntry(entry=entry, party_signature=signature, validator_signature=None).to_json()


def test_a_bad_signature_is_refused(operator_client, funded, make_party, eur):
    alice, bob = funded("10.00", custody="self"), make_party()
    signed = _self_custody_debit(alice, bob, eur, key=SigningKey.generate())
    refused(operator_client, payment(alice, bob, eur, signed_debit=signed), status=400, code="bad_signature")


def test_a_wrong_prev_is_refused(operator_client, funded, make_party, eur):
    alice, bob = funded("10.00", custody="self"), make_party()
    signed = _self_custody_debit(alice, bob, eur, prev=bytes(32))
    refused(operator_client, payment(alice, bob, eur, signed_debit=signed), status=409, code="wrong_prev")


def test_a_signed_entry_for_another_payment_is_refused(operator_client, funded, make_party, eur):
    alice, bob = funded("10.00", custody="self"), make_party()
    signed = _self_custody_debit(alice, bob, eur, amount="999")
    refused(operator_client, payment(alice, bob, eur, signed_debit=signed), status=400, code="bad_body")


def test_a_self_custody_sender_must_send_its_signed_debit(operator_client, funded, make_party, eur):
    alice, bob = funded("10.00", custody="self"), make_party()
    refused(operator_client, payment(alice, bob, eur), status=400, code="custody_mismatch")


def test_a_reused_idempotency_key_for_another_payment_is_refused(operator_client, funded, make_party, eur):
    alice, bob = funded("10.00"), make_party()
    assert post_json(operator_client, URL, payment(alice, bob, eur)).status_code == 201
    refused(
        operator_client, payment(alice, bob, eur, amount="2.00"), status=409, code="idempotency_key_reused"
    )


def test_one_bad_payment_in_a_batch_refuses_the_whole_batch(operator_client, funded, make_party, eur):
    alice, bob = funded("10.00"), make_party()
    good = payment(alice, bob, eur)
    bad = payment(alice, bob, eur, amount="50.00", idempotency_key="k-2")
    error = refused(
        operator_client,
        {"payments": [good, bad]},
        url="/api/payments/batch/",
        status=409,
        code="insufficient_funds",
    )
    assert error["message"].startswith("payment 1:")


def test_a_malformed_request_names_its_fields(operator_client, node):
    answer = post_json(operator_client, URL, {"sender": "x"})
    assert answer.status_code == 400
    assert {"idempotency_key", "recipient", "asset", "amount"} <= set(answer.json()["error"]["fields"])


def test_an_auditor_cannot_pay(client, make_user, funded, make_party, eur):
    client.force_login(make_user("aldo-auditor", "auditor"))
    alice, bob = funded("10.00"), make_party()
    before = row_counts()
    assert post_json(client, URL, payment(alice, bob, eur)).status_code == 403
    assert row_counts() == before
