"""A second Parsec node for tests between two nodes: its own PostgreSQL database, its own keys,
its own daphne, on the same Redis and anvil. The node under test (the pytest process, served
by ``live_web``) and this one peer each other through their published identities."""

from __future__ import annotations

import json
import secrets
import subprocess
import sys
import time
from pathlib import Path

from devstack.services import ManagedProcess, free_port, port_open

REPO = Path(__file__).resolve().parents[2]
PYTHON = sys.executable


_templates: set[str] = set()


def _migrated_template(base_url: str) -> str:
    """An empty, migrated database that every peer node of this test session copies (0.5 s)
    instead of migrating its own (4 s). Nobody connects to it after it is made, which is what
    ``CREATE DATABASE ... TEMPLATE`` needs; it goes with the session's throw-away cluster."""
    from django.db import connection

    template = f"{connection.settings_dict['NAME']}_peer_template"
    if template not in _templates:
        with connection.cursor() as cursor:
            cursor.execute(f'DROP DATABASE IF EXISTS "{template}"')
            cursor.execute(f'CREATE DATABASE "{template}"')
        _run_manage({"DATABASE_URL": f"{base_url}/{template}"}, "migrate", "--noinput", "-v", "0")
        _templates.add(template)
    return template


def _run_manage(env: dict[str, str], *arguments: str) -> str:
    import os

    done = subprocess.run(
        [PYTHON, "manage.py", *arguments],
        cwd=REPO,
        env={**os.environ, **env},
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    if done.returncode != 0:
        raise RuntimeError(f"manage.py {' '.join(arguments)} failed:\n{done.stderr[-3000:]}")
    return done.stdout


class PeerNode:
    def __init__(self, tmp_path: Path, name: str | None = None) -> None:
        from django.db import connection

        from tests.support import database_url_for_processes

        self.name = name or "bank-p" + secrets.token_hex(3)
        self.database = f"{connection.settings_dict['NAME']}_{self.name.replace('-', '_')}"
        base_url = database_url_for_processes().rsplit("/", 1)[0]
        template = _migrated_template(base_url)
        with connection.cursor() as cursor:
            cursor.execute(f'CREATE DATABASE "{self.database}" TEMPLATE "{template}"')
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.env = {
            "DATABASE_URL": f"{base_url}/{self.database}",
            "NODE_NAME": self.name,
            "NODE_BASE_URL": self.url,
        }
        self.shell("from settlement.keystore import node_identity_ensure; node_identity_ensure()")
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
        self.web.start()
        deadline = time.monotonic() + 30
        while not port_open(self.port):
            if time.monotonic() > deadline or not self.web.running():
                raise RuntimeError(f"the peer's daphne did not start:\n{self.web.log_tail()}")
            time.sleep(0.1)

    def manage(self, *arguments: str) -> str:
        try:
            return _run_manage(self.env, *arguments)
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

        self.web.stop()
        with connection.cursor() as cursor:
            cursor.execute(f'DROP DATABASE IF EXISTS "{self.database}" WITH (FORCE)')
