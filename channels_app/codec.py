"""The protocol's frozen dataclasses as JSON, for PostgreSQL ``jsonb`` columns and the API.

One generic encoder for every protocol type: a dataclass becomes an object tagged with its
class name, bytes become hex, tuples become lists (and come back as tuples, so decoded states
stay hashable for the digest cache), mappings become lists of pairs (their keys are bytes or
ints, which JSON objects cannot hold), enums keep their value.
"""

from __future__ import annotations

import dataclasses
import enum
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
