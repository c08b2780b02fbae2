"""A message as a record of its sender: an entry on the sender's ledger, and the check a receipt
verifier runs on a receipt's message section.

A message signed alone is recorded by a ``message`` entry: its digest, id, kind and recipients.
Messages signed as one batch are recorded together by one ``message-batch`` entry: the batch's
root, size and the sender's batch signature; each message is proven in it by its digest's audit
path to that root. Never a body: entries go to consensus (their head commitments) and from there
into blocks and the firehose, which participants other than the recipients can read. A digest
commits to the whole signed envelope, ciphertext included, so the record proves what was sent
without saying it.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

from messaging.protocol.envelope import EncodedMessage, SignedMessage, parse_signed_message
from messaging.protocol.errors import MessageError, SectionMismatch
from settlement.protocol.identifiers import InvalidFederationAddress, parse_federation_address

MESSAGE_ENTRY_KIND = "message"  # the ledger entry kind (ledgers.protocol.kinds.MESSAGE)
MESSAGE_BATCH_ENTRY_KIND = "message-batch"  # ledgers.protocol.kinds.MESSAGE_BATCH
SINGLE_SECTION_KEYS = frozenset({"envelope", "signature", "digest"})
BATCH_SECTION_KEYS = frozenset({"envelope", "batch", "digest"})
BATCH_PLACE_KEYS = frozenset({"index", "path"})
_HEX32 = re.compile(r"[0-9a-f]{64}")


def message_entry_body(encoded: EncodedMessage) -> dict[str, Any]:
    """The body of the sender's ``message`` ledger entry for a message signed alone."""
    envelope = encoded.envelope
    return {
        "message": encoded.digest.hex(),
        "id": envelope.id,
        "message_kind": envelope.kind,
        "recipients": list(envelope.recipients),
    }


def message_batch_entry_body(signed: SignedMessage) -> dict[str, Any]:
    """The body of the sender's ``message-batch`` entry recording the batch ``signed`` is in: the
    head the sender signed (root, size) and its signature, so the ledger itself carries the
    sender's authority for the record."""
    batch = signed.batch
    if batch is None:
        raise SectionMismatch("a message signed alone is recorded by a message entry, not a batch entry")
    return {"root": batch.root.hex(), "size": batch.size, "signature": signed.signature.hex()}


def message_section_of(signed: SignedMessage) -> dict[str, Any]:
    """A receipt's message section: the envelope as signed, its digest, and either the sender's
    signature (signed alone) or the message's place in its batch (``{"index", "path"}``; the
    root, size and batch signature are in the ``message-batch`` entry the receipt proves)."""
    if signed.batch is None:
        return {
            "envelope": signed.envelope.to_json(),
            "signature": signed.signature.hex(),
            "digest": signed.digest.hex(),
        }
    return {
        "envelope": signed.envelope.to_json(),
        "batch": {"index": signed.batch.index, "path": [item.hex() for item in signed.batch.path]},
        "digest": signed.digest.hex(),
    }


def _entry_of(entry_json: Mapping[str, Any]) -> Mapping[str, Any]:
    # A receipt may carry the bare entry or the signed entry {"entry": ..., signatures}.
    inner = entry_json.get("entry") if isinstance(entry_json, Mapping) else None
    return inner if isinstance(inner, Mapping) else entry_json


def _batch_wire(section: Mapping[str, Any], entry: Mapping[str, Any]) -> dict[str, Any]:
    """The batch-signed wire message a batch section and its ``message-batch`` entry make."""
    place, body = section["batch"], entry.get("body")
    if not isinstance(place, Mapping) or set(place) != BATCH_PLACE_KEYS:
        raise SectionMismatch('a batch message section has "batch": {"index", "path"}', field="batch")
    if entry.get("kind") != MESSAGE_BATCH_ENTRY_KIND or not isinstance(body, Mapping):
        raise SectionMismatch("the ledger entry is not a message-batch entry", field="entry")
    if set(body) != {"root", "size", "signature"}:
        raise SectionMismatch("the message-batch entry is not {root, size, signature}", field="entry")
    return {
        "envelope": section["envelope"],
        "batch": {
            "root": body["root"],
            "size": body["size"],
            "index": place["index"],
            "path": place["path"],
            "signature": body["signature"],
        },
    }


def check_message_section(section: object, entry_json: Mapping[str, Any]) -> SignedMessage:
    """Check a receipt's message section against the sender's ledger entry; return the message.

    ``section`` is ``{"envelope", "signature", "digest"}`` (signed alone) or ``{"envelope",
    "batch": {"index", "path"}, "digest"}`` (signed as one of a batch). Raises a
    :class:`MessageError` (its ``code`` says which check failed) unless: the envelope is well
    formed; its sender key's signature holds over it, or over the batch head the entry records
    (root, size, signature) with the path leading from the message's digest to that root; the
    digest is the envelope's; the entry records exactly this message (a ``message`` entry with
    its digest, id, kind and recipients) or its batch (a ``message-batch`` entry); and the entry
    is on a ledger kept by the sender's bank. The entry's own signatures and its place in a block
    are the receipt verifier's other checks.
    """
    entry = _entry_of(entry_json)
    if not isinstance(section, Mapping) or set(section) not in (SINGLE_SECTION_KEYS, BATCH_SECTION_KEYS):
        raise SectionMismatch(
            'a message section is {"envelope", "signature", "digest"} or {"envelope", "batch", "digest"}'
        )
    if not isinstance(entry, Mapping):
        raise SectionMismatch("the ledger entry is not an object", field="entry")
    if "batch" in section:
        signed = parse_signed_message(_batch_wire(section, entry))
    else:
        signed = parse_signed_message({"envelope": section["envelope"], "signature": section["signature"]})
    if section["digest"] != signed.digest.hex():
        raise SectionMismatch("the section's digest is not the digest of its envelope", field="digest")
    if signed.batch is None:
        if entry.get("kind") != MESSAGE_ENTRY_KIND:
            raise SectionMismatch("the ledger entry is not a message entry", field="entry")
        if entry.get("body") != message_entry_body(signed.encoded):
            raise SectionMismatch(
                "the ledger entry records another message (digest, id, kind or recipients differ)",
                field="entry",
            )
    ledger = entry.get("ledger")
    namespace = ledger.split(":")[1] if isinstance(ledger, str) and ledger.count(":") == 2 else None
    try:
        sender_domain = parse_federation_address(signed.envelope.sender).domain
    except InvalidFederationAddress as error:  # parse_envelope already checked; kept for mypy
        raise MessageError(str(error)) from error
    if namespace != sender_domain:
        raise SectionMismatch(
            f"the entry is on {ledger!r}, not a ledger kept by the sender's bank {sender_domain}",
            field="entry",
        )
    return signed
