"""Helpers for the messaging shell tests (fixtures are in conftest.py)."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from typing import Any

from ledgers.models import LedgerEntry
from messaging.models import Delivery, Message, MessageAttachment
from messaging.protocol import encode_message, make_envelope, plain_body, seal_body, sign_batch, sign_message
from settlement.counterparties.models import Counterparty
from settlement.protocol.keys import X25519KeyPair
from settlement.protocol.signing import SigningKey


@dataclass
class Party:
    counterparty: Counterparty
    key: SigningKey
    box: X25519KeyPair

    @property
    def address(self) -> str:
        return self.counterparty.federation_address


def signed_message(
    sender: Party,
    recipients: dict[str, bytes] | list[str],
    *,
    text: str = "hello",
    encrypt: bool = False,
    kind: str = "note",
    message_id: str | None = None,
    time_ms: int = 1_800_000_000_000,
    **parts: Any,
) -> dict[str, Any]:
    """A message a self-custody client signed (and encrypted) itself."""
    addresses = list(recipients)
    body = (
        seal_body(text=text, sender_box=sender.box, recipient_keys=dict(recipients))  # type: ignore[arg-type]
        if encrypt
        else plain_body(text)
    )
    envelope = make_envelope(
        message_id=message_id or uuid.uuid4().hex,
        kind=kind,
        sender=sender.address,
        sender_key=sender.key.public_key,
        recipients=addresses,
        time=time_ms,
        body=body,
        **parts,
    )
    return sign_message(encode_message(envelope), key=sender.key).to_json()


def batch_signed_messages(
    sender: Party, recipients: list[str], count: int, *, time_ms: int = 1_800_000_000_000
) -> list[dict[str, Any]]:
    """``count`` plain notes from ``sender``, each to ``recipients``, signed once as one batch:
    the wire form ``{"envelope", "batch": {root, size, index, path, signature}}`` of each."""
    encoded = [
        encode_message(
            make_envelope(
                message_id=uuid.uuid4().hex,
                kind="note",
                sender=sender.address,
                sender_key=sender.key.public_key,
                recipients=recipients,
                time=time_ms + index,
                body=plain_body(f"note {index} of a batch"),
            )
        )
        for index in range(count)
    ]
    return [item.to_json() for item in sign_batch(encoded, key=sender.key)]


def row_counts() -> dict[str, int]:
    """What a refused request must leave unchanged."""
    return {
        "messages": Message.objects.count(),
        "deliveries": Delivery.objects.count(),
        "entries": LedgerEntry.objects.count(),
        "attachments": MessageAttachment.objects.count(),
    }
