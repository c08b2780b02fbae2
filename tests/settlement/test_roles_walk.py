"""Roles on every URL: a walk over the URL patterns proves that an auditor (read-only
everywhere) can change nothing, by page or by API, and that every role can read."""

from __future__ import annotations

import pytest

from settlement.models import ApiToken
from tests.settlement.test_login_required import ALL_PATHS, PUBLIC

# Posting to these is how any user, auditor included, logs in, out or gives a code.
SESSION_PATHS = {"/accounts/logout/", "/accounts/second-factor/"}
WRITABLE_PATHS = [
    path for path in ALL_PATHS if path not in PUBLIC | SESSION_PATHS and not path.startswith("/admin/")
]

pytestmark = pytest.mark.django_db


@pytest.mark.parametrize("path", WRITABLE_PATHS)
def test_an_auditor_session_cannot_post_anywhere(client, make_user, path):
    client.force_login(make_user("auditor", "auditor"))

    response = client.post(path, {"purpose": "ed25519", "name": "x"})

    assert response.status_code in {401, 403, 404, 405}, (path, response.status_code)


@pytest.mark.parametrize("path", [path for path in WRITABLE_PATHS if path.startswith("/api/")])
def test_an_auditor_token_cannot_post_to_the_api_even_for_an_admin_user(client, make_user, path):
    user = make_user("root", "admin", "auditor")
    _, token = ApiToken.issue(user=user, name="read-only", role="auditor")

    response = client.post(path, {}, HTTP_AUTHORIZATION=f"Bearer {token}", content_type="application/json")

    assert response.status_code in {403, 404, 405}, (path, response.status_code)


def test_an_auditor_reaches_the_admin_console_only_if_staff(client, make_user):
    client.force_login(make_user("auditor", "auditor"))

    assert client.get("/admin/").status_code == 302
