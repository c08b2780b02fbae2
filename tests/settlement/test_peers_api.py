"""The peers API: list with keys and limits, add from a published identity, set credit limits."""

from __future__ import annotations

import pytest
from django.utils import timezone

from settlement import keystore
from settlement.models import AuditEvent, Peer, PeerCreditLimit, PeerKey

pytestmark = pytest.mark.django_db


@pytest.fixture
def peer():
    peer = Peer.objects.create(name="bank-z", domain="bank-z.test", base_url="http://127.0.0.1:9")
    PeerKey.objects.create(
        peer=peer, key_id="bank-z.test#ed25519-1", public="ab" * 32, valid_from=timezone.now()
    )
    return peer


@pytest.fixture
def operator(client, make_user):
    client.force_login(make_user("op", "operator"))
    return client


def test_peers_are_listed_with_their_keys(operator, peer):
    (listed,) = operator.get("/api/peers/").json()

    assert listed["name"] == "bank-z"
    assert listed["keys"][0]["key_id"] == "bank-z.test#ed25519-1"
    assert listed["status"] == "unknown"


def test_a_credit_limit_is_set_and_audited(operator, peer):
    response = operator.put(
        f"/api/peers/{peer.pk}/credit-limits/",
        {"asset": "bank-a.test/EUR", "limit": "150000"},
        content_type="application/json",
    )

    assert response.status_code == 200
    assert PeerCreditLimit.objects.get(peer=peer).limit == 150000
    assert AuditEvent.objects.get(action="peer.credit_limit").after == {
        "asset": "bank-a.test/EUR",
        "limit": "150000",
    }


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"asset": "bank-a.test/EUR", "limit": "-5"}, "limit"),
        ({"asset": "bank-a.test/EUR", "limit": "1.5"}, "limit"),
        ({"asset": "bank-a.test/EUR", "limit": "9" * 31}, "limit"),
        ({"asset": "EUR", "limit": "10"}, "asset"),
    ],
)
def test_a_bad_credit_limit_is_refused_and_nothing_saved(operator, peer, body, field):
    response = operator.put(f"/api/peers/{peer.pk}/credit-limits/", body, content_type="application/json")

    assert response.status_code == 400
    assert field in response.json()["error"]["fields"]
    assert not PeerCreditLimit.objects.exists()


@pytest.mark.django_db(transaction=True)
def test_a_peer_is_added_from_its_published_identity(client, make_user, live_web, settings):
    # The node under test publishes its identity through daphne; a second node would read it
    # the same way. Here we read our own, under another name, since a node refuses itself.
    keystore.node_identity_ensure()
    client.force_login(make_user("op", "operator"))
    settings.NODE_DOMAIN = "other.test"

    response = client.post("/api/peers/", {"base_url": live_web.url}, content_type="application/json")

    assert response.status_code == 201, response.content
    assert response.json()["domain"] == "bank-test.test"
    assert response.json()["keys"][0]["key_id"].startswith("bank-test.test#ed25519-")


def test_an_unreachable_identity_is_a_400_on_base_url(operator):
    response = operator.post(
        "/api/peers/", {"base_url": "http://127.0.0.1:9"}, content_type="application/json"
    )

    assert response.status_code == 400
    assert "base_url" in response.json()["error"]["fields"]
    assert not Peer.objects.exists()
