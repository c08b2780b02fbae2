"""`make run` names a missing service and how to fix it, instead of a traceback."""

from __future__ import annotations

import socket

import pytest

from devstack import services
from devstack.__main__ import Stack


def test_a_missing_redis_server_says_how_to_install_it(monkeypatch, tmp_path):
    monkeypatch.setattr(services.shutil, "which", lambda name: None)

    with pytest.raises(
        services.ServiceError, match=r"redis-server is not installed: run `sudo apt-get install redis-server`"
    ):
        services.redis_process(tmp_path, 1)


def test_a_missing_anvil_says_how_to_install_it(monkeypatch, tmp_path):
    monkeypatch.setattr(services, "ANVIL_BINARY", tmp_path / "no-anvil")

    with pytest.raises(services.ServiceError, match=r"anvil is missing: run `npm ci`"):
        services.anvil_process(tmp_path, 1)


def test_a_missing_postgresql_says_how_to_install_it(monkeypatch):
    monkeypatch.setattr(services.glob, "glob", lambda pattern: [])

    with pytest.raises(services.ServiceError, match=r"PostgreSQL 15 or later is not installed"):
        services._postgres_bindir()


def test_a_port_held_by_another_program_is_named(tmp_path):
    with socket.socket() as squatter:
        squatter.bind(("127.0.0.1", 0))
        squatter.listen()
        port = squatter.getsockname()[1]
        stack = Stack(
            tmp_path, pg_port=services.free_port(), redis_port=port, anvil_port=services.free_port()
        )
        stack.postgres.start = lambda **kwargs: None  # only Redis's port is under test

        with pytest.raises(services.ServiceError, match=rf"port {port} is taken; set PARSEC_REDIS_PORT"):
            stack.start()
