"""Ledger entries: the data, its one encoding, its hash and its two signatures.

An entry is ``(ledger, height, prev, kind, body, time)`` (ARCHITECTURE.md §4). Its signed bytes
are ``domain_bytes("ledger-entry", entry.to_json())`` and its hash is SHA-256 of exactly those
bytes, which is ``object_hash("ledger-entry", ...)``. The party and the validator sign the *same*
bytes under the same kind: which role a signature plays comes from the key (the ledger names its
party and, through its UBI namespace, its validator), and on a bank's own ledger one signature
serves both roles. So an entry is canonicalised once, and that one byte string is hashed and
verified twice, which is what keeps validation cheap (issue 4: 5,000 payments/s).
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, NewType

import nacl.exceptions
import nacl.signing

from ledgers.protocol.errors import BadEntry, BadEntrySignature, BadLedgerId, LedgerError
from ledgers.protocol.identifiers import LedgerId, parse_ledger_id
from settlement.protocol.encoding import (
    MAX_SAFE_INTEGER,
    CanonicalEncodingError,
    Digest,
    canonical,
    domain_bytes,
)
from settlement.protocol.signing import PublicKey, Signature, SigningKey, sign_bytes

LedgerHeight = NewType("LedgerHeight", int)
Millis = NewType("Millis", int)
"""Milliseconds since the Unix epoch, UTC: an integer, so it canonicalises exactly."""

ENTRY_KIND = "ledger-entry"
"""The signing domain of entries, for the party's and the validator's signature alike."""

GENESIS_PREV = Digest(bytes(32))
"""``prev`` of the entry at height 0: there is nothing before it."""


@dataclass(frozen=True)
class Entry:
    ledger: LedgerId
    height: LedgerHeight
    prev: Digest
    kind: str
    body: Mapping[str, Any]
    time: Millis

    def to_json(self) -> dict[str, Any]:
        """The JSON object that is signed, hashed and exported (bytes as lowercase hex)."""
        return {
            "ledger": self.ledger,
            "height": self.height,
            "prev": self.prev.hex(),
            "kind": self.kind,
            "body": dict(self.body),
            "time": self.time,
        }

    @classmethod
    def from_json(cls, value: object) -> Entry:
        if not isinstance(value, Mapping) or set(value) != {
            "ledger",
            "height",
            "prev",
            "kind",
            "body",
            "time",
        }:
            raise BadEntry("an entry is an object with exactly ledger, height, prev, kind, body and time")
        try:
            ledger = parse_ledger_id(value["ledger"])
        except BadLedgerId as error:
            raise BadEntry(str(error)) from error
        height, time, kind, body = value["height"], value["time"], value["kind"], value["body"]
        if isinstance(height, bool) or not isinstance(height, int) or height < 0:
            raise BadEntry("height must be a non-negative integer")
        if isinstance(time, bool) or not isinstance(time, int) or time < 0:
            raise BadEntry("time must be a non-negative integer of milliseconds since the epoch")
        if not isinstance(kind, str) or not kind:
            raise BadEntry("kind must be a non-empty string")
        if not isinstance(body, Mapping):
            raise BadEntry("body must be an object")
        return cls(
            ledger=ledger,
            height=LedgerHeight(height),
            prev=_digest_from_hex(value["prev"], what="prev"),
            kind=kind,
            body=dict(body),
            time=Millis(time),
        )


def _digest_from_hex(text: object, *, what: str) -> Digest:
    if not isinstance(text, str) or len(text) != 64 or text != text.lower():
        raise BadEntry(f"{what} must be 64 lowercase hex digits")
    try:
        return Digest(bytes.fromhex(text))
    except ValueError as error:
        raise BadEntry(f"{what} must be 64 lowercase hex digits") from error


@dataclass(frozen=True)
class EncodedEntry:
    """An entry with its signed bytes and hash, computed once and passed along."""

    entry: Entry
    message: bytes
    hash: Digest


def encode_entry(entry: Entry) -> EncodedEntry:
    try:
        message = _written_out(entry) or domain_bytes(ENTRY_KIND, entry.to_json())
    except CanonicalEncodingError as error:
        raise BadEntry(f"entry cannot be encoded canonically: {error}") from error
    return EncodedEntry(entry=entry, message=message, hash=Digest(hashlib.sha256(message).digest()))


_DOMAIN_AND_BODY_KEY = f"parsec/v1/{ENTRY_KIND}\x00".encode() + b'{"body":'


def _plain_text(value: object) -> bool:
    """Whether ``value`` is a str that canonical JSON writes as it is between two quotes:
    printable ASCII without a quote or a backslash (UBIs and kind names are)."""
    return (
        type(value) is str
        and value.isascii()
        and value.isprintable()
        and '"' not in value
        and "\\" not in value
    )


def _written_out(entry: Entry) -> bytes | None:
    """``domain_bytes(ENTRY_KIND, entry.to_json())`` written out around the body's canonical
    JSON, or ``None`` when a field needs the general path (text to escape, an int out of range,
    not exactly an int or a str, a prev not of 32 bytes).

    The keys of an entry are fixed and come in this order (RFC 8785 sorts them: body, height,
    kind, ledger, prev, time); only the body is a JSON value of any shape, so only it goes
    through ``canonical``. The general path walked and sorted the whole entry, about half of an
    entry's encoding (a hypothesis test compares both on any entry)."""
    height, time, prev = entry.height, entry.time, entry.prev
    if not (
        type(height) is int
        and 0 <= height <= MAX_SAFE_INTEGER
        and type(time) is int
        and 0 <= time <= MAX_SAFE_INTEGER
        and type(prev) is bytes
        and len(prev) == 32
        and _plain_text(entry.kind)
        and _plain_text(entry.ledger)
    ):
        return None
    return b"".join(
        (
            _DOMAIN_AND_BODY_KEY,
            canonical(dict(entry.body)),
            f',"height":{height},"kind":"{entry.kind}","ledger":"{entry.ledger}",'
            f'"prev":"{prev.hex()}","time":{time}}}'.encode("ascii"),
        )
    )


# The signed bytes are the domain prefix, then the entry's canonical JSON, whose keys come in
# sorted order: body first, then height, kind, ledger, prev, time.
_BODY_START = len(f"parsec/v1/{ENTRY_KIND}\x00".encode()) + len(b'{"body":')
_AFTER_BODY = b',"height":'


def encoded_body_json(encoded: EncodedEntry) -> str:
    """The body's canonical JSON, cut out of the signed bytes (no second encoding to store it).

    The body ends at the *last* ``,"height":``: a quote inside a JSON string is always escaped,
    so that sequence can only be a key; and after the body come only the integer height, the
    strings kind, ledger and prev, and the integer time, none of which can hold a key. A nested
    ``height`` key inside the body comes before it. (Tests compare it with ``canonical(body)``.)
    """
    message = encoded.message
    return message[_BODY_START : message.rindex(_AFTER_BODY)].decode("utf-8")


def entry_hash(entry: Entry) -> Digest:
    return encode_entry(entry).hash


# The two helpers below are settlement.protocol.signing.sign/verify on bytes already produced by
# domain_bytes(ENTRY_KIND, ...): same keys, same signatures (tests prove the equivalence), minus a
# second and third canonicalisation of the same entry.


def sign_encoded(key: SigningKey, encoded: EncodedEntry) -> Signature:
    return sign_bytes(key, encoded.message)


def verify_encoded(public_key: bytes, encoded: EncodedEntry, signature: bytes, *, role: str) -> None:
    """Raise :class:`BadEntrySignature` unless ``signature`` is ``public_key``'s on the entry."""
    if len(public_key) != 32 or len(signature) != 64:
        raise BadEntrySignature(f"the {role}'s key or signature has the wrong length")
    try:
        nacl.signing.VerifyKey(public_key).verify(encoded.message, signature)
    except nacl.exceptions.BadSignatureError as error:
        raise BadEntrySignature(
            f"the {role}'s signature does not verify for entry {encoded.entry.height} "
            f"of {encoded.entry.ledger}"
        ) from error


@dataclass(frozen=True)
class SignedEntry:
    """An entry as stored and exported: the entry and whichever signatures it carries."""

    entry: Entry
    party_signature: Signature | None
    validator_signature: Signature | None

    def to_json(self) -> dict[str, Any]:
        return {
            "entry": self.entry.to_json(),
            "party_signature": None if self.party_signature is None else self.party_signature.hex(),
            "validator_signature": (
                None if self.validator_signature is None else self.validator_signature.hex()
            ),
        }

    @classmethod
    def from_json(cls, value: object) -> SignedEntry:
        if not isinstance(value, Mapping):
            raise BadEntry("a signed entry is an object with entry, party_signature, validator_signature")
        return cls(
            entry=Entry.from_json(value.get("entry")),
            party_signature=_signature_from_hex(value.get("party_signature")),
            validator_signature=_signature_from_hex(value.get("validator_signature")),
        )


def _signature_from_hex(text: object) -> Signature | None:
    if text is None:
        return None
    if not isinstance(text, str) or len(text) != 128:
        raise BadEntry("a signature is 128 lowercase hex digits or null")
    try:
        return Signature(bytes.fromhex(text))
    except ValueError as error:
        raise BadEntry("a signature is 128 lowercase hex digits or null") from error


def public_key_from_hex(text: object, *, what: str = "public key") -> PublicKey:
    if not isinstance(text, str) or len(text) != 64:
        raise LedgerError(f"{what} must be 64 hex digits")
    try:
        return PublicKey(bytes.fromhex(text))
    except ValueError as error:
        raise LedgerError(f"{what} must be 64 hex digits") from error
