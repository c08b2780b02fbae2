"""The built-in entry kinds: issue, redeem, transfer, payment, offer, take, cancel.

Amounts in bodies are strings of minor units (see :mod:`ledgers.protocol.amounts`). Hold keys are
``payment:<payment id>``, ``offer:<offer id>`` and ``take:<take id>``; the shell stores open holds
per ledger and passes them to :func:`ledgers.protocol.chain.check_append`.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from ledgers.protocol.catalogue import (
    BalanceChange,
    Catalogue,
    Effects,
    EntryKind,
    Hold,
    KindContext,
    SupplyChange,
    body_amount,
    body_asset,
    body_choice,
    body_hex_digest,
    body_ledger,
    body_str,
    require_keys,
)
from ledgers.protocol.errors import BadBody, NotIssuer
from ledgers.protocol.identifiers import AssetId, ledger_namespace

SIDES = ("debit", "credit")


def payment_hold_key(payment_id: str) -> str:
    return f"payment:{payment_id}"


def offer_hold_key(offer_id: str) -> str:
    return f"offer:{offer_id}"


def take_hold_key(take_id: str) -> str:
    return f"take:{take_id}"


# issue / redeem: a bank turns a deposit into its IOU and back (seed 003 §3.4.3). Only the
# issuer's own books may do it, so the ledger's validator namespace must be the asset's issuer.

_SUPPLY_FIELDS = {"asset", "amount", "reference"}


def _validate_supply(body: Mapping[str, Any], context: KindContext, kind: str) -> None:
    require_keys(body, required=_SUPPLY_FIELDS, kind=kind)
    asset = body_asset(body, "asset", context)
    body_amount(body, "amount")
    body_str(body, "reference")
    if asset.issuer != ledger_namespace(context.ledger):
        raise NotIssuer(f"only {asset.issuer} may {kind} {asset.id}, not a ledger kept by another bank")


def _issue_effects(body: Mapping[str, Any], context: KindContext) -> Effects:
    asset, amount = AssetId(body["asset"]), body_amount(body, "amount")
    # The bank issues against a deposit it received; the depositor does not need to sign.
    return Effects(
        changes=(BalanceChange(asset, amount),),
        supply=(SupplyChange(asset, issued=amount),),
        party_must_sign=False,
    )


def _redeem_effects(body: Mapping[str, Any], context: KindContext) -> Effects:
    asset, amount = AssetId(body["asset"]), body_amount(body, "amount")
    return Effects(changes=(BalanceChange(asset, -amount),), supply=(SupplyChange(asset, redeemed=amount),))


ISSUE = EntryKind(name="issue", validate=lambda b, c: _validate_supply(b, c, "issue"), effects=_issue_effects)
REDEEM = EntryKind(
    name="redeem", validate=lambda b, c: _validate_supply(b, c, "redeem"), effects=_redeem_effects
)


# transfer: one side of a payment within one bank (plan_intrabank_payment writes both sides).

_TRANSFER_FIELDS = {"transfer", "side", "asset", "amount", "counterparty"}


def _validate_same_bank_leg(body: Mapping[str, Any], context: KindContext, kind: str) -> None:
    body_asset(body, "asset", context)
    body_amount(body, "amount")
    body_choice(body, "side", SIDES)
    counterparty = body_ledger(body, "counterparty")
    if counterparty == context.ledger:
        raise BadBody(f"a {kind} cannot have its own ledger as counterparty")
    if ledger_namespace(counterparty) != ledger_namespace(context.ledger):
        raise BadBody(f"both sides of a {kind} entry are ledgers of the same bank")


def _validate_transfer(body: Mapping[str, Any], context: KindContext) -> None:
    require_keys(body, required=_TRANSFER_FIELDS, kind="transfer")
    body_str(body, "transfer")
    _validate_same_bank_leg(body, context, "transfer")


def _leg_effects(body: Mapping[str, Any], *, release: str | None) -> Effects:
    asset, amount = AssetId(body["asset"]), body_amount(body, "amount")
    if body["side"] == "credit":
        return Effects(changes=(BalanceChange(asset, amount),), party_must_sign=False)
    return Effects(
        changes=(BalanceChange(asset, -amount),),
        releases_holds=() if release is None else (release,),
        party_must_sign=release is None,
    )


TRANSFER = EntryKind(
    name="transfer",
    validate=_validate_transfer,
    effects=lambda body, context: _leg_effects(body, release=None),
)


# payment: one side of one leg of a payment between banks. The party's authority is the payment
# instruction it signed (ledgers.protocol.interbank), named by its id; the bank appends only with
# the finished proof in hand, so the entry itself needs only the bank's signature.

_PAYMENT_FIELDS = {"payment", "leg", "side", "asset", "amount", "counterparty"}


def _validate_payment(body: Mapping[str, Any], context: KindContext) -> None:
    require_keys(body, required=_PAYMENT_FIELDS, kind="payment")
    body_hex_digest(body, "payment")
    leg = body.get("leg")
    if isinstance(leg, bool) or not isinstance(leg, int) or not 0 <= leg < 16:
        raise BadBody("leg must be an integer from 0 to 15")
    _validate_same_bank_leg(body, context, "payment")


PAYMENT = EntryKind(
    name="payment",
    validate=_validate_payment,
    effects=lambda body, context: _leg_effects(body, release=payment_hold_key(body["payment"])),
)


# offer: the maker sets aside what it gives until the offer is taken or cancelled (seed 003 §5).


def _validate_offer(body: Mapping[str, Any], context: KindContext) -> None:
    from ledgers.protocol.exchange import Offer  # exchange imports kinds for hold keys

    require_keys(body, required={"offer"}, kind="offer")
    offer = Offer.from_json(body["offer"])
    if offer.maker_ledger != context.ledger:
        raise BadBody("an offer is recorded on its maker's ledger")
    for asset_field in ("give_asset", "want_asset"):
        body_asset(body["offer"], asset_field, context)


def _offer_effects(body: Mapping[str, Any], context: KindContext) -> Effects:
    from ledgers.protocol.exchange import Offer

    offer = Offer.from_json(body["offer"])
    return Effects(places_holds=(Hold(offer_hold_key(offer.id), offer.give_asset, offer.give_amount),))


OFFER = EntryKind(name="offer", validate=_validate_offer, effects=_offer_effects)


# take: one side of a settled exchange; the same body shape on the maker's and the taker's ledger.

_TAKE_FIELDS = {"offer", "take", "role", "give_asset", "give_amount", "get_asset", "get_amount"}


def _validate_take(body: Mapping[str, Any], context: KindContext) -> None:
    require_keys(body, required=_TAKE_FIELDS, kind="take")
    body_hex_digest(body, "offer")
    body_hex_digest(body, "take")
    body_choice(body, "role", ("maker", "taker"))
    give, get = body_asset(body, "give_asset", context), body_asset(body, "get_asset", context)
    if give.id == get.id:
        raise BadBody("an exchange gives one asset for another")
    body_amount(body, "give_amount")
    body_amount(body, "get_amount")


def _take_effects(body: Mapping[str, Any], context: KindContext) -> Effects:
    release = offer_hold_key(body["offer"]) if body["role"] == "maker" else take_hold_key(body["take"])
    return Effects(
        changes=(
            BalanceChange(AssetId(body["give_asset"]), -body_amount(body, "give_amount")),
            BalanceChange(AssetId(body["get_asset"]), body_amount(body, "get_amount")),
        ),
        releases_holds=(release,),
        # Authorised by the signed offer (maker) or the signed take (taker), not by a new signature.
        party_must_sign=False,
    )


TAKE = EntryKind(name="take", validate=_validate_take, effects=_take_effects)


def _validate_cancel(body: Mapping[str, Any], context: KindContext) -> None:
    require_keys(body, required={"offer"}, kind="cancel")
    body_hex_digest(body, "offer")


CANCEL = EntryKind(
    name="cancel",
    validate=_validate_cancel,
    effects=lambda body, context: Effects(releases_holds=(offer_hold_key(body["offer"]),)),
)


# message: a message the ledger's party sent (messaging.protocol.record), recorded by its digest,
# id, kind and recipients, never its body. Its authority is the envelope the sender signed (the
# digest commits to it), so like a payment leg it needs only the bank's signature; it moves nothing.

_MESSAGE_FIELDS = {"message", "id", "message_kind", "recipients"}
_MESSAGE_ID_DIGITS = frozenset("0123456789abcdef")


def _validate_message(body: Mapping[str, Any], context: KindContext) -> None:
    require_keys(body, required=_MESSAGE_FIELDS, kind="message")
    body_hex_digest(body, "message")
    message_id = body.get("id")
    if not isinstance(message_id, str) or len(message_id) != 32 or not set(message_id) <= _MESSAGE_ID_DIGITS:
        raise BadBody("id must be 32 lowercase hex digits (a message id)")
    body_str(body, "message_kind", max_length=40)
    recipients = body.get("recipients")
    if (
        not isinstance(recipients, list)
        or not 1 <= len(recipients) <= 32
        or not all(isinstance(item, str) and 3 <= len(item) <= 320 and "*" in item for item in recipients)
    ):
        raise BadBody("recipients must be 1 to 32 federation addresses")


MESSAGE = EntryKind(
    name="message",
    validate=_validate_message,
    effects=lambda body, context: Effects(party_must_sign=False),
)


# message-batch: messages the ledger's party signed as one batch (messaging.protocol.envelope,
# amortised signing), recorded once: the batch's RFC 9162 root over their digests, its size and
# the party's signature on that head. Each message is proven in it by its audit path; like
# ``message`` it needs only the bank's signature (the batch signature in the body is the party's).

_MESSAGE_BATCH_FIELDS = {"root", "size", "signature"}
MAX_MESSAGE_BATCH = 1 << 16  # messaging.protocol.envelope.MAX_BATCH_SIZE


def _validate_message_batch(body: Mapping[str, Any], context: KindContext) -> None:
    require_keys(body, required=_MESSAGE_BATCH_FIELDS, kind="message-batch")
    body_hex_digest(body, "root")
    size = body.get("size")
    if isinstance(size, bool) or not isinstance(size, int) or not 1 <= size <= MAX_MESSAGE_BATCH:
        raise BadBody(f"size must be an integer from 1 to {MAX_MESSAGE_BATCH}")
    signature = body.get("signature")
    if not isinstance(signature, str) or len(signature) != 128 or not set(signature) <= _MESSAGE_ID_DIGITS:
        raise BadBody("signature must be 128 lowercase hex digits (Ed25519)")


MESSAGE_BATCH = EntryKind(
    name="message-batch",
    validate=_validate_message_batch,
    effects=lambda body, context: Effects(party_must_sign=False),
)


DEFAULT_CATALOGUE = Catalogue(
    kinds={
        kind.name: kind
        for kind in (ISSUE, REDEEM, TRANSFER, PAYMENT, OFFER, TAKE, CANCEL, MESSAGE, MESSAGE_BATCH)
    }
)
