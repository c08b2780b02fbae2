"""Unknown URLs: a 404 page in the dashboard's style, or JSON with a code under /api/."""

from __future__ import annotations

import pytest

pytestmark = pytest.mark.django_db


def test_unknown_api_url_is_json_with_a_code(client, make_user):
    client.force_login(make_user("op", "operator"))

    response = client.get("/api/no-such-thing/")

    assert response.status_code == 404
    assert response.json() == {
        "error": {"code": "not_found", "message": "Nothing is at /api/no-such-thing/."}
    }


def test_unknown_page_is_a_dashboard_404(client, make_user):
    client.force_login(make_user("op", "operator"))

    response = client.get("/no-such-page/")

    assert response.status_code == 404
    assert b"There is nothing at this address." in response.content
    assert b'aria-label="Sections"' in response.content


def test_api_schema_and_docs_are_served_to_a_user(client, make_user):
    client.force_login(make_user("op", "operator"))

    schema = client.get("/api/schema/", HTTP_ACCEPT="application/json")
    docs = client.get("/api/docs/")

    assert schema.status_code == 200
    assert "/api/node/" in schema.json()["paths"]
    assert docs.status_code == 200
    # Swagger UI comes from our own static files, never from a CDN.
    assert b"/static/vendor/swagger-ui/swagger-ui-bundle.js" in docs.content
    assert b"cdn" not in docs.content.lower()
