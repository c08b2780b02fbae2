"""Roles on every counterparty URL: an auditor reads everything and writes nothing; a KYC
reviewer decides KYC but does not create or change counterparties; an operator does not decide."""

from __future__ import annotations

import pytest

from settlement.counterparties.models import Counterparty, KycDocument
from settlement.models import AuditEvent

pytestmark = pytest.mark.django_db


@pytest.fixture
def alice(make_counterparty):
    return make_counterparty("alice", status="PROCESSING")


def _writes(counterparty, person_data, upload):
    pk = counterparty.pk
    return [
        ("/api/counterparties/", "post", {"data": person_data("bob"), "content_type": "application/json"}),
        (
            f"/api/counterparties/{pk}/",
            "patch",
            {"data": {"legal_name": "X"}, "content_type": "application/json"},
        ),
        (f"/api/counterparties/{pk}/kyc/documents/", "post", {"data": {"file": upload()}}),
        (f"/api/counterparties/{pk}/kyc/submit/", "post", {}),
        (
            f"/api/counterparties/{pk}/kyc/decision/",
            "post",
            {"data": {"decision": "accept"}, "content_type": "application/json"},
        ),
        ("/counterparties/new/", "post", {"data": person_data("bob")}),
        (f"/counterparties/{pk}/kyc/decision/", "post", {"data": {"decision": "accept"}}),
        (f"/counterparties/{pk}/kyc/submit/", "post", {}),
        (f"/counterparties/{pk}/kyc/documents/", "post", {"data": {"file": upload()}}),
    ]


def _state():
    return (
        list(Counterparty.objects.values_list("legal_name", "kyc_status")),
        KycDocument.objects.count(),
        AuditEvent.objects.count(),
    )


def test_an_auditor_cannot_post_anything(client, auditor, alice, person_data, upload):
    client.force_login(auditor)
    before = _state()

    for path, method, kwargs in _writes(alice, person_data, upload):
        response = getattr(client, method)(path, **kwargs)
        assert response.status_code == 403, (path, method, response.status_code)

    assert _state() == before


def test_an_auditor_reads_every_counterparty_page_and_endpoint(client, auditor, alice):
    client.force_login(auditor)
    for path in (
        "/api/counterparties/",
        f"/api/counterparties/{alice.pk}/",
        f"/api/counterparties/{alice.pk}/kyc/documents/",
        f"/api/counterparties/{alice.pk}/kyc/history/",
        f"/api/counterparties/{alice.pk}/federation/key-sets/",
        "/api/node/keys/",
        "/counterparties/",
        f"/counterparties/{alice.pk}/",
    ):
        assert client.get(path).status_code == 200, path
    assert client.get("/counterparties/new/").status_code == 403


def test_a_kyc_reviewer_decides_but_cannot_create_or_change(client, reviewer, alice, person_data):
    client.force_login(reviewer)

    created = client.post("/api/counterparties/", person_data("bob"), content_type="application/json")
    changed = client.patch(
        f"/api/counterparties/{alice.pk}/", {"legal_name": "X"}, content_type="application/json"
    )
    page = client.post("/counterparties/new/", person_data("bob"))
    decided = client.post(
        f"/api/counterparties/{alice.pk}/kyc/decision/",
        {"decision": "accept"},
        content_type="application/json",
    )

    assert (created.status_code, changed.status_code, page.status_code) == (403, 403, 403)
    assert created.json()["error"]["code"] == "permission_denied"
    assert decided.status_code == 200
    assert list(Counterparty.objects.values_list("federation_name", "kyc_status")) == [("alice", "ACCEPTED")]


def test_an_operator_cannot_decide_kyc(client, operator, alice):
    client.force_login(operator)

    api = client.post(
        f"/api/counterparties/{alice.pk}/kyc/decision/",
        {"decision": "accept"},
        content_type="application/json",
    )
    page = client.post(f"/counterparties/{alice.pk}/kyc/decision/", {"decision": "accept"})

    assert (api.status_code, page.status_code) == (403, 403)
    alice.refresh_from_db()
    assert alice.kyc_status == "PROCESSING"


def test_an_api_token_is_held_to_its_role(client, make_user, alice):
    from settlement.models import ApiToken

    user = make_user("both", "operator", "kyc_reviewer")
    _, token = ApiToken.issue(user=user, name="reader", role="auditor")

    response = client.post(
        f"/api/counterparties/{alice.pk}/kyc/decision/",
        {"decision": "accept"},
        content_type="application/json",
        HTTP_AUTHORIZATION=f"Bearer {token}",
    )

    assert response.status_code == 403
