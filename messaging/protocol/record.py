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

import base64
import binascii
from collections.abc import Mapping
from typing import Any

from consensus.protocol.receipt import b64
from messaging.protocol.envelope import (
    EncodedMessage,
    Envelope,
    SignedMessage,
    encode_message,
    parse_envelope,
    parse_signed_message,
    verify_message,
)
from messaging.protocol.errors import (
    BadBatchProof,
    BadEnvelope,
    BadMessageSignature,
    MessageError,
    SectionMismatch,
)
from settlement.protocol.identifiers import InvalidFederationAddress, parse_federation_address

MESSAGE_ENTRY_KIND = "message"  # the ledger entry kind (ledgers.protocol.kinds.MESSAGE)
MESSAGE_BATCH_ENTRY_KIND = "message-batch"  # ledgers.protocol.kinds.MESSAGE_BATCH
SINGLE_SECTION_KEYS = frozenset({"envelope", "signature"})
BATCH_SECTION_KEYS = frozenset({"envelope", "index", "path"})


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


# --- the receipt's message section (receipt version 2) -----------------------------------------
#
# A receipt is an archive of proofs, read by a verifier, so its message section is written
# compactly; every byte it leaves out is one the verifier derives, and every form is the only
# one accepted for its content (each value is compared with its re-encoding), so a change to
# any field of it is a change to what is proven. The envelope's receipt form is its signed form
# with the fields that are null or empty (``reply_to``, ``agreement``, ``attachments``) left out
# and its two keys (``sender_key``, ``body.sender_box_key``) in base64, like every key of the
# receipt; the digest is not carried (it is the hash of the envelope's signed bytes).

_OPTIONAL_ENVELOPE_FIELDS: tuple[tuple[str, Any], ...] = (
    ("reply_to", None),
    ("agreement", None),
    ("attachments", []),
)


def _b64_to_hex(value: object, *, what: str) -> object:
    """A base64 key of the receipt form as the hex the envelope signs (anything else is left for
    the envelope's own checks to refuse)."""
    if not isinstance(value, str):
        return value
    try:
        return base64.b64decode(value, validate=True).hex()
    except (binascii.Error, ValueError) as error:
        raise BadEnvelope(f"{what} in a receipt is base64", field=what) from error


def receipt_envelope(envelope: Envelope) -> dict[str, Any]:
    """The envelope in a receipt's form (see above)."""
    wire = envelope.to_json()
    for name, empty in _OPTIONAL_ENVELOPE_FIELDS:
        if wire[name] == empty:
            del wire[name]
    wire["sender_key"] = b64(bytes(envelope.sender_key))
    if "sender_box_key" in wire["body"]:
        wire["body"]["sender_box_key"] = b64(bytes.fromhex(wire["body"]["sender_box_key"]))
    return wire


def envelope_from_receipt(value: object) -> Envelope:
    """The envelope a receipt's form stands for; raises a :class:`MessageError` unless ``value``
    is exactly :func:`receipt_envelope` of a valid envelope."""
    if not isinstance(value, Mapping):
        raise BadEnvelope("message.envelope is an object", field="envelope")
    signed_form = dict(value)
    for name, empty in _OPTIONAL_ENVELOPE_FIELDS:
        signed_form.setdefault(name, empty)
    signed_form["sender_key"] = _b64_to_hex(value.get("sender_key"), what="sender_key")
    body = value.get("body")
    if isinstance(body, Mapping) and "sender_box_key" in body:
        signed_form["body"] = {
            **body,
            "sender_box_key": _b64_to_hex(body["sender_box_key"], what="body.sender_box_key"),
        }
    envelope = parse_envelope(signed_form)
    if receipt_envelope(envelope) != value:
        raise SectionMismatch(
            "message.envelope is not in the receipt form of the envelope the sender signed", field="envelope"
        )
    return envelope


def message_section_of(signed: SignedMessage) -> dict[str, Any]:
    """A receipt's message section: the envelope (receipt form) and either the sender's signature
    (signed alone) or the message's place in its batch: ``index`` and ``path`` (the audit path's
    hashes, concatenated, in base64); root, size and batch signature are in the ``message-batch``
    entry the receipt proves."""
    envelope = receipt_envelope(signed.envelope)
    if signed.batch is None:
        return {"envelope": envelope, "signature": b64(bytes(signed.signature))}
    return {
        "envelope": envelope,
        "index": signed.batch.index,
        "path": b64(b"".join(signed.batch.path)),
    }


def _entry_of(entry_json: Mapping[str, Any]) -> Mapping[str, Any]:
    # A receipt may carry the bare entry or the signed entry {"entry": ..., signatures}.
    inner = entry_json.get("entry") if isinstance(entry_json, Mapping) else None
    return inner if isinstance(inner, Mapping) else entry_json


def read_section_b64(
    value: object,
    *,
    what: str,
    multiple: int,
    most: int,
    error: type[MessageError] = SectionMismatch,
) -> bytes:
    """Strict base64 (the one encoding of its bytes) of a multiple of ``multiple`` bytes, at most
    ``most``."""
    if not isinstance(value, str):
        raise error(f"{what} is base64 text", field=what)
    try:
        data = base64.b64decode(value, validate=True)
    except (binascii.Error, ValueError) as failure:
        raise error(f"{what} is not valid base64", field=what) from failure
    if b64(data) != value or len(data) % multiple or len(data) > most:
        raise error(f"{what} is not the base64 of its {multiple}-byte items", field=what)
    return data


def _batch_signed(
    section: Mapping[str, Any], entry: Mapping[str, Any], encoded: EncodedMessage
) -> SignedMessage:
    """The message as one of the batch its ``message-batch`` entry records: the path leads from
    its digest at ``index`` to the entry's root in a tree of the entry's size, and the sender key
    signed (sender, root, size)."""
    body = entry.get("body")
    if entry.get("kind") != MESSAGE_BATCH_ENTRY_KIND or not isinstance(body, Mapping):
        raise SectionMismatch("the ledger entry is not a message-batch entry", field="entry")
    if set(body) != {"root", "size", "signature"}:
        raise SectionMismatch("the message-batch entry is not {root, size, signature}", field="entry")
    index = section["index"]
    path = read_section_b64(section["path"], what="path", error=BadBatchProof, multiple=32, most=32 * 16)
    return parse_signed_message(
        {
            "envelope": encoded.wire,
            "batch": {
                "root": body["root"],
                "size": body["size"],
                "index": index,
                "path": [path[offset : offset + 32].hex() for offset in range(0, len(path), 32)],
                "signature": body["signature"],
            },
        }
    )


def check_message_section(section: object, entry_json: Mapping[str, Any]) -> SignedMessage:
    """Check a receipt's message section against the sender's ledger entry; return the message.

    ``section`` is ``{"envelope", "signature"}`` (signed alone) or ``{"envelope", "index",
    "path"}`` (signed as one of a batch), the envelope in its receipt form. Raises a
    :class:`MessageError` (its ``code`` says which check failed) unless: the envelope is well
    formed and in exactly its receipt form; its sender key's signature holds over it, or over the
    batch head the entry records (root, size, signature) with the path leading from the
    message's digest at ``index`` to that root; the entry records exactly this message (a
    ``message`` entry with its digest, id, kind and recipients) or its batch (a ``message-batch``
    entry); and the entry is on a ledger kept by the sender's bank. The entry's own signatures
    and its place in a block are the receipt verifier's other checks.
    """
    entry = _entry_of(entry_json)
    if not isinstance(section, Mapping) or set(section) not in (SINGLE_SECTION_KEYS, BATCH_SECTION_KEYS):
        raise SectionMismatch(
            'a message section is {"envelope", "signature"} or {"envelope", "index", "path"}'
        )
    if not isinstance(entry, Mapping):
        raise SectionMismatch("the ledger entry is not an object", field="entry")
    encoded = encode_message(envelope_from_receipt(section["envelope"]))
    if "path" in section:
        signed = _batch_signed(section, entry, encoded)
    else:
        signature = read_section_b64(
            section["signature"], what="signature", error=BadMessageSignature, multiple=64, most=64
        )
        signed = verify_message(encoded, signature)
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
