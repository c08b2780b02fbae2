"""The counterparty pages: list, htmx search (the table partial alone, with its stable id),
detail with KYC history, documents, keys and key history, the create form, and the review
buttons, which only KYC reviewers and admins see and use."""

from __future__ import annotations

import pytest

from settlement.counterparties.models import Counterparty
from settlement.models import AuditEvent

pytestmark = pytest.mark.django_db

ROLES = ["operator", "kyc_reviewer", "auditor", "admin"]


@pytest.fixture
def people(make_counterparty):
    return {
        "alice": make_counterparty("alice", status="ACCEPTED"),
        "bob": make_counterparty("bob", status="PROCESSING"),
    }


@pytest.mark.parametrize("role", ROLES)
def test_every_role_sees_the_list_search_and_detail(client, make_user, people, role):
    client.force_login(make_user(f"user-{role}", role))

    listing = client.get("/counterparties/")
    search = client.get("/counterparties/", {"q": "bob"})
    detail = client.get(f"/counterparties/{people['alice'].pk}/")

    assert listing.status_code == search.status_code == detail.status_code == 200
    assert b'id="counterparty-table"' in listing.content
    assert b'aria-current="page"' in listing.content  # the nav highlights Counterparties
    assert b"Alice Example" in listing.content
    assert b"Bob Example" in listing.content
    assert b"Bob Example" in search.content
    assert b"Alice Example" not in search.content
    page = detail.content.decode()
    for part in ("kyc-history", "kyc-documents", "counterparty-keys", "federation-key-sets"):
        assert f'id="{part}"' in page
    assert people["alice"].ed25519_public_key in page
    assert "PROCESSING" in page
    assert "ACCEPTED" in page
    assert ("kyc-decision-form" in page) is (role in ("kyc_reviewer", "admin"))


def test_an_htmx_search_answers_the_table_partial_only(client, auditor, people):
    client.force_login(auditor)

    response = client.get("/counterparties/", {"q": "alice*"}, HTTP_HX_REQUEST="true")

    body = response.content.decode()
    assert body.lstrip().startswith('<div id="counterparty-table">')
    assert "<html" not in body
    assert "Alice Example" in body
    assert "Bob Example" not in body


@pytest.mark.parametrize(
    ("query", "expected"),
    [("PROCESSING", ["Bob Example"]), ("nobody", []), ("", ["Alice Example", "Bob Example"])],
)
def test_search_by_status_and_no_match(client, auditor, people, query, expected):
    client.force_login(auditor)

    response = client.get("/counterparties/", {"q": query}, HTTP_HX_REQUEST="true")

    body = response.content.decode()
    assert [name for name in ("Alice Example", "Bob Example") if name in body] == expected
    if not expected:
        assert "No counterparty matches" in body


def test_the_create_form_creates_through_the_service(client, operator, person_data):
    client.force_login(operator)
    assert client.get("/counterparties/new/").status_code == 200

    response = client.post("/counterparties/new/", person_data("dora", custody="self"))

    dora = Counterparty.objects.get(federation_name="dora")
    assert response.status_code == 302
    assert response["Location"] == f"/counterparties/{dora.pk}/"
    assert AuditEvent.objects.filter(action="counterparty.create", target_id=str(dora.pk)).exists()


def test_the_create_form_shows_field_errors_and_saves_nothing(client, operator, person_data):
    client.force_login(operator)

    response = client.post("/counterparties/new/", person_data("dora", country="XX", ed25519_public_key="12"))

    assert response.status_code == 400
    assert b'id="error-country"' in response.content
    assert b'id="error-ed25519_public_key"' in response.content
    assert not Counterparty.objects.exists()


def test_a_reviewer_decides_from_the_detail_page(client, reviewer, people):
    client.force_login(reviewer)
    bob = people["bob"]

    refused = client.post(f"/counterparties/{bob.pk}/kyc/decision/", {"decision": "reject", "reason": ""})
    rejected = client.post(
        f"/counterparties/{bob.pk}/kyc/decision/", {"decision": "reject", "reason": "name does not match"}
    )

    assert refused.status_code == 400
    assert b'id="action-error"' in refused.content
    assert rejected.status_code == 302
    bob.refresh_from_db()
    assert bob.kyc_status == "REJECTED"
    assert b"name does not match" in client.get(f"/counterparties/{bob.pk}/").content


def test_an_operator_uploads_and_submits_from_the_detail_page(client, operator, make_counterparty, upload):
    client.force_login(operator)
    carol = make_counterparty("carol")

    uploaded = client.post(f"/counterparties/{carol.pk}/kyc/documents/", {"file": upload()})
    wrong = client.post(
        f"/counterparties/{carol.pk}/kyc/documents/", {"file": upload(b"hello", "a.txt", "text/plain")}
    )
    submitted = client.post(f"/counterparties/{carol.pk}/kyc/submit/")

    assert (uploaded.status_code, wrong.status_code, submitted.status_code) == (302, 400, 302)
    carol.refresh_from_db()
    assert carol.kyc_status == "PROCESSING"
    assert b"passport.pdf" in client.get(f"/counterparties/{carol.pk}/").content


def test_an_unknown_counterparty_page_is_404(client, auditor):
    client.force_login(auditor)

    assert client.get("/counterparties/424242/").status_code == 404
