"""Messages a sender signs once as a batch (docs/messaging.md, "Batches"): the node verifies the
batch signature once and each message's audit path, records the batch as one co-signed
``message-batch`` entry (one consensus observation), and each message gets a receipt that proves
it through its path to the root the entry holds. Bad proofs are 4xx with their code and nothing
stored; a recipient's node checks the batch signature and the record like a single signature."""

from __future__ import annotations

import base64
import copy
import hashlib
import json
from collections.abc import Callable
from typing import Any

import pytest
from django.db import connection
from django.db.models import ProtectedError
from django.utils import timezone

from consensus import services as consensus_services
from consensus.models import PendingObservation
from ledgers.models import LedgerEntry
from ledgers.protocol.entries import Entry, LedgerHeight, Millis, SignedEntry, encode_entry, sign_encoded
from ledgers.protocol.identifiers import LedgerId
from ledgers.protocol.receipt import Trust, receipt_verify
from messaging import services
from messaging.models import Delivery, DeliveryStatus, Message
from messaging.protocol.envelope import parse_signed_message
from messaging.protocol.record import envelope_from_receipt, message_batch_entry_body
from settlement.keystore import node_signer
from settlement.models import Peer, PeerKey
from settlement.protocol.encoding import Digest
from settlement.protocol.signing import SigningKey
from settlement.verify import RECEIPT_SECTIONS
from tests.consensus.consensus_shell_support import dispatched, single_validator
from tests.ledgers.test_ledger_receipt_end_to_end import _resigned
from tests.messaging.messaging_support import Party, batch_signed_messages, row_counts, signed_message

__all__ = ["dispatched", "single_validator"]

BATCH_URL = "/api/messages/batch/"


def _post(client: Any, messages: list[dict[str, Any]]) -> Any:
    return client.post(BATCH_URL, data={"messages": messages}, content_type="application/json")


def _counts() -> dict[str, int]:
    return {**row_counts(), "observations": PendingObservation.objects.count()}


def _refused(client: Any, messages: list[dict[str, Any]], status: int, code: str) -> dict[str, Any]:
    before = _counts()
    answer = _post(client, messages)
    assert answer.status_code == status, answer.content
    error = answer.json()["error"]
    assert error["code"] == code, error
    assert error["message"].strip()
    assert _counts() == before
    return error


def test_a_batch_signed_once_is_one_entry_and_one_observation_and_each_message_has_its_receipt(
    single_validator: Any, dispatched: Any, make_party: Callable[..., Party], operator: Any
) -> None:
    bob, carol = make_party("bob", custody="self"), make_party("carol")
    batch = batch_signed_messages(bob, [carol.address], 5)
    alone = signed_message(bob, [carol.address], text="signed on its own")
    before = _counts()

    answer = _post(operator, [*batch, alone])
    assert answer.status_code == 201, answer.content
    results = answer.json()
    # The five of the batch share one record; the one signed alone has its own.
    assert len({str(item["record"]) for item in results[:5]}) == 1
    assert results[5]["record"] != results[0]["record"]
    after = _counts()
    assert after["messages"] - before["messages"] == 6
    assert after["deliveries"] - before["deliveries"] == 6
    assert after["entries"] - before["entries"] == 2
    assert after["observations"] - before["observations"] == 2
    record = LedgerEntry.objects.get(kind="message-batch")
    assert record.body == {
        "root": batch[0]["batch"]["root"],
        "size": 5,
        "signature": batch[0]["batch"]["signature"],
    }
    assert LedgerEntry.objects.filter(kind="message").count() == 1
    assert set(Delivery.objects.values_list("status", flat=True)) == {DeliveryStatus.DELIVERED}

    shown = operator.get(f"/api/messages/{results[3]['id']}/").json()
    assert shown["batch"] == {key: batch[3]["batch"][key] for key in ("root", "size", "index", "path")}
    assert shown["signature"] == batch[3]["batch"]["signature"]
    assert operator.get(f"/api/messages/{results[5]['id']}/").json()["batch"] is None

    # The same batch again is a replay: nothing new is recorded.
    again = _post(operator, batch)
    assert again.status_code == 201, again.content
    assert all(item["replayed"] for item in again.json())
    assert _counts() == after

    consensus_services.votes_apply()
    assert services.messages_follow()["in_block"] == 6
    receipt = operator.get(f"/api/messages/{results[3]['id']}/receipt").json()
    assert receipt["entry"]["entry"]["kind"] == "message-batch"
    # The message's place in the receipt form: the index and its path's hashes in base64.
    wire_path = bytes.fromhex("".join(batch[3]["batch"]["path"]))
    assert receipt["message"]["index"] == 3
    assert base64.b64decode(receipt["message"]["path"]) == wire_path
    assert "signature" not in receipt["message"]  # the batch signature is in the entry
    assert envelope_from_receipt(receipt["message"]["envelope"]).to_json() == batch[3]["envelope"]
    trust = Trust(validators=frozenset({node_signer().public_key}), issuer=node_signer().public_key)
    report = receipt_verify(receipt, trust=trust, sections=RECEIPT_SECTIONS)
    assert report.ok, [(check.name, check.status, check.detail) for check in report.checks]
    message_check = next(check for check in report.checks if check.name == "message")
    assert "signed as message 3 of a batch of 5" in message_check.detail

    # The node's own key re-signs a receipt whose path or index was changed: the message check
    # catches it on its own.
    for change in (
        lambda place: place.update(path=base64.b64encode(bytes(32) + wire_path[32:]).decode()),
        lambda place: place.update(index=2),
        lambda place: place.update(path=base64.b64encode(wire_path[:-32]).decode()),
    ):
        forged = copy.deepcopy(receipt)
        change(forged["message"])
        report = receipt_verify(_resigned(forged), trust=trust, sections=RECEIPT_SECTIONS)
        assert report.first_failure is not None
        assert report.first_failure.name == "message"
        assert report.first_failure.detail.startswith("bad_batch_proof:")


def test_bad_batch_proofs_are_refused_with_their_code_and_nothing_is_stored(
    make_party: Callable[..., Party], operator: Any
) -> None:
    bob, carol, alice = make_party("bob", custody="self"), make_party("carol"), make_party("alice")
    batch = batch_signed_messages(bob, [carol.address], 4)
    other = batch_signed_messages(bob, [carol.address], 4, time_ms=1_900_000_000_000)

    def changed(index: int, change: Callable[[dict[str, Any]], None]) -> list[dict[str, Any]]:
        messages = copy.deepcopy(batch)
        change(messages[index])
        return messages

    path_changed = changed(1, lambda m: m["batch"]["path"].__setitem__(0, "ab" * 32))
    _refused(operator, path_changed, 400, "bad_batch_proof")
    error = _refused(operator, changed(2, lambda m: m["batch"].update(index=3)), 400, "bad_batch_proof")
    assert error["message"].startswith("message 2: ")  # a refused message is named; none is stored
    _refused(operator, changed(0, lambda m: m["batch"]["path"].pop()), 400, "bad_batch_proof")
    # A message of another batch, with this batch's proof: it is not in this batch.
    _refused(operator, changed(0, lambda m: m.update(envelope=other[0]["envelope"])), 400, "bad_batch_proof")
    # A batch signature that does not verify: another batch's, or another key's over this root.
    _refused(
        operator,
        changed(3, lambda m: m["batch"].update(signature=other[3]["batch"]["signature"])),
        400,
        "bad_signature",
    )
    forged = batch_signed_messages(alice, [carol.address], 4)
    impostor = [dict(item, envelope=dict(item["envelope"], sender=bob.address)) for item in forged]
    _refused(operator, impostor, 400, "bad_batch_proof")  # digests change with the sender: not in the batch
    # Size is signed: another size with the same root is not what the sender signed.
    size_changed = changed(0, lambda m: m["batch"].update(size=8))
    code = _post(operator, size_changed).json()["error"]["code"]
    assert code in ("bad_batch_proof", "bad_signature")
    assert Message.objects.count() == 0
    # Malformed proofs and both forms at once.
    _refused(operator, changed(0, lambda m: m["batch"].update(root="XY" * 32)), 400, "bad_batch_proof")
    _refused(operator, changed(0, lambda m: m["batch"].update(index=-1)), 400, "bad_batch_proof")
    _refused(operator, changed(0, lambda m: m["batch"].pop("path")), 400, "bad_batch_proof")
    _refused(operator, changed(0, lambda m: m.update(signature="00" * 64)), 400, "invalid")
    # Every refusal above stored nothing; the untouched batch is then accepted.
    assert _post(operator, batch).status_code == 201


def _flipped(hex_text: str) -> str:
    return hex_text[:-1] + ("1" if hex_text[-1] == "0" else "0")


def test_a_bad_head_or_place_after_good_ones_in_one_request_is_refused_and_nothing_is_stored(
    make_party: Callable[..., Party], operator: Any
) -> None:
    # The node parses a batch's head (root, size, signature) once per request: a later message
    # with the same head text is not checked again, one with another head or a bad place is.
    bob, carol = make_party("bob", custody="self"), make_party("carol")
    batch = batch_signed_messages(bob, [carol.address], 6)
    for index, change, code in [
        (5, lambda m: m["batch"].update(root=m["batch"]["root"].upper()), "bad_batch_proof"),
        (4, lambda m: m["batch"].update(size=5), "bad_batch_proof"),  # index 4 of 5: not its root
        (5, lambda m: m["batch"].update(signature=_flipped(m["batch"]["signature"])), "bad_signature"),
        (3, lambda m: m["batch"]["path"].__setitem__(1, m["batch"]["path"][1].upper()), "bad_batch_proof"),
        (2, lambda m: m["batch"]["path"].reverse(), "bad_batch_proof"),
        (1, lambda m: m["batch"].update(index=6), "bad_batch_proof"),
    ]:
        messages = copy.deepcopy(batch)
        change(messages[index])
        error = _refused(operator, messages, 400, code)
        assert error["message"].startswith(f"message {index}: "), error
    assert Message.objects.count() == 0
    assert _post(operator, batch).status_code == 201


def test_a_stored_message_keeps_the_canonical_text_its_sender_signed_and_loads_as_json(
    make_party: Callable[..., Party], operator: Any
) -> None:
    bob, carol = make_party("bob", custody="self"), make_party("carol")
    batch = batch_signed_messages(bob, [carol.address], 3)
    results = _post(operator, batch).json()
    signed = parse_signed_message(batch[1])
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT envelope, batch, record FROM messaging_message WHERE message_id = %s", [results[1]["id"]]
        )
        envelope_text, batch_text, record_text = cursor.fetchone()
    # The envelope column is the canonical envelope: the signed bytes after their domain prefix.
    assert b"parsec/v1/message\x00" + envelope_text.encode() == signed.encoded.signed_bytes
    assert json.loads(batch_text) == {
        key: batch[1]["batch"][key] for key in ("root", "size", "index", "path")
    }
    stored = Message.objects.get(message_id=results[1]["id"])
    assert stored.envelope == batch[1]["envelope"]
    assert stored.batch == json.loads(batch_text)
    assert stored.record == json.loads(record_text) == results[1]["record"]
    assert services.message_wire(stored) == batch[1]  # what the router sends: as the sender signed it
    # Neither the ORM nor the database lets the record entry or the sender go while a message
    # points to it: the foreign-key constraints are kept on purpose (docs/messaging.md, "Speed").
    assert stored.ledger_entry is not None
    assert stored.sender is not None
    for referenced in (stored.ledger_entry, stored.sender):
        with pytest.raises(ProtectedError) as refused:
            referenced.delete()
        assert stored in set(refused.value.protected_objects)
    assert Message.objects.filter(
        pk=stored.pk, ledger_entry=stored.ledger_entry, sender=stored.sender
    ).exists()
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT c.conrelid::regclass::text, a.attname FROM pg_constraint c"
            " JOIN pg_attribute a ON a.attrelid = c.conrelid AND a.attnum = ANY (c.conkey)"
            " WHERE c.contype = 'f' AND c.conrelid::regclass::text IN (%s, %s)",
            [Message._meta.db_table, Delivery._meta.db_table],
        )
        foreign_keys = set(cursor.fetchall())
    assert {
        (Message._meta.db_table, "sender_id"),
        (Message._meta.db_table, "ledger_entry_id"),
        (Delivery._meta.db_table, "message_id"),
    } <= foreign_keys


def _peer_record(peer_key: SigningKey, signed: Any, ledger: str) -> dict[str, Any]:
    entry = Entry(
        ledger=LedgerId(ledger),
        height=LedgerHeight(0),
        prev=Digest(bytes(32)),
        kind="message-batch",
        body=message_batch_entry_body(signed),
        time=Millis(1_800_000_000_000),
    )
    encoded = encode_entry(entry)
    return SignedEntry(
        entry=entry, party_signature=None, validator_signature=sign_encoded(peer_key, encoded)
    ).to_json()


def test_a_recipients_node_checks_the_batch_signature_path_and_record_and_stores_only_what_holds(
    make_party: Callable[..., Party],
) -> None:
    """The receiving side of the router (``messages_receive``): the batch signature is verified
    once for the request, each path and the signed record of the batch for every message."""
    carol = make_party("carol")
    peer_key = SigningKey(hashlib.sha256(b"bank-x signing key").digest())
    peer = Peer.objects.create(name="bank-x", domain="bank-x.test", base_url="http://bank-x.invalid")
    PeerKey.objects.create(
        peer=peer, key_id="bank-x-1", public=peer_key.public_key.hex(), valid_from=timezone.now()
    )
    xavier = _ForeignSender("xavier*bank-x.test", SigningKey.generate())
    batch = batch_signed_messages(xavier, [carol.address], 3)  # type: ignore[arg-type]
    record = _peer_record(peer_key, parse_signed_message(batch[0]), "ubi:bank-x.test:xavier")
    tampered = copy.deepcopy(batch[1])
    tampered["batch"]["path"][0] = "cd" * 32
    wrong_record = copy.deepcopy(record)
    wrong_record["entry"]["body"]["size"] = 4
    items = [
        {"message": batch[0], "entry": record},
        {"message": tampered, "entry": record},
        {"message": batch[2], "entry": wrong_record},
    ]
    results = services.messages_receive(peer=peer, items=items)
    assert results[0]["recipients"] == {carol.address: {"status": "delivered"}}
    assert results[1]["error"]["code"] == "bad_batch_proof"
    assert results[2]["error"]["code"] == "bad_envelope"  # the record is not this batch's entry
    stored = Message.objects.get()
    assert stored.message_id == batch[0]["envelope"]["id"]
    assert stored.batch["index"] == 0
    assert stored.ledger_entry is None
    assert stored.record["ledger"] == "ubi:bank-x.test:xavier"
    # The record must be signed by a key of the delivering peer.
    stranger = _peer_record(SigningKey.generate(), parse_signed_message(batch[2]), "ubi:bank-x.test:xavier")
    result = services.messages_receive(peer=peer, items=[{"message": batch[2], "entry": stranger}])
    assert result[0]["error"]["code"] == "bad_signature"
    assert Message.objects.count() == 1


class _ForeignSender:
    """A sender at another bank, as :func:`batch_signed_messages` needs one."""

    def __init__(self, address: str, key: SigningKey) -> None:
        self.address, self.key = address, key
