# ruff: noqa: N818  -- the names are the API, as in messaging.protocol.errors
"""Refusals of the messaging shell that the pure rules cannot know about (who is known here, who
is accepted, what is stored). They are :class:`MessageError` too, so every edge answers them the
same way: ``{"error": {"code", "message", "fields"}}`` with the error's status, nothing stored."""

from __future__ import annotations

from typing import Any

from messaging.protocol.errors import MessageError


class UnknownRecipient(MessageError):
    code = "unknown_recipient"
    http_status = 404


class RecipientNotAccepted(MessageError):
    code = "recipient_not_accepted"
    http_status = 409


class UnknownSender(MessageError):
    code = "unknown_sender"
    http_status = 404


class SenderNotAccepted(MessageError):
    code = "sender_not_accepted"
    http_status = 409


class SenderKeyMismatch(MessageError):
    """A pre-signed envelope names a key that is not the sender counterparty's."""

    code = "bad_signature"


class CustodyMismatch(MessageError):
    """Only a custodial sender's node can sign (and encrypt) for it; others send signed envelopes."""

    code = "custody_mismatch"


class MessageIdReused(MessageError):
    code = "message_id_reused"
    http_status = 409


class UnknownMessage(MessageError):
    code = "unknown_message"
    http_status = 404


class UnknownAttachment(MessageError):
    code = "unknown_attachment"
    http_status = 404


class BadAttachment(MessageError):
    code = "bad_attachment"


class RecipientsUnreachable(MessageError):
    """The recipient's node could not be asked who its recipients are; nothing was sent."""

    code = "peer_unreachable"
    http_status = 503


class NotYourRecipient(MessageError):
    code = "not_a_recipient"
    http_status = 409


class AlreadyFinished(MessageError):
    code = "delivery_finished"
    http_status = 409


def error_fields(error: MessageError) -> dict[str, Any] | None:
    return {error.field: [error.message]} if error.field else None


def indexed(error: MessageError, index: int) -> MessageError:
    """The same refusal, naming which message of a batch it is about."""
    copy = type(error)(f"message {index}: {error.message}", field=error.field)
    return copy


class ReceiptAtSenderBank(MessageError):
    """A message delivered here from another node: its record is on the sender's ledger, which
    only the sender's bank keeps and co-signs, so only that bank can issue its receipt."""

    code = "receipt_at_sender_bank"
    http_status = 404
