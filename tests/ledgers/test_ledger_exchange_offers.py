"""Exchange offers through the API: the offer holds what the maker gives and shows on the board;
one take settles both legs in one transaction; a second take (even eight at once) is refused with
nothing appended; a cancel releases the hold; the books still balance and the chains verify."""

from __future__ import annotations

import pytest

from ledgers import exchange_services, services
from ledgers.models import Hold, LedgerEntry, Offer, Take
from ledgers.protocol.errors import OfferAlreadyTaken
from tests.ledgers.ledger_shell_support import assert_every_entry_voted, balance_of, post_json, row_counts
from tests.ledgers.test_ledger_concurrent_payments import run_threads
from tests.ledgers.test_ledger_invariants_postgres import assert_books_balance, assert_chains_verify


@pytest.fixture
def usd(eur):
    return services.asset_create(code="USD", decimals=2, actor="test")


@pytest.fixture
def maker_and_taker(funded, make_party, usd, eur):
    maker = funded("100.00")
    taker = make_party()
    services.asset_issue(ledger=taker.ledger, asset=usd, amount="200.00", reference="deposit", actor="test")
    return maker, taker


def make_offer(client, maker, eur, usd):
    answer = post_json(
        client,
        "/api/offers/",
        {
            "maker": maker.ubi,
            "give_asset": eur.uai,
            "give_amount": "50.00",
            "want_asset": usd.uai,
            "want_amount": "55.00",
            "reference": "o-1",
        },
    )
    assert answer.status_code == 201, answer.content
    return answer.json()["offer_id"]


def test_an_offer_is_held_shown_and_taken_once_with_both_legs(operator_client, maker_and_taker, eur, usd):
    maker, taker = maker_and_taker
    offer_id = make_offer(operator_client, maker, eur, usd)
    assert Hold.objects.get(ledger=maker.ledger).key == f"offer:{offer_id}"
    assert [item["offer_id"] for item in operator_client.get("/api/offers/").json()] == [offer_id]
    assert offer_id[:12] in operator_client.get("/ledgers/").content.decode()

    answer = post_json(
        operator_client, f"/api/offers/{offer_id}/take/", {"taker": taker.ubi, "reference": "t-1"}
    )
    assert answer.status_code == 201, answer.content
    assert (balance_of(maker.ledger, eur), balance_of(maker.ledger, usd)) == (5000, 5500)
    assert (balance_of(taker.ledger, eur), balance_of(taker.ledger, usd)) == (5000, 14500)
    assert not Hold.objects.exists()
    assert Offer.objects.get().phase == "taken"
    assert operator_client.get("/api/offers/").json() == []

    before = row_counts()
    again = post_json(
        operator_client, f"/api/offers/{offer_id}/take/", {"taker": taker.ubi, "reference": "t-2"}
    )
    assert again.status_code == 409
    assert again.json()["error"]["code"] == "offer_already_taken"
    assert row_counts() == before
    assert_books_balance()
    assert_chains_verify([maker.ledger, taker.ledger])
    assert assert_every_entry_voted() == 5  # two deposits, the offer, and each side's take


def test_a_taker_without_funds_is_refused_and_the_offer_stays_open(
    operator_client, maker_and_taker, make_party, eur, usd
):
    maker, _ = maker_and_taker
    offer_id = make_offer(operator_client, maker, eur, usd)
    poor = make_party()
    before = row_counts()
    answer = post_json(
        operator_client, f"/api/offers/{offer_id}/take/", {"taker": poor.ubi, "reference": "t-3"}
    )
    assert answer.status_code == 409
    assert answer.json()["error"]["code"] == "insufficient_funds"
    assert row_counts() == before
    assert Offer.objects.get().phase == "open"


def test_an_offer_beyond_the_makers_funds_is_refused(operator_client, maker_and_taker, eur, usd):
    maker, _ = maker_and_taker
    before = row_counts()
    answer = post_json(
        operator_client,
        "/api/offers/",
        {
            "maker": maker.ubi,
            "give_asset": eur.uai,
            "give_amount": "100.01",
            "want_asset": usd.uai,
            "want_amount": "1.00",
            "reference": "o-2",
        },
    )
    assert answer.status_code == 409
    assert answer.json()["error"]["code"] == "insufficient_funds"
    assert row_counts() == before
    assert not Offer.objects.exists()


def test_a_cancel_releases_the_hold_and_no_take_follows(operator_client, maker_and_taker, eur, usd):
    maker, taker = maker_and_taker
    offer_id = make_offer(operator_client, maker, eur, usd)
    assert operator_client.post(f"/api/offers/{offer_id}/cancel/").status_code == 200
    assert not Hold.objects.exists()
    answer = post_json(
        operator_client, f"/api/offers/{offer_id}/take/", {"taker": taker.ubi, "reference": "t-4"}
    )
    assert answer.status_code == 400
    assert answer.json()["error"]["code"] == "bad_transition"
    assert LedgerEntry.objects.filter(kind="take").count() == 0
    assert assert_every_entry_voted() == 4  # two deposits, the offer and its cancel


def test_eight_takers_at_once_one_take_is_accepted(transactional_db, maker_and_taker, make_party, eur, usd):
    maker, _ = maker_and_taker
    takers = []
    for _ in range(8):
        party = make_party()
        services.asset_issue(ledger=party.ledger, asset=usd, amount="100.00", reference="d", actor="test")
        takers.append(party)
    offer = exchange_services.offer_create(
        maker=maker.ledger,
        give_asset=eur.uai,
        give_amount="10.00",
        want_asset=usd.uai,
        want_amount="12.00",
        reference="race",
        actor="t",
    )
    results = run_threads(
        lambda index: exchange_services.offer_take(
            offer_id=offer.offer_id, taker=takers[index].ledger, reference=f"r-{index}", actor="t"
        )
    )
    assert sum(isinstance(result, Take) for result in results) == 1
    assert all(isinstance(result, (Take, OfferAlreadyTaken)) for result in results), results
    assert LedgerEntry.objects.filter(kind="take").count() == 2
    assert balance_of(maker.ledger, usd) == 1200
    assert_books_balance()
