"""Assets, ledgers, deposits and payouts through the API: an issue credits the ledger and the
supply; a redeem is signed by the owner (by the node for a custodial one, by the client for self
custody) and refused with the rule's code when it should be; payments to an unreachable bank are
voided with no hold left."""

from __future__ import annotations

from django.utils import timezone

from ledgers import selectors, services
from ledgers.models import Asset, Hold, InterbankPayment
from ledgers.protocol.chain import next_entry, sign_entry
from settlement.models import Peer, PeerKey
from settlement.protocol.signing import SigningKey
from tests.ledgers.ledger_shell_support import balance_of, make_counterparty, post_json, row_counts


def test_assets_and_ledgers_are_made_and_listed(operator_client, node):
    answer = post_json(operator_client, "/api/assets/", {"code": "CHF", "decimals": 2})
    assert answer.status_code == 201, answer.content
    assert answer.json()["uai"] == "bank-test.test/CHF"
    assert [item["uai"] for item in operator_client.get("/api/assets/").json()] == ["bank-test.test/CHF"]
    counterparty, _ = make_counterparty("erin")
    opened = post_json(operator_client, "/api/ledgers/", {"name": "erin", "counterparty": counterparty.pk})
    assert opened.status_code == 201, opened.content
    assert opened.json()["ubi"] == "ubi:bank-test.test:erin"
    assert post_json(operator_client, "/api/ledgers/", {"name": "books"}).json()["owner"] == "bank"
    bad = post_json(operator_client, "/api/ledgers/", {"name": "Not Valid!"})
    assert bad.status_code == 400
    assert bad.json()["error"]["code"] == "bad_ledger_id"


def test_an_issue_and_a_custodial_redeem_move_the_supply(operator_client, make_party, eur):
    alice = make_party()
    issued = post_json(
        operator_client,
        f"/api/ledgers/{alice.ubi}/issue/",
        {"asset": eur.uai, "amount": "25.00", "reference": "cash-in"},
    )
    assert issued.status_code == 201, issued.content
    redeemed = post_json(
        operator_client,
        f"/api/ledgers/{alice.ubi}/redeem/",
        {"asset": eur.uai, "amount": "5.00", "reference": "cash-out"},
    )
    assert redeemed.status_code == 201, redeemed.content
    assert balance_of(alice.ledger, eur) == 2000
    asset = Asset.objects.get(pk=eur.pk)
    assert (asset.issued, asset.redeemed) == (2500, 500)
    before = row_counts()
    too_much = post_json(
        operator_client,
        f"/api/ledgers/{alice.ubi}/redeem/",
        {"asset": eur.uai, "amount": "20.01", "reference": "x"},
    )
    assert too_much.status_code == 409
    assert too_much.json()["error"]["code"] == "insufficient_funds"
    foreign = post_json(
        operator_client,
        f"/api/ledgers/{alice.ubi}/issue/",
        {"asset": "bank-zzz.test/EUR", "amount": "1.00", "reference": "x"},
    )
    assert foreign.json()["error"]["code"] == "unknown_asset"
    assert row_counts() == before


def test_a_self_custody_owner_signs_its_own_redeem(operator_client, funded, eur):
    alice = funded("10.00", custody="self")
    now = services.now_millis()
    entry = next_entry(
        head=services.head_of(selectors.ledger_get(ledger=alice.ubi)),
        kind="redeem",
        body={"asset": eur.uai, "amount": "300", "reference": "atm"},
        time=now,
    )
    data = {"asset": eur.uai, "amount": "3.00", "reference": "atm", "time": now}
    before = row_counts()
    forged = post_json(
        operator_client,
        f"/api/ledgers/{alice.ubi}/redeem/",
        {**data, "party_signature": sign_entry(entry, key=SigningKey.generate()).hex()},
    )
    assert forged.status_code == 400
    assert forged.json()["error"]["code"] == "bad_signature"
    unsigned = post_json(operator_client, f"/api/ledgers/{alice.ubi}/redeem/", data)
    assert unsigned.json()["error"]["code"] == "missing_signature"
    assert row_counts() == before
    signed = post_json(
        operator_client,
        f"/api/ledgers/{alice.ubi}/redeem/",
        {**data, "party_signature": sign_entry(entry, key=alice.key).hex()},
    )
    assert signed.status_code == 201, signed.content
    assert balance_of(alice.ledger, eur) == 700


def test_a_payment_to_an_unreachable_bank_is_voided_and_releases_its_hold(operator_client, funded, eur):
    alice = funded("10.00")
    peer = Peer.objects.create(name="bank-down", domain="bank-down.test", base_url="http://127.0.0.1:9")
    PeerKey.objects.create(
        peer=peer,
        key_id="bank-down.test#ed25519-1",
        public=SigningKey.generate().public_key.hex(),
        valid_from=timezone.now(),
    )
    services.asset_create(code="EUR", decimals=2, issuer="bank-down.test", actor="test")
    data = {
        "idempotency_key": "down-1",
        "sender": alice.ubi,
        "recipient": "ubi:bank-down.test:bob",
        "asset": eur.uai,
        "recipient_asset": "bank-down.test/EUR",
        "amount": "2.00",
    }
    answer = post_json(operator_client, "/api/payments/interbank/", data)
    assert answer.status_code == 409
    assert answer.json()["error"]["code"] == "peer_refused"
    assert "peer_unreachable" in answer.json()["error"]["message"]
    assert InterbankPayment.objects.get().phase == "voided"
    assert not Hold.objects.exists()
    assert balance_of(alice.ledger, eur) == 1000
    batch = post_json(
        operator_client,
        "/api/payments/interbank/batch/",
        {"payments": [{**data, "idempotency_key": "down-2"}]},
    )
    assert batch.status_code == 201, batch.content
    assert [item["phase"] for item in batch.json()] == ["voided"]
    assert not Hold.objects.exists()
    unknown = post_json(
        operator_client,
        "/api/payments/interbank/",
        {
            **data,
            "idempotency_key": "x",
            "recipient_asset": "bank-nope.test/EUR",
            "recipient": "ubi:bank-nope.test:bob",
        },
    )
    # Not a peer, and the only peer is down: no correspondent reaches it either.
    assert unknown.status_code == 409
    assert unknown.json()["error"]["code"] == "no_route"


def test_the_demo_seed_readies_a_node_and_can_run_twice(node):
    from io import StringIO

    from django.core.management import call_command

    from ledgers.models import Ledger
    from settlement.models import PeerCreditLimit

    custodial, _ = make_counterparty("carla")
    make_counterparty("sam", custody="self")
    Peer.objects.create(name="bank-peer", domain="bank-peer.test", base_url="http://127.0.0.1:9")
    for _ in range(2):
        call_command("ledgers_demo_seed", stdout=StringIO())
    assert set(Ledger.objects.values_list("ubi", flat=True)) == {
        "ubi:bank-test.test:bank",
        "ubi:bank-test.test:carla",
        "ubi:bank-test.test:sam",
    }
    assert (
        balance_of(Ledger.objects.get(counterparty=custodial), Asset.objects.get(uai="bank-test.test/EUR"))
        == 100000
    )
    assert Asset.objects.filter(uai="bank-peer.test/EUR").exists()
    assert PeerCreditLimit.objects.get().limit == 10000000
