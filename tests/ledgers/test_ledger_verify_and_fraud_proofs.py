"""`verify_ledger` replays a chain and notices tampering; a party's exported copy is compared
with the bank's; an equivocation (two entries the validator signed at one height) is kept as a
fraud proof that `python -m settlement.verify` checks offline."""

from __future__ import annotations

import json
import subprocess
import sys
from dataclasses import replace
from io import StringIO
from pathlib import Path

import pytest
from django.core.management import CommandError, call_command

from ledgers import selectors, services
from ledgers.models import FraudProof, LedgerEntry
from ledgers.services import PaymentRequest
from tests.ledgers.ledger_shell_support import post_json

REPO = Path(__file__).resolve().parents[2]


def _pay(alice, bob, eur, count=3):
    for index in range(count):
        services.payment_intrabank(
            request=PaymentRequest(
                idempotency_key=f"v-{index}",
                sender=alice.ubi,
                recipient=bob.ubi,
                asset=eur.uai,
                amount="1.00",
            )
        )


def test_verify_ledger_accepts_an_honest_chain_and_a_matching_copy(
    funded, make_party, eur, operator_client, tmp_path
):
    alice, bob = funded("10.00"), make_party()
    _pay(alice, bob, eur)
    copy = tmp_path / "copy.json"
    copy.write_text(operator_client.get(f"/api/ledgers/{alice.ubi}/entries?from=1").content.decode())
    out = StringIO()
    call_command("verify_ledger", alice.ubi, "--against", str(copy), stdout=out)
    assert "4 entries verify" in out.getvalue()
    assert "matches the bank's" in out.getvalue()


def test_verify_ledger_notices_an_entry_changed_in_the_database(funded, make_party, eur):
    alice, bob = funded("10.00"), make_party()
    _pay(alice, bob, eur)
    row = LedgerEntry.objects.get(ledger=alice.ledger, height=2)
    LedgerEntry.objects.filter(pk=row.pk).update(body={**row.body, "amount": "1"})
    with pytest.raises(CommandError, match="height 2"):
        call_command("verify_ledger", str(alice.ledger.pk), stdout=StringIO())


def test_verify_ledger_notices_a_copy_that_differs(funded, make_party, eur, operator_client, tmp_path):
    alice, bob = funded("10.00"), make_party()
    _pay(alice, bob, eur)
    exported = operator_client.get(f"/api/ledgers/{alice.ubi}/entries").json()
    exported[2]["entry"]["body"]["amount"] = "99"
    copy = tmp_path / "copy.json"
    copy.write_text(json.dumps(exported))
    with pytest.raises(CommandError, match="height 2: different_entry"):
        call_command("verify_ledger", alice.ubi, "--against", str(copy), stdout=StringIO())


def _equivocation(alice):
    ledger = selectors.ledger_get(ledger=alice.ubi)
    (honest,) = selectors.signed_entries(ledger=ledger, from_height=0)
    other_entry = replace(honest.entry, body={**honest.entry.body, "reference": "a second history"})
    from ledgers.protocol.chain import sign_entry

    other = replace(
        honest, entry=other_entry, validator_signature=sign_entry(other_entry, key=services.bank_key())
    )
    return services.equivocation_document(
        validator_key=services.bank_key().public_key, first=honest, second=other
    )


def test_an_equivocation_is_kept_exported_and_verified_offline(funded, operator_client, tmp_path):
    alice = funded("10.00")
    document = _equivocation(alice)
    answer = post_json(operator_client, "/api/fraud-proofs/", {"document": document})
    assert answer.status_code == 201, answer.content
    exported = operator_client.get("/api/fraud-proofs/").json()[0]["document"]
    path = tmp_path / "proof.json"
    path.write_text(json.dumps(exported))
    run = subprocess.run(
        [sys.executable, "-m", "settlement.verify", str(path)],
        cwd=REPO,
        capture_output=True,
        text=True,
        check=False,
    )
    assert run.returncode == 0, run.stdout + run.stderr
    assert run.stdout.startswith("VALID ledger-equivocation")
    exported["second"]["validator_signature"] = exported["first"]["validator_signature"]
    path.write_text(json.dumps(exported))
    run = subprocess.run(
        [sys.executable, "-m", "settlement.verify", str(path)],
        cwd=REPO,
        capture_output=True,
        text=True,
        check=False,
    )
    assert run.returncode == 1
    assert run.stdout.startswith("NOT VALID")


def test_a_document_that_proves_nothing_is_not_kept(funded, operator_client):
    alice = funded("10.00")
    document = _equivocation(alice)
    document["second"] = document["first"]
    answer = post_json(operator_client, "/api/fraud-proofs/", {"document": document})
    assert answer.status_code == 400
    assert answer.json()["error"]["code"] == "bad_fraud_proof"
    assert FraudProof.objects.count() == 0
