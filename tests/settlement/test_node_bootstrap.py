"""`manage.py node_bootstrap` makes the operator and a token once, in a 0600 credentials file."""

from __future__ import annotations

import json
import stat

import pytest
from django.contrib.auth import get_user_model
from django.core.management import call_command

pytestmark = pytest.mark.django_db


def test_bootstrap_writes_working_credentials_readable_only_by_the_owner(client, tmp_path, settings):
    credentials = tmp_path / "credentials.json"

    call_command("node_bootstrap", credentials=credentials, url="http://127.0.0.1:8000")

    assert stat.S_IMODE(credentials.stat().st_mode) == 0o600
    entry = json.loads(credentials.read_text())[settings.NODE_NAME]
    response = client.get("/api/node/", HTTP_AUTHORIZATION=f"Bearer {entry['api_token']}")
    assert response.status_code == 200
    assert set(response.json()["you"]["roles"]) == {"operator", "kyc_reviewer", "auditor", "admin"}
    assert client.login(username="operator", password=entry["password"])


def test_a_second_bootstrap_changes_nothing(tmp_path):
    credentials = tmp_path / "credentials.json"
    call_command("node_bootstrap", credentials=credentials, url="http://127.0.0.1:8000")
    first = credentials.read_text()

    call_command("node_bootstrap", credentials=credentials, url="http://127.0.0.1:8000")

    assert credentials.read_text() == first
    assert get_user_model().objects.count() == 1
