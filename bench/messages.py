"""Messages accepted and built into blocks per second, with batching, against this machine's Ed25519
verify ceiling measured in the same run (issue 7; seed 002).

Clients sign their messages themselves (self-custody senders, plain bodies, one recipient each,
all counterparties of this node); the signing is not timed. Two phases, through the services
into PostgreSQL:

* accept: ``message_send_batch`` per batch: parse and verify every sender signature, check
  recipients, append one co-signed ``message`` entry per message to its sender's ledger, store
  the message and its delivery, vote each entry's commitment (a ``PendingObservation``), one
  transaction per batch;
* block: ``consensus.services.votes_apply`` until every one of those observations is agreed:
  this node's validator (alone, as the block builder) orders them into blocks with RFC 9162
  Merkle roots and signs them, and the shell stores the blocks and their leaves.

The figure is messages / (accept time + block time), wall clock. The goal is 20,000/s; one
Python process cannot verify 20,000 Ed25519 signatures a second on this machine, which is why
the verify ceiling is printed next to it (see docs/messaging.md for how it scales out).

It makes its own database (``<DATABASE_URL's name>_bench_messages``), migrates it, and drops it
at the end. Run under `make bench`: ``python -m bench.messages [--messages 20000] [--batch 1000]``.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
import uuid
from typing import Any
from urllib.parse import urlsplit, urlunsplit

GOAL_MESSAGES_PER_SECOND = 20_000
PARTIES = 200


def _urls() -> tuple[str, str]:
    source = os.environ.get("DATABASE_URL")
    if not source:
        raise SystemExit("DATABASE_URL is not set: run under `make bench` (python -m devstack exec -- ...)")
    parts = urlsplit(source)
    name = f"{parts.path.lstrip('/') or 'parsec'}_bench_messages"
    return urlunsplit(parts._replace(path="/postgres")), urlunsplit(parts._replace(path=f"/{name}"))


def _recreate(admin: str, url: str, *, create: bool = True) -> None:
    import psycopg

    name = urlsplit(url).path.lstrip("/")
    with psycopg.connect(admin, autocommit=True) as connection:
        connection.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        if create:
            connection.execute(f'CREATE DATABASE "{name}"')


def _parties(count: int) -> list[Any]:
    from ledgers import services as ledger_services
    from settlement import keystore
    from settlement.counterparties.models import Counterparty
    from settlement.protocol.keys import X25519KeyPair
    from settlement.protocol.signing import SigningKey

    keystore.node_identity_ensure()
    parties = []
    for index in range(count):
        key, box = SigningKey.generate(), X25519KeyPair.generate()
        counterparty = Counterparty.objects.create(
            kind="person",
            legal_name=f"Bench Party {index}",
            country="DE",
            federation_name=f"bench{index}",
            ed25519_public_key=key.public_key.hex(),
            x25519_public_key=box.public_key.hex(),
            ethereum_address="0x" + "00" * 20,
            custody="self",
            kyc_status="ACCEPTED",
        )
        ledger_services.ledger_open(name=f"bench{index}", counterparty=counterparty, actor="bench")
        parties.append((counterparty.federation_address, key))
    return parties


def _signed_batches(
    parties: list[Any], messages: int, batch: int, *, senders: list[Any] | None = None, seed: int = 7
) -> list[list[Any]]:
    """What clients send: signed envelopes (made outside the timed part)."""
    import random

    from messaging.protocol import encode_message, make_envelope, plain_body, sign_message
    from messaging.services import SignedRequest

    rng = random.Random(seed)
    now = int(time.time() * 1000)
    requests = []
    for index in range(messages):
        sender, key = rng.choice(senders or parties)
        recipient, _ = rng.choice([party for party in parties if party[0] != sender])
        envelope = make_envelope(
            message_id=uuid.UUID(int=rng.getrandbits(128)).hex,
            kind="settlement-instruction",
            sender=sender,
            sender_key=key.public_key,
            recipients=[recipient],
            time=now + index,
            body=plain_body(f"deliver {rng.randint(1, 10_000)} MEGA against {rng.randint(1, 10**6)} EUR"),
        )
        requests.append(SignedRequest(message=sign_message(encode_message(envelope), key=key).to_json()))
    return [requests[start : start + batch] for start in range(0, len(requests), batch)]


def _accept(batches: list[list[Any]]) -> dict[str, Any]:
    from messaging import services

    latencies = []
    started_wall, started_cpu = time.perf_counter(), time.process_time()
    for batch in batches:
        began = time.perf_counter()
        services.message_send_batch(requests=batch, actor="bench")
        latencies.append(time.perf_counter() - began)
    wall, cpu = time.perf_counter() - started_wall, time.process_time() - started_cpu
    count = sum(len(batch) for batch in batches)
    latencies.sort()
    return {
        "messages": count,
        "seconds": wall,
        "cpu_seconds": cpu,
        "per_second": count / wall,
        "batch_p50_ms": latencies[len(latencies) // 2] * 1000,
    }


def _accept_in_processes(parties: list[Any], messages: int, batch: int, processes: int) -> dict[str, Any]:
    """The same accept path in ``processes`` processes at once, each for its own senders (as
    separate web or worker processes would be): how accepting scales with cores."""
    import json
    import subprocess
    import tempfile

    work = []
    for index in range(processes):
        senders = parties[index::processes]
        batches = _signed_batches(parties, messages // processes, batch, senders=senders, seed=100 + index)
        handle = tempfile.NamedTemporaryFile("w", suffix=".json", delete=False)  # noqa: SIM115 - closed below
        json.dump([[request.message for request in chunk] for chunk in batches], handle)
        handle.close()
        work.append(handle.name)
    started = time.perf_counter()
    children = [
        subprocess.Popen(
            [sys.executable, "-m", "bench.messages", "--child", path], stdout=subprocess.PIPE, text=True
        )
        for path in work
    ]
    results = [json.loads(child.communicate()[0].strip().splitlines()[-1]) for child in children]
    wall = time.perf_counter() - started
    for path in work:
        os.unlink(path)
    if any(child.returncode for child in children):
        raise SystemExit("a child process failed")
    count = sum(result["messages"] for result in results)
    return {
        "messages": count,
        "seconds": wall,
        "cpu_seconds": sum(result["cpu_seconds"] for result in results),
        "per_second": count / wall,
        "processes": processes,
    }


def _child(path: str) -> None:
    import json

    from messaging.services import SignedRequest

    with open(path) as handle:
        batches = [[SignedRequest(message=item) for item in chunk] for chunk in json.load(handle)]
    result = _accept(batches)
    print(json.dumps({"messages": result["messages"], "cpu_seconds": result["cpu_seconds"]}))


def _build_blocks(expected: int) -> dict[str, Any]:
    from consensus import services as consensus_services
    from consensus.models import Block, ObservationStatus, PendingObservation

    before = PendingObservation.objects.filter(status=ObservationStatus.AGREED).count()
    blocks_before = Block.objects.count()
    started_wall, started_cpu = time.perf_counter(), time.process_time()
    steps = 0
    while PendingObservation.objects.exclude(status=ObservationStatus.AGREED).exists():
        consensus_services.votes_apply()
        steps += 1
        if steps > 10_000:
            raise SystemExit("block building made no progress")
    wall, cpu = time.perf_counter() - started_wall, time.process_time() - started_cpu
    agreed = PendingObservation.objects.filter(status=ObservationStatus.AGREED).count()
    if agreed != expected:
        raise SystemExit(f"{agreed} observations agreed, {expected} expected")
    return {
        "observations": agreed - before,
        "blocks": Block.objects.count() - blocks_before,
        "seconds": wall,
        "cpu_seconds": cpu,
        "per_second": (agreed - before) / wall,
        "steps": steps,
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--messages", type=int, default=20_000, help="messages in all (default 20,000)")
    parser.add_argument("--batch", type=int, default=1000, help="messages per accepted batch (default 1,000)")
    parser.add_argument("--processes", type=int, default=2, help="processes accepting at once (default 2)")
    parser.add_argument("--child", help=argparse.SUPPRESS)
    arguments = parser.parse_args(argv)

    os.environ.setdefault("NODE_KEY_PASSPHRASE", "bench-only-passphrase")
    os.environ.setdefault("SECRET_KEY", "bench-only-secret-key")
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "settlement.settings")
    if arguments.child:
        import django

        django.setup()
        _child(arguments.child)
        return 0
    admin, url = _urls()
    os.environ.update(
        {
            "DATABASE_URL": url,
            "NODE_NAME": "bench-m",
            "NODE_DOMAIN": "bench-m.test",
            "CONSENSUS_VALIDATORS": "bench-m",
            "LOG_LEVEL": "WARNING",
        }
    )
    _recreate(admin, url)
    import django

    django.setup()
    from django.core.management import call_command
    from django.db import connections

    from bench.ceilings import measure_ceilings
    from bench.common import machine_info, print_table, write_results
    from consensus import services as consensus_services
    from messaging.models import Delivery, Message

    try:
        call_command("migrate", verbosity=0)
        parties = _parties(PARTIES)
        consensus_services.consensus_state_ensure(validators=["bench-m"])
        batches = _signed_batches(parties, arguments.messages, arguments.batch)
        accept = _accept(batches)
        blocks = _build_blocks(accept["messages"])
        connections.close_all()
        parallel = _accept_in_processes(parties, arguments.messages, arguments.batch, arguments.processes)
        parallel_blocks = _build_blocks(accept["messages"] + parallel["messages"])
        stored = Message.objects.count(), Delivery.objects.filter(status="delivered").count()
    finally:
        connections.close_all()
        _recreate(admin, url, create=False)
    ceilings = measure_ceilings(0.5)
    verify_ceiling = ceilings["ed25519_verify"]
    end_to_end = accept["messages"] / (accept["seconds"] + blocks["seconds"])
    parallel_end_to_end = parallel["messages"] / (parallel["seconds"] + parallel_blocks["seconds"])
    load = os.getloadavg()[0]
    rows = [
        {
            "phase": f"accept (verify, record, store, vote), batches of {arguments.batch}",
            "messages/s": accept["per_second"],
            "CPU s": accept["cpu_seconds"],
            "wall s": accept["seconds"],
        },
        {
            "phase": f"block building ({blocks['blocks']} blocks)",
            "messages/s": blocks["per_second"],
            "CPU s": blocks["cpu_seconds"],
            "wall s": blocks["seconds"],
        },
        {"phase": "accepted and built into blocks", "messages/s": end_to_end},
        {
            "phase": f"accept in {parallel['processes']} processes at once",
            "messages/s": parallel["per_second"],
            "CPU s": parallel["cpu_seconds"],
            "wall s": parallel["seconds"],
        },
        {
            "phase": f"  then block building ({parallel_blocks['blocks']} blocks)",
            "messages/s": parallel_blocks["per_second"],
            "CPU s": parallel_blocks["cpu_seconds"],
            "wall s": parallel_blocks["seconds"],
        },
        {
            "phase": f"  accepted and built, {parallel['processes']} processes",
            "messages/s": parallel_end_to_end,
        },
        {"phase": "Ed25519 verify ceiling, one core (same run)", "messages/s": verify_ceiling},
    ]
    print_table(
        f"{accept['messages']} messages, one process (wall clock; load average {load:.1f} on {os.cpu_count()} cores)",
        rows,
        ["phase", "messages/s", "CPU s", "wall s"],
    )
    best = max(end_to_end, parallel_end_to_end)
    print(
        f"goal {GOAL_MESSAGES_PER_SECOND}/s: {'met' if best >= GOAL_MESSAGES_PER_SECOND else 'NOT met'}; "
        f"end to end = {end_to_end / verify_ceiling:.2f} of the verify ceiling; "
        f"stored {stored[0]} messages, {stored[1]} deliveries"
    )
    path = write_results(
        "messages",
        {
            "accept": accept,
            "blocks": blocks,
            "end_to_end_per_second": end_to_end,
            "accept_parallel": parallel,
            "blocks_after_parallel": parallel_blocks,
            "end_to_end_parallel_per_second": parallel_end_to_end,
            "ed25519_verify_ceiling": verify_ceiling,
            "ceilings": ceilings,
            "ratio_to_verify_ceiling": end_to_end / verify_ceiling,
            "load_average_1m": load,
            "goal_per_second": GOAL_MESSAGES_PER_SECOND,
            "meets_goal": best >= GOAL_MESSAGES_PER_SECOND,
            "machine": machine_info(),
        },
    )
    print(f"wrote {path}")
    return 0 if stored[0] == accept["messages"] + parallel["messages"] else 1


if __name__ == "__main__":
    sys.exit(main())
