"""Typed errors of counterparties and KYC: each carries a machine-readable code, a sentence a
person understands, field errors where a field is to blame, and the HTTP status the edges use.

Pure (no Django): the KYC rules in :mod:`kyc_rules` raise these too.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence


class CounterpartyError(Exception):
    """Base class. ``fields`` maps a field name to the sentences that explain what is wrong."""

    code = "invalid"
    http_status = 400

    def __init__(self, message: str, *, fields: Mapping[str, Sequence[str]] | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.fields: dict[str, list[str]] = {name: list(errors) for name, errors in (fields or {}).items()}


class CounterpartyInvalid(CounterpartyError):  # noqa: N818 - the name is the interface
    """Bad input: a malformed key, a bad LEI, a taken federation address, a refused upload."""

    code = "invalid"


class CounterpartyNotFound(CounterpartyError):  # noqa: N818 - the name is the interface
    code = "not_found"
    http_status = 404


class CounterpartyNotAccepted(CounterpartyError):  # noqa: N818 - the name is the interface
    """The counterparty's KYC is not ACCEPTED: it may not hold funds or open channels."""

    code = "counterparty_not_accepted"
    http_status = 409


class KycTransitionNotAllowed(CounterpartyError):  # noqa: N818 - the name is the interface
    """The KYC state machine has no such step (e.g. REJECTED -> ACCEPTED)."""

    code = "kyc_transition_not_allowed"


class KycReasonRequired(CounterpartyError):  # noqa: N818 - the name is the interface
    """Rejecting, or asking for more information, must say why: the counterparty is told."""

    code = "invalid"


class KycDocumentsMissing(CounterpartyError):  # noqa: N818 - the name is the interface
    """Submitting for review with no document to review."""

    code = "kyc_documents_missing"
