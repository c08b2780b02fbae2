"""Dashboard login needs the password and a TOTP code; API sessions need the code too."""

from __future__ import annotations

import pytest
from django.test import Client
from django_otp.plugins.otp_totp.models import TOTPDevice

from tests.support import confirmed_totp_device, totp_code

pytestmark = pytest.mark.django_db

PASSWORD = "a-long-test-password"


def _password_login(client: Client, username: str) -> None:
    response = client.post("/accounts/login/", {"username": username, "password": PASSWORD, "next": "/"})
    assert response.status_code == 302


def test_a_password_alone_leads_to_the_code_page_not_the_dashboard(make_user):
    confirmed_totp_device(make_user("alice", "operator"))
    client = Client()
    _password_login(client, "alice")

    response = client.get("/peers/")

    assert response.status_code == 302
    assert response["Location"] == "/accounts/second-factor/?next=/peers/"


def test_the_right_code_opens_the_dashboard(make_user):
    device = confirmed_totp_device(make_user("alice", "operator"))
    client = Client()
    _password_login(client, "alice")

    response = client.post("/accounts/second-factor/", {"code": totp_code(device), "next": "/peers/"})

    assert response.status_code == 302
    assert response["Location"] == "/peers/"
    assert client.get("/peers/").status_code == 200


def test_a_wrong_code_is_refused_with_a_sentence(make_user):
    confirmed_totp_device(make_user("alice", "operator"))
    client = Client()
    _password_login(client, "alice")

    response = client.post("/accounts/second-factor/", {"code": "000000", "next": "/"})

    assert response.status_code == 400
    assert b"That code is not right." in response.content
    assert client.get("/").status_code == 302


def test_a_user_without_an_authenticator_enrols_with_a_qr_code_first(make_user):
    user = make_user("bob", "auditor")
    client = Client()
    _password_login(client, "bob")

    page = client.get("/accounts/second-factor/")
    device = TOTPDevice.objects.get(user=user, confirmed=False)
    confirmed = client.post("/accounts/second-factor/", {"code": totp_code(device), "next": "/"})

    assert b"<svg" in page.content
    assert b"Set up your authenticator" in page.content
    assert confirmed.status_code == 302
    device.refresh_from_db()
    assert device.confirmed


def test_an_api_call_on_a_session_without_the_code_is_unauthenticated(make_user):
    confirmed_totp_device(make_user("alice", "operator"))
    client = Client()
    _password_login(client, "alice")

    response = client.get("/api/node/")

    assert response.status_code == 401
