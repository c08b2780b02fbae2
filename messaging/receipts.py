"""Receipts of messages (docs/receipt.md, "The message section"): the receipt of the sender's
``message`` ledger entry, plus the signed envelope in a ``message`` section.

The section is built from the stored envelope and signature and checked against the stored
entry by the same pure verifier a relying party runs (``receipt_build`` verifies before it hands
anything out), so a message row whose envelope and record disagree never gets a receipt.
"""

from __future__ import annotations

from typing import Any

from consensus.receipts import ReceiptNotReady
from ledgers.receipts import entry_receipt
from messaging.errors import ReceiptAtSenderBank, UnknownMessage
from messaging.models import Message
from messaging.protocol.envelope import parse_signed_message
from messaging.protocol.receipt import MESSAGE_SECTION, message_section_json
from messaging.services import message_wire

__all__ = ["ReceiptNotReady", "message_receipt"]


def message_receipt(*, message_id: str) -> dict[str, Any]:
    """The signed receipt of message ``message_id``, sent by a counterparty of this node.

    Raises :class:`UnknownMessage`, :class:`ReceiptAtSenderBank` (delivered here from another
    node) or :class:`ReceiptNotReady` (its record entry is not in an agreed block yet)."""
    message = Message.objects.select_related("ledger_entry__ledger").filter(message_id=message_id).first()
    if message is None:
        raise UnknownMessage(f"message {message_id} is not known to this node")
    entry = message.ledger_entry
    if entry is None:
        ledger = message.record.get("ledger", "its sender's ledger")
        raise ReceiptAtSenderBank(
            f"message {message_id} is recorded on {ledger}, kept by the sender's bank: "
            "ask that bank for its receipt"
        )
    signed = parse_signed_message(message_wire(message))
    try:
        return entry_receipt(
            ledger=entry.ledger,
            height=entry.height,
            optional=[(MESSAGE_SECTION, message_section_json(signed))],
        )
    except ReceiptNotReady as error:
        raise ReceiptNotReady(
            f"Message {message_id} is recorded as entry {entry.height} of {entry.ledger.ubi}, which is "
            "not in an agreed block yet; ask again once consensus has agreed it (usually within seconds)."
        ) from error
