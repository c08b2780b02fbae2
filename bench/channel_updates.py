"""Off-chain channel updates per second, in process, across many channels.

One update is the whole exchange through the channel rules, both sides: A builds the next
state and signs it (``UpdateProposed``), B checks it and countersigns (``ProposalReceived``),
A takes the countersignature (``CountersignatureReceived``), and both keep the both-signed
state (appended to an in-memory log, standing in for the write-ahead log). Each side's view is
one ``NodeChannels`` per channel, as the Django shell builds it, so an update never copies
other channels' state. Keys are loaded once (``Signer``) and each state is hashed once (the
digest cache), so the cost is the cryptography: two signatures and the recoveries the rules
check.

The secp256k1 ceiling from the same run: an update needs at least two signatures and two
recoveries, so one core cannot do more than 1 / (2/sign + 2/recover) updates per second. The
figure is measured on one core and on all cores (one process per core), in CPU time: on a
shared machine, wall time would measure the neighbours. The rules check four signatures per
update (each side also checks its own, a guard against a signing bug), so the cost is about
two signatures and four recoveries.
Between two nodes (when `make bench` provides PostgreSQL, Redis and anvil): node A is this
process, node B a daphne process with its own database; they open channels over the signed
transport, fund them on anvil, and A pays B. Each update is one signed HTTP request; B checks,
countersigns and persists before answering, A persists the countersigned state. Reported:
sequential latency (p50, p99) and the throughput of several channels in parallel threads.

Run: ``python -m bench.channel_updates [--channels 1000] [--seconds 2] [--transport-updates 300]``.
"""

from __future__ import annotations

import argparse
import multiprocessing
import os
import random
import time
from dataclasses import dataclass
from typing import Any

from bench.ceilings import measure_ceilings
from bench.common import CPU_CLOCK, print_table, write_results
from channels_app.protocol import eip712, proposals
from channels_app.protocol.state import ChannelKind, NodeChannels, SignedState
from channels_app.protocol.state_changes import (
    ChannelOpened,
    CountersignatureReceived,
    DepositObserved,
    ProposalReceived,
    UpdateProposed,
)
from channels_app.protocol.transition import transition
from channels_app.protocol.types import ETH, Address, Wei

GOAL_IN_PROCESS = 10_000
GOAL_TRANSPORT = 2_000
DOMAIN = eip712.Domain(31337, Address("0x" + "ad" * 20))
DEPOSIT = 10**18


@dataclass
class Pair:
    """One channel as both of its participants see it."""

    a: NodeChannels
    b: NodeChannels
    signer_a: eip712.Signer
    signer_b: eip712.Signer
    channel_id: bytes


def _open_pair(rng: random.Random) -> Pair:
    keys = (rng.randbytes(32), rng.randbytes(32))
    signers = (eip712.Signer(keys[0]), eip712.Signer(keys[1]))
    params = proposals.channel_params(31337, (signers[0].address, signers[1].address), 3600, rng)
    opening = proposals.opening_state(params, {ETH: (DEPOSIT, DEPOSIT)})
    signed = SignedState(
        opening, (signers[0].sign_state(DOMAIN, opening), signers[1].sign_state(DOMAIN, opening))
    )
    views = []
    for signer in signers:
        view = NodeChannels(us=signer.address, domain=DOMAIN)
        view = transition(view, ChannelOpened(params, ChannelKind.LEDGER, signed)).new_state
        view = transition(view, DepositObserved(params.channel_id, ETH, Wei(2 * DEPOSIT))).new_state
        views.append(view)
    return Pair(views[0], views[1], signers[0], signers[1], params.channel_id)


def update(pair: Pair, log: list[SignedState]) -> None:
    """One full update, A pays B one wei; both keep the both-signed state."""
    channel_id = pair.channel_id
    new = proposals.payment(pair.a.channels[channel_id], ETH, 1)  # type: ignore[index]
    signature = pair.signer_a.sign_state(DOMAIN, new)
    pair.a = transition(pair.a, UpdateProposed(channel_id, new, signature)).new_state  # type: ignore[arg-type]
    countersignature = pair.signer_b.sign_state(DOMAIN, new)
    received = transition(pair.b, ProposalReceived(channel_id, new, signature, countersignature))  # type: ignore[arg-type]
    pair.b = received.new_state
    accepted = transition(pair.a, CountersignatureReceived(channel_id, new.version, countersignature))  # type: ignore[arg-type]
    pair.a = accepted.new_state
    signed = pair.a.channels[channel_id].latest  # type: ignore[index]
    log.append(signed)  # A persists
    log.append(signed)  # B persists (its copy of the same both-signed state)


def _run_updates(
    channels: int, seconds: float, seed: int, clock: Any = time.perf_counter
) -> tuple[int, float, list[float]]:
    """Round-robin updates over ``channels`` channels for ``seconds``; (updates, elapsed, latencies)."""
    rng = random.Random(seed)
    pairs = [_open_pair(rng) for _ in range(channels)]
    log: list[SignedState] = []
    latencies: list[float] = []
    done = 0
    started = clock()
    deadline = time.perf_counter() + seconds
    while time.perf_counter() < deadline:
        for pair in pairs:
            begin = time.perf_counter()
            update(pair, log)
            latencies.append(time.perf_counter() - begin)
        done += len(pairs)
        if len(log) > 200_000:
            log.clear()
    return done, clock() - started, latencies


def _worker(arguments: tuple[int, float, int]) -> tuple[int, float]:
    channels, seconds, seed = arguments
    done, elapsed, _ = _run_updates(channels, seconds, seed, clock=CPU_CLOCK)
    return done, elapsed


def _percentile(values: list[float], fraction: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(fraction * (len(ordered) - 1)))]


def _transport_available() -> bool:
    return bool(
        os.environ.get("DATABASE_URL") and os.environ.get("ETH_RPC_URL") and os.environ.get("REDIS_URL")
    )


def transport_benchmark(updates: int, threads: int) -> dict[str, Any]:
    """Updates between two local nodes over the signed transport (see the module's docstring)."""
    import json
    import subprocess
    import sys
    import tempfile
    from concurrent.futures import ThreadPoolExecutor
    from pathlib import Path

    import psycopg

    from devstack.services import ManagedProcess, free_port, port_open

    server, _, _ = os.environ["DATABASE_URL"].rpartition("/")
    names = {"a": "parsec_bench_node_a", "b": "parsec_bench_node_b"}
    with psycopg.connect(os.environ["DATABASE_URL"], autocommit=True) as admin:
        for name in names.values():
            admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
            admin.execute(f'CREATE DATABASE "{name}"')
    port = free_port()
    env_b = {
        **os.environ,
        "DATABASE_URL": f"{server}/{names['b']}",
        "NODE_NAME": "bench-b",
        "NODE_BASE_URL": f"http://127.0.0.1:{port}",
    }
    repo = Path(__file__).resolve().parent.parent

    def manage_b(*arguments: str) -> str:
        done = subprocess.run(
            [sys.executable, "manage.py", *arguments],
            cwd=repo,
            env=env_b,
            capture_output=True,
            text=True,
            check=False,
        )
        if done.returncode:
            raise SystemExit(f"node B: manage.py {arguments[0]} failed:\n{done.stderr[-2000:]}")
        return done.stdout

    manage_b("migrate", "--noinput", "-v", "0")
    manage_b("shell", "-c", "from settlement.keystore import node_identity_ensure; node_identity_ensure()")
    log_dir = Path(tempfile.mkdtemp(prefix="parsec-bench-"))
    web_b = ManagedProcess(
        name="bench-b",
        command=[
            str(Path(sys.executable).parent / "daphne"),
            "--port",
            str(port),
            "settlement.asgi:application",
        ],
        log_path=log_dir / "bench-b.log",
        env=env_b,
    )
    web_b.start()
    try:
        os.environ.update(
            {
                "DATABASE_URL": f"{server}/{names['a']}",
                "NODE_NAME": "bench-a",
                "NODE_BASE_URL": "http://127.0.0.1:1",
            }
        )
        os.environ.setdefault("DJANGO_SETTINGS_MODULE", "settlement.settings")
        import django

        django.setup()
        from django.core.management import call_command
        from django.db import connection

        call_command("migrate", "--noinput", verbosity=0)
        from channels_app import services, watcher
        from settlement.identity import fetch_identity_document, node_identity_document, peer_add
        from settlement.keystore import node_identity_ensure

        node_identity_ensure()
        deadline = time.monotonic() + 30
        while not port_open(port):
            if time.monotonic() > deadline:
                raise SystemExit(f"node B did not start:\n{web_b.log_tail()}")
            time.sleep(0.1)
        document = json.dumps(node_identity_document())
        manage_b(
            "shell",
            "-c",
            "import json; from settlement.identity import peer_add; "
            f"peer_add(base_url='http://127.0.0.1:1', document=json.loads({document!r}), actor='bench')",
        )
        peer = peer_add(
            base_url=f"http://127.0.0.1:{port}",
            document=fetch_identity_document(f"http://127.0.0.1:{port}"),
            actor="bench",
        )
        from web3 import Web3

        chain = Web3(Web3.HTTPProvider(os.environ["ETH_RPC_URL"]))
        chain.eth.wait_for_transaction_receipt(
            chain.eth.send_transaction(
                {
                    "from": chain.eth.accounts[0],
                    "to": Web3.to_checksum_address(services.node_address()),
                    "value": Web3.to_wei(100, "ether"),
                }
            )
        )
        deposit = 10**18
        channels = []
        for _ in range(threads):
            channel = services.peer_channel_open(peer=peer, deposits={ETH: (deposit, 0)}, actor="bench")
            services.channel_deposit(channel=channel, asset=ETH, amount=deposit, actor="bench")
            channels.append(channel)
        for _ in range(3):
            services.onchain_transactions_follow()
            watcher.watcher_poll()
        manage_b("shell", "-c", "from channels_app.watcher import watcher_poll; watcher_poll()")

        def pay(channel: Any, count: int) -> list[float]:
            from django.db import connection as thread_connection

            timings = []
            for _ in range(count):
                begin = time.perf_counter()
                services.channel_pay(channel=channel, asset=ETH, amount=1, actor="bench")
                timings.append(time.perf_counter() - begin)
            thread_connection.close()
            return timings

        from settlement.transport import peer_request

        pings = []
        for _ in range(50):
            begin = time.perf_counter()
            peer_request(peer, "POST", "/node-api/ping", json_body={})
            pings.append(time.perf_counter() - begin)
        sequential = pay(channels[0], updates)
        started = time.perf_counter()
        with ThreadPoolExecutor(threads) as pool:
            parallel = [
                t for result in pool.map(lambda c: pay(c, updates // threads), channels) for t in result
            ]
        parallel_seconds = time.perf_counter() - started
        connection.close()
    finally:
        web_b.stop()
    return {
        "signed_ping_p50_ms": _percentile(pings, 0.5) * 1000,
        "signed_ping_p99_ms": _percentile(pings, 0.99) * 1000,
        "sequential_updates": len(sequential),
        "sequential_updates_per_second": len(sequential) / sum(sequential),
        "sequential_p50_ms": _percentile(sequential, 0.5) * 1000,
        "sequential_p99_ms": _percentile(sequential, 0.99) * 1000,
        "parallel_threads": threads,
        "parallel_updates": len(parallel),
        "parallel_updates_per_second": len(parallel) / parallel_seconds,
        "parallel_p50_ms": _percentile(parallel, 0.5) * 1000,
        "parallel_p99_ms": _percentile(parallel, 0.99) * 1000,
    }


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--channels", type=int, default=1000)
    parser.add_argument("--seconds", type=float, default=2.0)
    parser.add_argument("--transport-updates", type=int, default=300, help="0: skip the two-node part")
    parser.add_argument("--transport-threads", type=int, default=4)
    arguments = parser.parse_args(argv)

    ceilings = measure_ceilings(0.3)
    sign, recover = ceilings["secp256k1_sign_recoverable"], ceilings["secp256k1_recover"]
    ceiling_per_core = 1 / (2 / sign + 2 / recover)

    done, cpu_seconds, latencies = _run_updates(arguments.channels, arguments.seconds, 1, clock=CPU_CLOCK)
    one_core = done / cpu_seconds

    cores = os.cpu_count() or 1
    share = max(1, arguments.channels // cores)
    context = multiprocessing.get_context("fork")
    started = time.perf_counter()
    with context.Pool(cores) as pool:
        results = pool.map(_worker, [(share, arguments.seconds, 100 + index) for index in range(cores)])
    # Each process's rate is over its own CPU time (the machine may be shared): their sum is what
    # the cores do together when nothing else runs.
    all_cores = sum(done / elapsed for done, elapsed in results)
    wall = time.perf_counter() - started

    rows: list[dict[str, Any]] = [
        {
            "measure": "one core (CPU time)",
            "updates/s": one_core,
            "p50 us": _percentile(latencies, 0.5) * 1e6,
            "p99 us": _percentile(latencies, 0.99) * 1e6,
            "ceiling/s": ceiling_per_core,
            "of ceiling": f"{one_core / ceiling_per_core:.0%}",
        },
        {
            "measure": f"{cores} cores (a process each, CPU time)",
            "updates/s": all_cores,
            "p50 us": "",
            "p99 us": "",
            "ceiling/s": ceiling_per_core * cores,
            "of ceiling": f"{all_cores / (ceiling_per_core * cores):.0%}",
        },
    ]
    print_table(
        f"Off-chain channel updates in process, {arguments.channels} channels "
        "(sign, check, countersign, both persist)",
        rows,
        ["measure", "updates/s", "p50 us", "p99 us", "ceiling/s", "of ceiling"],
    )
    best = max(one_core, all_cores)
    print(
        f"\ngoal {GOAL_IN_PROCESS:,}/s in process: {'met' if best >= GOAL_IN_PROCESS else 'not met'} ({best:,.0f}/s)"
    )
    print(
        "ceiling per core = 1 / (2/sign + 2/recover) with "
        f"sign {sign:,.0f}/s and recover {recover:,.0f}/s measured in this run"
    )
    transport: dict[str, Any] | str = "not measured: needs PostgreSQL, Redis and anvil (run under make bench)"
    if arguments.transport_updates and _transport_available():
        transport = transport_benchmark(arguments.transport_updates, arguments.transport_threads)
        print_table(
            "Off-chain channel updates between two local nodes over the signed transport",
            [
                {
                    "measure": "signed ping (transport alone)",
                    "updates/s": 1000 / transport["signed_ping_p50_ms"],
                    "p50 ms": transport["signed_ping_p50_ms"],
                    "p99 ms": transport["signed_ping_p99_ms"],
                },
                {
                    "measure": "one channel, sequential",
                    "updates/s": transport["sequential_updates_per_second"],
                    "p50 ms": transport["sequential_p50_ms"],
                    "p99 ms": transport["sequential_p99_ms"],
                },
                {
                    "measure": f"{arguments.transport_threads} channels in parallel",
                    "updates/s": transport["parallel_updates_per_second"],
                    "p50 ms": transport["parallel_p50_ms"],
                    "p99 ms": transport["parallel_p99_ms"],
                },
            ],
            ["measure", "updates/s", "p50 ms", "p99 ms"],
        )
        print(
            f"goal {GOAL_TRANSPORT:,}/s between two nodes: {'met' if transport['parallel_updates_per_second'] >= GOAL_TRANSPORT else 'not met'}"
        )
    path = write_results(
        "channel_updates",
        {
            "channels": arguments.channels,
            "one_core_updates_per_second": one_core,
            "one_core_p50_us": _percentile(latencies, 0.5) * 1e6,
            "one_core_p99_us": _percentile(latencies, 0.99) * 1e6,
            "all_cores_updates_per_second": all_cores,
            "cores": cores,
            "wall_seconds_all_cores": wall,
            "ceiling_updates_per_second_per_core": ceiling_per_core,
            "ratio_to_ceiling_one_core": one_core / ceiling_per_core,
            "secp256k1_sign_per_second": sign,
            "secp256k1_recover_per_second": recover,
            "goal_in_process": GOAL_IN_PROCESS,
            "goal_met": best >= GOAL_IN_PROCESS,
            "transport": transport,
        },
    )
    print(f"written to {path}")


if __name__ == "__main__":
    main()
