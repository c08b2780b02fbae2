"""A message as a record of its sender: the ``message`` entry on the sender's ledger, and the check
a receipt verifier runs on a receipt's message section.

The entry's body carries the message digest, id, kind and recipients, never the body: the entry
goes to consensus (its head commitment) and from there into blocks and the firehose, which
participants other than the recipients can read. The digest commits to the whole signed
envelope, ciphertext included, so the record proves what was sent without saying it.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from messaging.protocol.envelope import EncodedMessage, SignedMessage, parse_signed_message
from messaging.protocol.errors import MessageError, SectionMismatch
from settlement.protocol.identifiers import InvalidFederationAddress, parse_federation_address

MESSAGE_ENTRY_KIND = "message"  # the ledger entry kind (ledgers.protocol.kinds.MESSAGE)


def message_entry_body(encoded: EncodedMessage) -> dict[str, Any]:
    """The body of the sender's ``message`` ledger entry for this message."""
    envelope = encoded.envelope
    return {
        "message": encoded.digest.hex(),
        "id": envelope.id,
        "message_kind": envelope.kind,
        "recipients": list(envelope.recipients),
    }


def _entry_of(entry_json: Mapping[str, Any]) -> Mapping[str, Any]:
    # A receipt may carry the bare entry or the signed entry {"entry": ..., signatures}.
    inner = entry_json.get("entry") if isinstance(entry_json, Mapping) else None
    return inner if isinstance(inner, Mapping) else entry_json


def check_message_section(section: object, entry_json: Mapping[str, Any]) -> SignedMessage:
    """Check a receipt's message section against the sender's ledger entry; return the message.

    ``section`` is ``{"envelope": {...}, "signature": <hex>, "digest": <hex>}``. Raises a
    :class:`MessageError` (its ``code`` says which check failed) unless: the envelope is well
    formed, the sender key's signature holds over it, the digest is the envelope's, and the entry
    is a ``message`` entry on a ledger kept by the sender's bank whose body is exactly this
    message's (digest, id, kind, recipients). The entry's own signatures and its place in a block
    are the receipt verifier's other checks.
    """
    if not isinstance(section, Mapping) or set(section) != {"envelope", "signature", "digest"}:
        raise SectionMismatch('a message section is {"envelope", "signature", "digest"}')
    signed = parse_signed_message({"envelope": section["envelope"], "signature": section["signature"]})
    if section["digest"] != signed.digest.hex():
        raise SectionMismatch("the section's digest is not the digest of its envelope", field="digest")
    entry = _entry_of(entry_json)
    if not isinstance(entry, Mapping) or entry.get("kind") != MESSAGE_ENTRY_KIND:
        raise SectionMismatch("the ledger entry is not a message entry", field="entry")
    if entry.get("body") != message_entry_body(signed.encoded):
        raise SectionMismatch(
            "the ledger entry records another message (digest, id, kind or recipients differ)", field="entry"
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
