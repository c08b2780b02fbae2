"""The counterparty API: create, list with search, detail, update (audited with before and
after), the node's public keys, the schema, and the guard later apps call before funds move."""

from __future__ import annotations

import pytest

from settlement.counterparties.errors import CounterpartyNotAccepted
from settlement.counterparties.selectors import counterparty_require_accepted
from settlement.models import AuditEvent

pytestmark = pytest.mark.django_db


def test_create_then_read_it_back(client, operator, person_data, settings):
    client.force_login(operator)
    data = person_data("alice", country="de", ed25519_public_key=person_data()["ed25519_public_key"].upper())

    created = client.post("/api/counterparties/", data, content_type="application/json")

    assert created.status_code == 201, created.json()
    body = created.json()
    assert body["federation_address"] == f"alice*{settings.NODE_DOMAIN}"
    assert body["country"] == "DE"
    assert body["keys"]["ed25519"] == data["ed25519_public_key"].lower()
    assert (body["kyc_status"], body["can_hold_funds"]) == ("NEEDS_INFO", False)
    assert client.get(f"/api/counterparties/{body['id']}/").json() == body
    event = AuditEvent.objects.get(action="counterparty.create")
    assert event.actor == operator.username
    assert event.after is not None
    assert event.after["federation_name"] == "alice"
    assert not any("sealed" in key for key in event.after)


@pytest.mark.parametrize(
    ("search", "expected"),
    [
        ("alice", ["alice"]),
        ("Example", ["alice", "bob"]),
        ("bob*bank", ["bob"]),
        ("accepted", ["alice"]),
        ("zzz", []),
    ],
)
def test_list_searches_names_addresses_and_status(client, auditor, make_counterparty, search, expected):
    make_counterparty("alice", status="ACCEPTED")
    make_counterparty("bob")
    client.force_login(auditor)

    response = client.get("/api/counterparties/", {"search": search})

    assert sorted(item["federation_address"].split("*")[0] for item in response.json()) == expected


def test_list_searches_by_lei(client, auditor, make_counterparty):
    from settlement.protocol.identifiers import lei_check_digits

    lei = "5299000ACMETEST000" + lei_check_digits("5299000ACMETEST000")
    make_counterparty("acme", kind="company", lei=lei)
    make_counterparty("bob")
    client.force_login(auditor)

    response = client.get("/api/counterparties/", {"search": lei})

    assert [item["lei"] for item in response.json()] == [lei]


def test_an_update_records_before_and_after_of_what_changed(client, operator, make_counterparty):
    alice = make_counterparty("alice")
    client.force_login(operator)

    response = client.patch(
        f"/api/counterparties/{alice.pk}/",
        {"legal_name": "Alice  Q.  Example", "country": "AT"},
        content_type="application/json",
    )

    assert response.status_code == 200
    assert response.json()["legal_name"] == "Alice Q. Example"
    event = AuditEvent.objects.get(action="counterparty.update")
    assert event.before == {"country": "DE", "legal_name": "Alice Example"}
    assert event.after == {"country": "AT", "legal_name": "Alice Q. Example"}


def test_kyc_status_and_custody_cannot_be_patched(client, operator, make_counterparty):
    alice = make_counterparty("alice")
    client.force_login(operator)
    events = AuditEvent.objects.count()

    response = client.patch(
        f"/api/counterparties/{alice.pk}/",
        {"kyc_status": "ACCEPTED", "custody": "custodial", "legal_name": "Eve"},
        content_type="application/json",
    )

    assert response.status_code == 400
    assert set(response.json()["error"]["fields"]) == {"kyc_status", "custody"}
    alice.refresh_from_db()
    assert (alice.kyc_status, alice.custody, alice.legal_name) == ("NEEDS_INFO", "self", "Alice Example")
    assert AuditEvent.objects.count() == events


def test_create_refuses_fields_it_does_not_take(client, operator, person_data):
    client.force_login(operator)

    response = client.post(
        "/api/counterparties/", person_data("alice", kyc_status="ACCEPTED"), content_type="application/json"
    )

    assert response.status_code == 400
    assert response.json()["error"]["fields"] == {"kyc_status": ["not accepted here"]}


def test_node_keys_lists_public_parts_with_validity(client, auditor, node_identity):
    from settlement import keystore
    from settlement.models import KeyPurpose

    retired = keystore.current_key(KeyPurpose.SIGNING)
    keystore.node_key_rotate(purpose=KeyPurpose.SIGNING, actor="test")
    client.force_login(auditor)

    keys = client.get("/api/node/keys/").json()

    signing = [key for key in keys if key["purpose"] == "ed25519"]
    assert [(key["key_id"] == retired.key_id, key["current"]) for key in signing] == [
        (False, True),
        (True, False),
    ]
    assert signing[1]["valid_until"] is not None
    assert {key["purpose"] for key in keys} == {"ed25519", "x25519", "ethereum"}
    assert "sealed" not in str(keys)


def test_every_counterparty_endpoint_is_in_the_schema(client, auditor):
    client.force_login(auditor)

    schema = client.get("/api/schema/", HTTP_ACCEPT="application/json").json()

    for path in (
        "/api/counterparties/",
        "/api/counterparties/{counterparty_id}/",
        "/api/counterparties/{counterparty_id}/kyc/documents/",
        "/api/counterparties/{counterparty_id}/kyc/documents/{document_id}/content/",
        "/api/counterparties/{counterparty_id}/kyc/submit/",
        "/api/counterparties/{counterparty_id}/kyc/decision/",
        "/api/counterparties/{counterparty_id}/kyc/history/",
        "/api/node/keys/",
        "/federation",
    ):
        assert path in schema["paths"], path


def test_the_guard_refuses_all_but_accepted(make_counterparty):
    for status in ("NEEDS_INFO", "PROCESSING", "REJECTED"):
        counterparty = make_counterparty(f"party-{status.lower()}", status=status)
        with pytest.raises(CounterpartyNotAccepted) as raised:
            counterparty_require_accepted(counterparty)
        assert raised.value.code == "counterparty_not_accepted"
        assert not counterparty.can_hold_funds
    accepted = make_counterparty("alice", status="ACCEPTED")
    assert counterparty_require_accepted(accepted) is accepted
