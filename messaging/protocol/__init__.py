"""The messaging rules, pure (no Django, no I/O): envelopes, signatures, encrypted bodies, the
ledger record of a message and the receipt check. See docs/messaging.md."""

from messaging.protocol.boxes import open_body, plain_body, seal_body
from messaging.protocol.envelope import (
    KINDS,
    BatchProof,
    EncodedMessage,
    Envelope,
    MessageId,
    SignedMessage,
    check_acceptance,
    encode_message,
    make_envelope,
    message_digest,
    parse_envelope,
    parse_signed_message,
    sign_batch,
    sign_message,
    verify_batch_message,
    verify_message,
)
from messaging.protocol.errors import MessageError
from messaging.protocol.record import (
    MESSAGE_BATCH_ENTRY_KIND,
    MESSAGE_ENTRY_KIND,
    check_message_section,
    message_batch_entry_body,
    message_entry_body,
)

__all__ = [
    "KINDS",
    "MESSAGE_BATCH_ENTRY_KIND",
    "MESSAGE_ENTRY_KIND",
    "BatchProof",
    "EncodedMessage",
    "Envelope",
    "MessageError",
    "MessageId",
    "SignedMessage",
    "check_acceptance",
    "check_message_section",
    "encode_message",
    "make_envelope",
    "message_batch_entry_body",
    "message_digest",
    "message_entry_body",
    "open_body",
    "parse_envelope",
    "parse_signed_message",
    "plain_body",
    "seal_body",
    "sign_batch",
    "sign_message",
    "verify_batch_message",
    "verify_message",
]
