"""A message's receipt end to end on real services: alice (a custodial counterparty) sends carol
an encrypted note through the API → its `message` entry's commitment is agreed by a real Celery
worker (this node the only validator) → one anchor of the block log mined on anvil → GET the
message's receipt → `python -m settlement.verify` passes offline and with --rpc against anvil; a
tampered message section fails naming the `message` check, re-signed by the node or not."""

from __future__ import annotations

import base64
import copy
import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from consensus.models import ObservationStatus, PendingObservation
from messaging import services
from messaging.models import Message
from messaging.protocol.record import envelope_from_receipt
from tests.consensus.consensus_shell_support import single_validator, wait_for
from tests.ledgers.test_ledger_receipt_end_to_end import (
    _anchor_newest_block,
    _resigned,
    _verify,
    anchoring_account,
)
from tests.messaging.messaging_support import Party

pytestmark = [pytest.mark.worker, pytest.mark.ethereum]
__all__ = ["anchoring_account", "single_validator"]

SECRET = "wire 2.5M EUR to the escrow on Friday"


def test_a_message_receipt_verifies_offline_and_against_anvil_and_a_tampered_message_fails(
    single_validator: Any,
    celery_worker: Any,
    make_party: Callable[..., Party],
    anchoring_account: str,
    auditor: Any,
    operator: Any,
    tmp_path: Path,
    settings: Any,
) -> None:
    alice, carol = make_party("alice"), make_party("carol")
    sent = operator.post(
        "/api/messages/",
        data={"sender": alice.address, "kind": "note", "recipients": [carol.address], "text": SECRET},
        content_type="application/json",
    )
    assert sent.status_code == 201, sent.content
    message_id = sent.json()["id"]
    message = Message.objects.get(message_id=message_id)

    # The worker agrees the record entry's commitment (the send voted it); the beat job follows it.
    wait_for(
        lambda: PendingObservation.objects.filter(
            digest=message.observation_digest, status=ObservationStatus.AGREED
        ).exists(),
        what="the message entry's commitment agreed",
        timeout=60,
    )
    assert services.messages_follow()["in_block"] == 1
    message.refresh_from_db()
    assert message.block_height is not None

    anchor = _anchor_newest_block()
    assert anchor.height >= message.block_height
    answer = auditor.get(f"/api/messages/{message_id}/receipt")  # a read role is enough
    assert answer.status_code == 200, answer.content
    receipt = answer.json()
    assert SECRET not in answer.content.decode()  # the envelope's boxes, never the plaintext
    # The envelope in the receipt's form stands for exactly the envelope sent; its digest is derived.
    assert envelope_from_receipt(receipt["message"]["envelope"]).to_json() == sent.json()["envelope"]
    assert "digest" not in receipt["message"]
    assert receipt["entry"]["entry"]["kind"] == "message"
    assert receipt["entry"]["entry"]["body"]["message"] == sent.json()["digest"]
    assert receipt["block"]["height"] == message.block_height
    assert receipt["anchor"]["tx"] == anchor.tx_hash
    assert receipt["anchor"]["account"] == anchoring_account
    path = tmp_path / "receipt.json"
    path.write_text(json.dumps(receipt))

    done = _verify(path)
    assert done.returncode == 0, done.stdout
    assert any(line.split()[:2] == ["message", "ok"] for line in done.stdout.splitlines()), done.stdout
    done = _verify(path, "--rpc", settings.ETH_RPC_URL)
    assert done.returncode == 0, done.stdout
    assert done.stdout.strip().splitlines()[-1] == "VALID: every check passed, the anchor too, on the chain"

    # Every field of the message section, tampered: as it is (the issuer's signature breaks) and
    # re-signed by the node's own key (the message check catches it on its own).
    section = receipt["message"]
    changes: list[tuple[str, Callable[[dict[str, Any]], None]]] = [
        # Another first byte whatever it was (a fixed value would change nothing 1 time in 256).
        (
            "signature",
            lambda s: s.update(
                signature=base64.b64encode(
                    bytes([base64.b64decode(section["signature"])[0] ^ 1])
                    + base64.b64decode(section["signature"])[1:]
                ).decode()
            ),
        ),
        ("envelope.time", lambda s: s["envelope"].update(time=section["envelope"]["time"] + 1)),
        ("envelope.kind", lambda s: s["envelope"].update(kind="settlement-instruction")),
        ("envelope.sender", lambda s: s["envelope"].update(sender="mallory*" + alice.address.split("*")[1])),
        (
            "envelope.body",
            lambda s: s["envelope"]["body"].update(sender_box_key=base64.b64encode(b"\x11" * 32).decode()),
        ),
    ]
    for name, change in changes:
        tampered = copy.deepcopy(receipt)
        change(tampered["message"])
        (tmp_path / "tampered.json").write_text(json.dumps(tampered))
        done = _verify(tmp_path / "tampered.json")
        assert done.returncode == 1, (name, done.stdout)
        assert "check issuer-signature failed" in done.stdout, (name, done.stdout)
        (tmp_path / "resigned.json").write_text(json.dumps(_resigned(tampered)))
        done = _verify(tmp_path / "resigned.json", "--rpc", settings.ETH_RPC_URL)
        assert done.returncode == 1, (name, done.stdout)
        assert done.stdout.strip().splitlines()[-1].startswith("NOT VALID: check message failed"), (
            name,
            done.stdout,
        )
