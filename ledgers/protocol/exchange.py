"""Exchange offers (seed 003 §5): an offer signed by its maker and the maker's bank, taken by
exactly one taker.

1. The maker signs an :class:`Offer`; its bank checks funds, appends an ``offer`` entry (which
   holds what the maker gives) and signs the offer too: a :class:`SignedOffer` spreads to peers.
2. A taker signs a :class:`Take`; the taker's bank checks it (:func:`check_take`), holds what the
   taker pays, signs the take, and passes it to the maker's bank.
3. The maker's bank accepts exactly one take (:func:`accept_take` on its :class:`OfferBook`
   state), appends the maker's side of the trade in the same transaction, and returns an
   :class:`AcceptedTake` signed by it: the taker's evidence (seed 003: "a proof ... that contains
   signatures of bank #1").
4. The taker's bank appends the taker's side on that evidence (:func:`plan_take_entries`). A bank
   that accepted or received an accepted take and never applies it can be shown up with a fraud
   proof (:mod:`ledgers.protocol.fraud`).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from enum import StrEnum
from functools import cached_property
from typing import Any

from ledgers.protocol.amounts import MinorUnits, amount_from_wire, amount_to_wire
from ledgers.protocol.catalogue import Hold
from ledgers.protocol.chain import ChainHead, LedgerView, check_hold, next_entry
from ledgers.protocol.entries import Entry, Millis
from ledgers.protocol.errors import (
    BadAssetId,
    BadLedgerId,
    BadOffer,
    BadTransition,
    LedgerError,
    NotAccepted,
    OfferAlreadyTaken,
    OfferExpired,
    UnknownAsset,
)
from ledgers.protocol.identifiers import Asset, AssetId, LedgerId, parse_asset_id, parse_ledger_id
from ledgers.protocol.kinds import take_hold_key
from ledgers.protocol.signed_objects import Encoded, encode, hex_bytes, sign_message, verify_message
from settlement.protocol.signing import PublicKey, Signature, SigningKey

OFFER_KIND = "ledger-offer"
TAKE_KIND = "ledger-take"
ACCEPT_KIND = "ledger-take-accept"


def _millis(value: Mapping[str, Any], name: str) -> Millis:
    item = value.get(name)
    if isinstance(item, bool) or not isinstance(item, int) or item < 0:
        raise BadOffer(f"{name} must be milliseconds since the epoch")
    return Millis(item)


def _reference(value: Mapping[str, Any]) -> str:
    item = value.get("reference")
    if not isinstance(item, str) or not 0 < len(item) <= 200:
        raise BadOffer("reference must be a non-empty string of at most 200 characters")
    return item


@dataclass(frozen=True)
class Offer:
    """The maker gives ``give_amount`` of ``give_asset`` for ``want_amount`` of ``want_asset``."""

    maker_ledger: LedgerId
    give_asset: AssetId
    give_amount: MinorUnits
    want_asset: AssetId
    want_amount: MinorUnits
    expires_at: Millis
    reference: str

    def to_json(self) -> dict[str, Any]:
        return {
            "maker_ledger": self.maker_ledger,
            "give_asset": self.give_asset,
            "give_amount": amount_to_wire(self.give_amount),
            "want_asset": self.want_asset,
            "want_amount": amount_to_wire(self.want_amount),
            "expires_at": self.expires_at,
            "reference": self.reference,
        }

    @classmethod
    def from_json(cls, value: object) -> Offer:
        fields = {
            "maker_ledger",
            "give_asset",
            "give_amount",
            "want_asset",
            "want_amount",
            "expires_at",
            "reference",
        }
        if not isinstance(value, Mapping) or set(value) != fields:
            raise BadOffer(f"an offer has exactly {', '.join(sorted(fields))}")
        try:
            offer = cls(
                maker_ledger=parse_ledger_id(value["maker_ledger"]),
                give_asset=parse_asset_id(value["give_asset"]),
                give_amount=amount_from_wire(value["give_amount"]),
                want_asset=parse_asset_id(value["want_asset"]),
                want_amount=amount_from_wire(value["want_amount"]),
                expires_at=_millis(value, "expires_at"),
                reference=_reference(value),
            )
        except (BadAssetId, BadLedgerId) as error:
            raise BadOffer(str(error)) from error
        if offer.give_asset == offer.want_asset:
            raise BadOffer("an offer exchanges one asset for another")
        return offer

    @cached_property
    def encoded(self) -> Encoded:
        return encode(OFFER_KIND, self.to_json())

    @property
    def id(self) -> str:
        return self.encoded.id


@dataclass(frozen=True)
class SignedOffer:
    offer: Offer
    maker_key: PublicKey
    maker_signature: Signature
    bank_key: PublicKey
    bank_signature: Signature

    def verify(self) -> None:
        verify_message(self.maker_key, self.offer.encoded, self.maker_signature, who="the maker")
        verify_message(self.bank_key, self.offer.encoded, self.bank_signature, who="the maker's bank")

    def to_json(self) -> dict[str, Any]:
        return {
            "offer": self.offer.to_json(),
            "maker_key": self.maker_key.hex(),
            "maker_signature": self.maker_signature.hex(),
            "bank_key": self.bank_key.hex(),
            "bank_signature": self.bank_signature.hex(),
        }

    @classmethod
    def from_json(cls, value: object) -> SignedOffer:
        if not isinstance(value, Mapping):
            raise BadOffer("a signed offer is an object")
        return cls(
            offer=Offer.from_json(value.get("offer")),
            maker_key=PublicKey(
                hex_bytes(value.get("maker_key"), length=32, what="maker_key", error=BadOffer)
            ),
            maker_signature=Signature(
                hex_bytes(value.get("maker_signature"), length=64, what="maker_signature", error=BadOffer)
            ),
            bank_key=PublicKey(hex_bytes(value.get("bank_key"), length=32, what="bank_key", error=BadOffer)),
            bank_signature=Signature(
                hex_bytes(value.get("bank_signature"), length=64, what="bank_signature", error=BadOffer)
            ),
        )


def sign_offer(offer: Offer, *, key: SigningKey) -> Signature:
    """The maker's signature, and (after its checks) the maker's bank's, on an offer."""
    return sign_message(key, offer.encoded)


@dataclass(frozen=True)
class Take:
    offer_id: str
    taker_ledger: LedgerId
    created_at: Millis
    reference: str

    def to_json(self) -> dict[str, Any]:
        return {
            "offer": self.offer_id,
            "taker_ledger": self.taker_ledger,
            "created_at": self.created_at,
            "reference": self.reference,
        }

    @classmethod
    def from_json(cls, value: object) -> Take:
        if not isinstance(value, Mapping) or set(value) != {
            "offer",
            "taker_ledger",
            "created_at",
            "reference",
        }:
            raise BadOffer("a take has exactly offer, taker_ledger, created_at and reference")
        offer_id = value["offer"]
        if not isinstance(offer_id, str) or len(offer_id) != 64:
            raise BadOffer("offer must be the offer's id (64 hex digits)")
        try:
            taker = parse_ledger_id(value["taker_ledger"])
        except BadLedgerId as error:
            raise BadOffer(str(error)) from error
        return cls(
            offer_id=offer_id,
            taker_ledger=taker,
            created_at=_millis(value, "created_at"),
            reference=_reference(value),
        )

    @cached_property
    def encoded(self) -> Encoded:
        return encode(TAKE_KIND, self.to_json())

    @property
    def id(self) -> str:
        return self.encoded.id


@dataclass(frozen=True)
class SignedTake:
    take: Take
    taker_key: PublicKey
    taker_signature: Signature
    bank_key: PublicKey
    bank_signature: Signature

    def verify(self) -> None:
        verify_message(self.taker_key, self.take.encoded, self.taker_signature, who="the taker")
        verify_message(self.bank_key, self.take.encoded, self.bank_signature, who="the taker's bank")

    def to_json(self) -> dict[str, Any]:
        return {
            "take": self.take.to_json(),
            "taker_key": self.taker_key.hex(),
            "taker_signature": self.taker_signature.hex(),
            "bank_key": self.bank_key.hex(),
            "bank_signature": self.bank_signature.hex(),
        }

    @classmethod
    def from_json(cls, value: object) -> SignedTake:
        if not isinstance(value, Mapping):
            raise BadOffer("a signed take is an object")
        return cls(
            take=Take.from_json(value.get("take")),
            taker_key=PublicKey(
                hex_bytes(value.get("taker_key"), length=32, what="taker_key", error=BadOffer)
            ),
            taker_signature=Signature(
                hex_bytes(value.get("taker_signature"), length=64, what="taker_signature", error=BadOffer)
            ),
            bank_key=PublicKey(hex_bytes(value.get("bank_key"), length=32, what="bank_key", error=BadOffer)),
            bank_signature=Signature(
                hex_bytes(value.get("bank_signature"), length=64, what="bank_signature", error=BadOffer)
            ),
        )


def sign_take(take: Take, *, key: SigningKey) -> Signature:
    return sign_message(key, take.encoded)


def check_take(
    *,
    signed_offer: SignedOffer,
    take: Take,
    taker: LedgerView,
    assets: Mapping[AssetId, Asset],
    now: Millis,
) -> Hold:
    """The taker's bank's checks; returns the hold (what the taker pays) to place before it signs
    the take and passes it on."""
    offer = signed_offer.offer
    signed_offer.verify()
    if take.offer_id != offer.id:
        raise BadOffer("the take names another offer")
    if now >= offer.expires_at:
        raise OfferExpired("the offer has expired")
    if taker.head.ledger != take.taker_ledger:
        raise BadOffer("the taker's ledger is not the one the take names")
    if take.taker_ledger == offer.maker_ledger:
        raise BadOffer("a maker cannot take its own offer")
    if not taker.party_accepted:
        raise NotAccepted(f"the owner of {take.taker_ledger} has not been accepted (KYC)")
    for asset in (offer.give_asset, offer.want_asset):
        if asset not in assets:
            raise UnknownAsset(f"{asset} is not an asset this node knows")
    hold = Hold(key=take_hold_key(take.id), asset=offer.want_asset, amount=offer.want_amount)
    check_hold(view=taker, hold=hold)
    return hold


@dataclass(frozen=True)
class AcceptedTake:
    """The maker's bank's promise that this take, and no other, settles the offer by
    ``settle_by``; with the signed offer and take it is complete evidence for either side."""

    signed_offer: SignedOffer
    signed_take: SignedTake
    accepted_at: Millis
    settle_by: Millis
    acceptance_signature: Signature

    @property
    def acceptance(self) -> Encoded:
        return acceptance_message(
            offer_id=self.signed_offer.offer.id,
            take_id=self.signed_take.take.id,
            accepted_at=self.accepted_at,
            settle_by=self.settle_by,
        )

    def verify(self) -> None:
        self.signed_offer.verify()
        self.signed_take.verify()
        if self.signed_take.take.offer_id != self.signed_offer.offer.id:
            raise BadOffer("the take names another offer")
        verify_message(
            self.signed_offer.bank_key, self.acceptance, self.acceptance_signature, who="the maker's bank"
        )

    def to_json(self) -> dict[str, Any]:
        return {
            "signed_offer": self.signed_offer.to_json(),
            "signed_take": self.signed_take.to_json(),
            "accepted_at": self.accepted_at,
            "settle_by": self.settle_by,
            "acceptance_signature": self.acceptance_signature.hex(),
        }

    @classmethod
    def from_json(cls, value: object) -> AcceptedTake:
        if not isinstance(value, Mapping):
            raise BadOffer("an accepted take is an object")
        return cls(
            signed_offer=SignedOffer.from_json(value.get("signed_offer")),
            signed_take=SignedTake.from_json(value.get("signed_take")),
            accepted_at=_millis(value, "accepted_at"),
            settle_by=_millis(value, "settle_by"),
            acceptance_signature=Signature(
                hex_bytes(
                    value.get("acceptance_signature"), length=64, what="acceptance_signature", error=BadOffer
                )
            ),
        )


def acceptance_message(*, offer_id: str, take_id: str, accepted_at: int, settle_by: int) -> Encoded:
    return encode(
        ACCEPT_KIND, {"offer": offer_id, "take": take_id, "accepted_at": accepted_at, "settle_by": settle_by}
    )


# --- The maker's bank: one offer, at most one accepted take ------------------------------------


class OfferPhase(StrEnum):
    OPEN = "open"
    TAKEN = "taken"
    CANCELLED = "cancelled"


@dataclass(frozen=True)
class OfferBook:
    """The maker's bank's state for one offer. The shell keeps it on the offer row and changes it
    under that row's lock, which is what makes "exactly one take" hold under concurrency."""

    signed_offer: SignedOffer
    phase: OfferPhase = OfferPhase.OPEN
    accepted: AcceptedTake | None = None


def accept_take(
    book: OfferBook,
    *,
    signed_take: SignedTake,
    taker_bank_key: PublicKey,
    bank_key: SigningKey,
    now: Millis,
    settle_within: int,
) -> tuple[OfferBook, AcceptedTake]:
    """Accept ``signed_take`` if the offer is open and unexpired.

    ``taker_bank_key`` comes from the peer directory for the bank that keeps the taker's ledger,
    never from the take itself. The same take again (a retried request) returns the acceptance
    already given, unchanged; any other take after one was accepted is refused.
    """
    offer = book.signed_offer.offer
    take = signed_take.take
    if take.offer_id != offer.id:
        raise BadOffer("the take names another offer")
    if book.phase is OfferPhase.CANCELLED:
        raise BadTransition("the offer was cancelled")
    if book.accepted is not None:
        if book.accepted.signed_take == signed_take:
            return book, book.accepted
        raise OfferAlreadyTaken("the offer has already been taken")
    if signed_take.bank_key != taker_bank_key:
        raise BadOffer("the take is not signed by the taker's bank we know")
    if now >= offer.expires_at:
        raise OfferExpired("the offer has expired")
    signed_take.verify()
    settle_by = Millis(now + settle_within)
    message = acceptance_message(offer_id=offer.id, take_id=take.id, accepted_at=now, settle_by=settle_by)
    accepted = AcceptedTake(
        signed_offer=book.signed_offer,
        signed_take=signed_take,
        accepted_at=now,
        settle_by=settle_by,
        acceptance_signature=sign_message(bank_key, message),
    )
    return OfferBook(signed_offer=book.signed_offer, phase=OfferPhase.TAKEN, accepted=accepted), accepted


def cancel_offer(book: OfferBook) -> OfferBook:
    """Cancel an open offer; the shell appends a ``cancel`` entry, which releases the hold."""
    if book.phase is OfferPhase.TAKEN:
        raise OfferAlreadyTaken("a taken offer cannot be cancelled")
    return OfferBook(signed_offer=book.signed_offer, phase=OfferPhase.CANCELLED)


def plan_take_entries(
    accepted: AcceptedTake, *, maker_head: ChainHead | None, taker_head: ChainHead | None, time: Millis
) -> tuple[Entry | None, Entry | None]:
    """The two sides of a trade: each bank plans its own ledger's side (pass ``None`` for the
    other). Both carry the same offer and take ids, which is how a fraud proof finds them."""
    offer, take = accepted.signed_offer.offer, accepted.signed_take.take
    common = {"offer": offer.id, "take": take.id}
    maker_entry = taker_entry = None
    if maker_head is not None:
        if maker_head.ledger != offer.maker_ledger:
            raise LedgerError("that is not the maker's ledger")
        maker_entry = next_entry(
            head=maker_head,
            kind="take",
            body={
                **common,
                "role": "maker",
                "give_asset": offer.give_asset,
                "give_amount": amount_to_wire(offer.give_amount),
                "get_asset": offer.want_asset,
                "get_amount": amount_to_wire(offer.want_amount),
            },
            time=time,
        )
    if taker_head is not None:
        if taker_head.ledger != take.taker_ledger:
            raise LedgerError("that is not the taker's ledger")
        taker_entry = next_entry(
            head=taker_head,
            kind="take",
            body={
                **common,
                "role": "taker",
                "give_asset": offer.want_asset,
                "give_amount": amount_to_wire(offer.want_amount),
                "get_asset": offer.give_asset,
                "get_amount": amount_to_wire(offer.give_amount),
            },
            time=time,
        )
    return maker_entry, taker_entry
