# ruff: noqa: N818  -- the names are the API, as in ledgers.protocol.errors
"""Typed errors of the messaging rules: a stable machine ``code``, an HTTP status the shell answers
with, and a sentence for people (STYLE.md §7). Codes are part of the API: never rename one."""

from __future__ import annotations

from typing import ClassVar


class MessageError(ValueError):
    """Base of every refusal; nothing is stored when one is raised."""

    code: ClassVar[str] = "message_error"
    http_status: ClassVar[int] = 400

    def __init__(self, message: str, *, field: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.field = field


class BadEnvelope(MessageError):
    """A field is missing, has the wrong type or shape, or is not allowed here."""

    code = "bad_envelope"


class BadMessageKind(MessageError):
    code = "bad_kind"


class BadAddress(MessageError):
    """Not a ``name*domain`` federation address."""

    code = "bad_address"


class BadLink(MessageError):
    """The agreement linking rules: an acceptance answers an offer it received, to its sender."""

    code = "bad_link"


class MessageTooLarge(MessageError):
    """The body, an attachment or the whole envelope is over its limit."""

    code = "message_too_large"
    http_status = 413


class BadMessageSignature(MessageError):
    """The sender's Ed25519 signature does not verify over the envelope."""

    code = "bad_signature"


class BadBatchProof(MessageError):
    """A batch-signed message's proof is malformed, or its path does not lead from the message's
    digest to the batch root its sender signed (the message is not in that batch)."""

    code = "bad_batch_proof"


class CiphertextDoesNotOpen(MessageError):
    """The box for a recipient does not open with that recipient's key and the sender's key."""

    code = "ciphertext_does_not_open"
    http_status = 422


class SectionMismatch(MessageError):
    """A receipt's message section does not match the sender's ledger entry."""

    code = "message_section_mismatch"
