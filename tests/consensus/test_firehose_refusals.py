"""GET /api/firehose refuses, with a JSON error and nothing streamed: a resume height that is
not a whole number from 0, or that the chain has not reached; callers without a token or a
verified session; roles that may not follow the firehose (KYC reviewer); and the Firehose page
is refused to them too."""

from __future__ import annotations

import pytest
from consensus_shell_support import dispatched, two_validators
from django.test import Client
from firehose_support import store_blocks

from settlement.models import ApiToken

__all__ = ["dispatched", "two_validators"]


@pytest.mark.parametrize(
    ("query", "status", "code"),
    [
        ("from=-1", 400, "bad_height"),
        ("from=x", 400, "bad_height"),
        ("from=2.5", 400, "bad_height"),
        ("from=", 400, "bad_height"),
        ("from=%201", 400, "bad_height"),
        ("from=1&from=2", 400, "bad_height"),
        ("from={beyond}", 404, "height_not_reached"),
        ("from=1000000000000", 404, "height_not_reached"),
    ],
)
def test_bad_resume_heights_are_refused_with_a_json_error(
    two_validators, dispatched, make_user, query, status, code
):
    chain = len(store_blocks(two_validators, dispatched, 1))
    _, token = ApiToken.issue(user=make_user("integration", "auditor"), name="firehose", role="auditor")
    response = Client().get(
        f"/api/firehose?{query.format(beyond=chain + 1)}", HTTP_AUTHORIZATION=f"Bearer {token}"
    )
    assert response.status_code == status
    assert response["Content-Type"] == "application/json"
    body = response.json()
    assert set(body) == {"error"}
    assert body["error"]["code"] == code
    assert body["error"]["message"]
    assert "from" in body["error"]["fields"]


def test_the_next_height_itself_is_accepted(two_validators, dispatched, make_user):
    # Not streamed here (the test client is not daphne): only that it is not refused.
    chain = len(store_blocks(two_validators, dispatched, 1))
    _, token = ApiToken.issue(user=make_user("integration", "operator"), name="firehose", role="operator")
    response = Client().get(f"/api/firehose?from={chain}", HTTP_AUTHORIZATION=f"Bearer {token}")
    assert response.status_code == 200
    assert response["Content-Type"] == "application/x-ndjson"
    response.close()


@pytest.mark.parametrize("role", ["kyc_reviewer"])
def test_a_token_of_a_role_without_access_is_refused(make_user, role, db):
    # The user may hold more roles; the token has only its own.
    _, token = ApiToken.issue(user=make_user("broad", "admin", role), name="firehose", role=role)
    response = Client().get("/api/firehose?from=0", HTTP_AUTHORIZATION=f"Bearer {token}")
    assert response.status_code == 403
    assert response.json()["error"]["code"] == "permission_denied"


def test_no_credentials_are_refused(db):
    response = Client().get("/api/firehose?from=0")
    assert response.status_code == 401
    assert "error" in response.json()


def test_the_firehose_page_is_for_operators_auditors_and_admins(client, make_user):
    client.force_login(make_user("kyc", "kyc_reviewer"))
    assert client.get("/firehose/").status_code == 403
    for role in ("operator", "auditor", "admin"):
        client.force_login(make_user(f"user-{role}", role))
        page = client.get("/firehose/")
        assert page.status_code == 200
        assert b'id="firehose-from"' in page.content
        assert b'href="/firehose/"' in page.content  # the navigation entry
