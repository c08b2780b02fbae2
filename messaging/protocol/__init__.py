"""The messaging rules, pure (no Django, no I/O): envelopes, signatures, encrypted bodies, the
ledger record of a message and the receipt check. See docs/messaging.md."""

from messaging.protocol.boxes import open_body, plain_body, seal_body
from messaging.protocol.envelope import (
    KINDS,
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
    sign_message,
    verify_message,
)
from messaging.protocol.errors import MessageError
from messaging.protocol.record import MESSAGE_ENTRY_KIND, check_message_section, message_entry_body

__all__ = [
    "KINDS",
    "MESSAGE_ENTRY_KIND",
    "EncodedMessage",
    "Envelope",
    "MessageError",
    "MessageId",
    "SignedMessage",
    "check_acceptance",
    "check_message_section",
    "encode_message",
    "make_envelope",
    "message_digest",
    "message_entry_body",
    "open_body",
    "parse_envelope",
    "parse_signed_message",
    "plain_body",
    "seal_body",
    "sign_message",
    "verify_message",
]
