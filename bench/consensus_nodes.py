"""Agreed transactions per second and latency from vote to block across real local nodes (issue 6).

Each node is what `make run` starts: its own PostgreSQL database, its own Redis database, a
daphne, a Celery worker and Celery beat, with every node a genesis validator and every other
node a peer. Observations are 100-byte random payloads submitted to every node's REST API
(``POST /api/consensus/observations/``) at an offered rate, spread evenly over the nodes.

* agreed tx/s: observations agreed (in a block stored at the node that submitted them) divided
  by the time from the first submission to the last agreement;
* latency: per observation, from the API accepting it (``submitted_at``) to the block holding
  it being stored at that node (``agreed_at``, after more than 2/3 of the validators signed);
* agreement: every node's list of block hashes is compared (one must be a prefix of another);
* CPU: the share of the machine's cores the nodes' processes used over each run, and what
  everything else used (PostgreSQL, Redis, this client, other work on a shared machine): on a
  loaded machine the nodes' figures say as much about their CPU share as about the nodes.

``BENCH_PROFILE=1`` runs each worker in one process (solo pool) under cProfile and leaves
``<node>-worker.prof`` in the work directory it prints. ``BENCH_TRACE=1`` turns on the nodes'
timing trace (``CONSENSUS_TRACE``) and prints, per rate, where a gossip hop spends its time
(sender's queue, the POST, the receiving view, the inbox, each part of the step, and a
response's way back in the HTTP answer to its request: with push-pull, "the POST" lasts until
that response is back).

The output also gives the nodes' CPU seconds per 1,000 agreed observations, the load average
(the machine is shared: read every figure with it) and how many blocks all nodes agree on.
Each worker has two processes, as ``make run`` starts it: one runs the gossip loop, the other
the node's other tasks.

Goal (issue 6): four nodes, 2,000 tx/s with p50 under 0.5 s. It makes its own databases
(``<DATABASE_URL's name>_bench_consensus_<i>``) and drops them at the end. Run under `make bench`
(devstack gives PostgreSQL and Redis): ``python -m bench.consensus_nodes [--nodes 4] [--seconds 15]
[--rate 2000]``.
"""

from __future__ import annotations

import argparse
import json
import os
import secrets
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import requests

from bench.common import machine_info, print_table, write_results

REPO = Path(__file__).resolve().parent.parent
VENV_BIN = Path(sys.executable).parent
GOAL_TX_PER_SECOND = 2000
GOAL_P50_SECONDS = 0.5
PAYLOAD_BYTES = 100


def _database_urls(nodes: int) -> tuple[str, str, list[str]]:
    source = os.environ.get("DATABASE_URL")
    if not source or not os.environ.get("REDIS_URL"):
        raise SystemExit(
            "DATABASE_URL/REDIS_URL are not set: run under `make bench` (python -m devstack exec -- ...)"
        )
    parts = urlsplit(source)
    base = f"{parts.path.lstrip('/') or 'parsec'}_bench_consensus"
    admin = urlunsplit(parts._replace(path="/postgres"))
    template = urlunsplit(parts._replace(path=f"/{base}_template"))
    return admin, template, [urlunsplit(parts._replace(path=f"/{base}_{index}")) for index in range(nodes)]


def _name(url: str) -> str:
    return urlsplit(url).path.lstrip("/")


def _sql(admin: str, *statements: str) -> None:
    import psycopg

    with psycopg.connect(admin, autocommit=True) as connection:
        for statement in statements:
            connection.execute(statement)


def _redis_url(index: int) -> str:
    parts = urlsplit(os.environ["REDIS_URL"])
    return urlunsplit(parts._replace(path=f"/{8 + index}"))


class Node:
    def __init__(self, index: int, names: list[str], database_url: str, work: Path) -> None:
        from devstack.services import free_port

        self.index = index
        self.name = names[index]
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.database_url = database_url
        self.env = {
            "DJANGO_SETTINGS_MODULE": "settlement.settings",
            "NODE_NAME": self.name,
            "NODE_DOMAIN": f"{self.name}.test",
            "NODE_BASE_URL": self.url,
            "ALLOWED_HOSTS": "127.0.0.1,localhost",
            "DATABASE_URL": database_url,
            "REDIS_URL": _redis_url(index),
            "CELERY_BROKER_URL": _redis_url(index),
            "SECRET_KEY": secrets.token_urlsafe(32),
            "NODE_KEY_PASSPHRASE": "bench-only-passphrase",
            "CONSENSUS_VALIDATORS": ",".join(names),
            "CONSENSUS_GOSSIP_SECONDS": "0.5",  # as make run: the tick only (re)starts the loop
            "ANCHOR_EVERY_BLOCKS": "1000000000",
            "ANCHOR_EVERY_SECONDS": "0",
            "LOG_LEVEL": "WARNING",
            "CONSENSUS_TRACE": "1" if os.environ.get("BENCH_TRACE") else "0",
            "PARSEC_VAR_DIR": str(work / self.name),
        }
        self.work = work
        self.processes: list[Any] = []
        self.token = ""

    def manage(self, *args: str) -> None:
        subprocess.run(
            [sys.executable, "manage.py", *args],
            cwd=REPO,
            env={**os.environ, **self.env},
            check=True,
            capture_output=True,
        )

    def start(self) -> None:
        from devstack.services import ManagedProcess

        credentials = self.work / "credentials.json"
        self.manage("node_bootstrap", "--credentials", str(credentials), "--url", self.url)
        self.token = json.loads(credentials.read_text())[self.name]["api_token"]
        commands = {
            "web": [str(VENV_BIN / "daphne"), "--bind", "127.0.0.1", "--port", str(self.port), "settlement.asgi:application"],
            "worker": [
                *self._worker_program(),
                "--app", "settlement", "worker", "--loglevel", os.environ.get("BENCH_WORKER_LOGLEVEL", "WARNING"),
                "--hostname", f"worker@{self.name}", "--concurrency", "2", "--without-gossip", "--without-mingle",
                *(["--pool", "solo"] if os.environ.get("BENCH_PROFILE") else []),
            ],
            "beat": [
                str(VENV_BIN / "celery"), "--app", "settlement", "beat", "--loglevel", "WARNING",
                "--schedule", str(self.work / f"{self.name}-beat-schedule"),
            ],
        }  # fmt: skip
        for kind, command in commands.items():
            process = ManagedProcess(
                name=f"{self.name}-{kind}",
                command=command,
                log_path=self.work / f"{self.name}-{kind}.log",
                env=self.env,
            )
            process.start()
            self.processes.append(process)

    def _worker_program(self) -> list[str]:
        # BENCH_PROFILE=1: the worker runs its tasks in its main process (solo pool) under
        # cProfile, written to <work>/<node>-worker.prof when the worker stops.
        if os.environ.get("BENCH_PROFILE"):
            return [
                sys.executable,
                "-m",
                "cProfile",
                "-o",
                str(self.work / f"{self.name}-worker.prof"),
                "-m",
                "celery",
            ]
        return [str(VENV_BIN / "celery")]

    def stop(self) -> None:
        for process in reversed(self.processes):
            process.stop()

    def submit(self, payloads: list[bytes]) -> None:
        answer = requests.post(
            self.url + "/api/consensus/observations/",
            json={"kind": "bench.tx", "payloads": [item.hex() for item in payloads]},
            headers={"Authorization": f"Bearer {self.token}"},
            timeout=30,
        )
        if answer.status_code != 202:
            raise RuntimeError(f"{self.name} refused a submission: {answer.status_code} {answer.text[:200]}")

    def query(self, sql: str, params: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
        import psycopg

        with psycopg.connect(self.database_url) as connection:
            return connection.execute(sql, params).fetchall()


def _wait(condition: Any, timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return
        time.sleep(0.2)
    raise SystemExit(f"timed out after {timeout:.0f} s waiting for {what}")


def _pending(nodes: list[Node]) -> int:
    return sum(
        int(node.query("SELECT count(*) FROM consensus_pendingobservation WHERE status <> 'agreed'")[0][0])
        for node in nodes
    )


def _load(nodes: list[Node], rate: float, seconds: float, batch_interval: float = 0.1) -> int:
    """Offer ``rate`` observations a second for ``seconds``, one thread per node."""
    per_node_per_second = rate / len(nodes)
    sent = [0] * len(nodes)

    def run(position: int, node: Node) -> None:
        # What is owed follows the clock, not the number of batches: when a submission is slow
        # the next batch is larger, so the offered rate is what was asked for (up to the API's
        # 10,000 payloads a request).
        started = time.monotonic()
        while (elapsed := time.monotonic() - started) < seconds:
            count = min(int(per_node_per_second * elapsed) - sent[position], 10_000)
            if count > 0:
                node.submit([os.urandom(PAYLOAD_BYTES) for _ in range(count)])
                sent[position] += count
            time.sleep(max(0.0, batch_interval - (time.monotonic() - started) % batch_interval))

    threads = [threading.Thread(target=run, args=(position, node)) for position, node in enumerate(nodes)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return sum(sent)


_CLOCK_TICKS = os.sysconf("SC_CLK_TCK") if hasattr(os, "sysconf") else 100


def _cpu_seconds(nodes: list[Node]) -> tuple[float, float]:
    """(CPU seconds used so far by the nodes' processes, busy CPU seconds of the whole machine).

    Each node process leads its own session (ManagedProcess), so a process belongs to the nodes
    when its session id is one of theirs (the worker's prefork child included). PostgreSQL and
    Redis are shared services and count as "the rest of the machine", with the other sessions."""
    sessions = {process.process.pid for node in nodes for process in node.processes if process.process}
    ticks = 0
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if int(fields[3]) in sessions:
            ticks += int(fields[11]) + int(fields[12])
    cpu = Path("/proc/stat").read_text().splitlines()[0].split()[1:]
    busy = sum(int(value) for index, value in enumerate(cpu[:8]) if index not in (3, 4))  # not idle/iowait
    return ticks / _CLOCK_TICKS, busy / _CLOCK_TICKS


def _measure(nodes: list[Node], rate: float, seconds: float) -> dict[str, Any]:
    for node in nodes:
        node.query("SELECT 1")
    marker = nodes[0].query("SELECT now()")[0][0]
    cores = os.cpu_count() or 1
    wall_start = time.monotonic()
    nodes_cpu_start, machine_busy_start = _cpu_seconds(nodes)
    offered = _load(nodes, rate, seconds)
    _wait(lambda: _pending(nodes) == 0, 120, "every observation agreed")
    wall = time.monotonic() - wall_start
    nodes_cpu_end, machine_busy_end = _cpu_seconds(nodes)
    latencies: list[float] = []
    until_voted: list[float] = []
    first_submit, last_agreed = None, None
    for node in nodes:
        rows = node.query(
            "SELECT submitted_at, agreed_at, voted_at FROM consensus_pendingobservation "
            "WHERE kind = 'bench.tx' AND submitted_at >= %s",
            (marker,),
        )
        for submitted, agreed, voted in rows:
            latencies.append((agreed - submitted).total_seconds())
            until_voted.append((voted - submitted).total_seconds())
            first_submit = submitted if first_submit is None else min(first_submit, submitted)
            last_agreed = agreed if last_agreed is None else max(last_agreed, agreed)
    assert first_submit is not None
    assert last_agreed is not None
    latencies.sort()
    span = (last_agreed - first_submit).total_seconds()
    return {
        "offered_per_second": rate,
        "observations": offered,
        "agreed_per_second": len(latencies) / span,
        "p50_s": statistics.median(latencies),
        "p99_s": latencies[min(len(latencies) - 1, int(0.99 * len(latencies)))],
        # Of the latency: from the API accepting an observation to the worker voting for it.
        "p50_until_voted_s": statistics.median(until_voted),
        "span_s": span,
        "achieved_offer_per_second": offered / seconds,
        # Of all the machine's cores over the run: what the nodes used, and what everything
        # else (PostgreSQL, Redis, this client, other sessions on the shared machine) used.
        "nodes_cpu_share": (nodes_cpu_end - nodes_cpu_start) / (wall * cores),
        # CPU seconds the nodes' processes (web, worker, beat: not PostgreSQL or Redis) spent
        # per 1,000 agreed observations, over the whole run (load and drain).
        "nodes_cpu_seconds_per_1000_tx": 1000 * (nodes_cpu_end - nodes_cpu_start) / max(1, len(latencies)),
        "load_average": os.getloadavg()[0],
        "rest_cpu_share": max(
            0.0,
            ((machine_busy_end - machine_busy_start) - (nodes_cpu_end - nodes_cpu_start)) / (wall * cores),
        ),
        "cores": cores,
    }


def _percentiles(values: list[float]) -> str:
    if not values:
        return "-"
    values = sorted(values)
    pick = lambda share: values[min(len(values) - 1, int(share * len(values)))]  # noqa: E731
    return f"p50 {1000 * pick(0.5):.0f} ms, p90 {1000 * pick(0.9):.0f} ms (n={len(values)})"


def _trace_breakdown(work: Path, nodes: list[Node], since: float) -> None:
    """With BENCH_TRACE=1: where a gossip hop and a worker step spend their time (from the
    nodes' parsec.consensus.trace lines written after ``since``), printed per stage."""
    records: list[dict[str, Any]] = []
    for log in work.glob("*.log"):
        for line in log.read_text(errors="replace").splitlines():
            start = line.find('{"t":')
            if start < 0:
                continue
            try:
                record = json.loads(line[start:])
            except ValueError:
                continue
            if record["t"] >= since:
                record["node"] = log.name.rsplit("-", 1)[0]
                records.append(record)
    sent = {item["id"]: item for item in records if item["what"] == "sent"}
    # Responses that went back in the HTTP answer to their request (push-pull): when the loop
    # handed one to the waiting view, when the view answered, when the requester queued it.
    replied = {item["id"]: item for item in records if item["what"] == "replied"}
    answered = {item["id"]: item for item in records if item["what"] == "answer"}
    steps = [item for item in records if item["what"] == "step"]
    received = [item for item in records if item["what"] == "recv"]
    stages: dict[str, list[float]] = {
        "send: waiting in the sender thread's queue": [
            item["started"] - item["queued"] for item in sent.values()
        ],
        "send: the signed POST (sender's view)": [item["t"] - item["started"] for item in sent.values()],
        "receive: ASGI to a check thread": [item["started"] - item["arrived"] for item in received],
        "receive: transport + message checks + enqueue": [item["t"] - item["started"] for item in received],
        "step: waiting in the inbox (oldest message)": [
            item["started"] - min(entry[2] for entry in item["received"])
            for item in steps
            if item["received"] and all(entry[2] for entry in item["received"])
        ],
        "step: taking the state row lock": [item["locked"] - item["started"] for item in steps],
        "step: protocol calls": [item["protocol"] - item.get("restored", item["locked"]) for item in steps],
        "step: persisting (blocks, log row, state)": [item["persisted"] - item["protocol"] for item in steps],
        "step: commit": [item["committed"] - item["persisted"] for item in steps],
        "step: storing blocks (steps that stored one)": [
            item["persisted"] - item["protocol"] for item in steps if item["blocks"]
        ],
        # A loop step's blocks, stored after its messages left (one transaction).
        "blocks stored after the step's sends": [
            item["committed"] - item["started"] for item in records if item["what"] == "stored"
        ],
    }
    stages["reply: the loop's hand-over to the view's answer"] = [
        item["t"] - item["queued"] for item in replied.values()
    ]
    stages["reply: the view's answer to the requester's inbox"] = [
        answered[key]["t"] - item["t"] for key, item in replied.items() if key in answered
    ]
    hops = []
    for item in steps:
        for message_id, _, _ in item["received"]:
            origin = sent.get(message_id) or replied.get(message_id)
            if origin is not None:
                hops.append(item["committed"] - origin["queued"])
    stages["hop: sender's commit to receiver's step committed"] = hops
    span = max((item["t"] for item in records), default=since) - since
    print(
        f"trace breakdown ({len(steps)} steps, {len(sent)} POSTed messages and {len(replied)} responses "
        f"in the answer to their request, over {span:.1f} s):",
        flush=True,
    )
    for stage, values in stages.items():
        print(f"  {stage:<55} {_percentiles(values)}", flush=True)
    per_node: dict[str, int] = {}
    for item in steps:
        per_node[item["node"]] = per_node.get(item["node"], 0) + 1
    print(
        f"  steps per node: {per_node}; messages per step {sum(len(i['received']) for i in steps) / max(1, len(steps)):.2f}"
    )


def _agreement(nodes: list[Node]) -> dict[str, Any]:
    chains = [
        [bytes(row[0]) for row in node.query("SELECT block_hash FROM consensus_block ORDER BY height")]
        for node in nodes
    ]
    shortest = min(len(chain) for chain in chains)
    agree = all(chain[:shortest] == chains[0][:shortest] for chain in chains)
    # Blocks every node stored with the same hash at the same height.
    agreed_by_all = sum(1 for height in range(shortest) if len({chain[height] for chain in chains}) == 1)
    stats = nodes[0].query(
        "SELECT rounds_completed, events_in_graph, snapshot_bytes FROM consensus_consensusstate WHERE id = 1"
    )[0]
    return {
        "blocks": [len(chain) for chain in chains],
        "agree": agree,
        "blocks_agreed_by_all": agreed_by_all,
        "rounds_completed_node0": stats[0],
        "events_in_graph_node0": stats[1],
        "snapshot_bytes_node0": stats[2],
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--nodes", type=int, default=4)
    parser.add_argument("--seconds", type=float, default=15.0)
    parser.add_argument("--rates", default="200,1000,2000", help="offered tx/s, comma-separated")
    arguments = parser.parse_args()
    names = [f"bench-{chr(ord('a') + index)}" for index in range(arguments.nodes)]
    admin, template, urls = _database_urls(arguments.nodes)
    work = Path(tempfile.mkdtemp(prefix="parsec-bench-consensus-"))
    print(f"node logs (and profiles) under {work}", flush=True)
    _sql(admin, *[f'DROP DATABASE IF EXISTS "{_name(url)}" WITH (FORCE)' for url in [template, *urls]])
    _sql(admin, f'CREATE DATABASE "{_name(template)}"')
    subprocess.run(
        [sys.executable, "manage.py", "migrate", "--noinput"],
        cwd=REPO,
        env={**os.environ, "DATABASE_URL": template, "SECRET_KEY": "bench"},
        check=True,
        capture_output=True,
    )
    _sql(admin, *[f'CREATE DATABASE "{_name(url)}" TEMPLATE "{_name(template)}"' for url in urls])
    nodes = [Node(index, names, url, work) for index, url in enumerate(urls)]
    results: dict[str, Any] = {"nodes": arguments.nodes, "payload_bytes": PAYLOAD_BYTES, "runs": []}
    try:
        from devstack.services import port_open

        for node in nodes:
            node.start()
        _wait(lambda: all(port_open(node.port) for node in nodes), 60, "every daphne")
        for node in nodes:
            others = [other.url for other in nodes if other is not node]
            if others:
                node.manage("peer_add", *others)
        # Warm-up: the validators start and agree a first block.
        for node in nodes:
            node.submit([os.urandom(PAYLOAD_BYTES)])
        _wait(lambda: _pending(nodes) == 0, 120, "the warm-up block")
        for rate in [float(item) for item in arguments.rates.split(",")]:
            since = time.time()
            run = _measure(nodes, rate, arguments.seconds)
            if os.environ.get("BENCH_TRACE"):
                _trace_breakdown(work, nodes, since)
            results["runs"].append(run)
            print(
                f"offered {rate:.0f}/s (achieved {run['achieved_offer_per_second']:.0f}/s): agreed "
                f"{run['agreed_per_second']:.0f}/s, p50 {run['p50_s']:.3f} s (voted after "
                f"{run['p50_until_voted_s']:.3f} s), p99 {run['p99_s']:.3f} s; "
                f"nodes used {run['nodes_cpu_share']:.0%} of {run['cores']} cores "
                f"({run['nodes_cpu_seconds_per_1000_tx']:.2f} CPU s per 1,000 tx), the rest of the "
                f"machine {run['rest_cpu_share']:.0%}; load average {run['load_average']:.1f}",
                flush=True,
            )
        results["agreement"] = _agreement(nodes)
    finally:
        for node in nodes:
            node.stop()
        _sql(admin, *[f'DROP DATABASE IF EXISTS "{_name(url)}" WITH (FORCE)' for url in [template, *urls]])
    print_table(
        f"Consensus across {arguments.nodes} real local nodes (100-byte payloads, daphne + worker + beat each)",
        [
            {
                "offered tx/s": run["offered_per_second"],
                "achieved": run["achieved_offer_per_second"],
                "agreed tx/s": run["agreed_per_second"],
                "p50 s": run["p50_s"],
                "p99 s": run["p99_s"],
                "observations": run["observations"],
                "nodes CPU": f"{run['nodes_cpu_share']:.0%}",
                "CPU s/1k tx": f"{run['nodes_cpu_seconds_per_1000_tx']:.2f}",
                "rest CPU": f"{run['rest_cpu_share']:.0%}",
                "load avg": f"{run['load_average']:.1f}",
            }
            for run in results["runs"]
        ],
        [
            "offered tx/s",
            "achieved",
            "agreed tx/s",
            "p50 s",
            "p99 s",
            "observations",
            "nodes CPU",
            "CPU s/1k tx",
            "rest CPU",
            "load avg",
        ],
    )
    agreement = results["agreement"]
    print(
        f"blocks per node {agreement['blocks']}, agreed by all {arguments.nodes} nodes: "
        f"{agreement['blocks_agreed_by_all']}, chains agree: {agreement['agree']}; goal "
        f"{GOAL_TX_PER_SECOND} tx/s with p50 < {GOAL_P50_SECONDS} s at 4 nodes"
    )
    results["machine"] = machine_info()
    write_results("consensus_nodes", results)
    return 0 if agreement["agree"] else 1


if __name__ == "__main__":
    sys.exit(main())
