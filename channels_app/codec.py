"""The protocol's frozen dataclasses as JSON, for PostgreSQL ``jsonb`` columns and the API.

One generic encoder for every protocol type: a dataclass becomes an object tagged with its
class name, bytes become hex, tuples become lists (and come back as tuples, so decoded states
stay hashable for the digest cache), mappings become lists of pairs (their keys are bytes or
ints, which JSON objects cannot hold), enums keep their value.
"""

from __future__ import annotations

import dataclasses
import enum
import operator
from collections.abc import Callable, Mapping
from typing import Any

from channels_app.protocol import channel_state, eip712, state

_CLASSES: dict[str, type] = {
    cls.__name__: cls
    for module in (channel_state, eip712, state)
    for cls in vars(module).values()
    if isinstance(cls, type) and (dataclasses.is_dataclass(cls) or issubclass(cls, enum.Enum))
}


_ENCODERS: dict[type, Callable[[Any, Any], dict[str, Any]] | None] = {}


def _dataclass_encoder(cls: type) -> Callable[[Any, Any], dict[str, Any]] | None:
    """For a dataclass type, a function building its tagged object in one expression (written
    once per type, as ``dataclasses`` writes ``__init__``); None for any other type. Asking
    ``dataclasses.is_dataclass`` and looping over the fields for every value cost more than
    the encoding itself."""
    try:
        return _ENCODERS[cls]
    except KeyError:
        pass
    encoder = None
    if dataclasses.is_dataclass(cls):
        # The constructor's fields: a field the class computes itself (init=False) is not data.
        names = [f.name for f in dataclasses.fields(cls) if f.init]
        members = "".join(f"{name!r}: encode(value.{name}, memo), " for name in names)
        source = f"def encoder(value, memo):\n    return {{'_t': {cls.__name__!r}, {members}}}\n"
        namespace: dict[str, Any] = {"encode": encode}
        exec(source, namespace)  # noqa: S102 - built from the class's own field names
        encoder = namespace["encoder"]
    _ENCODERS[cls] = encoder
    return encoder


Memo = dict[int, tuple[Any, Any]]
"""Encodings already made, by the id of the (immutable) object, which the memo keeps alive so
the id cannot be reused while it is there. Only for output that is serialised at once and
never changed: the encoded dictionaries are shared between the documents that contain them."""


def encode(value: Any, memo: Memo | None = None) -> Any:
    # The scalars first: they are most of what a channel's machine holds (every state, every
    # update is encoded at least twice), and the checks below cost more than these.
    cls = type(value)
    if value is None or cls is int or cls is str or cls is bool:
        return value
    encoder = _dataclass_encoder(cls)
    if encoder is not None:
        if memo is None:
            return encoder(value, None)
        known = memo.get(id(value))
        if known is not None and known[0] is value:
            return known[1]
        encoded = encoder(value, memo)
        memo[id(value)] = (value, encoded)
        return encoded
    if isinstance(value, bytes):
        return {"_b": value.hex()}
    if isinstance(value, enum.Enum):
        return {"_e": cls.__name__, "v": value.value}
    if isinstance(value, Mapping):
        return {"_m": [[encode(key, memo), encode(item, memo)] for key, item in value.items()]}
    if isinstance(value, (tuple, list)):
        return [encode(item, memo) for item in value]
    return value


def decode(value: Any) -> Any:
    if isinstance(value, list):
        return tuple(decode(item) for item in value)
    if isinstance(value, dict):
        if "_b" in value:
            return bytes.fromhex(value["_b"])
        if "_e" in value:
            return _CLASSES[value["_e"]](value["v"])
        if "_m" in value:
            return {decode(key): decode(item) for key, item in value["_m"]}
        if "_t" in value:
            cls = _CLASSES[value["_t"]]
            return cls(**{name: decode(item) for name, item in value.items() if name != "_t"})
    return value


# ---------------------------------------------------------------- signed states as bytes
#
# A both-signed state is stored once per node, as bytes, in its history row
# (``ChannelState.signed``); our proposal awaiting its countersignature likewise in the channel
# row (``Channel.pending``). Fixed-width fields, big-endian, after a format byte:
#
#   format (1) = 1 | channel id (32) | version (8) | flags (1; bit 0: is_final)
#   | allocations (2) x [asset (20) | balance A (32) | balance B (32)]
#   | sub-allocations (2) x [channel id (32) | asset (20) | amount (32)]
#   | signatures (1) x [65]
#
# About 220 bytes for a one-asset state with both signatures, against about 600 of JSON that
# PostgreSQL had to parse; encoding and decoding are a few slices and int conversions.

STATE_BYTES_FORMAT = 1
_SIGNATURE_BYTES = 65


def _state_bytes(value: channel_state.ChannelState) -> list[bytes]:
    parts = [
        bytes((STATE_BYTES_FORMAT,)),
        bytes(value.channel_id),
        value.version.to_bytes(8, "big"),
        b"\x01" if value.is_final else b"\x00",
        len(value.allocations).to_bytes(2, "big"),
    ]
    for allocation in value.allocations:
        parts += (
            bytes.fromhex(allocation.asset[2:]),
            allocation.balance_a.to_bytes(32, "big"),
            allocation.balance_b.to_bytes(32, "big"),
        )
    parts.append(len(value.sub_allocations).to_bytes(2, "big"))
    for sub in value.sub_allocations:
        parts += (bytes(sub.channel_id), bytes.fromhex(sub.asset[2:]), sub.amount.to_bytes(32, "big"))
    return parts


def _signed_bytes(value: channel_state.ChannelState, signatures: tuple[bytes, ...]) -> bytes:
    parts = _state_bytes(value)
    parts.append(bytes((len(signatures),)))
    for signature in signatures:
        if len(signature) != _SIGNATURE_BYTES:
            raise ValueError("a channel signature is 65 bytes")
        parts.append(bytes(signature))
    return b"".join(parts)


def _from_signed_bytes(data: bytes) -> tuple[channel_state.ChannelState, tuple[Any, ...]]:
    data = bytes(data)  # PostgreSQL's bytea arrives as a memoryview
    if not data or data[0] != STATE_BYTES_FORMAT:
        raise ValueError("not a signed channel state in the stored format")
    _check_length(data)
    channel_id = data[1:33]
    version = int.from_bytes(data[33:41], "big")
    is_final = bool(data[41] & 1)
    count = int.from_bytes(data[42:44], "big")
    at = 44
    allocations = []
    for _ in range(count):
        allocations.append(
            channel_state.Allocation(
                "0x" + data[at : at + 20].hex(),  # type: ignore[arg-type]
                int.from_bytes(data[at + 20 : at + 52], "big"),  # type: ignore[arg-type]
                int.from_bytes(data[at + 52 : at + 84], "big"),  # type: ignore[arg-type]
            )
        )
        at += 84
    count = int.from_bytes(data[at : at + 2], "big")
    at += 2
    subs = []
    for _ in range(count):
        subs.append(
            channel_state.SubAllocation(
                data[at : at + 32],  # type: ignore[arg-type]
                "0x" + data[at + 32 : at + 52].hex(),  # type: ignore[arg-type]
                int.from_bytes(data[at + 52 : at + 84], "big"),  # type: ignore[arg-type]
            )
        )
        at += 84
    count = data[at]
    at += 1
    signatures = tuple(
        data[at + i * _SIGNATURE_BYTES : at + (i + 1) * _SIGNATURE_BYTES] for i in range(count)
    )
    decoded = channel_state.ChannelState(
        channel_id,  # type: ignore[arg-type]
        version,  # type: ignore[arg-type]
        tuple(allocations),
        tuple(subs),
        is_final,
    )
    return decoded, signatures


def _check_length(data: bytes) -> None:
    """The lengths the counts announce, before any field is read: cut or padded bytes are
    refused here, not misread."""
    at = 42
    for width in (84, 84):  # a count, then the allocations; the same for the sub-allocations
        if len(data) < at + 2:
            raise ValueError("a stored signed channel state is cut short")
        at += 2 + width * int.from_bytes(data[at : at + 2], "big")
    if len(data) < at + 1 or len(data) != at + 1 + _SIGNATURE_BYTES * data[at]:
        raise ValueError("a stored signed channel state has trailing or missing bytes")


def signed_state_bytes(signed: state.SignedState) -> bytes:
    """A both-signed state as stored in ``ChannelState.signed``."""
    return _signed_bytes(signed.state, signed.signatures)


def signed_state_from_bytes(data: bytes) -> state.SignedState:
    decoded, signatures = _from_signed_bytes(data)
    if len(signatures) != 2:
        raise ValueError("a both-signed state carries two signatures")
    return state.SignedState(decoded, signatures)


def pending_bytes(pending: state.PendingUpdate | None) -> bytes | None:
    """Our proposal awaiting its countersignature, as stored in ``Channel.pending``."""
    if pending is None:
        return None
    return _signed_bytes(pending.state, (pending.signature,))


def pending_from_bytes(data: bytes | None) -> state.PendingUpdate | None:
    return None if data is None else pending_update_from_bytes(data)


def pending_update_from_bytes(data: bytes) -> state.PendingUpdate:
    """A proposal as :func:`pending_bytes` stored it (or a peer sent it in a byte batch)."""
    decoded, signatures = _from_signed_bytes(data)
    if len(signatures) != 1:
        raise ValueError("a pending proposal carries our signature alone")
    return state.PendingUpdate(decoded, signatures[0])


# ---------------------------------------------------------------- the machine without its latest state
#
# ``Channel.machine`` keeps the parts of the protocol's ``Channel`` that change seldom (fixed
# part, phase, opening state, holdings, dispute, streams...). The two that change with every
# update live elsewhere: the latest both-signed state is the history row whose version is
# ``Channel.version``, and our pending proposal is ``Channel.pending``. So a plain update
# writes its state once per node and leaves the machine's JSON alone.

MACHINE_ELSEWHERE = ("latest", "pending")
_MACHINE_FIELDS = tuple(f.name for f in dataclasses.fields(state.Channel) if f.name not in MACHINE_ELSEWHERE)
_machine_fields = operator.attrgetter(*_MACHINE_FIELDS)


def machine_encode(channel: state.Channel, memo: Memo | None = None) -> dict[str, Any]:
    """The stored machine: every field of the channel but its latest state and pending proposal."""
    return {"_t": "Channel", **{name: encode(getattr(channel, name), memo) for name in _MACHINE_FIELDS}}


MachineParts = dict[str, Any]
"""A stored machine decoded: the channel's fields but the two kept elsewhere. Never changed
once built (shared between threads by the batch path's memory of decoded machines)."""


def machine_parts_decode(document: Mapping[str, Any]) -> MachineParts:
    if document.get("_t") != "Channel" or any(name in document for name in MACHINE_ELSEWHERE):
        raise ValueError("not a stored channel machine")
    return {name: decode(item) for name, item in document.items() if name != "_t"}


def machine_parts_of(channel: state.Channel) -> MachineParts:
    """The parts :func:`machine_encode` stores, as :func:`machine_parts_decode` would return them."""
    return {name: getattr(channel, name) for name in _MACHINE_FIELDS}


def machine_build(
    parts: MachineParts, latest: state.SignedState, pending: state.PendingUpdate | None
) -> state.Channel:
    return state.Channel(**parts, latest=latest, pending=pending)


def machine_unchanged(before: state.Channel, after: state.Channel) -> bool:
    """Whether the stored machine of ``after`` is the one of ``before``. The rules replace a
    channel passing the fields they keep as they are, so an unchanged field is the same object;
    a field rebuilt equal only costs a needless write."""
    return all(map(operator.is_, _machine_fields(before), _machine_fields(after)))
