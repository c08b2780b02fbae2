"""The ``message`` section of a receipt (docs/receipt.md, "The message section").

A message is recorded as a ``message`` entry on its sender's ledger; the entry's body carries the
message digest. A message's receipt is therefore the receipt of that entry (its signatures, its
commitment in an agreed block, the block log and the anchor) plus this section: the signed
envelope exactly as the sender signed it, the sender's signature and the digest::

    "message": {"envelope": {...}, "signature": "<128 hex>", "digest": "<64 hex>"}

The section is in the messaging wire form (hex, as docs/messaging.md and the API write it), so a
relying party can copy the envelope out of a receipt and send it to any messaging verifier
unchanged. An encrypted body stays what the envelope is: one NaCl box per recipient, never the
plaintext.

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
from messaging.protocol.envelope import SignedMessage, parse_envelope
from messaging.protocol.errors import MessageError
from messaging.protocol.record import check_message_section
from settlement.protocol.encoding import CanonicalEncodingError

MESSAGE_SECTION_NAME = "message"
SECTION_KEYS = frozenset({"envelope", "signature", "digest"})
_SIGNATURE = re.compile(r"[0-9a-f]{128}")
_DIGEST = re.compile(r"[0-9a-f]{64}")

__all__ = ["MESSAGE_SECTION", "message_section_json"]


def message_section_json(signed: SignedMessage) -> dict[str, Any]:
    """The receipt's message section for a signed message (the envelope as it was signed)."""
    return {**signed.to_json(), "digest": signed.digest.hex()}


def _parse(value: object) -> None:
    """The section's form: exact keys, an envelope in exactly the form that was signed (a value
    that only parses to the same envelope is not what the sender signed), lower-case hex."""
    if not isinstance(value, Mapping) or set(value) != SECTION_KEYS:
        raise ReceiptFormatError('message: a message section is {"envelope", "signature", "digest"}')
    try:
        envelope = parse_envelope(value["envelope"])
        if envelope.to_json() != value["envelope"]:
            raise ReceiptFormatError("message.envelope is not in the form that was signed")
    except (MessageError, CanonicalEncodingError) as error:
        raise ReceiptFormatError(f"message.envelope: {error}") from error
    if not isinstance(value["signature"], str) or not _SIGNATURE.fullmatch(value["signature"]):
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
    return (
        f"{envelope.kind} message {envelope.id} from {envelope.sender} to {', '.join(envelope.recipients)}, "
        f"signed by sender key {envelope.sender_key.hex()}; digest {signed.digest.hex()} is the one "
        f"entry {entry['height']} of {entry['ledger']} records; {body}"
    )


MESSAGE_SECTION = ReceiptSection(name=MESSAGE_SECTION_NAME, after="entry-links", parse=_parse, check=_check)
