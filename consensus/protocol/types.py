"""Identifiers, observations and typed errors of the consensus protocol.

Everything here is a plain value: frozen dataclasses and ``NewType`` aliases, so that a node's
shell can persist them, a simulator can copy them, and a test can compare them.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import NewType

from settlement.protocol.encoding import sha256

ValidatorId = NewType("ValidatorId", bytes)
"""A validator is named by its raw 32-byte Ed25519 public key: the name is the key that checks it."""

EventId = NewType("EventId", bytes)
"""SHA-256 of an event's domain-separated canonical body (``object_hash("gossip-event", body)``)."""

ObservationHash = NewType("ObservationHash", bytes)
"""SHA-256 of an observation's tagged bytes; the identity used for de-duplication."""

Epoch = NewType("Epoch", int)
"""A membership epoch: one validator set, one gossip graph. A membership change ends the epoch."""

Round = NewType("Round", int)
BlockHeight = NewType("BlockHeight", int)


@dataclass(frozen=True)
class Payload:
    """An opaque observation: the application decides what the bytes mean."""

    data: bytes


@dataclass(frozen=True)
class AddValidator:
    validator: ValidatorId


@dataclass(frozen=True)
class RemoveValidator:
    validator: ValidatorId


Observation = Payload | AddValidator | RemoveValidator

# One-byte tags keep the three kinds of observation from ever sharing bytes (and so a hash).
_PAYLOAD_TAG = b"p"
_ADD_TAG = b"a"
_REMOVE_TAG = b"r"


def observation_bytes(observation: Observation) -> bytes:
    """The bytes an observation is hashed and Merkle-committed as: a tag byte, then the value."""
    if isinstance(observation, Payload):
        return _PAYLOAD_TAG + observation.data
    if isinstance(observation, AddValidator):
        return _ADD_TAG + observation.validator
    return _REMOVE_TAG + observation.validator


def observation_from_bytes(data: bytes) -> Observation:
    tag, value = data[:1], data[1:]
    if tag == _PAYLOAD_TAG:
        return Payload(value)
    if tag in (_ADD_TAG, _REMOVE_TAG):
        if len(value) != 32:
            raise MalformedMessage("a membership change names a 32-byte validator key")
        return AddValidator(ValidatorId(value)) if tag == _ADD_TAG else RemoveValidator(ValidatorId(value))
    raise MalformedMessage(f"unknown observation tag {tag!r}")


def observation_hash(observation: Observation) -> ObservationHash:
    return ObservationHash(sha256(observation_bytes(observation)))


class ConsensusError(Exception):
    """Base of every error the consensus protocol raises on purpose."""


class NotAValidator(ConsensusError):  # noqa: N818 - the name says what happened
    """The peer (or we) are not a validator of the current epoch."""


class MalformedMessage(ConsensusError):  # noqa: N818 - the name says what happened
    """A request, response or event that cannot be decoded or breaks a structural rule."""


class InvalidMessageSignature(MalformedMessage):
    """The message is not signed by the peer it claims to come from: nothing can be proven about it."""


class WrongEpoch(ConsensusError):  # noqa: N818 - the name says what happened
    """The message belongs to an epoch we cannot serve (too old, or one we have not reached)."""


class DuplicateVote(ConsensusError):  # noqa: N818 - the name says what happened
    """``vote_for`` was called twice with one observation; a correct node never votes twice."""


class SnapshotError(ConsensusError):
    """A persisted snapshot that cannot be restored."""
