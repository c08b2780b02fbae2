"""The node-to-node HTTP path alone: signed requests from this process to a daphne node.

What one node-to-node request costs the node that answers it, without any app's work: a signed
ping (empty body) and a gossip-sized POST (``--body-bytes``, a gossip event with its block
signatures is about 2.3 KB) to ``/node-api/ping``, one at a time and from ``--concurrency``
threads at once. The answering node (node B) is a daphne process with its own database; for each
request it checks the signature, the nonce (Redis) and the key (PostgreSQL), and signs its answer.

Node B's code can come from several directories in one run (``--variant NAME=DIR``, e.g. a
checkout of the commit before a change and the working tree), measured in alternating rounds so
that the load of a shared machine falls on every variant alike. Each variant's first variant is
the peer the others are read against. Besides wall time, the CPU time node B's process spent
per request (user + system, from ``/proc``) is reported: on a loaded machine it moves far less
than wall time.

    python -m devstack exec -- .venv/bin/python -m bench.node_api \\
        --variant before=/tmp/parsec-before --variant after=.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

from bench.common import print_table, write_results

REPO = Path(__file__).resolve().parent.parent


def _percentile(values: list[float], fraction: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(fraction * (len(ordered) - 1)))]


def _process_cpu_seconds(pid: int) -> float:
    """User + system CPU time of another process (Linux ``/proc``), in seconds."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def _databases(names: list[str]) -> str:
    import psycopg

    server, _, _ = os.environ["DATABASE_URL"].rpartition("/")
    with psycopg.connect(os.environ["DATABASE_URL"], autocommit=True) as admin:
        for name in names:
            admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
            admin.execute(f'CREATE DATABASE "{name}"')
    return server


class NodeB:
    """Node B: one database, and a daphne process started from a given code directory."""

    def __init__(self, database_url: str, port: int, log_dir: Path) -> None:
        self.port = port
        self.url = f"http://127.0.0.1:{port}"
        self.log_dir = log_dir
        self.env = {
            **os.environ,
            "DATABASE_URL": database_url,
            "NODE_NAME": "bench-b",
            "NODE_BASE_URL": self.url,
        }

    def manage(self, code: Path, *arguments: str) -> str:
        done = subprocess.run(
            [sys.executable, "manage.py", *arguments],
            cwd=code,
            env=self.env,
            capture_output=True,
            text=True,
            check=False,
        )
        if done.returncode:
            raise SystemExit(f"node B: manage.py {arguments[0]} failed:\n{done.stderr[-2000:]}")
        return done.stdout

    def serve(self, code: Path, name: str) -> Any:
        from devstack.services import ManagedProcess, port_open

        web = ManagedProcess(
            name=f"bench-b-{name}",
            command=[
                str(Path(sys.executable).parent / "daphne"),
                "--port",
                str(self.port),
                "settlement.asgi:application",
            ],
            log_path=self.log_dir / f"bench-b-{name}.log",
            env=self.env,
            cwd=code,
        )
        web.start()
        deadline = time.monotonic() + 60
        while not port_open(self.port):
            if time.monotonic() > deadline or not web.running():
                web.stop()
                raise SystemExit(f"node B ({name}) did not start:\n{web.log_tail()}")
            time.sleep(0.1)
        return web


def _timed(send: Callable[[], Any], count: int) -> list[float]:
    timings = []
    for _ in range(count):
        begin = time.perf_counter()
        send()
        timings.append(time.perf_counter() - begin)
    return timings


def measure_round(peer: Any, pid: int, requests: int, concurrency: int, body_bytes: int) -> dict[str, Any]:
    """One round against a running node B: four measures, each with node B's CPU per request."""
    from settlement.transport import peer_request

    def ping() -> None:
        answer = peer_request(peer, "POST", "/node-api/ping", json_body={})
        if answer.status != 200:
            raise SystemExit(f"node B answered the ping {answer.status}: {answer.body[:300]!r}")

    gossip_body = {"event": "x" * max(0, body_bytes - 12)}

    def gossip_sized() -> None:
        answer = peer_request(peer, "POST", "/node-api/ping", json_body=gossip_body)
        if answer.status != 200:
            raise SystemExit(f"node B answered {answer.status}: {answer.body[:300]!r}")

    _timed(ping, 30)  # warm: node B's first requests import views and open connections
    results: dict[str, Any] = {}
    for name, send in (("signed ping", ping), (f"{body_bytes} B POST", gossip_sized)):
        cpu = _process_cpu_seconds(pid)
        timings = _timed(send, requests)
        results[f"{name}, one at a time"] = {
            "p50_ms": _percentile(timings, 0.5) * 1000,
            "p99_ms": _percentile(timings, 0.99) * 1000,
            "server_cpu_ms": (_process_cpu_seconds(pid) - cpu) * 1000 / requests,
            "per_s": requests / sum(timings),
        }
        cpu = _process_cpu_seconds(pid)
        started = time.perf_counter()
        with ThreadPoolExecutor(concurrency) as pool:
            batches = [pool.submit(_timed, send, requests // concurrency) for _ in range(concurrency)]
            timings = [t for batch in batches for t in batch.result()]
        elapsed = time.perf_counter() - started
        results[f"{name}, {concurrency} at once"] = {
            "p50_ms": _percentile(timings, 0.5) * 1000,
            "p99_ms": _percentile(timings, 0.99) * 1000,
            "server_cpu_ms": (_process_cpu_seconds(pid) - cpu) * 1000 / len(timings),
            "per_s": len(timings) / elapsed,
        }
    return results


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument(
        "--variant", action="append", default=[], help="NAME=DIR: node B's code (default: this tree)"
    )
    parser.add_argument("--rounds", type=int, default=2, help="rounds per variant, alternating")
    parser.add_argument("--requests", type=int, default=300, help="requests per measure and round")
    parser.add_argument("--concurrency", type=int, default=8)
    parser.add_argument("--body-bytes", type=int, default=2300)
    arguments = parser.parse_args(argv)
    variants = [tuple(item.split("=", 1)) for item in arguments.variant] or [("this tree", str(REPO))]
    codes = {name: Path(directory).resolve() for name, directory in variants}

    from devstack.services import free_port

    server = _databases(["parsec_bench_node_api_a", "parsec_bench_node_api_b"])
    log_dir = Path(tempfile.mkdtemp(prefix="parsec-bench-node-api-"))
    node_b = NodeB(f"{server}/parsec_bench_node_api_b", free_port(), log_dir)
    first_code = next(iter(codes.values()))
    node_b.manage(first_code, "migrate", "--noinput", "-v", "0")
    node_b.manage(
        first_code,
        "shell",
        "-c",
        "from settlement.keystore import node_identity_ensure; node_identity_ensure()",
    )

    os.environ.update(
        {
            "DATABASE_URL": f"{server}/parsec_bench_node_api_a",
            "NODE_NAME": "bench-a",
            "NODE_BASE_URL": "http://127.0.0.1:1",
        }
    )
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "settlement.settings")
    import django

    django.setup()
    from django.core.management import call_command

    call_command("migrate", "--noinput", verbosity=0)
    from settlement.identity import fetch_identity_document, node_identity_document, peer_add
    from settlement.keystore import node_identity_ensure

    node_identity_ensure()
    document = json.dumps(node_identity_document())
    node_b.manage(
        first_code,
        "shell",
        "-c",
        "import json; from settlement.identity import peer_add; "
        f"peer_add(base_url='http://127.0.0.1:1', document=json.loads({document!r}), actor='bench')",
    )
    peer = None
    rounds: dict[str, list[dict[str, Any]]] = {name: [] for name in codes}
    for round_number in range(arguments.rounds):
        for name, code in codes.items():
            web = node_b.serve(code, f"{name}-{round_number}")
            try:
                if peer is None:
                    peer = peer_add(
                        base_url=node_b.url, document=fetch_identity_document(node_b.url), actor="bench"
                    )
                assert web.process is not None
                rounds[name].append(
                    measure_round(
                        peer, web.process.pid, arguments.requests, arguments.concurrency, arguments.body_bytes
                    )
                )
            finally:
                web.stop()
            print(f"round {round_number + 1}, {name}: done", flush=True)

    rows = []
    summary: dict[str, Any] = {}
    for name, measured in rounds.items():
        for measure in measured[0]:
            samples = [one[measure] for one in measured]
            row = {
                "node B's code": name,
                "measure": measure,
                **{key: sorted(sample[key] for sample in samples)[len(samples) // 2] for key in samples[0]},
            }
            rows.append(row)
            summary.setdefault(name, {})[measure] = {"median_of_rounds": row, "rounds": samples}
    rows.sort(key=lambda row: (row["measure"], list(codes).index(row["node B's code"])))
    print_table(
        f"Node-to-node requests to daphne (median of {arguments.rounds} alternating rounds; "
        f"the first variant is the peer of the others)",
        rows,
        ["measure", "node B's code", "p50_ms", "p99_ms", "per_s", "server_cpu_ms"],
    )
    print(f"\nnode B's logs: {log_dir}")
    write_results(
        "node_api", {"variants": {name: str(code) for name, code in codes.items()}, "measures": summary}
    )


if __name__ == "__main__":
    main()
