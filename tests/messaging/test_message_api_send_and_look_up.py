"""Sending through the API within one node: composed for a custodial sender (signed and boxed
with its sealed keys) or signed and encrypted by a self-custody client; each message becomes a
co-signed `message` entry on the sender's ledger and a vote for its commitment; look-ups by id,
party, time range and block; inbox and outbox; replays; rejection by a recipient."""

from __future__ import annotations

from datetime import timedelta

from django.utils import timezone

from consensus.models import Anchor, AnchorStatus, PendingObservation
from ledgers.models import Ledger, LedgerEntry
from ledgers.protocol.chain import verify_chain
from ledgers.protocol.commitments import entry_commitment
from ledgers.services import bank_key, signed_entry_of
from messaging import services
from messaging.models import Delivery, Message
from messaging.protocol import check_message_section, open_body, parse_envelope, parse_signed_message
from messaging.protocol.record import message_section_of
from tests.messaging.messaging_support import row_counts, signed_message


def post(client, url, data):
    return client.post(url, data=data, content_type="application/json")


def test_a_custodial_sender_composes_an_encrypted_message_that_only_its_recipient_opens(operator, make_party):
    alice, carol = make_party("alice"), make_party("carol")
    answer = post(
        operator,
        "/api/messages/",
        {"sender": alice.address, "kind": "note", "recipients": [carol.address], "text": "meet at noon"},
    )
    assert answer.status_code == 201, answer.content
    data = answer.json()
    assert data["encrypted"]
    assert data["replayed"] is False
    assert "meet at noon" not in answer.content.decode()
    envelope = parse_envelope(data["envelope"])
    assert open_body(envelope, recipient=carol.address, recipient_box=carol.box) == "meet at noon"
    # Delivered at once to a recipient of this node (its node opened the box for it).
    assert [(d["recipient"], d["state"]) for d in data["deliveries"]] == [(carol.address, "delivered")]

    # The record: a `message` entry on alice's ledger, co-signed by the bank, carrying the digest.
    message = Message.objects.get(message_id=data["id"])
    entry = message.ledger_entry
    assert entry.kind == "message"
    assert entry.body["message"] == data["digest"]
    assert entry.party_signature == ""
    assert entry.validator_signature
    ledger = Ledger.objects.get(counterparty=alice.counterparty)
    chain = [
        signed_entry_of(row, ledger.ubi)
        for row in LedgerEntry.objects.filter(ledger=ledger).order_by("height")
    ]
    report = verify_chain(
        chain,
        ledger=ledger.ubi,
        party_key=alice.key.public_key,
        validator_key=bank_key().public_key,
        assets={},
    )
    assert report.ok, report
    # A receipt verifier's check of the message section holds against the stored entry.
    signed = parse_signed_message({"envelope": data["envelope"], "signature": data["signature"]})
    section = message_section_of(signed)
    assert check_message_section(section, chain[-1].to_json()).digest.hex() == data["digest"]
    # The entry's head commitment is queued for consensus, and the message can follow it.
    commitment = entry_commitment(ledger.ubi, entry.height, bytes.fromhex(entry.hash))
    assert PendingObservation.objects.filter(digest=services.observation_digest(commitment)).exists()


def test_a_self_custody_client_sends_a_pre_signed_encrypted_message_and_a_resend_is_a_replay(
    operator, make_party
):
    bob = make_party("bob", custody="self")
    carol = make_party("carol")
    message = signed_message(
        bob, {carol.address: carol.box.public_key}, text="offer 100 @ 12.5", encrypt=True
    )
    first = post(operator, "/api/messages/", message)
    assert first.status_code == 201, first.content
    again = post(operator, "/api/messages/", message)
    assert again.status_code == 200
    assert again.json()["replayed"] is True
    assert Message.objects.count() == 1
    assert LedgerEntry.objects.filter(kind="message").count() == 1
    # The same id for a different message is refused, and nothing is stored.
    before = row_counts()
    other = signed_message(
        bob, {carol.address: carol.box.public_key}, text="other", message_id=message["envelope"]["id"]
    )
    refused = post(operator, "/api/messages/", other)
    assert refused.status_code == 409
    assert refused.json()["error"]["code"] == "message_id_reused"
    assert row_counts() == before


def test_a_batch_is_one_ledger_write_and_look_ups_find_messages_by_party_time_and_block(
    operator, auditor, make_party
):
    alice, carol, dave = make_party("alice"), make_party("carol"), make_party("dave")
    batch = post(
        operator,
        "/api/messages/batch/",
        {
            "messages": [
                {
                    "sender": alice.address,
                    "kind": "settlement-instruction",
                    "recipients": [carol.address],
                    "text": f"pay {i}",
                }
                for i in range(5)
            ]
            + [
                {
                    "sender": carol.address,
                    "kind": "note",
                    "recipients": [dave.address],
                    "text": "hi",
                    "encrypt": False,
                }
            ]
        },
    )
    assert batch.status_code == 201, batch.content
    results = batch.json()
    assert len(results) == 6
    heights = [item["record"]["height"] for item in results[:5]]
    assert heights == sorted(heights)
    assert len(set(heights)) == 5

    by_party = auditor.get("/api/messages/", {"party": dave.address}).json()
    assert [item["id"] for item in by_party] == [results[5]["id"]]
    assert len(auditor.get("/api/messages/", {"party": alice.address}).json()) == 5
    now = timezone.now()
    in_range = auditor.get(
        "/api/messages/",
        {
            "since": (now - timedelta(minutes=1)).isoformat(),
            "until": (now + timedelta(minutes=1)).isoformat(),
        },
    )
    assert len(in_range.json()) == 6
    assert auditor.get("/api/messages/", {"until": (now - timedelta(minutes=1)).isoformat()}).json() == []

    # When consensus agrees the commitment, the beat task moves the message to "in block".
    message = Message.objects.get(message_id=results[5]["id"])
    PendingObservation.objects.filter(digest=message.observation_digest).update(
        status="agreed", block_height=7
    )
    assert services.messages_follow()["in_block"] == 1
    in_block = auditor.get("/api/messages/", {"block": 7}).json()
    assert [item["id"] for item in in_block] == [message.message_id]
    assert in_block[0]["deliveries"][0]["state"] == "in block"

    detail = auditor.get(f"/api/messages/{message.message_id}/").json()
    assert detail["block_height"] == 7
    assert detail["anchored"] is False
    # An anchor of an earlier block does not cover it; a mined one not yet final does not count;
    # a final anchor at its height or above does (blocks are hash-chained).
    Anchor.objects.create(height=6, log_root=b"\x00" * 32, status=AnchorStatus.FINAL)
    Anchor.objects.create(height=9, log_root=b"\x01" * 32, status=AnchorStatus.MINED)
    assert services.messages_follow()["anchored"] == 0
    Anchor.objects.filter(height=9).update(status=AnchorStatus.FINAL)
    assert services.messages_follow()["anchored"] == 1
    anchored = auditor.get(f"/api/messages/{message.message_id}/").json()
    assert anchored["anchored"] is True
    assert anchored["deliveries"][0]["state"] == "anchored"

    inbox = auditor.get(f"/api/counterparties/{dave.counterparty.pk}/messages/inbox/").json()
    assert [row["message"]["id"] for row in inbox] == [message.message_id]
    outbox = auditor.get(f"/api/counterparties/{alice.counterparty.pk}/messages/outbox/").json()
    assert len(outbox) == 5
    # An auditor reads but cannot send.
    denied = post(
        auditor,
        "/api/messages/",
        {"sender": alice.address, "kind": "note", "recipients": [dave.address], "text": "x"},
    )
    assert denied.status_code == 403


def test_a_self_custody_recipient_rejects_a_message_through_the_api(operator, make_party):
    alice, erin = make_party("alice"), make_party("erin", custody="self")
    sent = post(
        operator,
        "/api/messages/",
        {"sender": alice.address, "kind": "note", "recipients": [erin.address], "text": "?"},
    )
    message_id = sent.json()["id"]
    rejected = post(
        operator,
        f"/api/messages/{message_id}/reject/",
        {"recipient": erin.address, "reason": "ciphertext_does_not_open"},
    )
    assert rejected.status_code == 200, rejected.content
    assert rejected.json()["state"] == "rejected"
    assert rejected.json()["rejection_code"] == "ciphertext_does_not_open"
    undeliverable = operator.get("/api/messages/undeliverable/").json()
    assert [(row["id"], row["state"]) for row in undeliverable] == [(message_id, "rejected")]
    twice = post(
        operator, f"/api/messages/{message_id}/reject/", {"recipient": erin.address, "reason": "again"}
    )
    assert twice.status_code == 409
    assert twice.json()["error"]["code"] == "delivery_finished"


def test_agreement_acceptance_links_to_the_offer_it_received(operator, make_party):
    alice, carol = make_party("alice"), make_party("carol")
    offer = post(
        operator,
        "/api/messages/",
        {
            "sender": alice.address,
            "kind": "agreement",
            "agreement": "offer",
            "recipients": [carol.address],
            "text": "I deliver 10 MEGA for 125 EUR",
        },
    ).json()
    accepted = post(
        operator,
        "/api/messages/",
        {
            "sender": carol.address,
            "kind": "agreement",
            "agreement": "acceptance",
            "reply_to": offer["id"],
            "recipients": [alice.address],
            "text": "agreed",
        },
    )
    assert accepted.status_code == 201, accepted.content
    assert accepted.json()["reply_to"] == offer["id"]
    assert Delivery.objects.filter(
        message__message_id=accepted.json()["id"], recipient=alice.counterparty
    ).exists()
