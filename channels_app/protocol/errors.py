"""Typed protocol errors: a machine code for the API and a sentence for a person.

A transition that raises changes nothing; the shell turns the error into a 4xx answer
(``code`` and ``message``) and stores nothing.
"""

from __future__ import annotations

# The names are the protocol's vocabulary (WrongVersion, BadSignature, ...), shared with the
# API codes; an "Error" suffix on each would only add noise.
# ruff: noqa: N818


class ChannelError(Exception):
    """Base of every rule the channel protocol can refuse."""

    code = "channel_error"

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message

    def as_dict(self) -> dict[str, str]:
        return {"code": self.code, "message": self.message}


class WrongVersion(ChannelError):
    code = "wrong_version"


class BadSignature(ChannelError):
    code = "bad_signature"


class NotConserved(ChannelError):
    code = "not_conserved"


class UnknownChannel(ChannelError):
    code = "unknown_channel"


class ChannelClosed(ChannelError):
    code = "channel_closed"


class DepositBelowAgreed(ChannelError):
    code = "deposit_below_agreed"


class NotFunded(ChannelError):
    code = "not_funded"


class UpdatePending(ChannelError):
    code = "update_pending"


class NoPendingUpdate(ChannelError):
    code = "no_pending_update"


class Unfavourable(ChannelError):
    """The update would take value from us that we did not agree to give."""

    code = "unfavourable_update"


class SubAllocationError(ChannelError):
    code = "bad_sub_allocation"


class WrongPhase(ChannelError):
    code = "wrong_phase"


class OutsideWindow(ChannelError):
    code = "outside_window"


class BrokenHashChain(ChannelError):
    code = "broken_hash_chain"


class BadState(ChannelError):
    """The state is malformed: wrong channel, negative amount, duplicate asset."""

    code = "bad_state"
