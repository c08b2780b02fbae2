"""GET /api/messages/{id}/receipt: login and roles like the message look-up, 404 for an unknown
message, 409 while its record entry is not in a block (nothing changed), the receipt once it is
(checked with the command's verifier, sections and pinned keys); the inbox and outbox link every
finished message's receipt; the OpenAPI schema names the endpoint."""

from __future__ import annotations

import base64
from collections.abc import Callable
from typing import Any

from django.db import connection
from django.test.utils import CaptureQueriesContext

from consensus import services as consensus_services
from ledgers.protocol.receipt import Trust, receipt_verify
from messaging import services
from messaging.models import Message
from messaging.receipts import message_receipt
from settlement.keystore import node_key_rotate, node_signer
from settlement.models import KeyPurpose
from settlement.verify import RECEIPT_SECTIONS
from tests.consensus.consensus_shell_support import dispatched, single_validator
from tests.messaging.messaging_support import Party, row_counts

__all__ = ["dispatched", "single_validator"]


def _send(
    client: Any, sender: Party, recipient: Party, text: str = "the signed term sheet"
) -> dict[str, Any]:
    answer = client.post(
        "/api/messages/",
        data={"sender": sender.address, "kind": "note", "recipients": [recipient.address], "text": text},
        content_type="application/json",
    )
    assert answer.status_code == 201, answer.content
    return answer.json()


def _agree_and_follow() -> None:
    """The worker's step in this process (N=1 needs no gossip), then the beat's follow-up."""
    consensus_services.votes_apply()
    assert services.messages_follow()["in_block"] >= 1


def test_a_receipt_needs_a_login(client: Any, make_party: Callable[..., Party], operator: Any) -> None:
    alice, carol = make_party("alice"), make_party("carol")
    sent = _send(operator, alice, carol)
    client.logout()
    answer = client.get(f"/api/messages/{sent['id']}/receipt")
    assert answer.status_code in (401, 403)


def test_an_unknown_message_is_404_with_its_code(operator: Any, node: None) -> None:
    answer = operator.get(f"/api/messages/{'ab' * 16}/receipt")
    assert answer.status_code == 404
    assert answer.json()["error"]["code"] == "unknown_message"
    assert "not known to this node" in answer.json()["error"]["message"]


def test_409_until_the_record_is_in_a_block_then_a_receipt_that_verifies_and_links_on_the_pages(
    single_validator: Any,
    dispatched: Any,
    make_party: Callable[..., Party],
    operator: Any,
    auditor: Any,
) -> None:
    alice, carol = make_party("alice"), make_party("carol")
    sent = _send(operator, alice, carol)
    url = f"/api/messages/{sent['id']}/receipt"

    before = row_counts()
    answer = auditor.get(url)
    assert answer.status_code == 409
    error = answer.json()["error"]
    assert error["code"] == "receipt_not_ready"
    assert f"Message {sent['id']} is recorded as entry" in error["message"]
    assert "not in an agreed block yet" in error["message"]
    assert row_counts() == before
    for counterparty in (alice, carol):  # no link while pending, in the outbox and the inbox
        page = operator.get(f"/messages/?counterparty={counterparty.counterparty.pk}").content.decode()
        assert url not in page
        assert "its record is not in an agreed block yet" in page

    _agree_and_follow()
    answer = auditor.get(url)
    assert answer.status_code == 200, answer.content
    receipt = answer.json()
    assert receipt["anchor"] is None  # agreed, not anchored yet
    assert receipt["log"] is None
    assert "the signed term sheet" not in answer.content.decode()
    key = node_signer().public_key
    report = receipt_verify(
        receipt, trust=Trust(validators=frozenset({key}), issuer=key), sections=RECEIPT_SECTIONS
    )
    assert report.ok, [(check.name, check.status, check.detail) for check in report.checks]
    names = [check.name for check in report.checks]
    assert names.index("message") == names.index("entry-links") + 1
    assert row_counts() == before
    with CaptureQueriesContext(connection) as queries:  # its block's tree is written by now
        message_receipt(message_id=sent["id"])
    # The message; its record entry with the node's current key; the observation with its block
    # and the covering anchor (the block holds this one observation: its audit path is empty, so
    # the fourth query, reading the path, is not needed).
    assert len(queries) == 3, [query["sql"] for query in queries.captured_queries]
    for counterparty in (alice, carol):  # the outbox of the sender, the inbox of the recipient
        page = operator.get(f"/messages/?counterparty={counterparty.counterparty.pk}").content.decode()
        assert f'href="{url}"' in page
        assert f'download="receipt-message-{sent["id"]}.json"' in page


def test_a_message_recorded_before_a_key_rotation_gets_a_receipt_that_verifies_after_it(
    single_validator: Any,
    dispatched: Any,
    make_party: Callable[..., Party],
    operator: Any,
) -> None:
    """Receipt version 3 through the message path: the record entry was co-signed with the key the
    node has since rotated; the receipt names it with its hand-over to the key that issues it."""
    alice, carol = make_party("alice"), make_party("carol")
    sent = _send(operator, alice, carol)
    _agree_and_follow()
    before = node_signer().public_key
    node_key_rotate(purpose=KeyPurpose.SIGNING, actor=None, reason="scheduled")
    after = node_signer().public_key
    assert after != before

    answer = operator.get(f"/api/messages/{sent['id']}/receipt")

    assert answer.status_code == 200, answer.content
    receipt = answer.json()
    assert receipt["version"] == 3
    assert base64.b64decode(receipt["entry"]["bank_keys"][0])[:32] == before
    report = receipt_verify(
        receipt, trust=Trust(validators=frozenset({before}), issuer=after), sections=RECEIPT_SECTIONS
    )
    assert report.ok, [(check.name, check.status, check.detail) for check in report.checks]
    assert next(check for check in report.checks if check.name == "message").status == "pass"


def test_a_message_delivered_from_another_node_has_its_receipt_at_the_senders_bank(
    single_validator: Any,
    dispatched: Any,
    make_party: Callable[..., Party],
    operator: Any,
) -> None:
    alice, carol = make_party("alice"), make_party("carol")
    sent = _send(operator, alice, carol)
    _agree_and_follow()
    # On a recipient's node the row has the record ({ledger, height, hash}) but no entry: the
    # sender's bank keeps the ledger. Make this row look like that.
    Message.objects.filter(message_id=sent["id"]).update(ledger_entry=None)
    answer = operator.get(f"/api/messages/{sent['id']}/receipt")
    assert answer.status_code == 404
    assert answer.json()["error"]["code"] == "receipt_at_sender_bank"
    assert "ask that bank for its receipt" in answer.json()["error"]["message"]
    page = operator.get(f"/messages/?counterparty={carol.counterparty.pk}").content.decode()
    assert "at the sender&#x27;s bank" in page or "at the sender's bank" in page
    assert f"/api/messages/{sent['id']}/receipt" not in page


def test_the_schema_names_the_receipt_endpoint(auditor: Any) -> None:
    schema = auditor.get("/api/schema/", HTTP_ACCEPT="application/json").json()
    operation = schema["paths"]["/api/messages/{message_id}/receipt"]["get"]
    assert set(operation["responses"]) >= {"200", "404", "409"}
    assert "MessageReceiptOutput" in schema["components"]["schemas"]
