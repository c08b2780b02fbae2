"""Bad input to the messaging API: a 4xx JSON error with a code and a sentence, and nothing stored
(no message, delivery, ledger entry or attachment)."""

from __future__ import annotations

import base64

import pytest

from messaging.models import Delivery, DeliveryStatus
from messaging.protocol.envelope import MAX_ATTACHMENT_BYTES, MAX_BODY_BYTES
from tests.messaging.messaging_support import row_counts, signed_message


def post(client, url, data):
    return client.post(url, data=data, content_type="application/json")


def refused(client, url, data, status, code):
    before = row_counts()
    answer = post(client, url, data)
    assert answer.status_code == status, answer.content
    error = answer.json()["error"]
    assert error["code"] == code
    assert error["message"].strip()
    assert row_counts() == before
    return error


@pytest.fixture
def parties(make_party):
    return {
        "alice": make_party("alice"),
        "bob": make_party("bob", custody="self"),
        "carol": make_party("carol"),
        "nina": make_party("nina", status="NEEDS_INFO"),
        "rita": make_party("rita", status="REJECTED"),
    }


def compose(sender, recipients, **extra):
    return {"sender": sender, "kind": "note", "recipients": recipients, "text": "hello", **extra}


def test_unknown_or_unaccepted_recipients_and_senders_are_refused(operator, parties):
    alice, carol = parties["alice"].address, parties["carol"].address
    url = "/api/messages/"
    refused(operator, url, compose(alice, ["nobody*bank-test.test"]), 404, "unknown_recipient")
    refused(operator, url, compose(alice, ["carol*unknown-bank.test"]), 404, "unknown_recipient")
    refused(operator, url, compose(alice, [carol, "not-an-address"]), 400, "bad_address")
    refused(operator, url, compose(alice, [parties["nina"].address]), 409, "recipient_not_accepted")
    refused(operator, url, compose(alice, [parties["rita"].address]), 409, "recipient_not_accepted")
    refused(operator, url, compose("ghost*bank-test.test", [carol]), 404, "unknown_sender")
    refused(operator, url, compose(parties["nina"].address, [carol]), 409, "sender_not_accepted")
    # A self-custody sender's node holds no key to sign with: it must send a signed envelope.
    refused(operator, url, compose(parties["bob"].address, [carol]), 400, "custody_mismatch")


def test_bad_signatures_and_foreign_keys_are_refused(operator, parties):
    bob, carol = parties["bob"], parties["carol"]
    message = signed_message(bob, [carol.address])
    message["signature"] = "00" * 64
    refused(operator, "/api/messages/", message, 400, "bad_signature")
    # Signed by a key that is not the sender counterparty's (it signs its own envelope fine).
    impostor = signed_message(parties["alice"], [carol.address])
    impostor_envelope = dict(impostor["envelope"], sender=bob.address)
    refused(
        operator,
        "/api/messages/",
        {"envelope": impostor_envelope, "signature": impostor["signature"]},
        400,
        "bad_signature",
    )
    resigned = signed_message(bob, [carol.address])
    resigned["envelope"]["body"]["text"] = "changed after signing"
    refused(operator, "/api/messages/", resigned, 400, "bad_signature")


def test_oversized_bodies_wrong_kinds_and_broken_links_are_refused(operator, parties):
    alice, carol = parties["alice"].address, parties["carol"].address
    url = "/api/messages/"
    refused(operator, url, compose(alice, [carol], text="x" * (MAX_BODY_BYTES + 1)), 413, "message_too_large")
    refused(operator, url, compose(alice, [carol], kind="gossip"), 400, "invalid")
    error = refused(operator, url, compose(alice, [carol], kind="agreement"), 400, "bad_link")
    assert "offer or an acceptance" in error["message"]
    refused(operator, url, compose(alice, [carol], kind="note", agreement="offer"), 400, "bad_link")
    refused(
        operator,
        url,
        compose(carol, [alice], kind="agreement", agreement="acceptance", reply_to="f" * 32),
        400,
        "bad_link",
    )
    # Accepting a note (not an offer): refused by the linking rules.
    note = post(operator, url, compose(alice, [carol])).json()
    refused(
        operator,
        url,
        compose(carol, [alice], kind="agreement", agreement="acceptance", reply_to=note["id"]),
        400,
        "bad_link",
    )
    refused(operator, url, compose(alice, [carol], kind="document"), 400, "bad_envelope")
    refused(operator, url, compose(alice, [carol], attachments=["0" * 64]), 404, "unknown_attachment")
    refused(operator, url, {"sender": alice}, 400, "invalid")
    refused(operator, url, {"envelope": {"v": 1}, "signature": "00" * 64}, 400, "bad_envelope")
    refused(operator, url, {**compose(alice, [carol]), "envelope": {}, "signature": "00"}, 400, "invalid")
    refused(operator, url, compose(alice, [alice]), 400, "bad_envelope")


def test_a_bad_message_in_a_batch_refuses_the_whole_batch_and_names_it(operator, parties):
    alice, carol = parties["alice"].address, parties["carol"].address
    batch = {
        "messages": [
            compose(alice, [carol]),
            compose(alice, [carol]),
            compose(alice, ["nobody*bank-test.test"]),
        ]
    }
    refused(operator, "/api/messages/batch/", batch, 404, "unknown_recipient")
    bad_kind = {"messages": [compose(alice, [carol]), {**compose(alice, [carol]), "kind": "agreement"}]}
    error = refused(operator, "/api/messages/batch/", bad_kind, 400, "bad_link")
    assert error["message"].startswith("message 1:")
    refused(operator, "/api/messages/batch/", {"messages": []}, 400, "invalid")


def test_files_over_the_limit_or_of_another_type_are_refused(operator, parties):
    def upload(content, content_type="application/pdf", name="terms.pdf"):
        from django.core.files.uploadedfile import SimpleUploadedFile

        return operator.post(
            "/api/messages/attachments/", {"file": SimpleUploadedFile(name, content, content_type)}
        )

    before = row_counts()
    too_big = upload(b"%PDF-" + b"0" * MAX_ATTACHMENT_BYTES)
    assert too_big.status_code == 413
    assert too_big.json()["error"]["code"] == "message_too_large"
    html = upload(b"<html>not a pdf</html>", "text/html", "x.html")
    assert html.status_code == 400
    assert html.json()["error"]["code"] == "bad_attachment"
    lying = upload(b"\x89PNG\r\n\x1a\n" + b"0" * 20, "application/pdf")
    assert lying.status_code == 400
    assert lying.json()["error"]["code"] == "bad_attachment"
    assert row_counts() == before

    stored = upload(b"%PDF-1.4 terms of the trade")
    assert stored.status_code == 201, stored.content
    sha = stored.json()["sha256"]
    sent = post(
        operator,
        "/api/messages/",
        {
            **compose(parties["alice"].address, [parties["carol"].address], kind="document"),
            "attachments": [sha],
        },
    )
    assert sent.status_code == 201, sent.content
    assert sent.json()["envelope"]["attachments"] == [
        {"sha256": sha, "size": 27, "media_type": "application/pdf"}
    ]
    assert operator.get(f"/api/messages/attachments/{sha}/").status_code == 200


def test_a_box_that_does_not_open_for_a_custodial_recipient_is_rejected_by_its_node(operator, parties):
    bob, carol = parties["bob"], parties["carol"]
    message = signed_message(bob, {carol.address: carol.box.public_key}, text="secret", encrypt=True)
    # A box made for another key (the client used a wrong or stale key for carol).
    wrong = signed_message(bob, {carol.address: bob.box.public_key}, text="secret", encrypt=True)
    answer = post(operator, "/api/messages/", wrong)
    assert answer.status_code == 201
    (delivery,) = answer.json()["deliveries"]
    assert (delivery["state"], delivery["rejection_code"]) == ("rejected", "ciphertext_does_not_open")
    assert Delivery.objects.get(message__message_id=wrong["envelope"]["id"]).status == DeliveryStatus.REJECTED
    # A box that is not even valid base64 is malformed input: refused, nothing stored.
    message["envelope"]["body"]["boxes"][carol.address] = base64.b64encode(b"short").decode()
    refused(operator, "/api/messages/", message, 400, "bad_envelope")


def test_reject_and_look_up_refuse_unknown_messages(operator, parties):
    answer = post(
        operator, f"/api/messages/{'a' * 32}/reject/", {"recipient": parties["carol"].address, "reason": "no"}
    )
    assert answer.status_code == 404
    assert answer.json()["error"]["code"] == "unknown_message"
    assert operator.get(f"/api/messages/{'a' * 32}/").status_code == 404
    bad_block = operator.get("/api/messages/", {"block": "-1"})
    assert bad_block.status_code == 400
    assert bad_block.json()["error"]["code"] == "invalid"
