"""The channel rules: pure Python, no Django, no I/O (ARCHITECTURE.md §5).

- :mod:`.channel_state`: what is signed (``ChannelParams``, ``ChannelState``, allocations).
- :mod:`.eip712`: hashing and secp256k1 signatures, identical to the Adjudicator's.
- :mod:`.state`, :mod:`.state_changes`, :mod:`.events`: the state machine's data.
- :mod:`.transition`: ``transition(state, change) -> TransitionResult(new_state, events)``.
- :mod:`.proposals`: building the next state (payment, lock, release, close, stream payment).
- :mod:`.errors`: typed refusals with a machine code and a sentence.
"""

from channels_app.protocol.architecture import Event, StateChange, TransitionResult
from channels_app.protocol.channel_state import Allocation, ChannelParams, ChannelState, SubAllocation
from channels_app.protocol.eip712 import Domain, Signature, sign_state, state_digest, verify_state_signature
from channels_app.protocol.errors import ChannelError
from channels_app.protocol.state import Channel, ChannelKind, NodeChannels, Phase, SignedState
from channels_app.protocol.transition import transition
from channels_app.protocol.types import ETH, Address, ChannelId, Version, Wei

__all__ = [
    "ETH",
    "Address",
    "Allocation",
    "Channel",
    "ChannelError",
    "ChannelId",
    "ChannelKind",
    "ChannelParams",
    "ChannelState",
    "Domain",
    "Event",
    "NodeChannels",
    "Phase",
    "Signature",
    "SignedState",
    "StateChange",
    "SubAllocation",
    "TransitionResult",
    "Version",
    "Wei",
    "sign_state",
    "state_digest",
    "transition",
    "verify_state_signature",
]
