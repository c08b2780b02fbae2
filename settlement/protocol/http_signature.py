"""Signed node-to-node HTTP requests (issue 3): the pure half of the transport.

The sender signs, with its node Ed25519 key, the object-kind ``node-request`` (so the bytes are
``b"parsec/v1/node-request\\x00" + canonical(fields)``) over::

    {"method": "POST", "path": "/n2n/payments?x=1", "key_id": "...", "created": 1763700000,
     "nonce": "<32 hex>", "content_digest": "sha-256=:<base64>:", "audience": "bank-b",
     "idempotency_key": "pay-42"}

and sends them as headers (``idempotency_key`` only when the request carries an
``Idempotency-Key``: signing it keeps anyone on the path from changing which stored answer a
retry is matched with). ``Content-Digest`` follows RFC 9530 so that ordinary tooling can
read it. The receiver calls :func:`verify_request` with the raw path it received (query
included, exactly as sent), its clock, a key look-up and its own name as the audience.
Replays are the caller's business (the nonce is returned, to be kept in Redis for longer than
the allowed skew); so are idempotent handlers.

The answer is signed too, as the object-kind ``node-response`` over::

    {"key_id": "...", "request_nonce": "<the request's nonce>", "status": 200,
     "content_digest": "sha-256=:<base64>:"}

Binding it to the request's nonce (fresh, 128 random bits) makes it the answer to that request
and no other, so nobody on the path can forge, alter or replay an answer: "delivered", a
co-signature or a refusal. The requester calls :func:`verify_response` with the nonce it sent
and a look-up of the keys of the peer it asked.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import re
import secrets
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from settlement.protocol import signing
from settlement.protocol.signing import SigningKey

__all__ = [
    "HEADER_AUDIENCE",
    "HEADER_CONTENT_DIGEST",
    "HEADER_CREATED",
    "HEADER_IDEMPOTENCY_KEY",
    "HEADER_KEY_ID",
    "HEADER_NONCE",
    "HEADER_SIGNATURE",
    "MAX_SKEW_SECONDS",
    "REQUEST_KIND",
    "RESPONSE_KIND",
    "BadDigest",
    "BadSignature",
    "ClockSkew",
    "MalformedHeaders",
    "RequestSignatureError",
    "ResponseSignatureError",
    "UnknownKey",
    "VerifiedRequest",
    "WrongAudience",
    "body_digest",
    "new_nonce",
    "sign_request",
    "sign_response",
    "signed_fields",
    "verify_request",
    "verify_response",
]

REQUEST_KIND = "node-request"
RESPONSE_KIND = "node-response"
MAX_SKEW_SECONDS = 30

HEADER_KEY_ID = "Parsec-Key-Id"
HEADER_CREATED = "Parsec-Created"
HEADER_NONCE = "Parsec-Nonce"
HEADER_AUDIENCE = "Parsec-Audience"
HEADER_SIGNATURE = "Parsec-Signature"
HEADER_CONTENT_DIGEST = "Content-Digest"
HEADER_IDEMPOTENCY_KEY = "Idempotency-Key"

_METHOD = re.compile(r"[A-Z]{1,16}")
# Printable ASCII without spaces: the path is signed as sent, percent-encoding and all.
_PATH = re.compile(r"/[\x21-\x7e]{0,2047}")
_KEY_ID = re.compile(r"[\x21-\x7e]{1,200}")
_NONCE = re.compile(r"[0-9a-f]{32,64}")
_AUDIENCE = re.compile(r"[\x21-\x7e]{1,200}")
_CREATED = re.compile(r"[0-9]{1,12}")
_DIGEST = re.compile(r"sha-256=:([A-Za-z0-9+/]{43}=):")
_SIGNATURE = re.compile(r"[A-Za-z0-9+/]{86}==")
_IDEMPOTENCY_KEY = re.compile(r"[\x21-\x7e]{1,100}")


class ResponseSignatureError(ValueError):
    """An answer the requester must not believe: unsigned, altered, or signed by another key."""


class RequestSignatureError(ValueError):
    """Base class: a request the receiver must refuse with 401. ``code`` is machine-readable."""

    code = "bad_request_signature"


class MalformedHeaders(RequestSignatureError):  # noqa: N818 - the name is the interface
    code = "malformed_signature_headers"


class UnknownKey(RequestSignatureError):  # noqa: N818 - the name is the interface
    code = "unknown_key"


class BadSignature(RequestSignatureError, signing.BadSignature):  # noqa: N818 - the name is the interface
    code = "bad_signature"


class WrongAudience(BadSignature):
    """Signed for another node: refused so that one peer cannot replay it to a second."""

    code = "wrong_audience"


class ClockSkew(RequestSignatureError):  # noqa: N818 - the name is the interface
    code = "clock_skew"


class BadDigest(RequestSignatureError):  # noqa: N818 - the name is the interface
    code = "bad_digest"


@dataclass(frozen=True)
class VerifiedRequest:
    """What the receiver learns from a request whose signature holds."""

    key_id: str
    public_key: bytes
    created: int
    nonce: str
    audience: str
    idempotency_key: str | None = None


def _signature_bytes(text: str) -> bytes | None:
    """The 64 bytes of a base64 signature, or None. Only the canonical spelling is accepted: the
    last character before ``==`` has four unused bits, and a header whose spelling can change
    without changing what it says would let a signed message be altered undetected."""
    try:
        signature = base64.b64decode(text, validate=True)
    except binascii.Error:
        return None
    return signature if base64.b64encode(signature).decode("ascii") == text else None


def body_digest(body: bytes) -> str:
    """RFC 9530 ``Content-Digest`` value: ``sha-256=:<base64 of SHA-256(body)>:``."""
    return "sha-256=:" + base64.b64encode(hashlib.sha256(body).digest()).decode("ascii") + ":"


def new_nonce() -> str:
    """128 random bits, hex: unique per request, so a replay is recognisable."""
    return secrets.token_hex(16)


def signed_fields(
    *,
    method: str,
    path: str,
    key_id: str,
    created: int,
    nonce: str,
    content_digest: str,
    audience: str,
    idempotency_key: str | None = None,
) -> dict[str, Any]:
    """The object that is signed, after checking each field's shape."""
    fields: dict[str, Any] = {
        "method": method,
        "path": path,
        "key_id": key_id,
        "created": created,
        "nonce": nonce,
        "content_digest": content_digest,
        "audience": audience,
    }
    for name, pattern in (
        ("method", _METHOD),
        ("path", _PATH),
        ("key_id", _KEY_ID),
        ("nonce", _NONCE),
        ("content_digest", _DIGEST),
        ("audience", _AUDIENCE),
    ):
        value = fields[name]
        if not isinstance(value, str) or not pattern.fullmatch(value):
            raise MalformedHeaders(f"{name} is malformed")
    if idempotency_key is not None:
        if not isinstance(idempotency_key, str) or not _IDEMPOTENCY_KEY.fullmatch(idempotency_key):
            raise MalformedHeaders("idempotency_key is 1 to 100 printable ASCII characters")
        fields["idempotency_key"] = idempotency_key
    if isinstance(created, bool) or not isinstance(created, int) or not 0 <= created < 10**12:
        raise MalformedHeaders("created is a whole number of seconds since the epoch")
    return fields


def sign_request(
    key: SigningKey,
    *,
    key_id: str,
    method: str,
    path: str,
    body: bytes,
    created: int,
    nonce: str,
    audience: str,
    idempotency_key: str | None = None,
) -> dict[str, str]:
    """Header values for a request; ``created`` and ``nonce`` are passed in (clock and randomness)."""
    content_digest = body_digest(body)
    fields = signed_fields(
        method=method,
        path=path,
        key_id=key_id,
        created=created,
        nonce=nonce,
        content_digest=content_digest,
        audience=audience,
        idempotency_key=idempotency_key,
    )
    signature = signing.sign(key, REQUEST_KIND, fields)
    headers = {
        HEADER_KEY_ID: key_id,
        HEADER_CREATED: str(created),
        HEADER_NONCE: nonce,
        HEADER_AUDIENCE: audience,
        HEADER_CONTENT_DIGEST: content_digest,
        HEADER_SIGNATURE: base64.b64encode(signature).decode("ascii"),
    }
    if idempotency_key is not None:
        headers[HEADER_IDEMPOTENCY_KEY] = idempotency_key
    return headers


def verify_request(
    *,
    method: str,
    path: str,
    headers: Mapping[str, str],
    body: bytes,
    now: int,
    lookup_key: Callable[[str], bytes | None],
    audience: str,
    max_skew: int = MAX_SKEW_SECONDS,
) -> VerifiedRequest:
    """Check a received request; raise a :class:`RequestSignatureError` subclass if it fails.

    ``audience`` is this node's own name: a request signed for another node is refused, so
    one node cannot replay to a second what it received (nonce stores are per node).
    ``lookup_key(key_id)`` returns the sender's Ed25519 public key or ``None``. The cheap
    checks run first, so a flood of stale or malformed requests costs no signature check.
    """
    lowered = {name.lower(): value for name, value in headers.items()}

    def header(name: str) -> str:
        value = lowered.get(name.lower())
        if not isinstance(value, str) or not value:
            raise MalformedHeaders(f"the {name} header is missing")
        return value

    created_text = header(HEADER_CREATED)
    if not _CREATED.fullmatch(created_text):
        raise MalformedHeaders(f"the {HEADER_CREATED} header is a whole number of seconds")
    signature_text = header(HEADER_SIGNATURE)
    if not _SIGNATURE.fullmatch(signature_text):
        raise MalformedHeaders(f"the {HEADER_SIGNATURE} header is a base64 Ed25519 signature")
    fields = signed_fields(
        method=method.upper(),
        path=path,
        key_id=header(HEADER_KEY_ID),
        created=int(created_text),
        nonce=header(HEADER_NONCE),
        content_digest=header(HEADER_CONTENT_DIGEST),
        audience=header(HEADER_AUDIENCE),
        # Present or absent, it is part of what was signed: adding, removing or changing it
        # on the way breaks the signature.
        idempotency_key=lowered.get(HEADER_IDEMPOTENCY_KEY.lower()),
    )
    if fields["audience"] != audience:
        raise WrongAudience(f"this request was signed for {fields['audience']!r}, not for {audience!r}")
    skew = now - fields["created"]
    if abs(skew) > max_skew:
        raise ClockSkew(f"the request was created {skew} s from now; at most {max_skew} s is allowed")
    if fields["content_digest"] != body_digest(body):
        raise BadDigest("the body does not match its Content-Digest")
    public_key = lookup_key(fields["key_id"])
    if public_key is None:
        raise UnknownKey(f"no peer key is known as {fields['key_id']!r}")
    signature = _signature_bytes(signature_text)
    if signature is None:
        raise MalformedHeaders(f"the {HEADER_SIGNATURE} header is a base64 Ed25519 signature")
    try:
        signing.verify(public_key, REQUEST_KIND, fields, signature)
    except signing.BadSignature as error:
        raise BadSignature("the request signature does not verify with the sender's key") from error
    return VerifiedRequest(
        key_id=fields["key_id"],
        public_key=bytes(public_key),
        created=fields["created"],
        nonce=fields["nonce"],
        audience=fields["audience"],
        idempotency_key=fields.get("idempotency_key"),
    )


def _response_fields(*, key_id: str, request_nonce: str, status: int, content_digest: str) -> dict[str, Any]:
    if not _KEY_ID.fullmatch(key_id):
        raise ResponseSignatureError("the answer's key id is malformed")
    if not _NONCE.fullmatch(request_nonce):
        raise ResponseSignatureError("an answer is bound to a well-formed request nonce")
    if not _DIGEST.fullmatch(content_digest):
        raise ResponseSignatureError("the answer's Content-Digest is malformed")
    if isinstance(status, bool) or not isinstance(status, int) or not 100 <= status <= 599:
        raise ResponseSignatureError("the answer's status is not an HTTP status")
    return {
        "key_id": key_id,
        "request_nonce": request_nonce,
        "status": status,
        "content_digest": content_digest,
    }


def sign_response(
    key: SigningKey, *, key_id: str, request_nonce: str, status: int, body: bytes
) -> dict[str, str]:
    """Header values that make an answer provably this node's answer to the request with that nonce."""
    content_digest = body_digest(body)
    fields = _response_fields(
        key_id=key_id, request_nonce=request_nonce, status=status, content_digest=content_digest
    )
    signature = signing.sign(key, RESPONSE_KIND, fields)
    return {
        HEADER_KEY_ID: key_id,
        HEADER_CONTENT_DIGEST: content_digest,
        HEADER_SIGNATURE: base64.b64encode(signature).decode("ascii"),
    }


def verify_response(
    *,
    headers: Mapping[str, str],
    status: int,
    body: bytes,
    request_nonce: str,
    lookup_key: Callable[[str], bytes | None],
) -> str:
    """Check an answer to the request sent with ``request_nonce``; return the key id that signed it.

    ``lookup_key(key_id)`` returns the public key only if it belongs to the peer that was asked,
    so an answer signed by any other node, even a known one, is refused.
    """
    lowered = {name.lower(): value for name, value in headers.items()}
    key_id = lowered.get(HEADER_KEY_ID.lower())
    signature_text = lowered.get(HEADER_SIGNATURE.lower())
    content_digest = lowered.get(HEADER_CONTENT_DIGEST.lower())
    if not key_id or not signature_text or not content_digest:
        raise ResponseSignatureError("the answer is not signed")
    if not _SIGNATURE.fullmatch(signature_text):
        raise ResponseSignatureError(f"the {HEADER_SIGNATURE} header is not a base64 Ed25519 signature")
    fields = _response_fields(
        key_id=key_id, request_nonce=request_nonce, status=status, content_digest=content_digest
    )
    if content_digest != body_digest(body):
        raise ResponseSignatureError("the answer's body does not match its Content-Digest")
    public_key = lookup_key(key_id)
    if public_key is None:
        raise ResponseSignatureError(
            f"the answer is signed by {key_id!r}, which is not a key of the peer asked"
        )
    signature = _signature_bytes(signature_text)
    if signature is None:
        raise ResponseSignatureError(f"the {HEADER_SIGNATURE} header is not a base64 Ed25519 signature")
    try:
        signing.verify(public_key, RESPONSE_KIND, fields, signature)
    except signing.BadSignature as error:
        raise ResponseSignatureError("the answer's signature does not verify with the peer's key") from error
    return key_id
