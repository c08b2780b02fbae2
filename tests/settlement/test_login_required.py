"""Every URL needs a login except the few that are public by nature; a walk over the URL
patterns proves it, so a new page cannot be added without it."""

from __future__ import annotations

import re

import pytest
from django.urls import get_resolver

from tests.support import url_routes

# Public on purpose: the health probe, the login pages, and what a node publishes about itself
# and its counterparties for anyone to check (identity, federation).
PUBLIC = {"/healthz", "/accounts/login/", "/admin/login/", "/.well-known/parsec.json", "/federation"}


def _example_path(route: str) -> str:
    """Fill converters and regex groups with harmless values so the URL resolves."""
    path = re.sub(r"<(?:int:)?[^>]*pk>|<int:[^>]+>", "1", route)
    path = re.sub(r"<[^>]+>", "x", path)
    path = re.sub(r"\(\?P<[^>]+>[^)]*\)", "1", path)
    path = path.replace("^", "").replace("$", "").replace("\\Z", "").replace("\\", "")
    return "/" + path.lstrip("/")


ALL_PATHS = sorted({_example_path(route) for route in url_routes(get_resolver().url_patterns)})


def test_the_walk_finds_the_urls_we_know():
    assert {"/", "/api/node/", "/api/schema/", "/admin/", "/counterparties/"} <= set(ALL_PATHS)


def test_no_node_to_node_route_is_in_the_dashboards_urlconf():
    # They have a handler and URLconf of their own (tests/settlement/test_node_api_handler.py).
    assert not [path for path in ALL_PATHS if path.startswith("/node-api/")]


@pytest.mark.django_db
@pytest.mark.parametrize("path", [path for path in ALL_PATHS if path not in PUBLIC])
def test_anonymous_get_is_refused(client, path):
    response = client.get(path)

    if path.startswith("/api/"):
        assert response.status_code == 401, path
        # The schema and Swagger UI render errors in their own formats; the rest speak JSON.
        if response["Content-Type"].startswith("application/json"):
            assert response.json()["error"]["code"] == "not_authenticated"
    elif path.startswith("/admin/"):
        assert response.status_code in {302, 404}, path
        if response.status_code == 302:
            assert "/login/" in response["Location"]
    else:
        assert response.status_code == 302, path
        assert response["Location"].startswith("/accounts/login/")


@pytest.mark.django_db
def test_a_user_without_a_role_sees_no_page(client, make_user):
    client.force_login(make_user("nobody"))

    response = client.get("/")

    assert response.status_code == 403


@pytest.mark.django_db
@pytest.mark.parametrize("role", ["operator", "kyc_reviewer", "auditor", "admin"])
def test_every_role_sees_the_overview(client, make_user, role, no_worker_heartbeats):
    client.force_login(make_user(f"user-{role}", role))

    response = client.get("/")

    assert response.status_code == 200
    assert b'id="node-health"' in response.content
