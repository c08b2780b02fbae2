"""The payments API: a payment answers 201 with both entries; a replay answers 200 with the same
result and appends nothing; a batch settles many in one request; chains export and verify."""

from __future__ import annotations

from ledgers.models import LedgerEntry, Transfer
from tests.ledgers.ledger_shell_support import balance_of, post_json


def test_a_payment_and_its_replay(operator_client, funded, make_party, eur):
    alice, bob = funded("10.00"), make_party()
    data = {
        "idempotency_key": "inv-42",
        "sender": alice.ubi,
        "recipient": bob.ubi,
        "asset": eur.uai,
        "amount": "2.50",
    }
    first = post_json(operator_client, "/api/payments/", data)
    assert first.status_code == 201, first.content
    entries = LedgerEntry.objects.count()
    again = post_json(operator_client, "/api/payments/", data)
    assert again.status_code == 200
    assert again.json()["replayed"] is True
    assert {k: v for k, v in again.json().items() if k != "replayed"} == {
        k: v for k, v in first.json().items() if k != "replayed"
    }
    assert LedgerEntry.objects.count() == entries
    assert Transfer.objects.count() == 1
    assert balance_of(bob.ledger, eur) == 250


def test_a_batch_pays_many_in_one_request(operator_client, funded, make_party, eur):
    alice, bob = funded("10.00"), make_party()
    payments = [
        {
            "idempotency_key": f"b-{i}",
            "sender": alice.ubi,
            "recipient": bob.ubi,
            "asset": eur.uai,
            "amount": "0.10",
        }
        for i in range(25)
    ]
    answer = post_json(operator_client, "/api/payments/batch/", {"payments": payments})
    assert answer.status_code == 201, answer.content
    assert [item["debit"]["height"] for item in answer.json()] == list(range(1, 26))
    assert balance_of(bob.ledger, eur) == 250


def test_a_chain_exports_from_a_height_and_verifies(operator_client, funded, make_party, eur):
    alice, bob = funded("10.00"), make_party()
    for i in range(3):
        post_json(
            operator_client,
            "/api/payments/",
            {
                "idempotency_key": f"e-{i}",
                "sender": alice.ubi,
                "recipient": bob.ubi,
                "asset": eur.uai,
                "amount": "1.00",
            },
        )
    exported = operator_client.get(f"/api/ledgers/{alice.ubi}/entries?from=2").json()
    assert [item["entry"]["height"] for item in exported] == [2, 3]
    assert (
        exported[0]["entry"]["prev"]
        == operator_client.get(f"/api/ledgers/{alice.ubi}/entries?from=1").json()[0]["hash"]
    )
    detail = operator_client.get(f"/api/ledgers/{alice.ledger.pk}/").json()
    assert detail["next_height"] == 4
    assert detail["balances"] == [{"asset": eur.uai, "amount": "700", "display": "7.00", "credit_line": "0"}]
    assert operator_client.get(f"/api/ledgers/{alice.ubi}/verify/").json()["ok"] is True


def test_the_openapi_schema_describes_the_ledger_api(operator_client, node):
    schema = operator_client.get("/api/schema/?format=json").json()
    for path in (
        "/api/payments/",
        "/api/payments/batch/",
        "/api/ledgers/{ledger}/entries",
        "/api/fraud-proofs/",
    ):
        assert path in schema["paths"]
