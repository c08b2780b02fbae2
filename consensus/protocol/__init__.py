"""PARSEC-family gossip-about-gossip BFT consensus: pure rules, no I/O (ARCHITECTURE.md §6)."""

from consensus.protocol.block import Block, ValidatorSignature, is_certified, merkle_root
from consensus.protocol.event import Accusation, BlockSignature, Event
from consensus.protocol.malice import MaliceKind, check_accusation
from consensus.protocol.parsec import Parsec, Request, Response, Section, message_from_wire
from consensus.protocol.types import (
    AddValidator,
    BlockHeight,
    ConsensusError,
    DuplicateVote,
    Epoch,
    EventId,
    InvalidMessageSignature,
    MalformedMessage,
    NotAValidator,
    Observation,
    Payload,
    RemoveValidator,
    SnapshotError,
    ValidatorId,
    WrongEpoch,
)

__all__ = [
    "Accusation",
    "AddValidator",
    "Block",
    "BlockHeight",
    "BlockSignature",
    "ConsensusError",
    "DuplicateVote",
    "Epoch",
    "Event",
    "EventId",
    "InvalidMessageSignature",
    "MalformedMessage",
    "MaliceKind",
    "NotAValidator",
    "Observation",
    "Parsec",
    "Payload",
    "RemoveValidator",
    "Request",
    "Response",
    "Section",
    "SnapshotError",
    "ValidatorId",
    "ValidatorSignature",
    "WrongEpoch",
    "check_accusation",
    "is_certified",
    "merkle_root",
    "message_from_wire",
]
