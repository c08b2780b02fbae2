"""Gossip events: the signed vertices of the gossip graph.

An event says "I, ``creator``, at position ``index`` of my chain, after my own ``self_parent``,
heard ``other_parent`` from a peer, and I vote for these ``observations``". Naming the two parents
is what makes the graph a record of who heard what when (gossip about gossip): every peer can
replay any other peer's view and vote *virtually* on its behalf, so the only messages on the wire
are the events themselves.

The signed body carries a digest of the observations, not the observations: the body stays small
whatever the batch size, so canonical encoding and signing cost the same for 1 or 5,000 payloads,
and the digest binds the batch as firmly as the bytes would.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

import nacl.exceptions
import nacl.signing

from consensus.protocol.types import (
    BlockHeight,
    Epoch,
    EventId,
    MalformedMessage,
    ValidatorId,
)
from settlement.protocol.encoding import domain_bytes, object_hash, sha256
from settlement.protocol.signing import BadSignature, SigningKey, sign

EVENT_KIND = "gossip-event"

# Bounds on what one event may carry: a peer that sends more is refused before any hashing, so
# an attacker cannot make us spend unbounded CPU or memory on one message.
MAX_OBSERVATIONS_PER_EVENT = 20_000
MAX_OBSERVATION_BYTES = 64 * 1024
MAX_BLOCK_SIGNATURES_PER_EVENT = 64
MAX_ACCUSATIONS_PER_EVENT = 64


@dataclass(frozen=True)
class BlockSignature:
    """The event creator's signature on the header of the block at ``height``."""

    height: BlockHeight
    block_hash: bytes
    signature: bytes

    def to_wire(self) -> list[Any]:
        return [self.height, self.block_hash.hex(), self.signature.hex()]

    @classmethod
    def from_wire(cls, value: Any) -> BlockSignature:
        try:
            height, block_hash, signature = value
            return cls(BlockHeight(int(height)), bytes.fromhex(block_hash), bytes.fromhex(signature))
        except (TypeError, ValueError) as error:
            raise MalformedMessage(f"bad block signature: {error}") from error


@dataclass(frozen=True)
class Accusation:
    """A claim that ``offender`` misbehaved, with evidence anyone can check (see ``malice.py``).

    The evidence is kept as canonical JSON text so that the accusation is hashable and compares
    by value; ``evidence_value`` parses it.
    """

    kind: str
    offender: ValidatorId
    evidence: str

    def evidence_value(self) -> Any:
        return json.loads(self.evidence)

    def to_wire(self) -> dict[str, Any]:
        return {"kind": self.kind, "offender": self.offender.hex(), "evidence": self.evidence_value()}

    @classmethod
    def from_wire(cls, value: Any) -> Accusation:
        from settlement.protocol.encoding import canonical

        try:
            return cls(
                kind=str(value["kind"]),
                offender=ValidatorId(bytes.fromhex(value["offender"])),
                evidence=canonical(value["evidence"]).decode(),
            )
        except (KeyError, TypeError, ValueError) as error:
            raise MalformedMessage(f"bad accusation: {error}") from error


@dataclass(frozen=True)
class Event:
    creator: ValidatorId
    epoch: Epoch
    index: int
    self_parent: EventId | None
    other_parent: EventId | None
    observations: tuple[bytes, ...]
    """Tagged observation bytes (``types.observation_bytes``), in the order the creator voted."""
    block_signatures: tuple[BlockSignature, ...]
    accusations: tuple[Accusation, ...]
    signature: bytes

    def to_wire(self) -> dict[str, Any]:
        return {
            "creator": self.creator.hex(),
            "epoch": self.epoch,
            "index": self.index,
            "self_parent": self.self_parent.hex() if self.self_parent else None,
            "other_parent": self.other_parent.hex() if self.other_parent else None,
            "observations": [observation.hex() for observation in self.observations],
            "block_signatures": [item.to_wire() for item in self.block_signatures],
            "accusations": [item.to_wire() for item in self.accusations],
            "signature": self.signature.hex(),
        }

    @classmethod
    def from_wire(cls, value: Any) -> Event:
        try:
            observations = value["observations"]
            block_signatures = value["block_signatures"]
            accusations = value["accusations"]
            if len(observations) > MAX_OBSERVATIONS_PER_EVENT:
                raise MalformedMessage("too many observations in one event")
            if len(block_signatures) > MAX_BLOCK_SIGNATURES_PER_EVENT:
                raise MalformedMessage("too many block signatures in one event")
            if len(accusations) > MAX_ACCUSATIONS_PER_EVENT:
                raise MalformedMessage("too many accusations in one event")
            return cls(
                creator=ValidatorId(bytes.fromhex(value["creator"])),
                epoch=Epoch(int(value["epoch"])),
                index=int(value["index"]),
                self_parent=EventId(bytes.fromhex(value["self_parent"])) if value["self_parent"] else None,
                other_parent=EventId(bytes.fromhex(value["other_parent"])) if value["other_parent"] else None,
                observations=tuple(bytes.fromhex(item) for item in observations),
                block_signatures=tuple(BlockSignature.from_wire(item) for item in block_signatures),
                accusations=tuple(Accusation.from_wire(item) for item in accusations),
                signature=bytes.fromhex(value["signature"]),
            )
        except (KeyError, TypeError, ValueError) as error:
            raise MalformedMessage(f"bad event: {error}") from error


def observations_digest(observations: tuple[bytes, ...]) -> bytes:
    # Length-prefixing makes the concatenation unambiguous: ("ab", "c") and ("a", "bc") differ.
    return sha256(b"".join(len(item).to_bytes(4, "big") + item for item in observations))


def event_body(event: Event) -> dict[str, Any]:
    """The signed part of an event; raises :class:`MalformedMessage` on a structural error."""
    if len(event.creator) != 32:
        raise MalformedMessage("creator is not a 32-byte key")
    if not isinstance(event.index, int) or event.index < 0:
        raise MalformedMessage("event index must be a non-negative integer")
    for parent in (event.self_parent, event.other_parent):
        if parent is not None and len(parent) != 32:
            raise MalformedMessage("a parent id is 32 bytes")
    if len(event.observations) > MAX_OBSERVATIONS_PER_EVENT:
        raise MalformedMessage("too many observations in one event")
    for item in event.observations:
        if not item or len(item) > MAX_OBSERVATION_BYTES:
            raise MalformedMessage("an observation is empty or too large")
        # Tags as in types.observation_bytes: a payload, or a membership change naming a key.
        if item[0] != 0x70 and not (item[0] in (0x61, 0x72) and len(item) == 33):
            raise MalformedMessage("an observation has an unknown tag or a bad validator key")
    if len(event.block_signatures) > MAX_BLOCK_SIGNATURES_PER_EVENT:
        raise MalformedMessage("too many block signatures in one event")
    if len(event.accusations) > MAX_ACCUSATIONS_PER_EVENT:
        raise MalformedMessage("too many accusations in one event")
    return {
        "creator": event.creator.hex(),
        "epoch": event.epoch,
        "index": event.index,
        "self_parent": event.self_parent.hex() if event.self_parent else None,
        "other_parent": event.other_parent.hex() if event.other_parent else None,
        "observations": {
            "count": len(event.observations),
            "digest": observations_digest(event.observations).hex(),
        },
        "block_signatures": [item.to_wire() for item in event.block_signatures],
        "accusations": [item.to_wire() for item in event.accusations],
    }


def event_id_of_body(body: dict[str, Any]) -> EventId:
    return EventId(object_hash(EVENT_KIND, body))


def create_event(
    key: SigningKey,
    *,
    epoch: Epoch,
    index: int,
    self_parent: EventId | None,
    other_parent: EventId | None,
    observations: tuple[bytes, ...] = (),
    block_signatures: tuple[BlockSignature, ...] = (),
    accusations: tuple[Accusation, ...] = (),
) -> tuple[Event, EventId]:
    """Build and sign an event; return it with its id."""
    unsigned = Event(
        creator=ValidatorId(key.public_key),
        epoch=epoch,
        index=index,
        self_parent=self_parent,
        other_parent=other_parent,
        observations=observations,
        block_signatures=block_signatures,
        accusations=accusations,
        signature=b"",
    )
    body = event_body(unsigned)
    signed = Event(**{**unsigned.__dict__, "signature": sign(key, EVENT_KIND, body)})
    return signed, event_id_of_body(body)


def checked_event_id(event: Event) -> EventId:
    """Verify the event's signature and return its id; raise ``BadSignature`` or ``MalformedMessage``.

    The signed bytes and the id come from one ``domain_bytes`` call: canonical encoding is the
    costliest step of receiving an event (pure-Python RFC 8785), and ``verify`` followed by
    ``object_hash`` would encode the same body twice. The check is exactly ``verify``'s: the same
    key and signature length rules, the same bytes, the same Ed25519 verification.
    """
    body = event_body(event)
    signed = domain_bytes(EVENT_KIND, body)
    if len(event.creator) != 32 or len(event.signature) != 64:
        raise BadSignature("an Ed25519 key is 32 bytes and a signature 64")
    try:
        nacl.signing.VerifyKey(event.creator).verify(signed, event.signature)
    except nacl.exceptions.BadSignatureError as error:
        raise BadSignature(f"signature does not verify for this {EVENT_KIND}") from error
    return EventId(sha256(signed))
