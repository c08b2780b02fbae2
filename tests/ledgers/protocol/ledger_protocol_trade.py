"""Shared set-up for exchange and fraud-proof tests: Alice at bank A offers EUR for USD; Bob at
bank B takes it."""

from __future__ import annotations

from ledger_protocol_world import ASSETS, World, eur, key_for

from ledgers.protocol.exchange import (
    AcceptedTake,
    Offer,
    OfferBook,
    SignedOffer,
    SignedTake,
    Take,
    accept_take,
    check_take,
    plan_take_entries,
    sign_offer,
    sign_take,
)
from ledgers.protocol.identifiers import AssetId

A, B = "bank-a.test", "bank-b.test"
USD_B = AssetId("bank-b.test/USD")
NOW = 1_700_000_000_000


def trade_world():
    world = World(clock=NOW - 1_000)  # the ledgers' history starts before the trade
    alice, bob = world.open_ledger(A, "alice"), world.open_ledger(B, "bob")
    world.issue(alice, eur(A), 1000)
    world.issue(bob, USD_B, 2000)
    return world, alice, bob


def make_offer(world, alice, *, give=800, want=900, expires_at=NOW + 60_000):
    offer = Offer(
        maker_ledger=alice,
        give_asset=eur(A),
        give_amount=give,
        want_asset=USD_B,
        want_amount=want,
        expires_at=expires_at,
        reference="offer-1",
    )
    world.append(alice, "offer", {"offer": offer.to_json()})  # holds what Alice gives
    return SignedOffer(
        offer=offer,
        maker_key=key_for(alice).public_key,
        maker_signature=sign_offer(offer, key=key_for(alice)),
        bank_key=key_for(A).public_key,
        bank_signature=sign_offer(offer, key=key_for(A)),
    )


def make_take(world, signed_offer, taker, *, reference="take-1", now=NOW + 1):
    take = Take(offer_id=signed_offer.offer.id, taker_ledger=taker, created_at=now, reference=reference)
    hold = check_take(
        signed_offer=signed_offer, take=take, taker=world.ledgers[taker].view(), assets=ASSETS, now=now
    )
    world.ledgers[taker].holds[hold.key] = hold
    return SignedTake(
        take=take,
        taker_key=key_for(taker).public_key,
        taker_signature=sign_take(take, key=key_for(taker)),
        bank_key=key_for(B).public_key,
        bank_signature=sign_take(take, key=key_for(B)),
    )


def accept(book, signed_take, *, now=NOW + 2):
    return accept_take(
        book,
        signed_take=signed_take,
        taker_bank_key=key_for(B).public_key,
        bank_key=key_for(A),
        now=now,
        settle_within=10_000,
    )


def settle_maker(world, accepted: AcceptedTake):
    maker_entry, _ = plan_take_entries(
        accepted,
        maker_head=world.ledgers[accepted.signed_offer.offer.maker_ledger].head,
        taker_head=None,
        time=world.now(),
    )
    world.save(world.check(maker_entry, party_signs=False))


def settle_taker(world, accepted: AcceptedTake):
    _, taker_entry = plan_take_entries(
        accepted,
        maker_head=None,
        taker_head=world.ledgers[accepted.signed_take.take.taker_ledger].head,
        time=world.now(),
    )
    world.save(world.check(taker_entry, party_signs=False))


def full_trade():
    world, alice, bob = trade_world()
    signed_offer = make_offer(world, alice)
    signed_take = make_take(world, signed_offer, bob)
    book, accepted = accept(OfferBook(signed_offer=signed_offer), signed_take)
    return world, alice, bob, book, accepted
