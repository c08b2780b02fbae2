"""Bad input to the counterparty API: 400 with field errors, and nothing saved (rows counted
before and after in every table the service writes)."""

from __future__ import annotations

import pytest

from settlement.counterparties.models import Counterparty, CustodialKeySet, KycDocument, KycReview
from settlement.models import AuditEvent
from settlement.protocol.identifiers import lei_check_digits

pytestmark = pytest.mark.django_db

VALID_LEI = "529900T8BM49AURSDO" + lei_check_digits("529900T8BM49AURSDO")
BAD_LEI = VALID_LEI[:-1] + str((int(VALID_LEI[-1]) + 1) % 10)


def _rows():
    return tuple(
        model.objects.count() for model in (Counterparty, CustodialKeySet, KycDocument, KycReview, AuditEvent)
    )


@pytest.fixture
def logged_in(client, operator):
    client.force_login(operator)
    return client


def _post(client, data):
    return client.post("/api/counterparties/", data, content_type="application/json")


@pytest.mark.parametrize(
    ("overrides", "field"),
    [
        ({"ed25519_public_key": "00" * 31}, "ed25519_public_key"),
        ({"ed25519_public_key": "zz" * 32}, "ed25519_public_key"),
        ({"ed25519_public_key": "01" + "00" * 31}, "ed25519_public_key"),  # small-order point
        ({"x25519_public_key": "00" * 32}, "x25519_public_key"),  # low-order point
        ({"x25519_public_key": "abc"}, "x25519_public_key"),
        (
            {"ethereum_address": "0x5aAeb6053F3E94C9b9A09f33669435E7Ef1BeAeD"},
            "ethereum_address",
        ),  # bad EIP-55
        ({"ethereum_address": "0x1234"}, "ethereum_address"),
        ({"ed25519_public_key": ""}, "ed25519_public_key"),  # self custody needs its keys
        ({"kind": "company", "lei": BAD_LEI}, "lei"),
        ({"kind": "company", "lei": ""}, "lei"),
        ({"lei": "not-an-lei"}, "lei"),
        ({"country": "XX"}, "country"),
        ({"country": "Germany"}, "country"),
        ({"federation_name": "al ice"}, "federation_name"),
        ({"federation_name": "a*b"}, "federation_name"),
        ({"contact_email": "not-an-email"}, "contact_email"),
        ({"contact_email": "", "contact_phone": ""}, "contact_email"),
        ({"legal_name": "   "}, "legal_name"),
        ({"kind": "trust"}, "kind"),
        ({"custody": "shared"}, "custody"),
    ],
)
def test_bad_fields_are_400_with_the_field_named_and_nothing_saved(logged_in, person_data, overrides, field):
    before = _rows()

    response = _post(logged_in, person_data("alice", **overrides))

    assert response.status_code == 400, response.content
    error = response.json()["error"]
    assert error["code"] == "invalid"
    assert field in error["fields"], error
    assert _rows() == before


def test_a_company_with_a_valid_lei_is_accepted(logged_in, person_data):
    response = _post(logged_in, person_data("acme", kind="company", lei=VALID_LEI.lower()))

    assert response.status_code == 201, response.json()
    assert response.json()["lei"] == VALID_LEI


def test_a_duplicate_federation_address_is_refused_whatever_its_case(
    logged_in, person_data, make_counterparty
):
    make_counterparty("alice")
    before = _rows()

    response = _post(logged_in, person_data("ALICE"))

    assert response.status_code == 400
    assert "already taken" in response.json()["error"]["fields"]["federation_name"][0]
    assert _rows() == before


def test_an_ed25519_key_already_in_use_is_refused(logged_in, person_data, make_counterparty):
    existing = make_counterparty("alice")
    before = _rows()

    response = _post(logged_in, person_data("bob", ed25519_public_key=existing.ed25519_public_key))

    assert response.status_code == 400
    assert "ed25519_public_key" in response.json()["error"]["fields"]
    assert _rows() == before


def test_custodial_counterparties_do_not_send_keys(logged_in, person_data):
    before = _rows()

    response = _post(logged_in, person_data("alice", custody="custodial"))

    assert response.status_code == 400
    assert set(response.json()["error"]["fields"]) == {
        "ed25519_public_key",
        "x25519_public_key",
        "ethereum_address",
    }
    assert _rows() == before


def test_every_problem_is_reported_at_once(logged_in, person_data):
    response = _post(
        logged_in, person_data("alice", country="ZZ", x25519_public_key="00", ethereum_address="nope")
    )

    assert set(response.json()["error"]["fields"]) == {"country", "x25519_public_key", "ethereum_address"}


@pytest.mark.parametrize(
    ("change", "field"),
    [
        ({"ed25519_public_key": "00" * 31}, "ed25519_public_key"),
        ({"lei": BAD_LEI}, "lei"),
        ({"federation_name": "bob"}, "federation_name"),
        ({"country": "EU"}, "country"),
    ],
)
def test_a_bad_update_is_400_and_changes_nothing(logged_in, make_counterparty, change, field):
    alice = make_counterparty("alice")
    make_counterparty("bob")
    before, snapshot = _rows(), Counterparty.objects.values().get(pk=alice.pk)

    response = logged_in.patch(f"/api/counterparties/{alice.pk}/", change, content_type="application/json")

    assert response.status_code == 400
    assert field in response.json()["error"]["fields"]
    assert _rows() == before
    assert Counterparty.objects.values().get(pk=alice.pk) == snapshot


def test_an_unknown_counterparty_is_404_in_the_error_shape(logged_in):
    response = logged_in.get("/api/counterparties/999999/")

    assert response.status_code == 404
    assert response.json()["error"]["code"] == "not_found"
