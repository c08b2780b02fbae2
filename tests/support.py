"""Helpers shared by tests (fixtures live in conftest.py)."""

from __future__ import annotations

from typing import Any

from django.test import Client


def confirmed_totp_device(user: Any) -> Any:
    """The user's confirmed authenticator, made if missing."""
    from django_otp.plugins.otp_totp.models import TOTPDevice

    device = TOTPDevice.objects.filter(user=user, confirmed=True).first()
    return device or TOTPDevice.objects.create(user=user, name="authenticator", confirmed=True)


def totp_code(device: Any) -> str:
    """The code an authenticator app would show now for ``device``."""
    from django_otp.oath import TOTP

    totp = TOTP(device.bin_key, device.step, device.t0, device.digits, device.drift)
    return f"{totp.token():0{device.digits}d}"


def database_url_for_processes() -> str:
    """DATABASE_URL of the database pytest-django created for this session, for other processes."""
    from django.conf import settings

    database = settings.DATABASES["default"]
    return (
        f"postgres://{database['USER']}:{database['PASSWORD']}@{database['HOST']}:{database['PORT']}/"
        f"{database['NAME']}"
    )


def migrated_template() -> str:
    """The name of the empty, freshly migrated database that ``django_db_setup`` (conftest.py)
    copies from the test database before any test runs; peer nodes start from copies of it.
    Nobody connects to it, which is what ``CREATE DATABASE ... TEMPLATE`` needs."""
    from django.conf import settings

    return f"{settings.DATABASES['default']['NAME']}_migrated"


class VerifiedClient(Client):
    """A test client whose force_login is a full login: password and second factor.

    Tests of the second factor itself use a plain ``django.test.Client``.
    """

    def force_login(self, user: Any, backend: str | None = None) -> None:
        from django_otp import DEVICE_ID_SESSION_KEY

        super().force_login(user, backend)
        session = self.session
        session[DEVICE_ID_SESSION_KEY] = confirmed_totp_device(user).persistent_id
        session.save()
