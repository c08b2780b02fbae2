"""Exchange offers (seed 003 §5): the maker and its bank sign, the offer spreads to peers and
shows on the board, a take is validated by the taker's bank and accepted exactly once by the
maker's bank; both legs settle, or neither does.

Exactly once comes from the offer row's lock: :func:`offer_take` locks both ledgers (lock order),
then the offer row, and runs ``accept_take`` on the stored :class:`OfferBook`; a second take
waits for the lock, finds the offer taken and is refused with nothing appended. When maker and
taker are parties of this bank both legs are appended in that same transaction. A take of a
peer's offer is held and signed here, accepted by the maker's bank over the signed transport
(:func:`offer_accept_remote_take` there), then this bank appends the taker's side on the
signed acceptance.
"""

from __future__ import annotations

import logging
from typing import Any

from django.db import transaction

from ledgers.errors import CustodyMismatch, error_for_code
from ledgers.interbank_services import peer_for, peer_public_key
from ledgers.models import Ledger, Offer, Take
from ledgers.protocol import chain as chain_rules
from ledgers.protocol import exchange
from ledgers.protocol.entries import Millis, encode_entry, sign_encoded
from ledgers.protocol.errors import BadOffer, UnknownLedger
from ledgers.protocol.identifiers import AssetId, LedgerId, ledger_namespace
from ledgers.services import (
    _apply,
    _assets,
    _load_state,
    _lock_ledgers,
    _save,
    bank_key,
    bank_namespace,
    minor_units,
    now_millis,
    party_public_key,
    party_signer,
)
from settlement.audit import audit_record
from settlement.models import Peer
from settlement.transport import PeerUnreachable, peer_request

logger = logging.getLogger("parsec.ledgers")

SETTLE_WITHIN_MS = 60_000
OFFERS_PATH = "/node-api/ledgers/offers"
TAKE_PATH = "/node-api/ledgers/offers/take"


def _custodial_signer(ledger: Ledger) -> Any:
    signer = party_signer(ledger)
    if signer is None:
        raise CustodyMismatch(f"{ledger.ubi}'s owner holds its own key; offers here are for custodial owners")
    return signer


def _append(
    state: Any, ledger_id: int, entry: Any, party_signature: Any, assets: Any
) -> chain_rules.Appended:
    view = state.view(ledger_id)
    appended = chain_rules.check_append(
        head=view.head,
        entry=entry,
        party_key=view.party_key,
        party_signature=party_signature,
        balances=view.balances,
        holds=view.holds,
        credit_lines=view.credit_lines,
        party_accepted=view.party_accepted,
        assets=assets,
        now=now_millis(),
    )
    appended = chain_rules.cosign(appended, validator_key=bank_key())
    _apply(state, ledger_id, appended)
    return appended


@transaction.atomic
def offer_create(
    *,
    maker: Ledger,
    give_asset: str,
    give_amount: object,
    want_asset: str,
    want_amount: object,
    reference: str,
    actor: Any,
    expires_in_ms: int = 3_600_000,
) -> Offer:
    """The maker (custodial) signs the offer and its ``offer`` entry (which holds what it gives);
    the bank checks, co-signs the entry and signs the offer. Spread to peers after commit."""
    locked = _lock_ledgers([maker.pk])
    maker = locked[maker.pk]
    assets_by_id, assets = _assets()
    by_uai = {asset.uai: asset for asset in assets_by_id.values()}
    for uai in (give_asset, want_asset):
        if uai not in by_uai:
            from ledgers.protocol.errors import UnknownAsset

            raise UnknownAsset(f"{uai} is not an asset this node knows")
    now = now_millis()
    offer = exchange.Offer(
        maker_ledger=LedgerId(maker.ubi),
        give_asset=AssetId(give_asset),
        give_amount=minor_units(give_amount, decimals=by_uai[give_asset].decimals),
        want_asset=AssetId(want_asset),
        want_amount=minor_units(want_amount, decimals=by_uai[want_asset].decimals),
        expires_at=Millis(now + expires_in_ms),
        reference=reference,
    )
    exchange.Offer.from_json(offer.to_json())  # the same checks a peer will make
    signer = _custodial_signer(maker)
    maker_signature = exchange.sign_offer(offer, key=signer)
    state = _load_state(locked, assets_by_id)
    entry = chain_rules.next_entry(
        head=state.heads[maker.pk], kind="offer", body={"offer": offer.to_json()}, time=now
    )
    appended = _append(state, maker.pk, entry, sign_encoded(signer, encode_entry(entry)), assets)
    _save(state, [(maker.pk, appended)])
    key = bank_key()
    signed = exchange.SignedOffer(
        offer=offer,
        maker_key=party_public_key(maker),
        maker_signature=maker_signature,
        bank_key=key.public_key,
        bank_signature=exchange.sign_offer(offer, key=key),
    )
    row = Offer.objects.create(
        offer_id=offer.id,
        signed_offer=signed.to_json(),
        maker_bank=bank_namespace(),
        local=True,
        expires_at=offer.expires_at,
    )
    audit_record(actor=actor, action="offer.create", target=row, after={"offer": offer.to_json()})
    transaction.on_commit(lambda: _spread_later(row.offer_id))
    return row


def _spread_later(offer_id: str) -> None:
    from ledgers.tasks import offer_spread

    try:
        offer_spread.delay(offer_id)
    except Exception:
        logger.warning("offer %s: could not queue the spread to peers", offer_id[:16])


def offer_spread_to_peers(*, offer_id: str) -> int:
    """Send a local offer to every peer; returns how many took it."""
    row = Offer.objects.get(offer_id=offer_id, local=True)
    sent = 0
    for peer in Peer.objects.all():
        try:
            answer = peer_request(
                peer,
                "POST",
                OFFERS_PATH,
                json_body={"signed_offer": row.signed_offer},
                idempotency_key=f"offer-{offer_id}",
            )
        except PeerUnreachable:
            continue
        sent += int(answer.ok)
    return sent


@transaction.atomic
def offer_receive(*, peer: Peer, signed_offer_json: Any) -> Offer:
    """A peer's offer for our board: signed by its maker and by that peer (the maker's bank)."""
    signed = exchange.SignedOffer.from_json(signed_offer_json)
    signed.verify()
    if ledger_namespace(signed.offer.maker_ledger) != peer.domain or signed.bank_key != peer_public_key(peer):
        raise BadOffer("an offer spreads from the maker's own bank, signed with its key")
    row, _ = Offer.objects.get_or_create(
        offer_id=signed.offer.id,
        defaults={
            "signed_offer": signed.to_json(),
            "maker_bank": peer.domain,
            "local": False,
            "expires_at": signed.offer.expires_at,
        },
    )
    return row


def _book(row: Offer) -> exchange.OfferBook:
    return exchange.OfferBook(
        signed_offer=exchange.SignedOffer.from_json(row.signed_offer),
        phase=exchange.OfferPhase(row.phase),
        accepted=exchange.AcceptedTake.from_json(row.accepted) if row.accepted else None,
    )


def _offer_row(offer_id: str) -> Offer:
    row = Offer.objects.filter(offer_id=offer_id).first()
    if row is None:
        raise BadOffer(f"there is no offer {offer_id[:16]}… here")
    return row


@transaction.atomic
def offer_take(*, offer_id: str, taker: Ledger, reference: str, actor: Any) -> Take:
    """Take an offer for ``taker`` (custodial): exactly one take is ever accepted."""
    row = _offer_row(offer_id)
    if not row.local:
        return _take_remote(row=row, taker=taker, reference=reference, actor=actor)
    signed_offer = exchange.SignedOffer.from_json(row.signed_offer)
    maker = Ledger.objects.filter(ubi=signed_offer.offer.maker_ledger).first()
    if maker is None:
        raise UnknownLedger(f"{signed_offer.offer.maker_ledger} is not a ledger kept by this bank")
    locked = _lock_ledgers([maker.pk, taker.pk])
    row = Offer.objects.select_for_update().get(pk=row.pk)
    assets_by_id, assets = _assets()
    state = _load_state(locked, assets_by_id)
    now = now_millis()
    take = exchange.Take(
        offer_id=offer_id, taker_ledger=LedgerId(taker.ubi), created_at=now, reference=reference
    )
    exchange.check_take(
        signed_offer=signed_offer, take=take, taker=state.view(taker.pk), assets=assets, now=now
    )
    key = bank_key()
    signed_take = exchange.SignedTake(
        take=take,
        taker_key=party_public_key(locked[taker.pk]),
        taker_signature=exchange.sign_take(take, key=_custodial_signer(locked[taker.pk])),
        bank_key=key.public_key,
        bank_signature=exchange.sign_take(take, key=key),
    )
    book, accepted = exchange.accept_take(
        _book(row),
        signed_take=signed_take,
        taker_bank_key=key.public_key,
        bank_key=key,
        now=now,
        settle_within=SETTLE_WITHIN_MS,
    )
    maker_entry, taker_entry = exchange.plan_take_entries(
        accepted, maker_head=state.heads[maker.pk], taker_head=state.heads[taker.pk], time=now
    )
    assert maker_entry is not None
    assert taker_entry is not None
    appended = [
        (maker.pk, _append(state, maker.pk, maker_entry, None, assets)),
        (taker.pk, _append(state, taker.pk, taker_entry, None, assets)),
    ]
    _save(state, appended)
    row.phase, row.accepted = book.phase, accepted.to_json()
    row.save(update_fields=["phase", "accepted"])
    created = Take.objects.create(
        take_id=take.id,
        offer=row,
        signed_take=signed_take.to_json(),
        taker_ledger=taker,
        status="applied",
        accepted=accepted.to_json(),
    )
    audit_record(actor=actor, action="offer.take", target=created, after={"offer": offer_id, "take": take.id})
    return created


def _take_remote(*, row: Offer, taker: Ledger, reference: str, actor: Any) -> Take:
    """A peer's offer: hold and sign here, the maker's bank accepts (or refuses), then append the
    taker's side on its signed acceptance; on a refusal the hold is released."""
    signed_offer = exchange.SignedOffer.from_json(row.signed_offer)
    locked = _lock_ledgers([taker.pk])
    assets_by_id, assets = _assets()
    state = _load_state(locked, assets_by_id)
    now = now_millis()
    take = exchange.Take(
        offer_id=row.offer_id, taker_ledger=LedgerId(taker.ubi), created_at=now, reference=reference
    )
    hold = exchange.check_take(
        signed_offer=signed_offer, take=take, taker=state.view(taker.pk), assets=assets, now=now
    )
    key = bank_key()
    signed_take = exchange.SignedTake(
        take=take,
        taker_key=party_public_key(locked[taker.pk]),
        taker_signature=exchange.sign_take(take, key=_custodial_signer(locked[taker.pk])),
        bank_key=key.public_key,
        bank_signature=exchange.sign_take(take, key=key),
    )
    answer = peer_request(
        peer_for(row.maker_bank),
        "POST",
        TAKE_PATH,
        json_body={"signed_take": signed_take.to_json()},
        idempotency_key=f"take-{take.id}",
    )
    body = answer.json() if answer.content_type.startswith("application/json") else {}
    if not answer.ok:
        error = body.get("error") if isinstance(body, dict) else None
        code = str(error.get("code")) if isinstance(error, dict) else "peer_refused"
        raise error_for_code(
            code,
            f"{row.maker_bank} refused the take: {error.get('message') if isinstance(error, dict) else answer.status}",
        )
    accepted = exchange.AcceptedTake.from_json(body.get("accepted"))
    accepted.verify()
    if accepted.signed_take != signed_take or accepted.signed_offer.bank_key != peer_public_key(
        peer_for(row.maker_bank)
    ):
        raise BadOffer("the acceptance is not for this take, or not signed by the maker's bank")
    _, taker_entry = exchange.plan_take_entries(
        accepted, maker_head=None, taker_head=state.heads[taker.pk], time=now_millis()
    )
    assert taker_entry is not None
    # The hold check above ran under the taker's lock, which this transaction keeps until the
    # take entry (which spends what was held) is saved: no separate hold row is needed.
    del hold
    _save(state, [(taker.pk, _append(state, taker.pk, taker_entry, None, assets))])
    row.phase, row.accepted = exchange.OfferPhase.TAKEN, accepted.to_json()
    row.save(update_fields=["phase", "accepted"])
    created = Take.objects.create(
        take_id=take.id,
        offer=row,
        signed_take=signed_take.to_json(),
        taker_ledger=taker,
        status="applied",
        accepted=accepted.to_json(),
    )
    audit_record(
        actor=actor, action="offer.take", target=created, after={"offer": row.offer_id, "take": take.id}
    )
    return created


@transaction.atomic
def offer_accept_remote_take(*, peer: Peer, signed_take_json: Any) -> exchange.AcceptedTake:
    """The maker's bank, for a take from ``peer``'s party: accept exactly one, append the
    maker's side in the same transaction, answer with the signed acceptance."""
    signed_take = exchange.SignedTake.from_json(signed_take_json)
    if ledger_namespace(signed_take.take.taker_ledger) != peer.domain:
        raise BadOffer("a take comes from the taker's own bank")
    row = _offer_row(signed_take.take.offer_id)
    if not row.local:
        raise BadOffer("this bank is not the maker's bank of that offer")
    offer = exchange.SignedOffer.from_json(row.signed_offer).offer
    maker = Ledger.objects.get(ubi=offer.maker_ledger)
    locked = _lock_ledgers([maker.pk])
    row = Offer.objects.select_for_update().get(pk=row.pk)
    key = bank_key()
    book, accepted = exchange.accept_take(
        _book(row),
        signed_take=signed_take,
        taker_bank_key=peer_public_key(peer),
        bank_key=key,
        now=now_millis(),
        settle_within=SETTLE_WITHIN_MS,
    )
    if row.phase == exchange.OfferPhase.TAKEN:
        return accepted  # the same take again: the acceptance already given
    assets_by_id, assets = _assets()
    state = _load_state(locked, assets_by_id)
    maker_entry, _ = exchange.plan_take_entries(
        accepted, maker_head=state.heads[maker.pk], taker_head=None, time=now_millis()
    )
    assert maker_entry is not None
    _save(state, [(maker.pk, _append(state, maker.pk, maker_entry, None, assets))])
    row.phase, row.accepted = book.phase, accepted.to_json()
    row.save(update_fields=["phase", "accepted"])
    return accepted


@transaction.atomic
def offer_cancel(*, offer_id: str, actor: Any) -> Offer:
    """Cancel an open local offer: a ``cancel`` entry signed for the maker releases its hold."""
    row = _offer_row(offer_id)
    if not row.local:
        raise BadOffer("only the maker's bank cancels an offer")
    offer = exchange.SignedOffer.from_json(row.signed_offer).offer
    maker = Ledger.objects.get(ubi=offer.maker_ledger)
    locked = _lock_ledgers([maker.pk])
    row = Offer.objects.select_for_update().get(pk=row.pk)
    book = exchange.cancel_offer(_book(row))
    assets_by_id, assets = _assets()
    state = _load_state(locked, assets_by_id)
    entry = chain_rules.next_entry(
        head=state.heads[maker.pk], kind="cancel", body={"offer": offer_id}, time=now_millis()
    )
    signer = _custodial_signer(locked[maker.pk])
    _save(
        state,
        [(maker.pk, _append(state, maker.pk, entry, sign_encoded(signer, encode_entry(entry)), assets))],
    )
    row.phase = book.phase
    row.save(update_fields=["phase"])
    audit_record(actor=actor, action="offer.cancel", target=row, after={"offer": offer_id})
    return row
