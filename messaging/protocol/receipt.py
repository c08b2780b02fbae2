"""The ``message`` section of a receipt (docs/receipt.md, "The message section").

A message signed alone is recorded as a ``message`` entry on its sender's ledger (the entry's
body carries the message digest); messages signed as one batch are recorded by one
``message-batch`` entry (the batch root, size and the sender's batch signature). A message's
receipt is the receipt of that entry (its signatures, its commitment in an agreed block, the
block log and the anchor) plus this section: the signed envelope exactly as the sender signed
it, its digest, and the sender's signature or the message's place in its batch::

    "message": {"envelope": {...}, "signature": "<128 hex>", "digest": "<64 hex>"}
    "message": {"envelope": {...}, "batch": {"index": 7, "path": ["<64 hex>", ...]}, "digest": "<64 hex>"}

The section is in the messaging wire form (hex, as docs/messaging.md and the API write it): a
relying party can copy the envelope out of a receipt and send it to any messaging verifier
unchanged (a batch-signed message with the root, size and signature of its entry). An encrypted
body stays what the envelope is: one NaCl box per recipient, never the plaintext.

This module adapts :func:`messaging.protocol.record.check_message_section` to the receipt
verifier's :class:`ReceiptSection`: ``ledgers.protocol.receipt`` cannot import messaging (this
package imports it), so callers pass ``MESSAGE_SECTION`` to ``receipt_verify`` (the registry is
``settlement.verify.RECEIPT_SECTIONS``).
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

from consensus.protocol.receipt import ReceiptCheckFailed, ReceiptFormatError
from ledgers.protocol.receipt import ReceiptSection
from messaging.protocol.envelope import MAX_BATCH_SIZE, SignedMessage, parse_envelope
from messaging.protocol.errors import MessageError
from messaging.protocol.record import (
    BATCH_PLACE_KEYS,
    BATCH_SECTION_KEYS,
    SINGLE_SECTION_KEYS,
    check_message_section,
    message_section_of,
)
from settlement.protocol.encoding import CanonicalEncodingError

MESSAGE_SECTION_NAME = "message"
_SIGNATURE = re.compile(r"[0-9a-f]{128}")
_DIGEST = re.compile(r"[0-9a-f]{64}")

__all__ = ["MESSAGE_SECTION", "message_section_json"]


def message_section_json(signed: SignedMessage) -> dict[str, Any]:
    """The receipt's message section for a signed message (the envelope as it was signed)."""
    return message_section_of(signed)


def _parse_batch_place(value: object) -> None:
    if not isinstance(value, Mapping) or set(value) != BATCH_PLACE_KEYS:
        raise ReceiptFormatError('message.batch is {"index", "path"}')
    index, path = value["index"], value["path"]
    if isinstance(index, bool) or not isinstance(index, int) or not 0 <= index < MAX_BATCH_SIZE:
        raise ReceiptFormatError(f"message.batch.index is an integer from 0 to {MAX_BATCH_SIZE - 1}")
    if not isinstance(path, list) or len(path) > 16:
        raise ReceiptFormatError("message.batch.path is a list of at most 16 hashes")
    if not all(isinstance(item, str) and _DIGEST.fullmatch(item) for item in path):
        raise ReceiptFormatError("each hash of message.batch.path is 64 lower-case hex digits")


def _parse(value: object) -> None:
    """The section's form: exact keys, an envelope in exactly the form that was signed (a value
    that only parses to the same envelope is not what the sender signed), lower-case hex."""
    if not isinstance(value, Mapping) or set(value) not in (SINGLE_SECTION_KEYS, BATCH_SECTION_KEYS):
        raise ReceiptFormatError(
            'message: a message section is {"envelope", "signature", "digest"} or {"envelope", "batch", "digest"}'
        )
    try:
        envelope = parse_envelope(value["envelope"])
        if envelope.to_json() != value["envelope"]:
            raise ReceiptFormatError("message.envelope is not in the form that was signed")
    except (MessageError, CanonicalEncodingError) as error:
        raise ReceiptFormatError(f"message.envelope: {error}") from error
    if "batch" in value:
        _parse_batch_place(value["batch"])
    elif not isinstance(value["signature"], str) or not _SIGNATURE.fullmatch(value["signature"]):
        raise ReceiptFormatError("message.signature is 128 lower-case hex digits (Ed25519)")
    if not isinstance(value["digest"], str) or not _DIGEST.fullmatch(value["digest"]):
        raise ReceiptFormatError("message.digest is 64 lower-case hex digits (SHA-256)")


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
