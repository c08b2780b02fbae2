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

A sender signs either each envelope (``{"envelope", "signature"}``) or once per batch of its
own envelopes (``{"envelope", "batch": {"root", "size", "index", "path", "signature"}}``):
amortised signing as in the IETF TLS batch-signing draft. The batch's root is the RFC 9162
Merkle root (``settlement.protocol.merkle``) over the messages' digests, one leaf per message in
the order signed; the sender signs ``domain_bytes("message-batch", {"sender", "root", "size"})``
(a domain of its own, so a batch signature is never a message signature or the reverse), and
each message carries its leaf index and audit path. A message of a batch is still verifiably
signed by its sender alone, and stands on its own: envelope, path and one signature.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import re
from _json import encode_basestring
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from functools import cached_property, lru_cache
from typing import Any, NewType, cast

import nacl.exceptions
import nacl.signing

from messaging.protocol.errors import (
    BadAddress,
    BadBatchProof,
    BadEnvelope,
    BadLink,
    BadMessageKind,
    BadMessageSignature,
    MessageTooLarge,
)
from settlement.protocol.encoding import CanonicalEncodingError, Digest, canonical, domain_bytes
from settlement.protocol.identifiers import InvalidFederationAddress, parse_federation_address
from settlement.protocol.merkle import InvalidProof, MerkleTree, leaf_hash, root_from_inclusion_proof
from settlement.protocol.signing import PublicKey, Signature, SigningKey, is_valid_bytes, sign_bytes

MessageId = NewType("MessageId", str)

MESSAGE_OBJECT_KIND = "message"
BATCH_OBJECT_KIND = "message-batch"
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
# A batch's audit paths are at most 16 hashes; a sender with more to send signs several batches.
MAX_BATCH_SIZE = 1 << 16

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
_SIGNATURE_HEX = re.compile(r"[0-9a-f]{128}")
_HEX_RUN = re.compile(r"[0-9a-f]*")
_BATCH_FIELDS = frozenset({"root", "size", "index", "path", "signature"})
_BATCH_MESSAGE_FIELDS = frozenset({"envelope", "batch"})
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
    wire: Mapping[str, Any] = field(default_factory=dict, compare=False, repr=False)
    """``envelope.to_json()`` as encoded (built once; a node storing thousands reuses it)."""


@dataclass(frozen=True)
class BatchProof:
    """Where a message sits in a batch its sender signed once: the batch's RFC 9162 root over
    the digests of its messages, how many there are, this message's leaf index and audit path."""

    root: Digest
    size: int
    index: int
    path: tuple[Digest, ...]

    @cached_property
    def path_hex(self) -> list[str]:
        return [item.hex() for item in self.path]

    @cached_property
    def path_bytes(self) -> bytes:
        """The audit path as one byte string (32 bytes a hash): compared with a tree's at once."""
        return b"".join(self.path)

    def to_json(self) -> dict[str, Any]:
        return {"root": self.root.hex(), "size": self.size, "index": self.index, "path": list(self.path_hex)}


@dataclass(frozen=True)
class SignedMessage:
    """A message with its sender's signature: on the envelope itself (``batch`` is ``None``), or
    on the head of the batch ``batch`` places it in (``signature`` is then the batch's)."""

    encoded: EncodedMessage
    signature: Signature
    batch: BatchProof | None = None

    @property
    def envelope(self) -> Envelope:
        return self.encoded.envelope

    @property
    def digest(self) -> Digest:
        return self.encoded.digest

    def to_json(self) -> dict[str, Any]:
        if self.batch is None:
            return {"envelope": self.envelope.to_json(), "signature": self.signature.hex()}
        return {
            "envelope": self.envelope.to_json(),
            "batch": {**self.batch.to_json(), "signature": self.signature.hex()},
        }


# --- field checks ---------------------------------------------------------------------------


def _message_id(value: object, *, field: str) -> MessageId:
    if not isinstance(value, str) or not _ID.fullmatch(value):
        raise BadEnvelope(f"{field} must be 32 lower-case hex digits (a message id)", field=field)
    return MessageId(value)


@lru_cache(maxsize=8192)
def _canonical_address(value: str) -> str:
    # The same few thousand addresses arrive again and again (a batch is one sender's); parsing
    # one costs more than the rest of an envelope's checks. Only successes are cached.
    return str(parse_federation_address(value))


def _address(value: object, *, field: str) -> str:
    try:
        text = _canonical_address(value) if type(value) is str else str(parse_federation_address(value))  # type: ignore[arg-type]
    except InvalidFederationAddress as error:
        raise BadAddress(f"{field}: {error}", field=field) from error
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
    if not value:
        return ()  # most messages: nothing to check or build
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


_MESSAGE_DOMAIN = b"parsec/v1/" + MESSAGE_OBJECT_KIND.encode("ascii") + b"\x00"
_PLAIN_BODY_KEYS = frozenset({"encoding", "text"})


def _canonical_envelope_text(envelope: Envelope) -> str:
    """RFC 8785 of ``envelope.to_json()``, written out for the envelope's fixed shape.

    Every envelope has the same eleven ASCII keys, so their order is fixed (RFC 8785 §3.2.3 sorts
    by UTF-16 code units; for ASCII that is byte order) and the values are checked already: hex,
    integers, names from a list, addresses, and the one free text, escaped by the same C encoder
    ``canonical`` uses. A plain body is written out too; anything else (boxes keyed by address,
    attachments) goes through ``canonical``. tests/messaging/protocol/test_message_envelope_encoding.py
    compares the bytes with ``domain_bytes`` on arbitrary envelopes. A thousand messages a
    request: this costs a fifth of the generic walk-and-encode."""
    body = envelope.body
    text = body.get("text")
    if body.get("encoding") == "plain" and type(text) is str and body.keys() == _PLAIN_BODY_KEYS:
        body_text = '{"encoding":"plain","text":' + encode_basestring(text) + "}"
    else:
        body_text = canonical(dict(body)).decode("utf-8")
    attachments = (
        canonical([item.to_json() for item in envelope.attachments]).decode("utf-8")
        if envelope.attachments
        else "[]"
    )
    agreement, reply_to = envelope.agreement, envelope.reply_to
    return "".join(
        (
            '{"agreement":',
            "null" if agreement is None else encode_basestring(agreement),
            ',"attachments":',
            attachments,
            ',"body":',
            body_text,
            ',"id":',
            encode_basestring(envelope.id),
            ',"kind":',
            encode_basestring(envelope.kind),
            ',"recipients":[',
            ",".join([encode_basestring(item) for item in envelope.recipients]),
            '],"reply_to":',
            "null" if reply_to is None else encode_basestring(reply_to),
            ',"sender":',
            encode_basestring(envelope.sender),
            ',"sender_key":"',
            bytes(envelope.sender_key).hex(),
            '","time":',
            str(int(envelope.time)),
            ',"v":',
            str(ENVELOPE_VERSION),
            "}",
        )
    )


def encode_message(envelope: Envelope) -> EncodedMessage:
    wire = envelope.to_json()
    try:
        try:
            signed_bytes = _MESSAGE_DOMAIN + _canonical_envelope_text(envelope).encode("utf-8")
        except UnicodeEncodeError:
            # Text that is not Unicode (a lone surrogate): the reference path names where it is.
            signed_bytes = domain_bytes(MESSAGE_OBJECT_KIND, wire)
    except CanonicalEncodingError as error:
        raise BadEnvelope(f"the envelope cannot be encoded canonically: {error}") from error
    if len(signed_bytes) > MAX_ENVELOPE_BYTES:
        raise MessageTooLarge(f"an envelope is at most {MAX_ENVELOPE_BYTES} bytes, boxes included")
    return EncodedMessage(
        envelope=envelope,
        signed_bytes=signed_bytes,
        digest=Digest(hashlib.sha256(signed_bytes).digest()),
        wire=wire,
    )


def message_digest(envelope: Envelope) -> Digest:
    return encode_message(envelope).digest


def sign_message(encoded: EncodedMessage, *, key: SigningKey) -> SignedMessage:
    """The sender's signature (the client, or the node for a custodial sender's sealed key).

    The same bytes ``settlement.protocol.signing.sign(key, "message", envelope)`` signs."""
    if key.public_key != encoded.envelope.sender_key:
        raise BadMessageSignature("the envelope names another sender key than the one signing it")
    return SignedMessage(encoded=encoded, signature=sign_bytes(key, encoded.signed_bytes))


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


# --- batches: one signature over many envelopes ------------------------------------------------


def batch_signed_bytes(sender: str, root: bytes, size: int) -> bytes:
    """What a sender signs for a batch: ``domain_bytes("message-batch", {sender, root, size})``.

    The size is signed because an RFC 9162 path does not bind the tree size, only the root does;
    the sender's address because the batch is its own messages (every envelope names it)."""
    return domain_bytes(BATCH_OBJECT_KIND, {"sender": sender, "root": bytes(root).hex(), "size": size})


def sign_batch(encoded: Sequence[EncodedMessage], *, key: SigningKey) -> list[SignedMessage]:
    """Sign a batch of one sender's envelopes once; each message gets its inclusion proof.

    The leaves are the messages' digests in the order given (1 to ``MAX_BATCH_SIZE``)."""
    if not 0 < len(encoded) <= MAX_BATCH_SIZE:
        raise BadBatchProof(f"a batch holds 1 to {MAX_BATCH_SIZE} messages", field="batch")
    sender = encoded[0].envelope.sender
    for item in encoded:
        if item.envelope.sender != sender:
            raise BadBatchProof("a batch holds the messages of one sender", field="batch")
        if key.public_key != item.envelope.sender_key:
            raise BadMessageSignature("the envelope names another sender key than the one signing it")
    tree = MerkleTree.from_entries(item.digest for item in encoded)
    root, size = tree.root, len(encoded)
    signature = sign_bytes(key, batch_signed_bytes(sender, root, size))
    return [
        SignedMessage(
            encoded=item,
            signature=signature,
            batch=BatchProof(root=root, size=size, index=index, path=tree.inclusion_proof(index).audit_path),
        )
        for index, item in enumerate(encoded)
    ]


VerifiedBatches = set[tuple[bytes, str, bytes, int, bytes]]
"""Batch heads whose signature one caller has verified already: (sender key, sender, root, size,
signature). A node checking a thousand messages of one batch verifies its signature once."""


def verify_batch_message(
    encoded: EncodedMessage,
    batch: BatchProof,
    signature: bytes,
    *,
    verified: VerifiedBatches | None = None,
    path_proven: bool = False,
) -> SignedMessage:
    """Raise unless the message is leaf ``batch.index`` of the batch (its path leads from its
    digest to ``batch.root``: :class:`BadBatchProof`) and the envelope's sender key signed that
    batch's head (:class:`BadMessageSignature`). ``path_proven``: :func:`batch_paths_proven`
    has shown the path right already."""
    envelope = encoded.envelope
    if not path_proven:
        _check_path(encoded, batch)
    if len(signature) != 64:
        raise BadMessageSignature("an Ed25519 signature is 64 bytes", field="batch")
    head = (bytes(envelope.sender_key), envelope.sender, bytes(batch.root), batch.size, bytes(signature))
    if verified is None or head not in verified:
        try:
            nacl.signing.VerifyKey(head[0]).verify(
                batch_signed_bytes(envelope.sender, batch.root, batch.size), signature
            )
        except (nacl.exceptions.BadSignatureError, nacl.exceptions.ValueError) as error:
            raise BadMessageSignature(
                f"the batch signature does not verify with the sender key of message {envelope.id}",
                field="batch",
            ) from error
        if verified is not None:
            verified.add(head)
    return SignedMessage(encoded=encoded, signature=Signature(bytes(signature)), batch=batch)


def _check_path(encoded: EncodedMessage, batch: BatchProof) -> None:
    envelope = encoded.envelope
    try:
        computed = root_from_inclusion_proof(leaf_hash(encoded.digest), batch.index, batch.size, batch.path)
    except InvalidProof as error:
        raise BadBatchProof(
            f"message {envelope.id} is not in the batch its proof names: {error}", field="batch"
        ) from error
    if computed != batch.root:
        raise BadBatchProof(
            f"message {envelope.id} is not in the batch its proof names: the path does not lead to its root",
            field="batch",
        )


def batch_paths_proven(items: Sequence[tuple[EncodedMessage, BatchProof] | None]) -> frozenset[int]:
    """Positions in ``items`` whose audit path is proven right by rebuilding their batch's tree.

    A request usually carries whole batches: for a batch all of whose ``size`` messages are here
    (each index once), one tree over their digests (``size - 1`` hashes) replaces a path fold per
    message (``size · log2(size)`` hashes). Where the tree has the batch's root, a message whose
    path is the tree's path at its index is proven; any other is left to the fold, which names it.
    """
    groups: dict[tuple[bytes, int], list[tuple[int, EncodedMessage, BatchProof]]] = {}
    for position, item in enumerate(items):
        if item is not None:
            encoded, proof = item
            groups.setdefault((bytes(proof.root), proof.size), []).append((position, encoded, proof))
    proven: set[int] = set()
    for (root, size), members in groups.items():
        by_index = {proof.index: (position, encoded, proof) for position, encoded, proof in members}
        if len(members) != size or len(by_index) != size or size < 2:
            continue
        tree = MerkleTree.from_entries(by_index[index][1].digest for index in range(size))
        if tree.root != root:
            continue
        paths = tree.audit_paths_bytes()
        proven.update(
            position for index, (position, _, proof) in by_index.items() if proof.path_bytes == paths[index]
        )
    return frozenset(proven)


def _batch_int(value: object, name: str, low: int, high: int) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
        raise BadBatchProof(f"batch.{name} is an integer from {low} to {high}", field="batch")
    return value


BatchHeads = dict[tuple[str, int, str], tuple[Digest, bytes]]
"""Batch heads one caller has parsed already: (root hex, size, signature hex) as sent, to the root
and signature decoded. The thousand messages of a batch carry the same head."""


def _batch_head(root: object, size: object, signature: object) -> tuple[Digest, int, bytes]:
    if not isinstance(root, str) or not _HEX32.fullmatch(root):
        raise BadBatchProof("batch.root is 64 lower-case hex digits (SHA-256)", field="batch")
    checked_size = _batch_int(size, "size", 1, MAX_BATCH_SIZE)
    if not isinstance(signature, str) or not _SIGNATURE_HEX.fullmatch(signature):
        raise BadMessageSignature("batch.signature is 128 lower-case hex digits (Ed25519)", field="batch")
    return Digest(bytes.fromhex(root)), checked_size, bytes.fromhex(signature)


def parse_batch_proof(value: object, *, heads: BatchHeads | None = None) -> tuple[BatchProof, bytes]:
    """``{"root", "size", "index", "path", "signature"}`` (hex) from the wire: the proof and the
    batch signature, checked for form only. ``heads``: the caller's cache of heads parsed before
    (the same root, size and signature text are checked and decoded once)."""
    if not isinstance(value, dict) or value.keys() != _BATCH_FIELDS:
        raise BadBatchProof('a batch proof is {"root", "size", "index", "path", "signature"}', field="batch")
    root_text, size_value, signature_text = value["root"], value["size"], value["signature"]
    cacheable = heads is not None and type(root_text) is str and type(size_value) is int
    cacheable = cacheable and type(signature_text) is str
    cached = heads.get((root_text, size_value, signature_text)) if cacheable else None  # type: ignore[union-attr]
    if cached is None:
        root, size, signature = _batch_head(root_text, size_value, signature_text)
        if cacheable:
            heads[(root_text, size, signature_text)] = (root, signature)  # type: ignore[index]
    else:
        (root, signature), size = cached, size_value
    index = _batch_int(value["index"], "index", 0, size - 1)
    path = value["path"]
    if not isinstance(path, list) or len(path) > 16:
        raise BadBatchProof("batch.path is a list of at most 16 hashes", field="batch")
    # One join, one regular-expression match and one hex decoding for the whole path (a request
    # holds thousands of paths): every item a string (join refuses anything else) of 64 lower-case
    # hex digits.
    try:
        joined = "".join(path)
    except TypeError:
        joined = ""
    if (path and not joined) or set(map(len, path)) - {64} or not _HEX_RUN.fullmatch(joined):
        raise BadBatchProof("each hash of batch.path is 64 lower-case hex digits", field="batch")
    raw = bytes.fromhex(joined)
    proof = BatchProof(
        root=root,
        size=size,
        index=index,
        path=cast(
            tuple[Digest, ...], tuple([raw[offset : offset + 32] for offset in range(0, len(raw), 32)])
        ),
    )
    # Checked above: the same digests, already in hex and joined.
    proof.__dict__["path_hex"] = list(path)
    proof.__dict__["path_bytes"] = raw
    return proof, signature


@dataclass(frozen=True)
class UnverifiedMessage:
    """A wire message parsed and encoded, its signature not checked yet."""

    encoded: EncodedMessage
    signature: bytes
    batch: BatchProof | None


def parse_unverified(value: object, *, heads: BatchHeads | None = None) -> UnverifiedMessage:
    """The form of ``{"envelope", "signature"}`` or ``{"envelope", "batch"}``; nothing verified.
    ``heads``: batch heads parsed before (:func:`parse_batch_proof`)."""
    if isinstance(value, dict) and value.keys() == _BATCH_MESSAGE_FIELDS:
        proof, signature = parse_batch_proof(value["batch"], heads=heads)
        return UnverifiedMessage(encode_message(parse_envelope(value["envelope"])), signature, proof)
    if not isinstance(value, dict) or set(value) != {"envelope", "signature"}:
        raise BadEnvelope(
            'a signed message is {"envelope": {...}, "signature": "<hex>"} or {"envelope": {...}, "batch": {...}}'
        )
    signature = value["signature"]
    if not isinstance(signature, str) or not _SIGNATURE_HEX.fullmatch(signature):
        raise BadMessageSignature("signature is 128 lower-case hex digits (Ed25519)", field="signature")
    return UnverifiedMessage(
        encode_message(parse_envelope(value["envelope"])), bytes.fromhex(signature), None
    )


def verify_unverified(
    item: UnverifiedMessage, *, verified: VerifiedBatches | None = None, path_proven: bool = False
) -> SignedMessage:
    """Check the signature (and a batch message's path) of a parsed wire message."""
    if item.batch is None:
        return verify_message(item.encoded, item.signature)
    return verify_batch_message(
        item.encoded, item.batch, item.signature, verified=verified, path_proven=path_proven
    )


def parse_signed_message(value: object, *, verified: VerifiedBatches | None = None) -> SignedMessage:
    """A signed message from the wire, parsed, encoded and verified: ``{"envelope", "signature"}``
    (signed alone) or ``{"envelope", "batch"}`` (signed as one of a batch). ``verified``: batch
    heads this caller has checked already (their signature is not verified again)."""
    return verify_unverified(parse_unverified(value), verified=verified)


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


# --- the compact batch request: one head, the envelopes without what they share -------------------

COMPACT_ENVELOPE_REQUIRED = frozenset({"id", "kind", "recipients", "time", "body"})
COMPACT_ENVELOPE_OPTIONAL = frozenset({"reply_to", "agreement", "attachments"})
_COMPACT_ENVELOPE_FIELDS = COMPACT_ENVELOPE_REQUIRED | COMPACT_ENVELOPE_OPTIONAL
_BATCH_HEAD_FIELDS = frozenset({"sender", "sender_key", "root", "size", "signature"})


@dataclass(frozen=True)
class BatchHead:
    """What every message of a batch shares, named once: the sender, its key, and the head it
    signed (the RFC 9162 root over the messages' digests, their number, the signature)."""

    sender: str
    sender_key: PublicKey
    sender_key_hex: str
    root: Digest
    size: int
    signature: Signature


def parse_batch_head(value: object) -> BatchHead:
    """``{"sender", "sender_key", "root", "size", "signature"}`` (hex), checked for form."""
    if not isinstance(value, dict) or value.keys() != _BATCH_HEAD_FIELDS:
        raise BadBatchProof(
            'a batch head is {"sender", "sender_key", "root", "size", "signature"}', field="batch"
        )
    sender = _address(value["sender"], field="batch.sender")
    sender_key = PublicKey(_hex_key(value["sender_key"], field="batch.sender_key"))
    root, size, signature = _batch_head(value["root"], value["size"], value["signature"])
    return BatchHead(
        sender=sender,
        sender_key=sender_key,
        sender_key_hex=value["sender_key"],
        root=root,
        size=size,
        signature=Signature(signature),
    )


def parse_compact_envelope(value: object, head: BatchHead) -> EncodedMessage:
    """One envelope of a compact batch: the signed envelope without ``v``, ``sender`` and
    ``sender_key`` (the head names them once) and with ``reply_to``, ``agreement`` and
    ``attachments`` left out when empty. It is checked, and encoded and hashed, as the full
    envelope it stands for: the digest, and so the receipt, is that envelope's."""
    if not isinstance(value, dict):
        raise BadEnvelope("an envelope is a JSON object")
    if not value.keys() <= _COMPACT_ENVELOPE_FIELDS or not value.keys() >= COMPACT_ENVELOPE_REQUIRED:
        missing = COMPACT_ENVELOPE_REQUIRED - value.keys()
        extra = value.keys() - _COMPACT_ENVELOPE_FIELDS
        raise BadEnvelope(
            "a compact envelope "
            + "; ".join(
                part
                for part in (
                    f"lacks {', '.join(sorted(missing))}" if missing else "",
                    f"has fields it does not carry: {', '.join(sorted(map(str, extra)))} (v, sender and "
                    "sender_key are the batch head's)"
                    if extra
                    else "",
                )
                if part
            )
        )
    return encode_message(
        parse_envelope(
            {
                "v": ENVELOPE_VERSION,
                "id": value["id"],
                "kind": value["kind"],
                "sender": head.sender,
                "sender_key": head.sender_key_hex,
                "recipients": value["recipients"],
                "time": value["time"],
                "reply_to": value.get("reply_to"),
                "agreement": value.get("agreement"),
                "attachments": value.get("attachments", []),
                "body": value["body"],
            }
        )
    )


def compact_envelope_json(envelope: Envelope) -> dict[str, Any]:
    """An envelope in its compact batch form (what a client sends; :func:`parse_compact_envelope`
    gives back the same envelope)."""
    wire = envelope.to_json()
    compact = {name: wire[name] for name in COMPACT_ENVELOPE_REQUIRED}
    compact.update((name, wire[name]) for name in COMPACT_ENVELOPE_OPTIONAL if wire[name])
    return compact


def compact_batch_verify(head: BatchHead, encoded: Sequence[EncodedMessage]) -> MerkleTree:
    """The batch is exactly these envelopes, in this order, and the sender signed its head.

    One tree over the digests (``size - 1`` hashes, nothing per message to parse or fold): its
    root must be the head's (:class:`BadBatchProof`), and the head's key must have signed
    ``(sender, root, size)`` (:class:`BadMessageSignature`). Returns the tree, from which every
    message's audit path is read when one is needed (a receipt, a delivery)."""
    if len(encoded) != head.size:
        raise BadBatchProof(
            f"the batch head says {head.size} messages and the request carries {len(encoded)}: "
            "a compact batch is sent whole",
            field="envelopes",
        )
    tree = MerkleTree.from_entries(item.digest for item in encoded)
    if tree.root != head.root:
        raise BadBatchProof(
            "batch.root is not the Merkle root of the envelopes' digests in the order sent", field="batch"
        )
    if not is_valid_bytes(
        bytes(head.sender_key), batch_signed_bytes(head.sender, head.root, head.size), bytes(head.signature)
    ):
        raise BadMessageSignature(
            "the batch signature does not verify with the batch head's sender key", field="batch"
        )
    return tree


def compact_batch_json(signed: Sequence[SignedMessage]) -> dict[str, Any]:
    """The compact request for messages :func:`sign_batch` signed (one batch, in order)."""
    first = signed[0]
    batch = first.batch
    if batch is None:
        raise BadBatchProof("only messages signed as one batch make a compact batch", field="batch")
    envelope = first.envelope
    return {
        "batch": {
            "sender": envelope.sender,
            "sender_key": envelope.sender_key.hex(),
            "root": batch.root.hex(),
            "size": batch.size,
            "signature": first.signature.hex(),
        },
        "envelopes": [compact_envelope_json(item.envelope) for item in signed],
    }
