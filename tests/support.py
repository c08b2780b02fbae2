"""Helpers shared by tests (fixtures live in conftest.py)."""

from __future__ import annotations

import gc
import time
from collections.abc import Iterable, Iterator
from typing import Any

import psycopg
from django.test import Client
from django.test.client import ClientHandler

from settlement.node_api_handler import NodeApiHandlerMixin, is_node_api_path


def url_routes(patterns: Iterable[Any], prefix: str = "") -> Iterator[str]:
    """Every route of a URLconf's patterns, includes walked, as its pattern text."""
    from django.urls import URLPattern, URLResolver

    for pattern in patterns:
        route = prefix + str(pattern.pattern)
        if isinstance(pattern, URLResolver):
            yield from url_routes(pattern.url_patterns, route)
        elif isinstance(pattern, URLPattern):
            yield route


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


def copy_database(server: psycopg.Connection[Any], *, name: str, source: str) -> None:
    """``CREATE DATABASE name TEMPLATE source``, which needs nobody connected to ``source``.

    Who may be: a background thread of this test (bank A's final-proof courier keeps its
    connection while proofs keep coming, and closes it 50 ms after the last), so wait a little;
    the server processes of the previous test's killed daphnes, which a loaded machine takes
    seconds to notice; and connections an earlier test left in threads of this process (an
    event loop's executor running ``sync_to_async`` reads, a persistent connection per thread).
    A finished thread's connection goes when the garbage collector breaks its reference cycles,
    so collect once; one still idle after 5 s is nobody's in this test, and is ended (a thread
    that uses it again finds it unusable through Django's health check and reconnects). If
    anyone stays 30 s, name them."""
    started = time.monotonic()
    collected = ended = False
    while True:
        try:
            server.execute(f'CREATE DATABASE "{name}" TEMPLATE "{source}"')
            return
        except psycopg.errors.ObjectInUse as error:
            waited = time.monotonic() - started
            if waited > 1 and not collected:
                gc.collect()
                collected = True
            elif waited > 6 and not ended:
                server.execute(
                    "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = %s"
                    " AND state = 'idle' AND state_change < now() - interval '5 seconds'",
                    (source,),
                )
                ended = True
            elif waited > 30:
                sessions = server.execute(
                    "SELECT pid, application_name, client_port, state, backend_start, left(query, 120)"
                    " FROM pg_stat_activity WHERE datname = %s",
                    (source,),
                ).fetchall()
                raise AssertionError(f"{source} still has sessions after 30 s: {sessions}") from error
            time.sleep(0.05)


class NodeApiClientHandler(NodeApiHandlerMixin, ClientHandler):
    """The test client's handler for /node-api/: NODE_API_MIDDLEWARE and the node-api URLconf."""


class RoutedClientHandler:
    """Route by path as settlement.asgi does: /node-api/ to the node-api handler, the rest to
    the dashboard's (MIDDLEWARE, ROOT_URLCONF)."""

    def __init__(self, enforce_csrf_checks: bool) -> None:
        self.enforce_csrf_checks = enforce_csrf_checks
        self.dashboard = ClientHandler(enforce_csrf_checks)
        self.node_api = NodeApiClientHandler(enforce_csrf_checks)

    def __call__(self, environ: dict[str, Any]) -> Any:
        handler = self.node_api if is_node_api_path(environ["PATH_INFO"]) else self.dashboard
        return handler(environ)


class RoutedClient(Client):
    """A test client that reaches each path through the handler daphne would use."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.handler = RoutedClientHandler(self.handler.enforce_csrf_checks)  # type: ignore[assignment]


class VerifiedClient(RoutedClient):
    """A test client whose force_login is a full login: password and second factor.

    Tests of the second factor itself use a plain ``django.test.Client``.
    """

    def force_login(self, user: Any, backend: str | None = None) -> None:
        from django_otp import DEVICE_ID_SESSION_KEY

        super().force_login(user, backend)
        session = self.session
        session[DEVICE_ID_SESSION_KEY] = confirmed_totp_device(user).persistent_id
        session.save()
