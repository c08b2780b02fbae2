"""A second Parsec node for tests between two nodes: its own PostgreSQL database, its own keys,
its own daphne, on the same Redis and anvil. The node under test (the pytest process, served
by ``live_web``) and this one peer each other through their published identities. The test runs
the peer's management commands and shell snippets in the peer's own Django (``NodeShell``)."""

from __future__ import annotations

import json
import secrets
import sys
import time
from pathlib import Path

from devstack.services import ManagedProcess, free_port, port_open
from tests.node_shell import NodeShell

REPO = Path(__file__).resolve().parents[2]
PYTHON = sys.executable


class PeerNode:
    """A peer node; ``start=False`` leaves the keys and daphne to :func:`peer_nodes_start`."""

    def __init__(self, tmp_path: Path, name: str | None = None, *, start: bool = True) -> None:
        from django.db import connection

        from tests.support import database_url_for_processes, migrated_template

        self.name = name or "bank-p" + secrets.token_hex(3)
        self.database = f"{connection.settings_dict['NAME']}_{self.name.replace('-', '_')}"
        base_url = database_url_for_processes().rsplit("/", 1)[0]
        with connection.cursor() as cursor:
            cursor.execute(f'CREATE DATABASE "{self.database}" TEMPLATE "{migrated_template()}"')
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.env = {
            "DATABASE_URL": f"{base_url}/{self.database}",
            "NODE_NAME": self.name,
            "NODE_BASE_URL": self.url,
        }
        self.node_shell = NodeShell(self.env, tmp_path / f"{self.name}-shell.log")
        self.web = ManagedProcess(
            name=self.name,
            command=[
                str(Path(PYTHON).parent / "daphne"),
                "--bind",
                "127.0.0.1",
                "--port",
                str(self.port),
                "settlement.asgi:application",
            ],
            log_path=tmp_path / f"{self.name}.log",
            env=self.env,
        )
        if start:
            try:
                self.keys_make()
                self.web.start()
                self.wait_until_up()
            except BaseException:
                self.stop()
                raise

    def keys_make(self) -> None:
        """The node's keys, before its daphne starts (which opens them, as in production)."""
        self.shell("from settlement.keystore import node_identity_ensure; node_identity_ensure()")

    def wait_until_up(self) -> None:
        deadline = time.monotonic() + 30
        while not port_open(self.port):
            if time.monotonic() > deadline or not self.web.running():
                raise RuntimeError(f"the peer's daphne did not start:\n{self.web.log_tail()}")
            time.sleep(0.1)

    def manage(self, *arguments: str) -> str:
        try:
            return self.node_shell.manage(*arguments)
        except RuntimeError as error:
            raise RuntimeError(f"on {self.name}: {error}") from None

    def shell(self, code: str) -> str:
        return self.manage("shell", "-c", code)

    def query(self, code: str) -> object:
        """Run ``code`` (which sets ``result``) in the peer's Django and return ``result``."""
        output = self.shell(code + "\nimport json; print('RESULT=' + json.dumps(result))")
        line = next(line for line in output.splitlines() if line.startswith("RESULT="))
        return json.loads(line[len("RESULT=") :])

    def stop(self) -> None:
        from django.db import connection

        self.web.kill()  # the test is over: no graceful shutdown to wait for
        self.node_shell.stop()
        with connection.cursor() as cursor:
            cursor.execute(f'DROP DATABASE IF EXISTS "{self.database}" WITH (FORCE)')


def peer_nodes_start(tmp_path: Path, *names: str | None) -> list[PeerNode]:
    """Several peer nodes, their Djangos and daphnes loading side by side (one core each)."""
    nodes: list[PeerNode] = []
    try:
        for name in names:
            nodes.append(PeerNode(tmp_path, name, start=False))
        for node in nodes:
            node.keys_make()
        for node in nodes:
            node.web.start()
        for node in nodes:
            node.wait_until_up()
    except BaseException:
        for node in nodes:
            node.stop()
        raise
    return nodes
