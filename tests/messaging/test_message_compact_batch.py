"""The compact batch request (docs/messaging.md, "The compact batch request"): one signed head and
the envelopes without what they share. The node rebuilds the batch's tree once, stores its leaves
once (``MessageBatchTree``) and no path per message; every message stays addressable, routed and
provable: its path is read from the stored tree, and its receipt is the one a message of the same
batch sent with its proof gets. Bad input is 4xx with its code and nothing stored."""

from __future__ import annotations

import copy
import json
from collections.abc import Callable
from typing import Any

from django.db import connection

from consensus import services as consensus_services
from consensus.models import PendingObservation
from ledgers.models import LedgerEntry
from ledgers.protocol.receipt import Trust, receipt_verify
from messaging import services
from messaging.models import Message, MessageBatchTree
from messaging.protocol.envelope import compact_batch_json, parse_signed_message
from settlement.keystore import node_signer
from settlement.verify import RECEIPT_SECTIONS
from tests.consensus.consensus_shell_support import dispatched, single_validator
from tests.messaging.messaging_support import Party, batch_signed_messages, row_counts

__all__ = ["dispatched", "single_validator"]

COMPACT_URL = "/api/messages/compact-batch/"


def _compact(messages: list[dict[str, Any]]) -> dict[str, Any]:
    return compact_batch_json([parse_signed_message(item) for item in messages])


def _post(client: Any, body: Any) -> Any:
    return client.post(COMPACT_URL, data=body, content_type="application/json")


def _counts() -> dict[str, int]:
    return {
        **row_counts(),
        "observations": PendingObservation.objects.count(),
        "trees": MessageBatchTree.objects.count(),
    }


def _refused(client: Any, body: Any, status: int, code: str) -> dict[str, Any]:
    before = _counts()
    answer = _post(client, body)
    assert answer.status_code == status, answer.content
    error = answer.json()["error"]
    assert error["code"] == code, error
    assert error["message"].strip()
    assert _counts() == before
    return error


def test_a_compact_batch_is_one_entry_one_tree_and_each_message_keeps_its_path_and_receipt(
    single_validator: Any, dispatched: Any, make_party: Callable[..., Party], operator: Any
) -> None:
    bob, carol = make_party("bob", custody="self"), make_party("carol")
    batch = batch_signed_messages(bob, [carol.address], 5)
    body = _compact(batch)
    assert "sender" not in body["envelopes"][0]
    assert "path" not in json.dumps(body)
    before = _counts()

    answer = _post(operator, body)
    assert answer.status_code == 201, answer.content
    results = answer.json()
    assert [item["id"] for item in results] == [item["envelope"]["id"] for item in batch]
    assert [item["digest"] for item in results] == [parse_signed_message(item).digest.hex() for item in batch]
    after = _counts()
    assert {name: after[name] - before[name] for name in after} == {
        "messages": 5,
        "deliveries": 5,
        "entries": 1,
        "attachments": 0,
        "observations": 1,
        "trees": 1,
    }
    record = LedgerEntry.objects.get(kind="message-batch")
    assert record.body == {
        "root": batch[0]["batch"]["root"],
        "size": 5,
        "signature": batch[0]["batch"]["signature"],
    }
    tree = MessageBatchTree.objects.get()
    assert tree.ledger_entry_id == record.pk
    assert tree.size == 5
    assert bytes(tree.leaves).hex() == "".join(item["digest"] for item in results)

    # The row keeps its place, not the path; the path is the tree's, as the sender's proof said.
    with connection.cursor() as cursor:
        cursor.execute("SELECT batch FROM messaging_message WHERE message_id = %s", [results[3]["id"]])
        (stored_text,) = cursor.fetchone()
    assert json.loads(stored_text) == {"root": batch[3]["batch"]["root"], "size": 5, "index": 3}
    shown = operator.get(f"/api/messages/{results[3]['id']}/").json()
    assert shown["batch"] == {key: batch[3]["batch"][key] for key in ("root", "size", "index", "path")}
    assert shown["envelope"] == batch[3]["envelope"]
    # What the router sends a recipient's node: the message in its proof form, as signed.
    for index in range(5):
        assert services.message_wire(Message.objects.get(message_id=results[index]["id"])) == batch[index]
    # Look-ups by party still find each message.
    found = operator.get("/api/messages/", {"party": carol.address}).json()
    assert {item["id"] for item in found} == {item["id"] for item in results}

    # The same batch again is a replay: nothing new is recorded or stored.
    again = _post(operator, body)
    assert again.status_code == 201, again.content
    assert all(item["replayed"] for item in again.json())
    assert _counts() == after

    consensus_services.votes_apply()
    assert services.messages_follow()["in_block"] == 5
    receipt = operator.get(f"/api/messages/{results[3]['id']}/receipt").json()
    assert receipt["entry"]["entry"]["kind"] == "message-batch"
    assert receipt["message"]["index"] == 3
    trust = Trust(validators=frozenset({node_signer().public_key}), issuer=node_signer().public_key)
    report = receipt_verify(receipt, trust=trust, sections=RECEIPT_SECTIONS)
    assert report.ok, [(check.name, check.status, check.detail) for check in report.checks]
    message_check = next(check for check in report.checks if check.name == "message")
    assert "signed as message 3 of a batch of 5" in message_check.detail


def _flipped(hex_text: str) -> str:
    return hex_text[:-1] + ("1" if hex_text[-1] == "0" else "0")


def test_bad_compact_batches_are_refused_with_their_code_and_nothing_is_stored(
    make_party: Callable[..., Party], operator: Any
) -> None:
    bob, carol, alice = (
        make_party("bob", custody="self"),
        make_party("carol"),
        make_party("alice", custody="self"),
    )
    body = _compact(batch_signed_messages(bob, [carol.address], 4))
    other = _compact(batch_signed_messages(bob, [carol.address], 4, time_ms=1_900_000_000_000))

    def changed(change: Callable[[dict[str, Any]], Any]) -> dict[str, Any]:
        copied = copy.deepcopy(body)
        change(copied)
        return copied

    # The envelopes are not the batch whose root the sender signed.
    _refused(operator, changed(lambda b: b["envelopes"].reverse()), 400, "bad_batch_proof")
    _refused(operator, changed(lambda b: b["envelopes"][2].update(time=1)), 400, "bad_batch_proof")
    _refused(
        operator,
        changed(lambda b: b["envelopes"].__setitem__(1, other["envelopes"][1])),
        400,
        "bad_batch_proof",
    )
    _refused(
        operator, changed(lambda b: b["batch"].update(root=other["batch"]["root"])), 400, "bad_batch_proof"
    )
    # A batch is sent whole: the head's size is the number of envelopes.
    _refused(operator, changed(lambda b: b["envelopes"].pop()), 400, "bad_batch_proof")
    _refused(operator, changed(lambda b: b["batch"].update(size=5)), 400, "bad_batch_proof")
    # The signature: flipped, another batch's, or the batch claimed for another sender.
    _refused(
        operator,
        changed(lambda b: b["batch"].update(signature=_flipped(b["batch"]["signature"]))),
        400,
        "bad_signature",
    )
    _refused(
        operator,
        changed(lambda b: b["batch"].update(signature=other["batch"]["signature"])),
        400,
        "bad_signature",
    )
    # Another sender named in the head: the digests change, so the root is not the signed one.
    _refused(operator, changed(lambda b: b["batch"].update(sender=alice.address)), 400, "bad_batch_proof")
    # Alice's key over Bob's batch: the envelope names a key that is not Bob's.
    forged = changed(lambda b: b["batch"].update(sender_key=alice.key.public_key.hex()))
    _refused(operator, forged, 400, "bad_batch_proof")
    # Bob's address over envelopes Alice signed with her own key: not Bob's key.
    impostor = Party(counterparty=bob.counterparty, key=alice.key, box=alice.box)
    _refused(operator, _compact(batch_signed_messages(impostor, [carol.address], 2)), 400, "bad_signature")
    # Form: the head, an envelope's fields, the list.
    _refused(operator, changed(lambda b: b["batch"].pop("size")), 400, "bad_batch_proof")
    _refused(operator, changed(lambda b: b["batch"].update(root="XY" * 32)), 400, "bad_batch_proof")
    _refused(operator, changed(lambda b: b["batch"].update(sender="Bob*Bank")), 400, "bad_address")
    error = _refused(
        operator, changed(lambda b: b["envelopes"][2].update(sender=bob.address)), 400, "bad_envelope"
    )
    assert error["message"].startswith("message 2: ")
    assert "batch head" in error["message"]
    error = _refused(operator, changed(lambda b: b["envelopes"][1].pop("kind")), 400, "bad_envelope")
    assert error["message"].startswith("message 1: ")
    _refused(operator, changed(lambda b: b["envelopes"][3].update(kind="poem")), 400, "bad_kind")
    _refused(operator, changed(lambda b: b.update(envelopes=[])), 400, "invalid")
    _refused(operator, changed(lambda b: b.update(envelopes={"0": b["envelopes"][0]})), 400, "invalid")
    _refused(operator, changed(lambda b: b.update(envelopes=b["envelopes"] * 251)), 400, "invalid")
    _refused(operator, changed(lambda b: b.pop("batch")), 400, "invalid")
    assert Message.objects.count() == 0
    assert MessageBatchTree.objects.count() == 0
    # The untouched batch is then accepted.
    assert _post(operator, body).status_code == 201


def test_a_compact_batch_to_an_unknown_or_unaccepted_recipient_or_from_a_stranger_stores_nothing(
    make_party: Callable[..., Party], operator: Any, auditor: Any
) -> None:
    bob, carol = make_party("bob", custody="self"), make_party("carol")
    # Reading roles do not send.
    before = _counts()
    assert _post(auditor, _compact(batch_signed_messages(bob, [carol.address], 2))).status_code == 403
    assert _counts() == before
    dave = make_party("dave", status="PENDING")
    _refused(operator, _compact(batch_signed_messages(bob, [dave.address], 2)), 409, "recipient_not_accepted")
    nobody = f"nobody*{carol.address.split('*')[1]}"
    _refused(operator, _compact(batch_signed_messages(bob, [nobody], 2)), 404, "unknown_recipient")
    erin = make_party("erin", custody="self", status="PENDING")
    _refused(operator, _compact(batch_signed_messages(erin, [carol.address], 2)), 409, "sender_not_accepted")
    assert Message.objects.count() == 0


def test_recipients_whose_names_need_json_escaping_are_stored_and_found_by_party(
    make_party: Callable[..., Party], operator: Any
) -> None:
    # The recipients column is written as JSON text put together per row: quotes, backslashes and
    # non-ASCII letters in a name must come back as the address.
    bob, odd = make_party("bob", custody="self"), make_party('o"b\\ü', custody="self")
    answer = _post(operator, _compact(batch_signed_messages(bob, [odd.address], 2)))
    assert answer.status_code == 201, answer.content
    stored = Message.objects.get(message_id=answer.json()[0]["id"])
    assert stored.recipients == [odd.address]
    found = operator.get("/api/messages/", {"party": odd.address}).json()
    assert {item["id"] for item in found} == {item["id"] for item in answer.json()}
