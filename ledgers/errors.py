# ruff: noqa: N818  -- the names are the API, as in ledgers.protocol.errors
"""Errors of the ledgers shell that the pure rules cannot know about (requests, not entries).

They are :class:`~ledgers.protocol.errors.LedgerError` too, so every edge maps them the same way:
a 4xx with the code and the sentence, nothing changed.
"""

from __future__ import annotations

from ledgers.protocol.errors import LedgerError


class IdempotencyKeyReused(LedgerError):
    """The key was used before for a different request; a replay must ask for the same thing."""

    code = "idempotency_key_reused"


class CustodyMismatch(LedgerError):
    """A self-custody owner must send its signed entry; a custodial one must not."""

    code = "custody_mismatch"


class PeerRefused(LedgerError):
    """The other bank refused, or could not be reached, and the hold was released."""

    code = "peer_refused"


class NoRoute(LedgerError):
    """No bank we relate to reaches the recipient's bank with enough credit to carry the payment."""

    code = "no_route"


CONFLICT_CODES = frozenset(
    {
        "insufficient_funds",
        "credit_limit_exceeded",
        "not_accepted",
        "idempotency_key_reused",
        "offer_already_taken",
        "offer_expired",
        "payment_expired",
        "wrong_height",
        "wrong_prev",
        "peer_refused",
        "no_route",
    }
)
NOT_FOUND_CODES = frozenset({"unknown_ledger", "unknown_entry"})


def http_status(error: LedgerError) -> int:
    """409 when the request was well formed but the state forbids it, 404 for a ledger that is
    not here, 400 for everything malformed."""
    if error.code in CONFLICT_CODES:
        return 409
    if error.code in NOT_FOUND_CODES:
        return 404
    return 400


def error_for_code(code: str, message: str) -> LedgerError:
    """The typed error whose code another bank answered with (so our API answers with the same
    code), or :class:`PeerRefused` for a code we do not know."""
    pending: list[type[LedgerError]] = [LedgerError]
    while pending:
        kind = pending.pop()
        if kind.code == code and kind is not LedgerError:
            return kind(message)
        pending.extend(kind.__subclasses__())
    return PeerRefused(message)
