"""The protocol's frozen dataclasses as JSON, for PostgreSQL ``jsonb`` columns and the API.

One generic encoder for every protocol type: a dataclass becomes an object tagged with its
class name, bytes become hex, tuples become lists (and come back as tuples, so decoded states
stay hashable for the digest cache), mappings become lists of pairs (their keys are bytes or
ints, which JSON objects cannot hold), enums keep their value.
"""

from __future__ import annotations

import dataclasses
import enum
from collections.abc import Mapping
from typing import Any

from channels_app.protocol import channel_state, eip712, state

_CLASSES: dict[str, type] = {
    cls.__name__: cls
    for module in (channel_state, eip712, state)
    for cls in vars(module).values()
    if isinstance(cls, type) and (dataclasses.is_dataclass(cls) or issubclass(cls, enum.Enum))
}


_FIELD_NAMES: dict[type, tuple[str, ...] | None] = {}


def _field_names(cls: type) -> tuple[str, ...] | None:
    """The fields of a dataclass type, None for any other type; remembered per type (asking
    ``dataclasses.is_dataclass`` for every value cost more than the encoding itself)."""
    try:
        return _FIELD_NAMES[cls]
    except KeyError:
        names = tuple(f.name for f in dataclasses.fields(cls)) if dataclasses.is_dataclass(cls) else None
        _FIELD_NAMES[cls] = names
        return names


def encode(value: Any) -> Any:
    # The scalars first: they are most of what a channel's machine holds (every state, every
    # update is encoded at least twice), and the checks below cost more than these.
    cls = type(value)
    if value is None or cls is int or cls is str or cls is bool:
        return value
    names = _field_names(cls)
    if names is not None:
        encoded = {"_t": cls.__name__}
        for name in names:
            encoded[name] = encode(getattr(value, name))
        return encoded
    if isinstance(value, bytes):
        return {"_b": value.hex()}
    if isinstance(value, enum.Enum):
        return {"_e": cls.__name__, "v": value.value}
    if isinstance(value, Mapping):
        return {"_m": [[encode(key), encode(item)] for key, item in value.items()]}
    if isinstance(value, (tuple, list)):
        return [encode(item) for item in value]
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
