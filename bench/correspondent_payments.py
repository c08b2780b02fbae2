"""Payments through a correspondent bank (seed 003 Pic. 5/6) against direct payments between
banks, measured in the same run on the same nodes.

This process is bank A; bench-b and bench-c are daphnes on their own databases. A is a peer of B
only; B of A and C; C of B. Direct: A -> B (a recipient at B). Through the correspondent:
A -> B -> C (a recipient at C), with the route named (``via``) so the figure is the payment, not
the route probe. One payment per call, ``--threads`` concurrent senders. The direct figure is the
peer this one is read against: a correspondent payment costs one more hop (B asks C before it
answers A), one more leg appended, and one more forward of the final proof (B -> C).

It makes its own databases (``<DATABASE_URL's name>_bench_corr_a/_b/_c``) and drops them at the
end. Run under devstack: ``python -m devstack exec -- python -m bench.correspondent_payments``.
"""

from __future__ import annotations

import argparse
import os
import random
import statistics
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit, urlunsplit

REPO = Path(__file__).resolve().parent.parent
SENDERS = 20
RECIPIENTS = 20

NODE_SETUP = """
from ledgers import services
from settlement import keystore
from settlement.counterparties.models import Counterparty
from settlement.protocol.signing import SigningKey
keystore.node_identity_ensure()
services.asset_create(code="EUR", decimals=2, actor="bench")
for index in range(RECIPIENTS):
    key = SigningKey.generate()
    party = Counterparty.objects.create(kind="person", legal_name=f"Recipient {index}", country="DE",
        federation_name=f"recipient{index}", ed25519_public_key=key.public_key.hex(), x25519_public_key="00" * 32,
        ethereum_address="0x" + "00" * 20, custody="self", kyc_status="ACCEPTED")
    services.ledger_open(name=f"recipient{index}", counterparty=party, actor="bench")
"""

NODE_PEERS = """
from django.conf import settings
from settlement.identity import fetch_identity_document, peer_add
from settlement.models import PeerCreditLimit
for url in URLS:
    peer = peer_add(base_url=url, document=fetch_identity_document(url), actor="bench")
    PeerCreditLimit.objects.create(peer=peer, asset=settings.NODE_DOMAIN + "/EUR", limit=10**15)
"""


def _database_urls() -> tuple[str, dict[str, str]]:
    source = os.environ.get("DATABASE_URL")
    if not source:
        raise SystemExit("DATABASE_URL is not set: run under devstack (python -m devstack exec -- ...)")
    parts = urlsplit(source)
    base = f"{parts.path.lstrip('/') or 'parsec'}_bench_corr"
    admin = urlunsplit(parts._replace(path="/postgres"))
    return admin, {name: urlunsplit(parts._replace(path=f"/{base}_{name}")) for name in ("a", "b", "c")}


def _database(url: str) -> str:
    return urlsplit(url).path.lstrip("/")


def _sql(admin: str, *statements: str) -> None:
    import psycopg

    with psycopg.connect(admin, autocommit=True) as connection:
        for statement in statements:
            connection.execute(statement)


class Node:
    """bench-b or bench-c: a daphne on its own database."""

    def __init__(self, name: str, database_url: str, log_dir: Path) -> None:
        from devstack.services import ManagedProcess, free_port

        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.domain = f"{name}.test"
        self.env = {
            "DATABASE_URL": database_url,
            "NODE_NAME": name,
            "NODE_DOMAIN": self.domain,
            "NODE_BASE_URL": self.url,
            "LOG_LEVEL": "WARNING",
        }
        self.process = ManagedProcess(
            name=name,
            command=[
                str(Path(sys.executable).parent / "daphne"),
                "--bind",
                "127.0.0.1",
                "--port",
                str(self.port),
                "settlement.asgi:application",
            ],
            log_path=log_dir / f"{name}.log",
            env=self.env,
        )

    def shell(self, script: str) -> None:
        subprocess.run(
            [sys.executable, "manage.py", "shell", "--verbosity", "0", "-c", script],
            cwd=REPO,
            env={**os.environ, **self.env},
            check=True,
        )

    def wait_until_up(self) -> None:
        from devstack.services import port_open

        deadline = time.monotonic() + 60
        while not port_open(self.port):
            if time.monotonic() > deadline or not self.process.running():
                raise SystemExit(f"{self.domain} did not start:\n{self.process.log_tail()}")
            time.sleep(0.1)


def _senders() -> list[str]:
    # The same custodial, funded, ACCEPTED parties as bench/ledger_payments.py makes.
    from bench.ledger_payments import _setup_parties

    return _setup_parties(SENDERS, prefix="sender")[1]


def _run(
    ubis: list[str], recipient_bank: str, via: str | None, seconds: float, threads: int
) -> dict[str, Any]:
    from django.conf import settings
    from django.db import connection

    from ledgers import correspondent_services
    from ledgers.interbank_services import InterbankRequest

    latencies: list[float] = []
    failures: list[str] = []
    lock = threading.Lock()
    stop_at = time.perf_counter() + seconds

    def sender(index: int) -> None:
        rng = random.Random(index)
        number = 0
        try:
            while time.perf_counter() < stop_at:
                request = InterbankRequest(
                    reference=f"{recipient_bank}-{index}-{number}",
                    sender=rng.choice(ubis),
                    recipient=f"ubi:{recipient_bank}:recipient{rng.randrange(RECIPIENTS)}",
                    asset=f"{settings.NODE_DOMAIN}/EUR",
                    recipient_asset=f"{recipient_bank}/EUR",
                    amount=rng.randint(1, 500),
                )
                begin = time.perf_counter()
                try:
                    correspondent_services.payment_send(request=request, via=via)
                except Exception as error:
                    with lock:
                        failures.append(f"{type(error).__name__}: {error}"[:200])
                else:
                    with lock:
                        latencies.append(time.perf_counter() - begin)
                number += 1
        finally:
            connection.close()

    started = time.perf_counter()
    workers = [threading.Thread(target=sender, args=(index,)) for index in range(threads)]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join()
    elapsed = time.perf_counter() - started
    ordered = sorted(latencies)
    return {
        "payments": len(ordered),
        "failed_calls": len(failures),
        "failures": sorted(set(failures))[:5],
        "seconds": elapsed,
        "payments_per_second": len(ordered) / elapsed,
        "p50_ms": statistics.median(ordered) * 1000 if ordered else 0.0,
        "p99_ms": ordered[min(len(ordered) - 1, round(0.99 * (len(ordered) - 1)))] * 1000 if ordered else 0.0,
    }


def _books_balance(url: str, issuer: str) -> bool:
    import psycopg

    with psycopg.connect(url) as connection:
        rows = connection.execute(
            "SELECT (a.issued - a.redeemed)::bigint, coalesce(sum(b.amount), 0)::bigint FROM ledgers_asset a "
            "LEFT JOIN ledgers_balance b ON b.asset_id = a.id WHERE a.issuer = %s GROUP BY a.id",
            (issuer,),
        ).fetchall()
    return bool(rows) and all(outstanding == total for outstanding, total in rows)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--seconds", type=float, default=4.0, help="seconds per measurement (default 4)")
    parser.add_argument("--threads", type=int, default=4, help="concurrent senders (default 4)")
    arguments = parser.parse_args(argv)

    os.environ.setdefault("NODE_KEY_PASSPHRASE", "bench-only-passphrase")
    os.environ.setdefault("SECRET_KEY", "bench-only-secret-key")
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "settlement.settings")
    admin, urls = _database_urls()
    os.environ.update(
        {
            "DATABASE_URL": urls["a"],
            "NODE_NAME": "bench-a",
            "NODE_DOMAIN": "bench-a.test",
            "LOG_LEVEL": "WARNING",
        }
    )
    drop = [f'DROP DATABASE IF EXISTS "{_database(url)}" WITH (FORCE)' for url in urls.values()]
    _sql(admin, *drop, f'CREATE DATABASE "{_database(urls["a"])}"')
    import django

    django.setup()
    from django.core.management import call_command
    from django.db import connections

    from bench.ceilings import measure_ceilings
    from bench.common import print_table, write_results
    from settlement.identity import fetch_identity_document, peer_add

    log_dir = Path(os.environ.get("PARSEC_VAR_DIR", str(REPO / "var")))
    nodes: list[Node] = []
    try:
        call_command("migrate", verbosity=0)
        connections.close_all()
        template = _database(urls["a"])
        _sql(
            admin,
            *(f'CREATE DATABASE "{_database(urls[name])}" TEMPLATE "{template}"' for name in ("b", "c")),
        )
        b, c = Node("bench-b", urls["b"], log_dir), Node("bench-c", urls["c"], log_dir)
        nodes = [b, c]
        for node in nodes:
            node.shell(NODE_SETUP.replace("RECIPIENTS", str(RECIPIENTS)))
            node.process.start()
        ubis = _senders()
        for node in nodes:
            node.wait_until_up()
        from django.conf import settings

        # B knows A (A's node API is not served here: in these runs B never calls A) and C.
        b.shell(
            "from settlement.models import Peer, PeerCreditLimit, PeerKey\n"
            "from django.utils import timezone\n"
            f"peer = Peer.objects.create(name={settings.NODE_NAME!r}, domain={settings.NODE_DOMAIN!r}, "
            "base_url='http://127.0.0.1:9')\n"
            f"PeerKey.objects.create(peer=peer, key_id={_key_id()!r}, public={_public()!r}, "
            "valid_from=timezone.now() - timezone.timedelta(days=1))\n"
            "PeerCreditLimit.objects.create(peer=peer, asset='bench-b.test/EUR', limit=10**15)\n"
            + NODE_PEERS.replace("URLS", repr([c.url]))
        )
        c.shell(NODE_PEERS.replace("URLS", repr([b.url])))
        peer_add(base_url=b.url, document=fetch_identity_document(b.url), actor="bench")
        direct = _run(ubis, b.domain, None, arguments.seconds, arguments.threads)
        through = _run(ubis, c.domain, b.domain, arguments.seconds, arguments.threads)
        books = {
            "bench-a": _books_balance(urls["a"], settings.NODE_DOMAIN),
            "bench-b": _books_balance(urls["b"], b.domain),
            "bench-c": _books_balance(urls["c"], c.domain),
        }
    finally:
        for node in nodes:
            node.process.stop()
        connections.close_all()
        _sql(admin, *drop)
    ceilings = measure_ceilings(0.5)
    load = os.getloadavg()[0]
    rows = [
        {"path": f"direct A->B, one per call, {arguments.threads} senders", **_row(direct)},
        {"path": f"through B: A->B->C, one per call, {arguments.threads} senders", **_row(through)},
    ]
    print_table(
        f"Payments between banks, direct and through a correspondent (wall clock; load average {load:.1f} "
        f"on {os.cpu_count()} cores)",
        rows,
        ["path", "payments/s", "p50 ms", "p99 ms"],
    )
    print(f"ratio of the correspondent path to the direct one: {_ratio(through, direct):.2f}")
    print(f"books balance at every bank after the run: {books}")
    for name, result in (("direct", direct), ("through", through)):
        if result["failed_calls"]:
            print(f"{name}: {result['failed_calls']} failed calls ({result['failures']})")
    path = write_results(
        "correspondent_payments",
        {
            "direct": direct,
            "through_correspondent": through,
            "ceilings": ceilings,
            "load_average_1m": load,
            "books_balance": books,
        },
    )
    print(f"wrote {path}")
    return 0 if all(books.values()) and not direct["failed_calls"] and not through["failed_calls"] else 1


def _key_id() -> str:
    from settlement.keystore import node_signer

    return str(node_signer().key_id)


def _public() -> str:
    from settlement.keystore import node_signer

    return node_signer().public_key.hex()


def _ratio(through: dict[str, Any], direct: dict[str, Any]) -> float:
    return (
        through["payments_per_second"] / direct["payments_per_second"]
        if direct["payments_per_second"]
        else 0.0
    )


def _row(result: dict[str, Any]) -> dict[str, Any]:
    return {
        "payments/s": result["payments_per_second"],
        "p50 ms": result["p50_ms"],
        "p99 ms": result["p99_ms"],
    }


if __name__ == "__main__":
    sys.exit(main())
