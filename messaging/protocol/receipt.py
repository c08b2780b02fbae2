"""The ``message`` section of a receipt (docs/receipt.md, "The message section").

A message signed alone is recorded as a ``message`` entry on its sender's ledger (the entry's
body carries the message digest); messages signed as one batch are recorded by one
``message-batch`` entry (the batch root, size and the sender's batch signature). A message's
receipt is the receipt of that entry (its signatures, its commitment in an agreed block, the
block log and the anchor) plus this section: the envelope the sender signed, in its receipt
form, and the sender's signature or the message's place in its batch::

    "message": {"envelope": {...}, "signature": "<base64>"}
    "message": {"envelope": {...}, "index": 617, "path": "<base64 of the path's hashes>"}

Receipt version 2 writes it compactly (``messaging.protocol.record``: what is left out, the
digest and the empty fields of the envelope, the verifier derives; keys, signature and path are
base64 like the rest of the receipt); ``messaging.protocol.record.envelope_from_receipt`` gives
the envelope back in its signed (wire) form. An encrypted body stays what the envelope is: one
NaCl box per recipient, never the plaintext.

This module adapts :func:`messaging.protocol.record.check_message_section` to the receipt
verifier's :class:`ReceiptSection`: ``ledgers.protocol.receipt`` cannot import messaging (this
package imports it), so callers pass ``MESSAGE_SECTION`` to ``receipt_verify`` (the registry is
``settlement.verify.RECEIPT_SECTIONS``).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from consensus.protocol.receipt import ReceiptCheckFailed, ReceiptFormatError
from ledgers.protocol.receipt import ReceiptSection
from messaging.protocol.envelope import MAX_BATCH_SIZE, SignedMessage
from messaging.protocol.errors import MessageError
from messaging.protocol.record import (
    BATCH_SECTION_KEYS,
    SINGLE_SECTION_KEYS,
    check_message_section,
    envelope_from_receipt,
    message_section_of,
    read_section_b64,
)
from settlement.protocol.encoding import CanonicalEncodingError

MESSAGE_SECTION_NAME = "message"

__all__ = ["MESSAGE_SECTION", "message_section_json"]


def message_section_json(signed: SignedMessage) -> dict[str, Any]:
    """The receipt's message section for a signed message (the envelope as it was signed)."""
    return message_section_of(signed)


def _parse(value: object) -> None:
    """The section's form: exact keys, an envelope in exactly its receipt form (a value that only
    parses to the same envelope is not what the receipt proves), strict base64, an index in range."""
    if not isinstance(value, Mapping) or set(value) not in (SINGLE_SECTION_KEYS, BATCH_SECTION_KEYS):
        raise ReceiptFormatError(
            'message: a message section is {"envelope", "signature"} or {"envelope", "index", "path"}'
        )
    try:
        envelope_from_receipt(value["envelope"])
        if "path" in value:
            index = value["index"]
            if isinstance(index, bool) or not isinstance(index, int) or not 0 <= index < MAX_BATCH_SIZE:
                raise ReceiptFormatError(f"message.index is an integer from 0 to {MAX_BATCH_SIZE - 1}")
            read_section_b64(value["path"], what="path", multiple=32, most=32 * 16)
        else:
            read_section_b64(value["signature"], what="signature", multiple=64, most=64)
    except (MessageError, CanonicalEncodingError) as error:
        raise ReceiptFormatError(f"message: {error}") from error


def _check(value: object, entry: Mapping[str, Any]) -> str:
    """The sender's signature holds over the envelope, the digest is the envelope's, and the
    ledger entry (whose signatures and place in an agreed, anchored block the receipt's other
    checks prove) records exactly this message on a ledger of the sender's bank."""
    try:
        signed = check_message_section(value, entry)
    except MessageError as error:
        raise ReceiptCheckFailed(f"{error.code}: {error.message}") from error
    envelope = signed.envelope
    body = (
        f"body encrypted to {len(envelope.recipients)} recipient(s)" if envelope.encrypted else "body plain"
    )
    if signed.batch is None:
        how = f"signed by sender key {envelope.sender_key.hex()}; digest {signed.digest.hex()} is the one"
    else:
        how = (
            f"signed as message {signed.batch.index} of a batch of {signed.batch.size} by sender key "
            f"{envelope.sender_key.hex()}; digest {signed.digest.hex()} leads to batch root "
            f"{signed.batch.root.hex()}, which"
        )
    return (
        f"{envelope.kind} message {envelope.id} from {envelope.sender} to {', '.join(envelope.recipients)}, "
        f"{how} entry {entry['height']} of {entry['ledger']} records; {body}"
    )


MESSAGE_SECTION = ReceiptSection(name=MESSAGE_SECTION_NAME, after="entry-links", parse=_parse, check=_check)
