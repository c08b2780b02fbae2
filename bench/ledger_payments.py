"""Intra-bank co-signed payments per second, end to end through the service layer into PostgreSQL,
against this machine's Ed25519 ceiling measured in the same run (issue 4).

Each payment is two entries: the sender's debit (signed for a custodial sender by the node,
verified, co-signed by the bank) and the recipient's credit (co-signed). The crypto ceiling
counts one Ed25519 verify and one sign per entry, so a payment's ceiling is
``1 / (2 * (1/verify + 1/sign))``. Goals: at least 5,000 payments/s and a ratio of at least 0.4.

It makes its own database (``<DATABASE_URL's name>_bench_ledgers``), migrates it, and drops it at
the end, so it never touches a node's data. Run under `make bench` (devstack provides PostgreSQL
and Redis): ``python -m bench.ledger_payments [--seconds 8] [--batch 1000]``.
"""

from __future__ import annotations

import argparse
import os
import random
import statistics
import sys
import time
from typing import Any
from urllib.parse import urlsplit, urlunsplit

GOAL_PAYMENTS_PER_SECOND = 5000
GOAL_RATIO = 0.4
PARTIES = 200


def _fresh_database() -> tuple[str, str]:
    """Create an empty database next to DATABASE_URL's and point Django at it."""
    import psycopg

    source = os.environ.get("DATABASE_URL")
    if not source:
        raise SystemExit("DATABASE_URL is not set: run under `make bench` (python -m devstack exec -- ...)")
    parts = urlsplit(source)
    name = f"{parts.path.lstrip('/') or 'parsec'}_bench_ledgers"
    admin = urlunsplit(parts._replace(path="/postgres"))
    with psycopg.connect(admin, autocommit=True) as connection:
        connection.execute(f'DROP DATABASE IF EXISTS "{name}"')
        connection.execute(f'CREATE DATABASE "{name}"')
    url = urlunsplit(parts._replace(path=f"/{name}"))
    os.environ["DATABASE_URL"] = url
    return admin, name


def _drop_database(admin: str, name: str) -> None:
    import psycopg
    from django.db import connections

    connections.close_all()
    with psycopg.connect(admin, autocommit=True) as connection:
        connection.execute(f'DROP DATABASE IF EXISTS "{name}"')


def _setup(parties: int) -> tuple[Any, list[str]]:
    from django.core.management import call_command

    call_command("migrate", verbosity=0)
    from ledgers import services
    from settlement import keystore
    from settlement.counterparties.models import Counterparty, CustodialKeySet
    from settlement.protocol.signing import SigningKey

    keystore.node_identity_ensure()
    eur = services.asset_create(code="EUR", decimals=2, actor="bench")
    ubis = []
    for index in range(parties):
        key = SigningKey.generate()
        counterparty = Counterparty.objects.create(
            kind="person",
            legal_name=f"Bench Party {index}",
            country="DE",
            federation_name=f"bench{index}",
            ed25519_public_key=key.public_key.hex(),
            x25519_public_key="00" * 32,
            ethereum_address="0x" + "00" * 20,
            custody="custodial",
            kyc_status="ACCEPTED",
        )
        sealed = keystore.seal_for_custody(key.seed)
        CustodialKeySet.objects.create(
            counterparty=counterparty, sealed_ed25519=sealed, sealed_x25519=sealed, sealed_ethereum=sealed
        )
        ledger = services.ledger_open(name=f"bench{index}", counterparty=counterparty, actor="bench")
        services.asset_issue(ledger=ledger, asset=eur, amount="1000000.00", reference="bench", actor="bench")
        ubis.append(ledger.ubi)
    return eur, ubis


def _requests(count: int, ubis: list[str], asset: str, rng: random.Random, prefix: str) -> list[Any]:
    from ledgers.services import PaymentRequest

    requests = []
    for index in range(count):
        sender, recipient = rng.sample(ubis, 2)
        requests.append(
            PaymentRequest(
                idempotency_key=f"{prefix}-{index}",
                sender=sender,
                recipient=recipient,
                asset=asset,
                amount=rng.randint(1, 500),
            )
        )
    return requests


def _single(ubis: list[str], asset: str, seconds: float) -> dict[str, Any]:
    from ledgers import services

    rng = random.Random(1)
    latencies = []
    started = time.perf_counter()
    count = 0
    while time.perf_counter() - started < seconds:
        (request,) = _requests(1, ubis, asset, rng, f"single-{count}")
        begin = time.perf_counter()
        services.payment_intrabank(request=request)
        latencies.append(time.perf_counter() - begin)
        count += 1
    elapsed = time.perf_counter() - started
    ordered = sorted(latencies)
    return {
        "payments": count,
        "seconds": elapsed,
        "payments_per_second": count / elapsed,
        "p50_ms": statistics.median(ordered) * 1000,
        "p99_ms": ordered[min(len(ordered) - 1, round(0.99 * (len(ordered) - 1)))] * 1000,
    }


def _batched(ubis: list[str], asset: str, seconds: float, batch: int) -> dict[str, Any]:
    from ledgers import services

    rng = random.Random(2)
    count, batches, latencies = 0, 0, []
    cpu_started, started = time.process_time(), time.perf_counter()
    while time.perf_counter() - started < seconds:
        requests = _requests(batch, ubis, asset, rng, f"batch-{batches}")
        begin = time.perf_counter()
        services.payment_intrabank_batch(requests=requests)
        latencies.append(time.perf_counter() - begin)
        count += batch
        batches += 1
    elapsed = time.perf_counter() - started
    return {
        "payments": count,
        "batches": batches,
        "batch": batch,
        "seconds": elapsed,
        "payments_per_second": count / elapsed,
        "python_cpu_share": (time.process_time() - cpu_started) / elapsed,
        "p50_ms": statistics.median(latencies) * 1000,
        "p99_ms": sorted(latencies)[min(len(latencies) - 1, round(0.99 * (len(latencies) - 1)))] * 1000,
    }


def _check_books(asset: Any) -> bool:
    from django.db.models import Sum

    from ledgers.models import Asset, Balance

    asset = Asset.objects.get(pk=asset.pk)
    total = Balance.objects.filter(asset=asset).aggregate(total=Sum("amount"))["total"]
    return bool(total == asset.issued - asset.redeemed)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--seconds", type=float, default=8.0, help="seconds per measurement (default 8)")
    parser.add_argument("--batch", type=int, default=1000, help="payments per batch (default 1000)")
    arguments = parser.parse_args(argv)

    os.environ.setdefault("NODE_KEY_PASSPHRASE", "bench-only-passphrase")
    os.environ.setdefault("SECRET_KEY", "bench-only-secret-key")
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "settlement.settings")
    admin, name = _fresh_database()
    import django

    django.setup()
    from bench.ceilings import measure_ceilings
    from bench.common import print_table, write_results

    try:
        eur, ubis = _setup(PARTIES)
        single = _single(ubis, eur.uai, min(arguments.seconds, 5.0))
        batched = _batched(ubis, eur.uai, arguments.seconds, arguments.batch)
        books_balance = _check_books(eur)
    finally:
        _drop_database(admin, name)
    ceilings = measure_ceilings(0.5)
    per_entry = 1 / ceilings["ed25519_verify"] + 1 / ceilings["ed25519_sign"]
    ceiling = 1 / (2 * per_entry)
    rows = [
        {
            "path": "one payment per transaction",
            "payments/s": single["payments_per_second"],
            "p50 ms": single["p50_ms"],
            "p99 ms": single["p99_ms"],
            "ratio to ceiling": single["payments_per_second"] / ceiling,
        },
        {
            "path": f"batch of {arguments.batch} per transaction",
            "payments/s": batched["payments_per_second"],
            "p50 ms": batched["p50_ms"],
            "p99 ms": batched["p99_ms"],
            "ratio to ceiling": batched["payments_per_second"] / ceiling,
        },
        {"path": "crypto ceiling (2 x (verify + sign))", "payments/s": ceiling},
    ]
    print_table(
        "Intra-bank co-signed payments, service layer into PostgreSQL (wall clock, this process + PostgreSQL)",
        rows,
        ["path", "payments/s", "p50 ms", "p99 ms", "ratio to ceiling"],
    )
    print(f"books balance after the run (sum of balances == issued - redeemed): {books_balance}")
    best = batched["payments_per_second"]
    path = write_results(
        "ledger_payments",
        {
            "intrabank_single": single,
            "intrabank_batch": batched,
            "crypto_ceiling_payments_per_second": ceiling,
            "ceilings": ceilings,
            "ratio_to_ceiling": best / ceiling,
            "goal_payments_per_second": GOAL_PAYMENTS_PER_SECOND,
            "goal_ratio": GOAL_RATIO,
            "meets_goal_rate": best >= GOAL_PAYMENTS_PER_SECOND,
            "meets_goal_ratio": best / ceiling >= GOAL_RATIO,
            "books_balance": books_balance,
            "crossbank": "not measured: the cross-bank flow is not built yet",
        },
    )
    print(f"wrote {path}")
    return 0 if books_balance else 1


if __name__ == "__main__":
    sys.exit(main())
