"""Every distinct key set federation serves is recorded once, with when it was first and last
served and how often, so a counterparty's key history can be shown."""

from __future__ import annotations

import pytest
from django.test import Client

from settlement.counterparties.models import FederationKeySet

pytestmark = pytest.mark.django_db


def _ask(name, settings):
    return Client().get("/federation", {"q": f"{name}*{settings.NODE_DOMAIN}", "type": "name"})


def test_serving_the_same_keys_counts_one_key_set(node_identity, make_counterparty, settings):
    alice = make_counterparty("alice", status="ACCEPTED")

    for _ in range(3):
        assert _ask("alice", settings).status_code == 200

    (key_set,) = FederationKeySet.objects.filter(counterparty=alice)
    assert key_set.times_served == 3
    assert key_set.keys == alice.public_keys
    assert key_set.first_served_at <= key_set.last_served_at


def test_new_keys_start_a_new_key_set_and_the_old_one_stays(
    client, operator, auditor, node_identity, make_counterparty, new_keys, settings
):
    alice = make_counterparty("alice", status="ACCEPTED")
    _ask("alice", settings)
    client.force_login(operator)
    rotated = new_keys()
    assert (
        client.patch(f"/api/counterparties/{alice.pk}/", rotated, content_type="application/json").status_code
        == 200
    )

    answer = _ask("alice", settings).json()

    assert answer["account_id"] == rotated["ed25519_public_key"]
    key_sets = list(FederationKeySet.objects.filter(counterparty=alice).order_by("first_served_at", "id"))
    assert [key_set.keys["ed25519"] for key_set in key_sets] == [
        alice.ed25519_public_key,
        rotated["ed25519_public_key"],
    ]
    client.force_login(auditor)
    history = client.get(f"/api/counterparties/{alice.pk}/federation/key-sets/").json()
    assert [entry["keys"]["ed25519"] for entry in history] == [
        rotated["ed25519_public_key"],
        alice.ed25519_public_key,
    ]
    page = client.get(f"/counterparties/{alice.pk}/").content.decode()
    assert alice.ed25519_public_key[:16] in page
    assert rotated["ed25519_public_key"][:16] in page


def test_a_refused_lookup_records_nothing(node_identity, make_counterparty, settings):
    make_counterparty("alice", status="PROCESSING")

    assert _ask("alice", settings).status_code == 404

    assert not FederationKeySet.objects.exists()
