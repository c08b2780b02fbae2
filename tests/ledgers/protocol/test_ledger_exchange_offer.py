"""Exchange offers: signed by maker and its bank, taken exactly once, both legs or neither."""

import json

import pytest
from ledger_protocol_trade import (
    NOW,
    USD_B,
    A,
    accept,
    full_trade,
    make_offer,
    make_take,
    settle_maker,
    settle_taker,
    trade_world,
)
from ledger_protocol_world import eur, key_for

from ledgers.protocol.errors import (
    BadEntrySignature,
    BadOffer,
    BadTransition,
    InsufficientFunds,
    NotAccepted,
    OfferAlreadyTaken,
    OfferExpired,
)
from ledgers.protocol.exchange import AcceptedTake, Offer, OfferBook, OfferPhase, SignedOffer, cancel_offer


def test_an_offer_entry_holds_what_the_maker_gives():
    world, alice, _ = trade_world()
    signed_offer = make_offer(world, alice)
    assert world.ledgers[alice].holds[f"offer:{signed_offer.offer.id}"].amount == 800
    assert world.ledgers[alice].balances[eur(A)] == 1000


def test_an_offer_bigger_than_the_balance_is_refused():
    world, alice, _ = trade_world()
    with pytest.raises(InsufficientFunds):
        make_offer(world, alice, give=1001)


def test_a_signed_offer_survives_json_and_verifies():
    world, alice, _ = trade_world()
    signed_offer = make_offer(world, alice)
    again = SignedOffer.from_json(json.loads(json.dumps(signed_offer.to_json())))
    assert again == signed_offer
    again.verify()


def test_an_offer_without_the_makers_bank_signature_does_not_verify():
    world, alice, _ = trade_world()
    signed_offer = make_offer(world, alice)
    forged = SignedOffer(**{**signed_offer.__dict__, "bank_signature": signed_offer.maker_signature})
    with pytest.raises(BadEntrySignature):
        forged.verify()


def test_an_offer_of_an_asset_for_itself_is_refused():
    world, alice, _ = trade_world()
    document = make_offer(world, alice).offer.to_json()
    with pytest.raises(BadOffer):
        Offer.from_json({**document, "want_asset": document["give_asset"]})


def test_a_take_holds_what_the_taker_pays():
    world, alice, bob = trade_world()
    signed_take = make_take(world, make_offer(world, alice), bob)
    assert world.ledgers[bob].holds[f"take:{signed_take.take.id}"].amount == 900


def test_the_takers_bank_refuses_a_taker_without_funds():
    world, alice, bob = trade_world()
    signed_offer = make_offer(world, alice, want=2001)
    with pytest.raises(InsufficientFunds):
        make_take(world, signed_offer, bob)


def test_the_takers_bank_refuses_a_taker_not_accepted():
    world, alice, bob = trade_world()
    world.ledgers[bob].accepted = False
    with pytest.raises(NotAccepted):
        make_take(world, make_offer(world, alice), bob)


def test_the_takers_bank_refuses_an_expired_offer():
    world, alice, bob = trade_world()
    with pytest.raises(OfferExpired):
        make_take(world, make_offer(world, alice, expires_at=NOW + 1), bob)


def test_the_makers_bank_accepts_one_take_and_signs_the_evidence():
    _world, _alice, _bob, book, accepted = full_trade()
    assert book.phase is OfferPhase.TAKEN
    assert book.accepted == accepted
    accepted.verify()
    AcceptedTake.from_json(json.loads(json.dumps(accepted.to_json()))).verify()


def test_a_second_take_is_refused():
    world, _alice, _bob, book, _ = full_trade()
    carol = world.open_ledger("bank-b.test", "carol")
    world.issue(carol, USD_B, 1000)
    other = make_take(world, book.signed_offer, carol, reference="take-2")
    with pytest.raises(OfferAlreadyTaken) as caught:
        accept(book, other)
    assert caught.value.code == "offer_already_taken"


def test_the_same_take_again_is_answered_with_the_same_acceptance():
    _world, _alice, _bob, book, accepted = full_trade()
    again_book, again = accept(book, accepted.signed_take, now=accepted.accepted_at + 5_000)
    assert again_book == book
    assert again == accepted


def test_an_expired_offer_cannot_be_accepted():
    world, alice, bob = trade_world()
    signed_offer = make_offer(world, alice)
    signed_take = make_take(world, signed_offer, bob)
    with pytest.raises(OfferExpired):
        accept(OfferBook(signed_offer=signed_offer), signed_take, now=signed_offer.offer.expires_at)


def test_a_take_signed_by_an_unknown_taker_bank_is_refused():
    world, alice, bob = trade_world()
    signed_offer = make_offer(world, alice)
    signed_take = make_take(world, signed_offer, bob)
    from ledgers.protocol.exchange import accept_take

    with pytest.raises(BadOffer):
        accept_take(
            OfferBook(signed_offer=signed_offer),
            signed_take=signed_take,
            taker_bank_key=key_for("somebody").public_key,
            bank_key=key_for(A),
            now=NOW + 2,
            settle_within=1,
        )


def test_a_cancelled_offer_cannot_be_taken_and_a_taken_one_cannot_be_cancelled():
    world, alice, bob = trade_world()
    signed_offer = make_offer(world, alice)
    signed_take = make_take(world, signed_offer, bob)
    cancelled = cancel_offer(OfferBook(signed_offer=signed_offer))
    with pytest.raises(BadTransition):
        accept(cancelled, signed_take)
    taken, _ = accept(OfferBook(signed_offer=signed_offer), signed_take)
    with pytest.raises(OfferAlreadyTaken):
        cancel_offer(taken)


def test_a_cancel_entry_releases_the_offer_hold():
    world, alice, _ = trade_world()
    signed_offer = make_offer(world, alice)
    world.append(alice, "cancel", {"offer": signed_offer.offer.id})
    assert world.ledgers[alice].holds == {}


def test_both_legs_settle_and_each_asset_is_conserved():
    world, alice, bob, _, accepted = full_trade()
    settle_maker(world, accepted)
    settle_taker(world, accepted)
    assert world.ledgers[alice].balances == {eur(A): 200, USD_B: 900}
    assert world.ledgers[bob].balances == {USD_B: 1100, eur(A): 800}
    assert world.ledgers[alice].holds == {}
    assert world.ledgers[bob].holds == {}
