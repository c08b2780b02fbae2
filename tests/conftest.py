"""Fixtures that run the real parts: PostgreSQL, Redis, anvil (from `make test`), and daphne and
Celery worker processes started here against the test database.

A test that uses `live_web` or `celery_worker` must use the `transactional_db` fixture: the other
processes only see data that is committed.
"""

from __future__ import annotations

import os
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from django.conf import settings
from django.test import Client

from devstack.services import ManagedProcess, free_port, port_open
from tests.support import VerifiedClient, database_url_for_processes, migrated_template

REPO = Path(__file__).resolve().parent.parent
VENV_BIN = Path(sys.executable).parent


# Fixtures that reach PostgreSQL, Redis, anvil or other processes.
SERVICE_FIXTURES = {"db", "transactional_db", "client", "live_web", "celery_worker", "make_user", "settings"}


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Pure protocol tests run anywhere; the rest need the services `make test` starts."""
    if "PARSEC_TEST_REDIS_PORT" in os.environ:
        return
    needing = [
        item
        for item in items
        if item.get_closest_marker("django_db") or SERVICE_FIXTURES & set(getattr(item, "fixturenames", ()))
    ]
    if needing:
        pytest.exit(
            f"{len(needing)} of the selected tests run against real services (e.g. {needing[0].nodeid}): "
            "use `make test`, or `.venv/bin/python -m devstack test -- .venv/bin/python -m pytest tests/...`",
            returncode=2,
        )


@pytest.fixture(scope="session")
def django_db_setup(django_db_setup: None, django_db_blocker: Any) -> None:
    """Let transactional tests empty the append-only audit log between tests (this database only),
    and keep a copy of the freshly migrated test database for peer nodes to start from."""
    import psycopg
    from django.db import connection

    with django_db_blocker.unblock(), connection.cursor() as cursor:
        cursor.execute(
            f'ALTER DATABASE "{connection.settings_dict["NAME"]}" SET parsec.allow_audit_truncate = on'
        )
    # A database setting reaches new connections only.
    connection.close()
    # Copied now, before any test writes (or a transactional test's flush empties the tables
    # migrations filled): `CREATE DATABASE ... TEMPLATE` takes a second where migrating takes
    # many. A database's settings are not copied: the copy keeps the audit log append-only.
    admin = database_url_for_processes().rsplit("/", 1)[0] + "/postgres"
    with psycopg.connect(admin, autocommit=True) as server:
        server.execute(f'DROP DATABASE IF EXISTS "{migrated_template()}"')
        server.execute(
            f'CREATE DATABASE "{migrated_template()}" TEMPLATE "{connection.settings_dict["NAME"]}"'
        )


def _process_env() -> dict[str, str]:
    return {"DATABASE_URL": database_url_for_processes(), "WORKER_HEARTBEAT_SECONDS": "0.5"}


CONSENSUS_WAKE_KEYS = ("votes-scheduled", "drain-scheduled", "inbox", "gossip-loop")


class CeleryWorker:
    """A real `celery worker` process on the test database and the test Redis."""

    def __init__(self, log_dir: Path) -> None:
        self.hostname = f"test-{os.getpid()}@{settings.NODE_NAME}"
        self.process = ManagedProcess(
            name="worker",
            command=[
                str(VENV_BIN / "celery"),
                "--app",
                "settlement",
                "worker",
                "--loglevel",
                "INFO",
                "--concurrency",
                "1",
                "--hostname",
                self.hostname,
                "--without-gossip",
                "--without-mingle",
            ],
            log_path=log_dir / "worker.log",
            env=_process_env(),
        )

    def start(self) -> None:
        from settlement import health
        from settlement.celery import app

        # Tasks an earlier test queued belong to its database, which is gone; one of them (a
        # gossip tick, which becomes the node's long-running gossip loop) would also hold this
        # worker's only process for minutes. Each worker starts on an empty queue.
        app.control.purge()
        # And without what that test's processes left in Redis for this node's consensus: a
        # "votes scheduled" flag whose task was just purged (it expires in 2 s, but votes cast
        # before then wake nobody, and no beat runs here to start a loop that looks), a loop lock
        # of a killed worker, wake-ups in the inbox.
        client = health.redis_client()
        client.delete(*(f"{settings.REDIS_KEY_PREFIX}:consensus:{name}" for name in CONSENSUS_WAKE_KEYS))
        self.process.start()
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            if health.check_worker().up:
                return
            if not self.process.running():
                break
            time.sleep(0.1)
        raise RuntimeError(f"the Celery worker did not start:\n{self.process.log_tail()}")

    def stop(self) -> None:
        self.process.stop()


@pytest.fixture
def celery_worker(transactional_db: None, tmp_path: Path) -> Iterator[CeleryWorker]:
    worker = CeleryWorker(tmp_path)
    worker.start()
    yield worker
    worker.stop()


class LiveWeb:
    def __init__(self, port: int, process: ManagedProcess) -> None:
        self.port = port
        self.url = f"http://127.0.0.1:{port}"
        self.process = process


@pytest.fixture
def live_web(transactional_db: None, tmp_path: Path) -> Iterator[LiveWeb]:
    """daphne serving the node (HTTP and websockets) from the test database."""
    port = free_port()
    process = ManagedProcess(
        name="web",
        command=[
            str(VENV_BIN / "daphne"),
            "--bind",
            "127.0.0.1",
            "--port",
            str(port),
            "settlement.asgi:application",
        ],
        log_path=tmp_path / "web.log",
        env={**_process_env(), "NODE_BASE_URL": f"http://127.0.0.1:{port}"},
    )
    process.start()
    deadline = time.monotonic() + 30
    while not port_open(port):
        if time.monotonic() > deadline or not process.running():
            raise RuntimeError(f"daphne did not start:\n{process.log_tail()}")
        time.sleep(0.1)
    yield LiveWeb(port, process)
    process.kill()  # the test is over: no graceful shutdown to wait for


@pytest.fixture
def no_worker_heartbeats() -> None:
    """Forget heartbeats left by workers of earlier tests (they expire by themselves too)."""
    from settlement import health

    client = health.redis_client()
    for key in client.scan_iter(match=f"{settings.REDIS_KEY_PREFIX}:worker-heartbeat:*"):
        client.delete(key)


TEST_PASSWORD = "a-long-test-password"


@pytest.fixture
def client() -> Client:
    return VerifiedClient()


@pytest.fixture(autouse=True)
def _fresh_keystore_memory() -> Iterator[None]:
    """Each test opens the node's keys itself: no key a previous test opened stays in memory."""
    from settlement.keystore import forget_opened_keys

    forget_opened_keys()
    yield
    forget_opened_keys()


@pytest.fixture
def make_user(db: None) -> Callable[..., Any]:
    """Create a user holding the given roles (groups are made if a flush removed them)."""
    from django.contrib.auth import get_user_model
    from django.contrib.auth.models import Group

    def make(username: str, *roles: str) -> Any:
        user = get_user_model().objects.create_user(username=username, password=TEST_PASSWORD)
        for role in roles:
            group, _ = Group.objects.get_or_create(name=role)
            user.groups.add(group)
        return user

    return make
