"""Signing and verifying the small signed objects of the ledger protocols (payment instructions,
offers, takes, acceptances): each is canonicalised once and its bytes reused for the id (hash)
and every signature, exactly as settlement.protocol.signing would sign them."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from typing import Any

import nacl.exceptions
import nacl.signing

from ledgers.protocol.errors import BadEntrySignature, LedgerError
from settlement.protocol.encoding import Digest, domain_bytes
from settlement.protocol.signing import Signature, SigningKey, sign_bytes


@dataclass(frozen=True)
class Encoded:
    kind: str
    message: bytes
    hash: Digest

    @property
    def id(self) -> str:
        return self.hash.hex()


def encode(kind: str, value: Any) -> Encoded:
    message = domain_bytes(kind, value)
    return Encoded(kind=kind, message=message, hash=Digest(hashlib.sha256(message).digest()))


def sign_message(key: SigningKey, encoded: Encoded) -> Signature:
    return sign_bytes(key, encoded.message)


def verify_message(public_key: bytes, encoded: Encoded, signature: bytes, *, who: str) -> None:
    if len(public_key) != 32 or len(signature) != 64:
        raise BadEntrySignature(f"{who}'s key or signature on the {encoded.kind} has the wrong length")
    try:
        nacl.signing.VerifyKey(public_key).verify(encoded.message, signature)
    except nacl.exceptions.BadSignatureError as error:
        raise BadEntrySignature(f"{who}'s signature on the {encoded.kind} does not verify") from error


def hex_bytes(text: object, *, length: int, what: str, error: type[LedgerError] = LedgerError) -> bytes:
    if not isinstance(text, str) or len(text) != 2 * length:
        raise error(f"{what} must be {2 * length} hex digits")
    try:
        return bytes.fromhex(text)
    except ValueError as problem:
        raise error(f"{what} must be {2 * length} hex digits") from problem
