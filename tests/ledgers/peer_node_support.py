"""More banks for multi-node tests: each is a daphne on its own copy of the freshly migrated test
database, with its own name, domain and keys (the two-node test's second bank, made reusable).

Copy the databases before `live_web` starts (a template database must have no other sessions),
then start the nodes; they meet through `peer_add` and talk only over the signed transport.
"""

from __future__ import annotations

import sys
import time
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from pathlib import Path
from typing import Any

import psycopg
from django.conf import settings
from django.db import connections

from devstack.services import ManagedProcess, free_port, port_open
from tests.node_shell import NodeShell
from tests.support import copy_database, database_url_for_processes

REPO = Path(__file__).resolve().parents[2]

# A node's own asset, and accepted or not accepted (KYC) parties with ledgers of their own.
NODE_SETUP = """
from ledgers import services
from settlement import keystore
from settlement.counterparties.models import Counterparty
from settlement.protocol.signing import SigningKey
keystore.node_identity_ensure()
services.asset_create(code="EUR", decimals=2, actor="test")
for name, status in PARTIES:
    key = SigningKey.generate()
    party = Counterparty.objects.create(kind="person", legal_name=name, country="DE", federation_name=name,
        ed25519_public_key=key.public_key.hex(), x25519_public_key="00" * 32, ethereum_address="0x" + "00" * 20,
        custody="self", kyc_status="ACCEPTED")
    services.ledger_open(name=name, counterparty=party, actor="test")
    Counterparty.objects.filter(pk=party.pk).update(kyc_status=status)
"""

# Meet the banks at URLS; grant each the credit limit LIMITS names (minor units of our EUR).
NODE_PEERS = """
from django.conf import settings
from settlement.identity import fetch_identity_document, peer_add
from settlement.models import PeerCreditLimit
for url in URLS:
    peer = peer_add(base_url=url, document=fetch_identity_document(url), actor="test")
    if peer.domain in LIMITS:
        PeerCreditLimit.objects.create(peer=peer, asset=settings.NODE_DOMAIN + "/EUR", limit=LIMITS[peer.domain])
"""


class PeerNode:
    def __init__(
        self, name: str, port: int, database_url: str, process: ManagedProcess, node_shell: NodeShell
    ) -> None:
        self.name, self.domain = name, f"{name}.test"
        self.port, self.url = port, f"http://127.0.0.1:{port}"
        self.database_url, self.process, self.node_shell = database_url, process, node_shell
        self.env = {
            "DATABASE_URL": database_url,
            "NODE_NAME": name,
            "NODE_DOMAIN": self.domain,
            "NODE_BASE_URL": self.url,
        }

    def wait_until_up(self) -> None:
        deadline = time.monotonic() + 30
        while not port_open(self.port):
            if time.monotonic() > deadline or not self.process.running():
                raise RuntimeError(f"{self.name} did not start:\n{self.process.log_tail()}")
            time.sleep(0.1)

    def manage(self, *args: str) -> str:
        return self.node_shell.manage(*args)

    def setup(self, *, parties: list[tuple[str, str]]) -> None:
        self.manage("shell", "-c", f"PARTIES = {parties!r}\n" + NODE_SETUP)

    def meet(self, urls: list[str], limits: dict[str, int] | None = None) -> None:
        self.manage("shell", "-c", f"URLS = {urls!r}\nLIMITS = {limits or {}!r}\n" + NODE_PEERS)

    def query(self, sql: str, *params: Any) -> list[tuple[Any, ...]]:
        with psycopg.connect(self.database_url) as connection:
            return connection.execute(sql, params).fetchall()

    def balance(self, ubi: str) -> int:
        rows = self.query(
            "SELECT b.amount FROM ledgers_balance b JOIN ledgers_ledger l ON l.id = b.ledger_id WHERE l.ubi = %s",
            ubi,
        )
        return rows[0][0] if rows else 0

    def holds(self) -> int:
        return self.query("SELECT count(*) FROM ledgers_hold")[0][0]


@contextmanager
def peer_nodes(names: list[str], tmp_path: Path) -> Iterator[dict[str, PeerNode]]:
    """Start one daphne per name, each on its own copy of the test database; drop them after."""
    source = settings.DATABASES["default"]["NAME"]
    admin = database_url_for_processes().rsplit("/", 1)[0] + "/postgres"
    connections.close_all()
    copies = {name: f"{source}_{name.replace('-', '_')}" for name in names}
    with psycopg.connect(admin, autocommit=True) as connection:
        for copy in copies.values():
            connection.execute(f'DROP DATABASE IF EXISTS "{copy}"')
            copy_database(connection, name=copy, source=source)
    nodes: dict[str, PeerNode] = {}
    with ExitStack() as stack:
        try:
            for name, copy in copies.items():
                port = free_port()
                database_url = database_url_for_processes().rsplit("/", 1)[0] + f"/{copy}"
                env = {
                    "DATABASE_URL": database_url,
                    "NODE_NAME": name,
                    "NODE_DOMAIN": f"{name}.test",
                    "NODE_BASE_URL": f"http://127.0.0.1:{port}",
                }
                process = ManagedProcess(
                    name=name,
                    command=[
                        str(Path(sys.executable).parent / "daphne"),
                        "--bind",
                        "127.0.0.1",
                        "--port",
                        str(port),
                        "settlement.asgi:application",
                    ],
                    log_path=tmp_path / f"{name}.log",
                    env=env,
                )
                # daphne starts while the node's data is prepared; keys exist before any request.
                process.start()
                stack.callback(process.kill)  # when the test is over: no graceful shutdown
                # Its management commands run in one Django of its own (tests/node_shell.py).
                node_shell = NodeShell(env, tmp_path / f"{name}-shell.log")
                stack.callback(node_shell.stop)
                nodes[name] = PeerNode(name, port, database_url, process, node_shell)
            yield nodes
        finally:
            stack.close()
            with psycopg.connect(admin, autocommit=True) as connection:
                for copy in copies.values():
                    connection.execute(f'DROP DATABASE IF EXISTS "{copy}" WITH (FORCE)')


def supply_mismatches(query: Any, issuer: str) -> list[tuple[str, int, int]]:
    """Per asset ``issuer`` issues: (asset, issued - redeemed, sum of balances) where they differ."""
    rows = query(
        "SELECT a.uai, (a.issued - a.redeemed)::bigint, coalesce(sum(b.amount), 0)::bigint "
        "FROM ledgers_asset a LEFT JOIN ledgers_balance b ON b.asset_id = a.id "
        "WHERE a.issuer = %s GROUP BY a.id, a.uai, a.issued, a.redeemed",
        issuer,
    )
    return [(uai, outstanding, total) for uai, outstanding, total in rows if outstanding != total]
