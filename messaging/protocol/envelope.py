"""The message envelope: what a sender signs, what the router carries and what a receipt proves.

An envelope (a JSON object, canonical RFC 8785 encoding) is::

    {"v": 1, "id": <32 hex>, "kind": "note", "sender": "alice*bank-a.test",
     "sender_key": <Ed25519 hex>, "recipients": ["carol*bank-c.test"], "time": <ms>,
     "reply_to": null | <message id>, "agreement": null | "offer" | "acceptance",
     "attachments": [{"sha256": <hex>, "size": n, "media_type": "application/pdf"}],
     "body": {"encoding": "plain", "text": "..."}
           | {"encoding": "box", "sender_box_key": <X25519 hex>, "boxes": {<recipient>: <base64>}}}

Signed bytes: ``domain_bytes("message", envelope)``; the message digest is SHA-256 of the same
bytes (= ``object_hash("message", envelope)``). The envelope names the sender's keys so that it
verifies on its own; whose keys they are is what the sender's bank vouches for (it co-signs the
``message`` entry that carries the digest on the sender's ledger, and it is the peer whose signed
transport delivers it). An encrypted body is one NaCl Box per recipient, from the sender's X25519
key to the recipient's: the node that signs or routes it never needs the plaintext.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from functools import lru_cache
from typing import Any, NewType

import nacl.exceptions
import nacl.signing

from messaging.protocol.errors import (
    BadAddress,
    BadEnvelope,
    BadLink,
    BadMessageKind,
    BadMessageSignature,
    MessageTooLarge,
)
from settlement.protocol.encoding import CanonicalEncodingError, Digest, domain_bytes
from settlement.protocol.identifiers import InvalidFederationAddress, parse_federation_address
from settlement.protocol.signing import PublicKey, Signature, SigningKey

MessageId = NewType("MessageId", str)

MESSAGE_OBJECT_KIND = "message"
ENVELOPE_VERSION = 1
KINDS = ("document", "agreement", "otc-trade", "settlement-instruction", "note")
AGREEMENT_ROLES = ("offer", "acceptance")
ENCODINGS = ("plain", "box")

# Limits: a message is a record, not a file transfer; files travel as content-addressed
# attachments (the counterparty document store's 10 MiB limit and types).
MAX_RECIPIENTS = 32
MAX_ATTACHMENTS = 16
MAX_BODY_BYTES = 64 * 1024  # plaintext, UTF-8
BOX_OVERHEAD_BYTES = 24 + 16  # nonce + Poly1305 tag, prepended by nacl Box.encrypt
MAX_ENVELOPE_BYTES = 256 * 1024  # the canonical envelope, every box included
MAX_ATTACHMENT_BYTES = 10 * 1024 * 1024
ATTACHMENT_MEDIA_TYPES = ("application/pdf", "image/png", "image/jpeg")

_ENVELOPE_FIELDS = frozenset(
    {
        "v",
        "id",
        "kind",
        "sender",
        "sender_key",
        "recipients",
        "time",
        "reply_to",
        "agreement",
        "attachments",
        "body",
    }
)
_ID = re.compile(r"[0-9a-f]{32}")
_HEX32 = re.compile(r"[0-9a-f]{64}")
_MAX_TIME = 2**53 - 1


@dataclass(frozen=True)
class Attachment:
    sha256: str
    size: int
    media_type: str

    def to_json(self) -> dict[str, Any]:
        return {"sha256": self.sha256, "size": self.size, "media_type": self.media_type}


@dataclass(frozen=True)
class Envelope:
    """A checked envelope. Build one with :func:`make_envelope` or :func:`parse_envelope`."""

    id: MessageId
    kind: str
    sender: str
    sender_key: PublicKey
    recipients: tuple[str, ...]
    time: int
    reply_to: MessageId | None
    agreement: str | None
    attachments: tuple[Attachment, ...]
    body: Mapping[str, Any]

    @property
    def encrypted(self) -> bool:
        return self.body.get("encoding") == "box"

    def to_json(self) -> dict[str, Any]:
        return {
            "v": ENVELOPE_VERSION,
            "id": self.id,
            "kind": self.kind,
            "sender": self.sender,
            "sender_key": self.sender_key.hex(),
            "recipients": list(self.recipients),
            "time": self.time,
            "reply_to": self.reply_to,
            "agreement": self.agreement,
            "attachments": [item.to_json() for item in self.attachments],
            "body": dict(self.body),
        }


@dataclass(frozen=True)
class EncodedMessage:
    """An envelope with its signed bytes and digest, computed once and passed along."""

    envelope: Envelope
    signed_bytes: bytes
    digest: Digest


@dataclass(frozen=True)
class SignedMessage:
    encoded: EncodedMessage
    signature: Signature

    @property
    def envelope(self) -> Envelope:
        return self.encoded.envelope

    @property
    def digest(self) -> Digest:
        return self.encoded.digest

    def to_json(self) -> dict[str, Any]:
        return {"envelope": self.envelope.to_json(), "signature": self.signature.hex()}


# --- field checks ---------------------------------------------------------------------------


def _message_id(value: object, *, field: str) -> MessageId:
    if not isinstance(value, str) or not _ID.fullmatch(value):
        raise BadEnvelope(f"{field} must be 32 lower-case hex digits (a message id)", field=field)
    return MessageId(value)


def _address(value: object, *, field: str) -> str:
    try:
        parsed = parse_federation_address(value)  # type: ignore[arg-type]
    except InvalidFederationAddress as error:
        raise BadAddress(f"{field}: {error}", field=field) from error
    text = str(parsed)
    if text != value:
        raise BadAddress(f"{field}: write the address in lower case, as {text}", field=field)
    return text


def _hex_key(value: object, *, field: str) -> bytes:
    if not isinstance(value, str) or not _HEX32.fullmatch(value):
        raise BadEnvelope(f"{field} must be 64 lower-case hex digits (a 32-byte key)", field=field)
    return bytes.fromhex(value)


def _check_kind_and_links(kind: object, reply_to: MessageId | None, agreement: object) -> None:
    if kind not in KINDS:
        raise BadMessageKind(f"kind must be one of {', '.join(KINDS)}", field="kind")
    if kind == "agreement":
        if agreement not in AGREEMENT_ROLES:
            raise BadLink("an agreement says whether it is an offer or an acceptance", field="agreement")
        if agreement == "acceptance" and reply_to is None:
            raise BadLink("an acceptance names the offer it accepts in reply_to", field="reply_to")
    elif agreement is not None:
        raise BadLink("only an agreement message has an agreement role", field="agreement")


def _attachments(value: object) -> tuple[Attachment, ...]:
    if not isinstance(value, list):
        raise BadEnvelope("attachments must be a list", field="attachments")
    if len(value) > MAX_ATTACHMENTS:
        raise MessageTooLarge(f"a message has at most {MAX_ATTACHMENTS} attachments", field="attachments")
    result = []
    for item in value:
        if not isinstance(item, dict) or set(item) != {"sha256", "size", "media_type"}:
            raise BadEnvelope("an attachment is {sha256, size, media_type}", field="attachments")
        sha, size, media_type = item["sha256"], item["size"], item["media_type"]
        if not isinstance(sha, str) or not _HEX32.fullmatch(sha):
            raise BadEnvelope("an attachment's sha256 is 64 lower-case hex digits", field="attachments")
        if isinstance(size, bool) or not isinstance(size, int) or size < 1:
            raise BadEnvelope("an attachment's size is a positive number of bytes", field="attachments")
        if size > MAX_ATTACHMENT_BYTES:
            raise MessageTooLarge(
                f"an attachment is at most {MAX_ATTACHMENT_BYTES} bytes (10 MiB)", field="attachments"
            )
        if media_type not in ATTACHMENT_MEDIA_TYPES:
            raise BadEnvelope(
                f"an attachment is one of {', '.join(ATTACHMENT_MEDIA_TYPES)}", field="attachments"
            )
        result.append(Attachment(sha256=sha, size=size, media_type=media_type))
    if len({item.sha256 for item in result}) != len(result):
        raise BadEnvelope("the same attachment is listed twice", field="attachments")
    return tuple(result)


def decode_box(value: object, *, recipient: str) -> bytes:
    if not isinstance(value, str):
        raise BadEnvelope(f"the box for {recipient} is base64 text", field="body")
    if len(value) > 4 * ((MAX_BODY_BYTES + BOX_OVERHEAD_BYTES + 2) // 3):
        raise MessageTooLarge(f"the body is at most {MAX_BODY_BYTES} bytes before encryption", field="body")
    try:
        ciphertext = base64.b64decode(value, validate=True)
    except (binascii.Error, ValueError) as error:
        raise BadEnvelope(f"the box for {recipient} is not valid base64", field="body") from error
    if len(ciphertext) < BOX_OVERHEAD_BYTES:
        raise BadEnvelope(f"the box for {recipient} is too short to be a NaCl box", field="body")
    return ciphertext


def _body(value: object, recipients: tuple[str, ...]) -> dict[str, Any]:
    if not isinstance(value, dict):
        raise BadEnvelope("body must be an object", field="body")
    encoding = value.get("encoding")
    if encoding == "plain":
        if set(value) != {"encoding", "text"} or not isinstance(value["text"], str):
            raise BadEnvelope('a plain body is {"encoding": "plain", "text": "..."}', field="body")
        # Length in characters bounds the bytes by 4x; count bytes only when it could matter.
        text = value["text"]
        if len(text) * 4 > MAX_BODY_BYTES and len(text.encode("utf-8", "surrogatepass")) > MAX_BODY_BYTES:
            raise MessageTooLarge(f"the body is at most {MAX_BODY_BYTES} bytes", field="body")
        return value
    if encoding == "box":
        if set(value) != {"encoding", "sender_box_key", "boxes"}:
            raise BadEnvelope(
                'a box body is {"encoding": "box", "sender_box_key": "...", "boxes": {...}}', field="body"
            )
        _hex_key(value["sender_box_key"], field="body.sender_box_key")
        boxes = value["boxes"]
        if not isinstance(boxes, dict) or set(boxes) != set(recipients):
            raise BadEnvelope("an encrypted body has exactly one box per recipient", field="body")
        for recipient, box in boxes.items():
            decode_box(box, recipient=recipient)
        return value
    raise BadEnvelope(f"body encoding must be one of {', '.join(ENCODINGS)}", field="body")


def parse_envelope(value: object) -> Envelope:
    """Check every field of a wire envelope; raise a :class:`MessageError` on the first problem."""
    if not isinstance(value, dict):
        raise BadEnvelope("an envelope is a JSON object")
    if set(value) != _ENVELOPE_FIELDS:
        missing, extra = _ENVELOPE_FIELDS - set(value), set(value) - _ENVELOPE_FIELDS
        raise BadEnvelope(
            "the envelope "
            + "; ".join(
                part
                for part in (
                    f"lacks {', '.join(sorted(missing))}" if missing else "",
                    f"has unknown fields {', '.join(sorted(extra))}" if extra else "",
                )
                if part
            )
        )
    if value["v"] != ENVELOPE_VERSION or isinstance(value["v"], bool):
        raise BadEnvelope(f"v must be {ENVELOPE_VERSION}", field="v")
    message_id = _message_id(value["id"], field="id")
    reply_to = None if value["reply_to"] is None else _message_id(value["reply_to"], field="reply_to")
    if reply_to == message_id:
        raise BadLink("a message cannot reply to itself", field="reply_to")
    _check_kind_and_links(value["kind"], reply_to, value["agreement"])
    sender = _address(value["sender"], field="sender")
    sender_key = PublicKey(_hex_key(value["sender_key"], field="sender_key"))
    recipients = value["recipients"]
    if not isinstance(recipients, list) or not recipients:
        raise BadEnvelope("recipients is a non-empty list of federation addresses", field="recipients")
    if len(recipients) > MAX_RECIPIENTS:
        raise MessageTooLarge(f"a message has at most {MAX_RECIPIENTS} recipients", field="recipients")
    checked = tuple(_address(item, field="recipients") for item in recipients)
    if len(set(checked)) != len(checked):
        raise BadEnvelope("a recipient is listed twice", field="recipients")
    if sender in checked:
        raise BadEnvelope("the sender is not one of its own recipients", field="recipients")
    time = value["time"]
    if isinstance(time, bool) or not isinstance(time, int) or not 0 <= time <= _MAX_TIME:
        raise BadEnvelope("time is milliseconds since 1970 (a non-negative integer)", field="time")
    attachments = _attachments(value["attachments"])
    if value["kind"] == "document" and not attachments:
        raise BadEnvelope("a document message carries at least one attachment", field="attachments")
    body = _body(value["body"], checked)
    return Envelope(
        id=message_id,
        kind=value["kind"],
        sender=sender,
        sender_key=sender_key,
        recipients=checked,
        time=time,
        reply_to=reply_to,
        agreement=value["agreement"],
        attachments=attachments,
        body=body,
    )


def make_envelope(
    *,
    message_id: str,
    kind: str,
    sender: str,
    sender_key: bytes,
    recipients: Sequence[str],
    time: int,
    body: Mapping[str, Any],
    reply_to: str | None = None,
    agreement: str | None = None,
    attachments: Sequence[Mapping[str, Any]] = (),
) -> Envelope:
    """Build an envelope from parts, with the same checks as one that arrives on the wire."""
    return parse_envelope(
        {
            "v": ENVELOPE_VERSION,
            "id": message_id,
            "kind": kind,
            "sender": sender,
            "sender_key": bytes(sender_key).hex(),
            "recipients": list(recipients),
            "time": time,
            "reply_to": reply_to,
            "agreement": agreement,
            "attachments": [dict(item) for item in attachments],
            "body": dict(body),
        }
    )


# --- encoding, digest, signature ------------------------------------------------------------


def encode_message(envelope: Envelope) -> EncodedMessage:
    try:
        signed_bytes = domain_bytes(MESSAGE_OBJECT_KIND, envelope.to_json())
    except CanonicalEncodingError as error:
        raise BadEnvelope(f"the envelope cannot be encoded canonically: {error}") from error
    if len(signed_bytes) > MAX_ENVELOPE_BYTES:
        raise MessageTooLarge(f"an envelope is at most {MAX_ENVELOPE_BYTES} bytes, boxes included")
    return EncodedMessage(
        envelope=envelope, signed_bytes=signed_bytes, digest=Digest(hashlib.sha256(signed_bytes).digest())
    )


def message_digest(envelope: Envelope) -> Digest:
    return encode_message(envelope).digest


@lru_cache(maxsize=1024)
def _nacl_signer(seed: bytes) -> nacl.signing.SigningKey:
    # Building a key derives its public half (slower than a signature); a node signing for its
    # custodial senders keeps the few it uses built.
    return nacl.signing.SigningKey(seed)


def sign_message(encoded: EncodedMessage, *, key: SigningKey) -> SignedMessage:
    """The sender's signature (the client, or the node for a custodial sender's sealed key).

    The same bytes ``settlement.protocol.signing.sign(key, "message", envelope)`` signs."""
    if key.public_key != encoded.envelope.sender_key:
        raise BadMessageSignature("the envelope names another sender key than the one signing it")
    return SignedMessage(
        encoded=encoded, signature=Signature(_nacl_signer(key.seed).sign(encoded.signed_bytes).signature)
    )


def verify_message(encoded: EncodedMessage, signature: bytes) -> SignedMessage:
    """Raise :class:`BadMessageSignature` unless the envelope's sender key signed these bytes."""
    if len(signature) != 64:
        raise BadMessageSignature("an Ed25519 signature is 64 bytes", field="signature")
    try:
        nacl.signing.VerifyKey(bytes(encoded.envelope.sender_key)).verify(encoded.signed_bytes, signature)
    except (nacl.exceptions.BadSignatureError, nacl.exceptions.ValueError) as error:
        raise BadMessageSignature(
            f"the signature does not verify with the sender key of message {encoded.envelope.id}",
            field="signature",
        ) from error
    return SignedMessage(encoded=encoded, signature=Signature(bytes(signature)))


def parse_signed_message(value: object) -> SignedMessage:
    """``{"envelope": {...}, "signature": <hex>}`` from the wire: parsed, encoded, verified."""
    if not isinstance(value, dict) or set(value) != {"envelope", "signature"}:
        raise BadEnvelope('a signed message is {"envelope": {...}, "signature": "<hex>"}')
    signature = value["signature"]
    if not isinstance(signature, str) or not re.fullmatch(r"[0-9a-f]{128}", signature):
        raise BadMessageSignature("signature is 128 lower-case hex digits (Ed25519)", field="signature")
    return verify_message(encode_message(parse_envelope(value["envelope"])), bytes.fromhex(signature))


# --- links between messages -----------------------------------------------------------------


def check_acceptance(acceptance: Envelope, offer: Envelope) -> None:
    """An acceptance answers an agreement offer that was sent to its sender, and goes back to
    the offer's sender (seed 002: "if I say I will do something for you, and you say you will do
    something for me in return, that is legally a type of contract")."""
    if acceptance.kind != "agreement" or acceptance.agreement != "acceptance":
        raise BadLink("only an agreement acceptance is checked against an offer")
    if acceptance.reply_to != offer.id:
        raise BadLink("the acceptance does not name this offer in reply_to", field="reply_to")
    if offer.kind != "agreement" or offer.agreement != "offer":
        raise BadLink(f"message {offer.id} is not an agreement offer", field="reply_to")
    if acceptance.sender not in offer.recipients:
        raise BadLink(f"{acceptance.sender} was not offered message {offer.id}", field="reply_to")
    if offer.sender not in acceptance.recipients:
        raise BadLink(f"an acceptance goes back to the offer's sender, {offer.sender}", field="recipients")
    if acceptance.time < offer.time:
        raise BadLink("an acceptance cannot be older than the offer it accepts", field="time")
