"""Encrypted bodies: one NaCl Box per recipient, from the sender's X25519 key to the recipient's.

A Box (X25519 + XSalsa20-Poly1305) is authenticated both ways: only the recipient can open it,
and it opens only with the sender key named in the envelope, so a box cannot be re-sent under
another sender's name. A client can do all of this itself (the node then never sees the
plaintext); for a custodial sender the node does it with the sender's sealed key.
"""

from __future__ import annotations

import base64
from collections.abc import Mapping
from typing import Any

from messaging.protocol.envelope import MAX_BODY_BYTES, Envelope, decode_box
from messaging.protocol.errors import BadEnvelope, CiphertextDoesNotOpen, MessageTooLarge
from settlement.protocol.keys import CannotDecrypt, MalformedKey, X25519KeyPair, box_decrypt, box_encrypt


def plain_body(text: str) -> dict[str, Any]:
    return {"encoding": "plain", "text": text}


def seal_body(*, text: str, sender_box: X25519KeyPair, recipient_keys: Mapping[str, bytes]) -> dict[str, Any]:
    """An encrypted body: ``text`` boxed to each recipient's X25519 public key (by address)."""
    plaintext = text.encode("utf-8")
    if len(plaintext) > MAX_BODY_BYTES:
        raise MessageTooLarge(f"the body is at most {MAX_BODY_BYTES} bytes", field="body")
    try:
        boxes = {
            address: base64.b64encode(box_encrypt(sender_box, bytes(key), plaintext)).decode("ascii")
            for address, key in recipient_keys.items()
        }
    except MalformedKey as error:
        raise BadEnvelope(f"a recipient's X25519 key is not usable: {error}", field="recipients") from error
    return {"encoding": "box", "sender_box_key": sender_box.public_key.hex(), "boxes": boxes}


def open_body(envelope: Envelope, *, recipient: str, recipient_box: X25519KeyPair) -> str:
    """The plaintext for ``recipient``; :class:`CiphertextDoesNotOpen` if its box does not open
    with its key (wrong key, altered bytes, another sender key, not UTF-8)."""
    body = envelope.body
    if body.get("encoding") == "plain":
        return str(body["text"])
    box = body["boxes"].get(recipient)
    if box is None:
        raise CiphertextDoesNotOpen(f"the message has no box for {recipient}")
    ciphertext = decode_box(box, recipient=recipient)
    try:
        plaintext = box_decrypt(recipient_box, bytes.fromhex(body["sender_box_key"]), ciphertext)
        return plaintext.decode("utf-8")
    except (CannotDecrypt, MalformedKey, UnicodeDecodeError) as error:
        raise CiphertextDoesNotOpen(
            f"the box for {recipient} in message {envelope.id} does not open with its key"
        ) from error
