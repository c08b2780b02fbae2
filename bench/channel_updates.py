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
recoveries (each side recovers the other's signature), so one core cannot do more than
1 / (2/sign + 2/recover) updates per second. The figure is measured on one core and on all
cores (one process per core), in CPU time: on a shared machine, wall time would measure the
neighbours. Each process measures its own ceiling (coincurve's public calls) just before and
after its updates, so the ratio compares figures taken on the same core under the same load.
Each side also checks its own signature; a signature our ``Signer`` just made is known
without a recovery (``eip712.verify_own_state_signature``), so the cryptography is the
ceiling's, and the rest is the rules' Python.

Between two local nodes (when `make bench` provides PostgreSQL, Redis and anvil): node A is
this process, node B a daphne process with its own database; they open channels over the
signed transport, fund them on anvil, and A pays B. Two paths are measured:
- the single path (``services.channel_pay``): each update one signed HTTP request; B checks,
  countersigns and persists before answering, A persists the countersigned state. Sequential
  latency (p50, p99) and the throughput of a few channels in parallel threads;
- the batch path (``channels_app.batch.peer_payments``): one update on each of ``--batch-size``
  channels per signed request, ``--pipelines`` batches in flight over disjoint channels, for
  ``--transport-seconds``. Both nodes persist every state before acknowledging it; an update's
  latency is its batch's round trip (propose and commit, request, B checks, persists and
  answers, A commits the countersigned states).
The ratio to the ceiling there is against all of this machine's cores, which both nodes share.

Run: ``python -m bench.channel_updates [--channels 1000] [--seconds 2] [--transport-updates 100]
[--batch-size 250] [--pipelines 2] [--transport-seconds 10] [--profile DIR]``. With
``--profile``, both nodes run under cProfile (CPU time per thread) while batching: ``DIR/node_a.prof``
and ``DIR/node_b.prof`` for ``python -m pstats``.
"""

from __future__ import annotations

import argparse
import cProfile
import multiprocessing
import os
import pstats
import random
import time
from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import coincurve

from bench.ceilings import measure_ceilings
from bench.common import CPU_CLOCK, measure, print_table, write_results
from channels_app.protocol import eip712, keccak, proposals
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


def secp256k1_update_ceiling(seconds: float = 0.2) -> float:
    """Updates per CPU second that two signatures and two recoveries alone allow, on this core
    now (coincurve's public calls, as ``bench.ceilings`` measures them)."""
    key = coincurve.PrivateKey(random.Random(7).randbytes(32))
    digest = bytes(range(32))
    signature = key.sign_recoverable(digest, hasher=None)
    sign = measure(
        "sign", lambda: key.sign_recoverable(digest, hasher=None), seconds=seconds, clock=CPU_CLOCK
    )
    recover = measure(
        "recover",
        lambda: coincurve.PublicKey.from_signature_and_message(signature, digest, hasher=None),
        seconds=seconds,
        clock=CPU_CLOCK,
    )
    return 1 / (2 / sign.ops_per_second + 2 / recover.ops_per_second)


def _worker(arguments: tuple[int, float, int]) -> tuple[int, float, float]:
    """One core's share: (updates, CPU seconds, the ceiling measured in this process, half
    before and half after, while the other cores run theirs: what this core could do then)."""
    channels, seconds, seed = arguments
    before = secp256k1_update_ceiling()
    done, elapsed, _ = _run_updates(channels, seconds, seed, clock=CPU_CLOCK)
    after = secp256k1_update_ceiling()
    return done, elapsed, (before + after) / 2


def _percentile(values: list[float], fraction: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(fraction * (len(ordered) - 1)))]


def _transport_available() -> bool:
    return bool(
        os.environ.get("DATABASE_URL") and os.environ.get("ETH_RPC_URL") and os.environ.get("REDIS_URL")
    )


def _process_cpu_seconds(pid: int) -> float:
    """User + system CPU time of another process (Linux ``/proc``), in seconds."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def _postgres_cpu_seconds() -> float:
    """User + system CPU time of the PostgreSQL server both nodes use: the postmaster (with
    the children it has reaped) and every live child (backends, writers, autovacuum)."""
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_backend_pid()")
        (backend,) = cursor.fetchone()
    postmaster = int(Path(f"/proc/{backend}/stat").read_text().rsplit(")", 1)[1].split()[1])
    ticks = 0
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue  # exited while we looked: the postmaster counts it once reaped
        if int(fields[1]) == postmaster:
            ticks += int(fields[11]) + int(fields[12])
    fields = Path(f"/proc/{postmaster}/stat").read_text().rsplit(")", 1)[1].split()
    ticks += sum(int(value) for value in fields[11:15])  # its own, and its reaped children's
    return ticks / os.sysconf("SC_CLK_TCK")


def _table_writes(url: str) -> dict[str, tuple[int, int, int]]:
    """Rows inserted, updated, and updated in place (HOT: no index touched) so far, per table of
    channels_app in the database at ``url`` (PostgreSQL's cumulative statistics)."""
    import psycopg

    with psycopg.connect(url, autocommit=True) as database:
        rows = database.execute(
            "SELECT relname, n_tup_ins, n_tup_upd, n_tup_hot_upd FROM pg_stat_user_tables "
            "WHERE relname LIKE 'channels_app_%'"
        ).fetchall()
    return {name: (inserted, updated, hot) for name, inserted, updated, hot in rows}


def _writes_per_update(
    before: dict[str, tuple[int, int, int]], after: dict[str, tuple[int, int, int]], updates: int
) -> dict[str, dict[str, float]]:
    """Per table, rows inserted and updated per update between two ``_table_writes``."""
    result = {}
    for name, (inserted, updated, hot) in after.items():
        was = before.get(name, (0, 0, 0))
        delta = (inserted - was[0], updated - was[1], hot - was[2])
        if any(delta):
            result[name.removeprefix("channels_app_")] = {
                "inserted": delta[0] / max(1, updates),
                "updated": delta[1] / max(1, updates),
                "hot_share": delta[2] / delta[1] if delta[1] else 0.0,
            }
    return result


def transport_benchmark(
    updates: int,
    threads: int,
    batch_size: int,
    pipelines: int,
    seconds: float,
    profile_dir: Path | None = None,
) -> dict[str, Any]:
    """Updates between two local nodes over the signed transport (see the module's docstring)."""
    import json
    import subprocess
    import sys
    import tempfile
    from concurrent.futures import ThreadPoolExecutor

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
    daphne = [str(Path(sys.executable).parent / "daphne")]
    if profile_dir is not None:
        # Every thread of node B under cProfile, written when it stops (bench.profiled_node).
        daphne = [sys.executable, "-m", "bench.profiled_node", str(profile_dir / "node_b.prof")]
    web_b = ManagedProcess(
        name="bench-b",
        command=[*daphne, "--port", str(port), "settlement.asgi:application"],
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
        from settlement import ethereum
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
        deposit = 10**15
        adjudicator = chain.eth.contract(
            address=Web3.to_checksum_address(ethereum.contract_address("Adjudicator")),
            abi=ethereum.contract("Adjudicator").abi,
        )
        channels = []
        last_deposit = None
        for _ in range(threads + batch_size * pipelines):
            channel = services.peer_channel_open(peer=peer, deposits={ETH: (deposit, 0)}, actor="bench")
            # Anyone may fund a channel: anvil's first dev account pays node A's share (one
            # transaction each, sent without waiting), which the watchers then see as usual.
            last_deposit = adjudicator.functions.deposit(channel.id_bytes, ETH, deposit).transact(
                {"from": chain.eth.accounts[0], "value": deposit}  # type: ignore[arg-type]
            )
            channels.append(channel)
        chain.eth.wait_for_transaction_receipt(last_deposit, timeout=120)  # type: ignore[arg-type]
        from django.db.models import Count

        from channels_app.models import Channel, OnChainTransaction

        # Every deposit mined and seen by both nodes' watchers before the clock starts.
        deadline = time.monotonic() + 600
        while Channel.objects.filter(phase="open").count() < len(channels):
            if time.monotonic() > deadline:
                phases = dict(Channel.objects.values_list("phase").annotate(n=Count("id")))
                sends = list(OnChainTransaction.objects.values("status", "error").annotate(n=Count("id")))
                raise SystemExit(f"node A: deposits not all seen within 600 s: {phases}, {sends}")
            services.onchain_transactions_follow()
            watcher.watcher_poll()
        while True:
            opened = manage_b(
                "shell",
                "-c",
                "from channels_app.watcher import watcher_poll; watcher_poll(); "
                "from channels_app.models import Channel; "
                "print('OPEN', Channel.objects.filter(phase='open').count())",
            )
            if int(opened.split("OPEN")[-1]) >= len(channels):
                break
            if time.monotonic() > deadline:
                raise SystemExit(f"node B: deposits not all seen within 600 s: {opened[-200:]}")
        single_channels, batch_channels = channels[:threads], channels[threads:]

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
        sequential = pay(single_channels[0], updates)
        started = time.perf_counter()
        with ThreadPoolExecutor(threads) as pool:
            parallel = [
                t
                for result in pool.map(lambda c: pay(c, updates // threads), single_channels)
                for t in result
            ]
        parallel_seconds = time.perf_counter() - started

        from channels_app.batch import Payment, peer_payments

        refusals: Counter[str] = Counter()
        profiles: list[cProfile.Profile] = []

        def pay_batches(group: list[Any], rounds_at_least: int = 1) -> tuple[int, list[float]]:
            """Batches of one update per channel of ``group``, back to back, for ``seconds``."""
            from django.db import connection as thread_connection

            payments = [Payment(channel.channel_id, ETH, 1) for channel in group]
            # CPU time of this thread: wall time would charge the GIL and the neighbours' load.
            profile = cProfile.Profile(time.thread_time) if profile_dir is not None else None
            if profile is not None:
                profiles.append(profile)
                profile.enable()
            accepted = 0
            rounds: list[float] = []
            deadline = time.perf_counter() + seconds
            while time.perf_counter() < deadline or len(rounds) < rounds_at_least:
                begin = time.perf_counter()
                outcomes = peer_payments(peer=peer, payments=payments, actor="bench")
                rounds.append(time.perf_counter() - begin)
                accepted += sum(outcome.ok for outcome in outcomes)
                refusals.update(outcome.error.code for outcome in outcomes if outcome.error is not None)
            if profile is not None:
                profile.disable()
            thread_connection.close()
            return accepted, rounds

        groups = [batch_channels[i * batch_size : (i + 1) * batch_size] for i in range(pipelines)]
        peer_payments(  # warm up both nodes' batch path (imports, connections)
            peer=peer, payments=[Payment(c.channel_id, ETH, 1) for c in groups[0][:10]], actor="bench"
        )
        b_pid = web_b.process.pid  # type: ignore[union-attr]
        time.sleep(1.2)  # PostgreSQL flushes its table statistics about once a second
        urls = {"a": f"{server}/{names['a']}", "b": env_b["DATABASE_URL"]}
        writes_before = {node: _table_writes(url) for node, url in urls.items()}
        cpu_before = (time.process_time(), _process_cpu_seconds(b_pid), _postgres_cpu_seconds())
        started = time.perf_counter()
        with ThreadPoolExecutor(pipelines) as pool:
            batched = list(pool.map(pay_batches, groups))
        batch_seconds = time.perf_counter() - started
        cpu_a = time.process_time() - cpu_before[0]
        cpu_b = _process_cpu_seconds(b_pid) - cpu_before[1]
        time.sleep(0.2)  # the batch threads' closed connections: let the postmaster reap them
        cpu_postgres = _postgres_cpu_seconds() - cpu_before[2]
        batch_rounds = [t for _, rounds in batched for t in rounds]
        batch_accepted = sum(accepted for accepted, _ in batched)
        # A backend flushes its table statistics at most once a second, and what it has not
        # flushed when it goes idle only after 10 s (PostgreSQL's PGSTAT_IDLE_INTERVAL). Node A's
        # batch connections are closed (flushed) by now; node B's are kept by its node-API
        # threads, so reading at once missed B's last second of writes (the bench showed 0.89
        # rows per update on B where every update writes one).
        time.sleep(11.0)
        table_writes = {
            node: _writes_per_update(writes_before[node], _table_writes(url), batch_accepted)
            for node, url in urls.items()
        }
        if profile_dir is not None and profiles:
            merged = pstats.Stats(profiles[0])
            for profile in profiles[1:]:
                merged.add(profile)
            merged.dump_stats(profile_dir / "node_a.prof")
        connection.close()
    finally:
        web_b.stop(timeout=300 if profile_dir is not None else 15)
    if profile_dir is not None:
        parts = sorted(profile_dir.glob("node_b.prof.*"))
        if parts:
            merged = pstats.Stats(str(parts[0]))
            for part in parts[1:]:
                merged.add(str(part))
            merged.dump_stats(profile_dir / "node_b.prof")
    return {
        "batch_size": batch_size,
        "batch_pipelines": pipelines,
        "batch_updates": batch_accepted,
        "batch_refused": dict(refusals),
        "batch_updates_per_second": batch_accepted / batch_seconds,
        # The machine is shared: wall time measures the neighbours too. Per CPU second of the
        # two node processes (PostgreSQL's own CPU not counted), what one core does for both.
        "batch_cpu_seconds_a": cpu_a,
        "batch_cpu_seconds_b": cpu_b,
        "batch_updates_per_cpu_second": batch_accepted / (cpu_a + cpu_b) if cpu_a + cpu_b else 0.0,
        # PostgreSQL's CPU over the same span (both nodes' databases share one server; its
        # background processes included): what storing the states costs on its side.
        "batch_cpu_seconds_postgres": cpu_postgres,
        "batch_updates_per_cpu_second_with_postgres": batch_accepted / (cpu_a + cpu_b + cpu_postgres)
        if cpu_a + cpu_b + cpu_postgres
        else 0.0,
        # Every update of a batch is countersigned and persisted on both nodes when its batch
        # returns: an update's latency is its batch's round time.
        # Rows written per update on each node (and what share of the updates were in place).
        "batch_table_writes_per_update": table_writes,
        "batch_p50_ms": _percentile(batch_rounds, 0.5) * 1000,
        "batch_p99_ms": _percentile(batch_rounds, 0.99) * 1000,
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
    parser.add_argument(
        "--transport-updates", type=int, default=100, help="single-path updates; 0: skip the two-node part"
    )
    parser.add_argument("--transport-threads", type=int, default=4)
    parser.add_argument("--batch-size", type=int, default=250, help="updates (channels) per batch request")
    parser.add_argument("--pipelines", type=int, default=2, help="batches in flight at once")
    parser.add_argument("--transport-seconds", type=float, default=10.0)
    parser.add_argument(
        "--profile",
        type=Path,
        default=None,
        help="directory: write cProfile data of both nodes while batching (node_a.prof, node_b.prof)",
    )
    arguments = parser.parse_args(argv)

    ceilings = measure_ceilings(0.3)
    sign, recover = ceilings["secp256k1_sign_recoverable"], ceilings["secp256k1_recover"]
    ceiling_per_core = 1 / (2 / sign + 2 / recover)

    before = secp256k1_update_ceiling()
    done, cpu_seconds, latencies = _run_updates(arguments.channels, arguments.seconds, 1, clock=CPU_CLOCK)
    one_core = done / cpu_seconds
    one_core_ceiling = (before + secp256k1_update_ceiling()) / 2

    cores = os.cpu_count() or 1
    share = max(1, arguments.channels // cores)
    context = multiprocessing.get_context("fork")
    started = time.perf_counter()
    with context.Pool(cores) as pool:
        results = pool.map(_worker, [(share, arguments.seconds, 100 + index) for index in range(cores)])
    # Each process's rate is over its own CPU time (the machine may be shared): their sum is what
    # the cores do together when nothing else runs.
    all_cores = sum(done / elapsed for done, elapsed, _ in results)
    all_cores_ceiling = sum(ceiling for _, _, ceiling in results)
    wall = time.perf_counter() - started

    rows: list[dict[str, Any]] = [
        {
            "measure": "one core (CPU time)",
            "updates/s": one_core,
            "p50 us": _percentile(latencies, 0.5) * 1e6,
            "p99 us": _percentile(latencies, 0.99) * 1e6,
            "ceiling/s": one_core_ceiling,
            "of ceiling": f"{one_core / one_core_ceiling:.0%}",
        },
        {
            "measure": f"{cores} cores (a process each, CPU time)",
            "updates/s": all_cores,
            "p50 us": "",
            "p99 us": "",
            "ceiling/s": all_cores_ceiling,
            "of ceiling": f"{all_cores / all_cores_ceiling:.0%}",
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
        "ceiling = 1 / (2/sign + 2/recover), CPU time, measured in each process just before and "
        "after its updates (the cores' ceilings summed); bench.ceilings at the start of this run: "
        f"sign {sign:,.0f}/s, recover {recover:,.0f}/s, {ceiling_per_core:,.0f} updates/s per core\n"
        f"keccak: {'pycryptodome C state per thread' if keccak.NATIVE else 'eth_hash (fallback)'}"
    )
    transport: dict[str, Any] | str = "not measured: needs PostgreSQL, Redis and anvil (run under make bench)"
    if arguments.transport_updates and _transport_available():
        transport = transport_benchmark(
            arguments.transport_updates,
            arguments.transport_threads,
            arguments.batch_size,
            arguments.pipelines,
            arguments.transport_seconds,
            arguments.profile,
        )
        machine_ceiling = ceiling_per_core * cores
        print_table(
            "Off-chain channel updates between two local nodes over the signed transport "
            "(both nodes persist before acknowledging)",
            [
                {
                    "measure": "signed ping (transport alone)",
                    "updates/s": 1000 / transport["signed_ping_p50_ms"],
                    "p50 ms": transport["signed_ping_p50_ms"],
                    "p99 ms": transport["signed_ping_p99_ms"],
                    "of ceiling": "",
                },
                {
                    "measure": "single path, one channel, sequential",
                    "updates/s": transport["sequential_updates_per_second"],
                    "p50 ms": transport["sequential_p50_ms"],
                    "p99 ms": transport["sequential_p99_ms"],
                    "of ceiling": f"{transport['sequential_updates_per_second'] / machine_ceiling:.1%}",
                },
                {
                    "measure": f"single path, {arguments.transport_threads} channels in parallel",
                    "updates/s": transport["parallel_updates_per_second"],
                    "p50 ms": transport["parallel_p50_ms"],
                    "p99 ms": transport["parallel_p99_ms"],
                    "of ceiling": f"{transport['parallel_updates_per_second'] / machine_ceiling:.1%}",
                },
                {
                    "measure": f"batches of {arguments.batch_size}, {arguments.pipelines} in flight",
                    "updates/s": transport["batch_updates_per_second"],
                    "p50 ms": transport["batch_p50_ms"],
                    "p99 ms": transport["batch_p99_ms"],
                    "of ceiling": f"{transport['batch_updates_per_second'] / machine_ceiling:.1%}",
                },
                {
                    "measure": "  the same, per CPU second of both nodes",
                    "updates/s": transport["batch_updates_per_cpu_second"],
                    "p50 ms": "",
                    "p99 ms": "",
                    "of ceiling": f"{transport['batch_updates_per_cpu_second'] / ceiling_per_core:.1%}",
                },
                {
                    "measure": "  per CPU second of both nodes and PostgreSQL",
                    "updates/s": transport["batch_updates_per_cpu_second_with_postgres"],
                    "p50 ms": "",
                    "p99 ms": "",
                    "of ceiling": f"{transport['batch_updates_per_cpu_second_with_postgres'] / ceiling_per_core:.1%}",
                },
            ],
            ["measure", "updates/s", "p50 ms", "p99 ms", "of ceiling"],
        )
        print(
            f"refused in batches (should be none): {transport['batch_refused'] or 'none'}\n"
            f"goal {GOAL_TRANSPORT:,}/s between two nodes: "
            f"{'met' if transport['batch_updates_per_second'] >= GOAL_TRANSPORT else 'not met'}; "
            f"ceiling {machine_ceiling:,.0f}/s = {cores} cores x {ceiling_per_core:,.0f}/s "
            "(both nodes share this machine's cores); a batch update's latency is its batch's round trip;\n"
            "per CPU second: updates / (CPU seconds of node A + node B while batching), against one "
            "core's ceiling; then with PostgreSQL's CPU too\n"
            "CPU per update: node A {:,.0f} us, node B {:,.0f} us, PostgreSQL {:,.0f} us".format(
                *(
                    transport[key] / max(1, transport["batch_updates"]) * 1e6
                    for key in ("batch_cpu_seconds_a", "batch_cpu_seconds_b", "batch_cpu_seconds_postgres")
                )
            )
        )
        for node, tables in transport["batch_table_writes_per_update"].items():
            print(
                f"rows per update on node {node.upper()}: "
                + ", ".join(
                    f"{name} +{row['inserted']:.2f} ~{row['updated']:.2f} ({row['hot_share']:.0%} in place)"
                    for name, row in sorted(tables.items())
                )
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
            "ceiling_one_core_same_process": one_core_ceiling,
            "ceiling_all_cores_same_processes": all_cores_ceiling,
            "ratio_to_ceiling_one_core": one_core / one_core_ceiling,
            "ratio_to_ceiling_all_cores": all_cores / all_cores_ceiling,
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
