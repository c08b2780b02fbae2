"""Accusations: provable malice, checkable by anyone with nothing but the accusation.

Each kind of accusation carries the signed objects that prove it. ``check_accusation`` needs no
graph and no trust in the accuser: it verifies signatures and the broken rule. An accusation
that does not check is itself provable malice by whoever signed the event that carries it
(``false-accusation``), so accusing a correct peer is never free.

What is deliberately *not* accusable: an unsigned or wrongly signed message (anyone could have
forged it; the transport drops it), and a parent we have not received (it may still be on its
way). Those are refused with a typed error and nobody is blamed.
"""

from __future__ import annotations

from enum import StrEnum
from typing import Any

from consensus.protocol.event import (
    Accusation,
    Event,
    checked_event_id,
    event_body,
    event_id_of_body,
)
from consensus.protocol.types import ConsensusError, EventId, ValidatorId
from settlement.protocol.encoding import canonical, sha256
from settlement.protocol.signing import is_valid

MESSAGE_KIND = "gossip-message"
MAX_NESTING = 2


class MaliceKind(StrEnum):
    FORK = "fork"
    """Two signed events by one creator at one position of its chain (one self-parent)."""
    BAD_SELF_PARENT = "bad-self-parent"
    """The self-parent is by another creator, or not at the previous index, or missing/extra."""
    OTHER_PARENT_BY_SAME_CREATOR = "other-parent-by-same-creator"
    DUPLICATE_VOTE = "duplicate-vote"
    """One observation voted twice by one creator in one epoch."""
    INVALID_EVENT_IN_MESSAGE = "invalid-event-in-message"
    """A signed gossip message that carries an event with a bad signature or a broken structure:
    a correct peer checks every event before it passes it on, so the sender is to blame."""
    FALSE_ACCUSATION = "false-accusation"


def make_accusation(kind: MaliceKind, offender: ValidatorId, evidence: dict[str, Any]) -> Accusation:
    return Accusation(kind=kind.value, offender=offender, evidence=canonical(evidence).decode())


def accusation_from_events(
    kind: str, offender: ValidatorId, events: tuple[Event, ...], observation: bytes | None
) -> Accusation:
    evidence: dict[str, Any] = {"events": [event.to_wire() for event in events]}
    if observation is not None:
        evidence["observation"] = observation.hex()
    return make_accusation(MaliceKind(kind), offender, evidence)


def message_digest(signatures: list[bytes] | tuple[bytes, ...]) -> bytes:
    """What a gossip message header commits to: the signatures of the events it carries, in order."""
    return sha256(b"".join(signatures))


def _signed_event(wire: Any, offender: ValidatorId) -> tuple[Event, EventId]:
    event = Event.from_wire(wire)
    if event.creator != offender:
        raise ConsensusError("evidence event is not by the offender")
    return event, checked_event_id(event)


def check_accusation(accusation: Accusation, *, depth: int = 0) -> bool:
    """True when the evidence proves ``accusation.offender`` broke the named rule."""
    try:
        return _check(accusation, depth)
    except (ConsensusError, KeyError, TypeError, ValueError, IndexError):
        return False
    except Exception:
        return False


def _check(accusation: Accusation, depth: int) -> bool:
    evidence = accusation.evidence_value()
    offender = accusation.offender
    kind = MaliceKind(accusation.kind)
    if kind is MaliceKind.FORK:
        (first, first_id), (second, second_id) = (
            _signed_event(item, offender) for item in evidence["events"]
        )
        return first_id != second_id and first.epoch == second.epoch and first.index == second.index
    if kind is MaliceKind.BAD_SELF_PARENT:
        events = evidence["events"]
        event, _ = _signed_event(events[0], offender)
        if (event.index == 0) != (event.self_parent is None):
            return True
        if len(events) != 2:
            return False
        parent = Event.from_wire(events[1])
        parent_id = checked_event_id(parent)
        return parent_id == event.self_parent and (
            parent.creator != event.creator or parent.index != event.index - 1 or parent.epoch != event.epoch
        )
    if kind is MaliceKind.OTHER_PARENT_BY_SAME_CREATOR:
        event, _ = _signed_event(evidence["events"][0], offender)
        parent, parent_id = _signed_event(evidence["events"][1], offender)
        return parent_id == event.other_parent
    if kind is MaliceKind.DUPLICATE_VOTE:
        observation = bytes.fromhex(evidence["observation"])
        events = [_signed_event(item, offender) for item in evidence["events"]]
        if len(events) == 1:
            return bool(events[0][0].observations.count(observation) >= 2)
        (first, first_id), (second, second_id) = events
        return (
            first_id != second_id
            and first.epoch == second.epoch
            and observation in first.observations
            and observation in second.observations
        )
    if kind is MaliceKind.INVALID_EVENT_IN_MESSAGE:
        header = evidence["header"]
        if bytes.fromhex(header["sender"]) != offender:
            return False
        if not is_valid(offender, MESSAGE_KIND, header, bytes.fromhex(evidence["signature"])):
            return False
        signatures = [bytes.fromhex(item) for item in evidence["event_signatures"]]
        if message_digest(signatures).hex() != header["events"]:
            return False
        event = Event.from_wire(evidence["event"])
        if event.signature not in signatures:
            return False
        try:
            body = event_body(event)
        except ConsensusError:
            return True
        return not is_valid(event.creator, "gossip-event", body, event.signature)
    if kind is MaliceKind.FALSE_ACCUSATION:
        if depth >= MAX_NESTING:
            return False
        event, _ = _signed_event(evidence["events"][0], offender)
        return any(not check_accusation(item, depth=depth + 1) for item in event.accusations)
    return False


__all__ = [
    "MESSAGE_KIND",
    "MaliceKind",
    "accusation_from_events",
    "check_accusation",
    "event_id_of_body",
    "make_accusation",
    "message_digest",
]
