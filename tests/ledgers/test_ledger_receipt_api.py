"""GET /api/ledgers/{ledger}/entries/{height}/receipt: login and roles like the other ledger
reads, 404 for what is not there, 409 while the entry is not in a block, the receipt once it is
(checked with the pure verifier), nothing changed by any of it; the chain view links each
finished entry's receipt; the OpenAPI schema names the endpoint."""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from typing import Any

from consensus.models import Block, BlockObservation, BlockTree
from ledgers import services
from ledgers.models import Asset, LedgerEntry
from ledgers.protocol.commitments import ENTRY_OBSERVATION_KIND, entry_commitment
from ledgers.protocol.identifiers import LedgerId
from ledgers.protocol.receipt import Trust, receipt_verify
from settlement.keystore import node_signer
from tests.consensus.consensus_shell_support import agree, dispatched, single_validator
from tests.ledgers.ledger_shell_support import Party, row_counts

__all__ = ["dispatched", "single_validator"]


def _agree_commitments_of(rows: list[LedgerEntry]) -> None:
    agree(
        [entry_commitment(LedgerId(row.ledger.ubi), row.height, bytes.fromhex(row.hash)) for row in rows],
        kind=ENTRY_OBSERVATION_KIND,
    )


def test_a_receipt_needs_a_login(client: Any, funded: Callable[..., Party]) -> None:
    alice = funded("10.00")
    client.logout()
    answer = client.get(f"/api/ledgers/{alice.ledger.pk}/entries/0/receipt")
    assert answer.status_code in (401, 403)


def test_unknown_ledger_and_unknown_entry_are_404_with_their_codes(
    operator_client: Any, funded: Callable[..., Party]
) -> None:
    alice = funded("10.00")
    answer = operator_client.get("/api/ledgers/ubi:bank-a.test:nobody/entries/0/receipt")
    assert answer.status_code == 404
    assert answer.json()["error"]["code"] == "unknown_ledger"
    answer = operator_client.get(f"/api/ledgers/{alice.ledger.pk}/entries/7/receipt")
    assert answer.status_code == 404
    assert answer.json()["error"]["code"] == "unknown_entry"
    assert "no entry at height 7" in answer.json()["error"]["message"]


def test_not_in_a_block_yet_is_409_receipt_not_ready_and_changes_nothing(
    single_validator: Any, dispatched: Any, operator_client: Any, funded: Callable[..., Party]
) -> None:
    alice = funded("10.00")
    before = (row_counts(), Block.objects.count(), BlockTree.objects.count())
    answer = operator_client.get(f"/api/ledgers/{alice.ledger.pk}/entries/0/receipt")
    assert answer.status_code == 409
    assert answer.json()["error"]["code"] == "receipt_not_ready"
    assert answer.json()["error"]["message"].endswith(".")
    assert (row_counts(), Block.objects.count(), BlockTree.objects.count()) == before


def test_an_agreed_entry_has_a_receipt_that_verifies_for_an_auditor(
    single_validator: Any,
    dispatched: Any,
    client: Any,
    make_user: Callable[..., Any],
    funded: Callable[..., Party],
) -> None:
    client.force_login(make_user("audrey-auditor", "auditor"))
    alice = funded("10.00")
    _agree_commitments_of(list(LedgerEntry.objects.select_related("ledger")))
    [observation] = BlockObservation.objects.all()
    entry = LedgerEntry.objects.get(ledger=alice.ledger, height=0)
    assert bytes(observation.digest) == hashlib.sha256(bytes(observation.data)).digest()

    for ledger in (alice.ledger.pk, alice.ledger.ubi):  # by id or by UBI, as the other endpoints
        answer = client.get(f"/api/ledgers/{ledger}/entries/0/receipt")
        assert answer.status_code == 200, answer.content
        receipt = answer.json()
        assert receipt["entry"]["entry"]["body"] == entry.body
        key = node_signer().public_key
        report = receipt_verify(receipt, trust=Trust(validators=frozenset({key}), issuer=key))
        assert report.ok, [(check.name, check.detail) for check in report.checks if check.failed]
        assert [check.status for check in report.checks][-3:] == ["not yet"] * 3


def test_the_chain_view_links_the_receipt_of_each_finished_entry(
    single_validator: Any, dispatched: Any, operator_client: Any, funded: Callable[..., Party]
) -> None:
    alice = funded("10.00")
    _agree_commitments_of(list(LedgerEntry.objects.select_related("ledger")))
    services.asset_issue(
        ledger=alice.ledger,
        asset=Asset.objects.get(),
        amount="1.00",
        reference="second deposit",
        actor="test",
    )  # height 1: appended, not agreed
    page = operator_client.get(f"/ledgers/{alice.ledger.pk}/").content.decode()
    assert f'href="/api/ledgers/{alice.ledger.pk}/entries/0/receipt"' in page
    assert "/entries/1/receipt" not in page
    assert "pending" in page


def test_the_openapi_schema_names_the_receipt_endpoint(operator_client: Any) -> None:
    schema = operator_client.get("/api/schema/?format=json").json()
    operation = schema["paths"]["/api/ledgers/{ledger}/entries/{height}/receipt"]["get"]
    assert {"200", "404", "409"} <= set(operation["responses"])
