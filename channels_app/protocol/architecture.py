"""The shape of the state machine, after Raiden's ``raiden/transfer/architecture.py``.

A transition takes the node's channel state and one state change and returns the new state
and the events the shell must carry out after it has saved the new state. Transitions are
pure: the clock arrives inside state changes (``Tick``, on-chain observations), signatures are
made by the shell before the change is applied, and nothing here reads a key, a socket or a
database. A transition that refuses a change raises a :class:`ChannelError` and the caller's
state is untouched (it is immutable).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Generic, TypeVar


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
