# ruff: noqa: N818  -- the names are the API (WrongPrev, InsufficientFunds ...), as settlement.protocol.signing.BadSignature
"""Typed errors of the ledger rules: each has a machine code and a sentence for people.

The shell maps any :class:`LedgerError` to a 4xx answer ``{"code": error.code, "detail":
str(error)}`` and changes nothing (STYLE.md §7). Codes are part of the API: never rename one.
"""

from __future__ import annotations

from typing import ClassVar

from settlement.protocol.signing import BadSignature


class LedgerError(ValueError):
    """Base of every rule violation; ``code`` is stable, the message is for people."""

    code: ClassVar[str] = "ledger_error"


class BadAssetId(LedgerError):
    code = "bad_asset_id"


class BadLedgerId(LedgerError):
    code = "bad_ledger_id"


class BadAmount(LedgerError):
    """Not an integer, not positive, too many decimals, or beyond the documented maximum."""

    code = "bad_amount"


class AmountOverflow(BadAmount):
    """A balance or supply would leave the range a PostgreSQL bigint can hold."""

    code = "amount_overflow"


class UnknownAsset(LedgerError):
    code = "unknown_asset"


class UnknownLedger(LedgerError):
    code = "unknown_ledger"


class UnknownKind(LedgerError):
    code = "unknown_kind"


class BadBody(LedgerError):
    """The entry's body does not have the shape its kind requires."""

    code = "bad_body"


class BadEntry(LedgerError):
    """The entry itself (not its body) is malformed: a field missing or of the wrong type."""

    code = "bad_entry"


class BadEntrySignature(LedgerError, BadSignature):
    """A signature that does not verify; also a :class:`BadSignature` for generic handlers."""

    code = "bad_signature"


class MissingSignature(LedgerError):
    code = "missing_signature"


class WrongLedger(LedgerError):
    code = "wrong_ledger"


class WrongHeight(LedgerError):
    code = "wrong_height"


class WrongPrev(LedgerError):
    code = "wrong_prev"


class BadTime(LedgerError):
    code = "bad_time"


class InsufficientFunds(LedgerError):
    code = "insufficient_funds"


class CreditLimitExceeded(LedgerError):
    code = "credit_limit_exceeded"


class NotAccepted(LedgerError):
    """The counterparty that owns the ledger has not passed KYC (status is not ACCEPTED)."""

    code = "not_accepted"


class NotIssuer(LedgerError):
    """Only the bank whose namespace names the asset may issue or redeem it."""

    code = "not_issuer"


class BadRoute(LedgerError):
    code = "bad_route"


class PaymentExpired(LedgerError):
    code = "payment_expired"


class BadTransition(LedgerError):
    """A state machine was asked for a change its current phase does not allow."""

    code = "bad_transition"


class OfferExpired(LedgerError):
    code = "offer_expired"


class OfferAlreadyTaken(LedgerError):
    code = "offer_already_taken"


class BadOffer(LedgerError):
    code = "bad_offer"


class BadFraudProof(LedgerError):
    code = "bad_fraud_proof"
