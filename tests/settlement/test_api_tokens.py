"""API tokens: shown once, stored as a hash, scoped to a role, revocable."""

from __future__ import annotations

import pytest
from django.db import connection
from django.utils import timezone

from settlement.models import ApiToken

pytestmark = pytest.mark.django_db


@pytest.fixture
def token(make_user):
    user = make_user("api-user", "auditor")
    return ApiToken.issue(user=user, name="test", role="auditor")


def test_a_token_authenticates_the_api(client, token):
    _, plain = token

    response = client.get("/api/node/", HTTP_AUTHORIZATION=f"Bearer {plain}")

    assert response.status_code == 200
    assert response.json()["you"] == {"username": "api-user", "roles": ["auditor"]}


def test_the_database_holds_no_plain_token(token):
    _, plain = token
    secret = plain.rsplit("_", 1)[1]

    with connection.cursor() as cursor:
        cursor.execute("SELECT * FROM settlement_apitoken")
        rows = cursor.fetchall()

    assert rows
    assert not any(secret in str(value) for row in rows for value in row)


def test_a_revoked_token_is_refused(client, token):
    record, plain = token
    record.revoked_at = timezone.now()
    record.save()

    response = client.get("/api/node/", HTTP_AUTHORIZATION=f"Bearer {plain}")

    assert response.status_code == 401
    assert response.json()["error"] == {
        "code": "authentication_failed",
        "message": "The API token is unknown or revoked.",
    }


@pytest.mark.parametrize("header", ["Bearer", "Bearer psk_only", "Bearer other_abc_def", "Bearer a b"])
def test_malformed_tokens_are_refused_with_a_code(client, header):
    response = client.get("/api/node/", HTTP_AUTHORIZATION=header)

    assert response.status_code == 401
    assert response.json()["error"]["code"] == "authentication_failed"


def test_a_wrong_secret_for_a_known_lookup_is_refused(client, token):
    record, _ = token

    response = client.get("/api/node/", HTTP_AUTHORIZATION=f"Bearer psk_{record.lookup}_wrong")

    assert response.status_code == 401
