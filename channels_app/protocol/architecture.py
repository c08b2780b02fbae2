"""The shape of the state machine, after Raiden's ``raiden/transfer/architecture.py``.

A transition takes the node's channel state and one state change and returns the new state
and the events the shell must carry out after it has saved the new state. Transitions are
pure: the clock arrives inside state changes (``Tick``, on-chain observations), signatures are
made by the shell before the change is applied, and nothing here reads a key, a socket or a
database. A transition that refuses a change raises a :class:`ChannelError` and the caller's
state is untouched (it is immutable).
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any, Generic, TypeVar


@dataclass(frozen=True, slots=True)
class StateChange:
    """Something that happened: a request of ours, a message from a peer, a chain event."""


@dataclass(frozen=True, slots=True)
class Event:
    """Something the shell must do once the new state is saved: send, persist, transact."""


StateT = TypeVar("StateT")


# No slots: instantiating a subscripted generic (TransitionResult[NodeChannels](...)) sets
# __orig_class__ on the instance, which a slotted class has no room for.
@dataclass(frozen=True)
class TransitionResult(Generic[StateT]):
    new_state: StateT
    events: tuple[Event, ...] = ()


T = TypeVar("T")

_REPLACERS: dict[type, Any] = {}


def _replacer(cls: type) -> Any:
    """A function ``(obj, changes) -> cls(...)`` passing every field positionally, written
    for ``cls`` once (as ``dataclasses`` writes ``__init__``): a keyword call built from a
    dictionary cost twice as much."""
    names = [f.name for f in dataclasses.fields(cls) if f.init]
    arguments = ", ".join(f"changes[{name!r}] if {name!r} in changes else obj.{name}" for name in names)
    source = (
        "def replace(obj, changes):\n"
        "    if not changes.keys() <= names:\n"
        "        raise TypeError(f'{cls.__name__} has no field(s) {sorted(set(changes) - names)}')\n"
        f"    return cls({arguments})\n"
    )
    namespace: dict[str, Any] = {"cls": cls, "names": frozenset(names)}
    exec(source, namespace)  # noqa: S102 - the source is built from the class's own field names
    return namespace["replace"]


def replace(obj: T, /, **changes: Any) -> T:
    """``dataclasses.replace`` for the protocol's frozen dataclasses, without its per-call
    introspection (it walks every field's metadata on each call: a tenth of an update's CPU
    in the transitions, which replace a channel and the node's state several times each).
    The constructor still runs, ``__post_init__`` checks included; an unknown name raises
    ``TypeError`` as the original does."""
    cls = type(obj)
    function = _REPLACERS.get(cls)
    if function is None:
        function = _REPLACERS[cls] = _replacer(cls)
    result: T = function(obj, changes)
    return result
