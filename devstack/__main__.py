"""`python -m devstack run|stop|test`: what `make run`, `make stop` and `make test` do.

run   starts PostgreSQL, Redis and anvil under var/, then each node's web, worker and beat, and
      supervises them until Ctrl-C or `make stop`; a second run keeps the data.
stop  stops a running `make run`.
test  (or exec) starts the same services on free ports in a temporary directory, runs the given command
      (by default `make lint` and pytest) against them, and stops them.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from types import FrameType

from devstack.contracts import compile_contracts, deploy_shared_contracts
from devstack.nodes import NODE_NAMES, PROCESS_KINDS, NodeConfig, database_name, node_commands
from devstack.services import (
    REPO,
    ManagedProcess,
    Postgres,
    ServiceError,
    anvil_process,
    anvil_ready,
    free_port,
    port_open,
    redis_process,
    redis_ready,
    wait_until,
)

VENV_BIN = Path(sys.executable).parent


@dataclass
class Stack:
    """PostgreSQL, Redis and anvil, under one directory."""

    root: Path
    pg_port: int
    redis_port: int
    anvil_port: int
    fast: bool = False
    anvil_block_time: int | None = None
    postgres: Postgres = field(init=False)
    processes: list[ManagedProcess] = field(default_factory=list)

    def __post_init__(self) -> None:
        self.postgres = Postgres(self.root / "pg", self.pg_port)

    @property
    def eth_rpc_url(self) -> str:
        return f"http://127.0.0.1:{self.anvil_port}"

    @property
    def contracts_file(self) -> Path:
        return self.root / "contracts.json"

    def start(self) -> None:
        say(f"PostgreSQL on 127.0.0.1:{self.pg_port}")
        self.postgres.start(fast=self.fast)
        if redis_ready(self.redis_port):
            say(f"Redis already answers on 127.0.0.1:{self.redis_port}; using it")
        else:
            if port_open(self.redis_port):
                raise ServiceError(f"port {self.redis_port} is taken; set PARSEC_REDIS_PORT to a free port")
            say(f"Redis on 127.0.0.1:{self.redis_port}")
            redis = redis_process(self.root / "redis", self.redis_port)
            redis.start()
            self.processes.append(redis)
            wait_until(lambda: redis_ready(self.redis_port), timeout=20, what="Redis")
        if anvil_ready(self.anvil_port):
            say(f"anvil already answers on 127.0.0.1:{self.anvil_port}; using it")
        else:
            if port_open(self.anvil_port):
                raise ServiceError(f"port {self.anvil_port} is taken; set PARSEC_ANVIL_PORT to a free port")
            say(f"anvil on 127.0.0.1:{self.anvil_port}")
            anvil = anvil_process(self.root / "anvil", self.anvil_port, block_time=self.anvil_block_time)
            anvil.start()
            self.processes.append(anvil)
            wait_until(lambda: anvil_ready(self.anvil_port), timeout=30, what="anvil")
        compile_contracts()
        deployed = deploy_shared_contracts(self.eth_rpc_url, self.contracts_file)
        for name, entry in deployed["contracts"].items():  # type: ignore[attr-defined]
            say(f"contract {name} at {entry['address']}")

    def stop(self) -> None:
        for process in reversed(self.processes):
            process.stop()
        self.postgres.stop()


def say(message: str) -> None:
    print(f"[parsec] {message}", flush=True)


def python_command(command: list[str]) -> list[str]:
    """Run a console script from our virtualenv, not whatever is first on $PATH."""
    return [str(VENV_BIN / command[0]), *command[1:]]


def manage(env: dict[str, str], *args: str) -> None:
    result = subprocess.run(
        [sys.executable, str(REPO / "manage.py"), *args],
        env={**os.environ, **env},
        cwd=REPO,
        capture_output=True,
        text=True,
    )
    if result.returncode != 0:
        raise ServiceError(
            f"manage.py {' '.join(args)} failed for {env['NODE_NAME']}:\n{result.stderr[-3000:]}"
        )
    if result.stdout.strip():
        for line in result.stdout.strip().splitlines()[-3:]:
            say(line)


class Supervisor:
    """Starts every node's processes, restarts one that dies (a few times), stops all at the end."""

    max_restarts = 5

    def __init__(self, stack: Stack, nodes: list[NodeConfig]) -> None:
        self.stack = stack
        self.nodes = nodes
        self.children: list[ManagedProcess] = []
        self.environments: dict[str, dict[str, str]] = {}
        self.restarts: dict[str, int] = {}
        self.stopping = False

    def prepare(self, node: NodeConfig) -> dict[str, str]:
        node.ensure_passphrase()
        self.stack.postgres.ensure_database(database_name(node.name))
        env = node.environment(
            database_url=self.stack.postgres.url(database_name(node.name)),
            redis_port=self.stack.redis_port,
            eth_rpc_url=self.stack.eth_rpc_url,
            var_dir=self.stack.root,
            contracts_file=self.stack.contracts_file,
        )
        # Every node started is a genesis validator of the consensus (docs/consensus.md).
        env["CONSENSUS_VALIDATORS"] = ",".join(item.name for item in self.nodes)
        manage(env, "migrate", "--noinput")
        manage(
            env,
            "node_bootstrap",
            "--credentials",
            str(self.stack.root / "credentials.json"),
            "--url",
            node.base_url,
        )
        # A few ACCEPTED counterparties per bank, through the same services the API uses.
        manage(env, "counterparties_demo_seed")
        # Anchoring block roots costs gas: on the local anvil, give the node's account ether.
        manage(env, "anchor_account_fund")
        return env

    def start(self) -> None:
        for node in self.nodes:
            if port_open(node.port):
                raise ServiceError(
                    f"port {node.port} for {node.name} is taken; is another `make run` running?"
                )
            env = self.prepare(node)
            self.environments[node.name] = env
            commands = node_commands(
                node=node.name, bind="127.0.0.1", port=node.port, beat_schedule=str(node.beat_schedule)
            )
            for kind in PROCESS_KINDS:
                process = ManagedProcess(
                    name=f"{node.name}-{kind}",
                    command=python_command(commands[kind]),
                    log_path=self.stack.root / "log" / f"{node.name}-{kind}.log",
                    env=env,
                )
                process.start()
                self.children.append(process)
        for node in self.nodes:
            wait_until(lambda node=node: port_open(node.port), timeout=60, what=f"{node.name} web")
        # Every node knows every other as a peer, from the identity each one publishes.
        for node in self.nodes:
            others = [other.base_url for other in self.nodes if other is not node]
            if others:
                manage(self.environments[node.name], "peer_add", *others)
        # Assets, ledgers, deposits and peer credit limits, once every node knows its peers.
        for node in self.nodes:
            manage(self.environments[node.name], "ledgers_demo_seed")
        # One encrypted message from a counterparty of bank-a to one of bank-c (docs/messaging.md).
        names = {node.name: node for node in self.nodes}
        if "bank-a" in names and "bank-c" in names:
            try:
                manage(self.environments["bank-a"], "messages_demo_seed", "--to", "bob*bank-c.test")
            except ServiceError as error:  # a demo message is not worth stopping the network for
                say(f"the demo message was not sent: {error}")
        # Channels (docs/channels.md, "The demo"): every node funds its ledger channel first,
        # then bank-a pays, streams and opens a virtual channel to bank-c through bank-b.
        for stage in ("fund", "use"):
            for node in self.nodes:
                manage(self.environments[node.name], "channels_demo_seed", "--stage", stage)

    def watch(self) -> None:
        while not self.stopping:
            for child in self.children:
                if child.running() or self.stopping:
                    continue
                count = self.restarts.get(child.name, 0)
                if count >= self.max_restarts:
                    say(f"{child.name} keeps dying; see {child.log_path}")
                    continue
                self.restarts[child.name] = count + 1
                say(f"{child.name} exited; restarting ({count + 1}/{self.max_restarts}). Last log lines:")
                print(child.log_tail(800), flush=True)
                child.start()
            time.sleep(1)

    def stop(self) -> None:
        self.stopping = True
        for child in reversed(self.children):
            child.stop()


def run(arguments: argparse.Namespace) -> int:
    var_dir = Path(os.environ.get("PARSEC_VAR_DIR", REPO / "var"))
    pid_file = var_dir / "run" / "devstack.pid"
    if pid_file.exists():
        with contextlib.suppress(ValueError, ProcessLookupError, PermissionError):
            os.kill(int(pid_file.read_text()), 0)
            say(f"`make run` is already running (pid {pid_file.read_text().strip()}); `make stop` stops it")
            return 1
    pid_file.parent.mkdir(parents=True, exist_ok=True)
    pid_file.write_text(str(os.getpid()))
    stack = Stack(
        var_dir,
        pg_port=int(os.environ.get("PARSEC_PG_PORT", "54320")),
        redis_port=int(os.environ.get("PARSEC_REDIS_PORT", "63790")),
        anvil_port=int(os.environ.get("PARSEC_ANVIL_PORT", "8545")),
        # A block a second: confirmations advance even when nobody sends a transaction.
        anvil_block_time=1,
    )
    base_port = int(os.environ.get("PARSEC_WEB_PORT", "8000"))
    nodes = [
        NodeConfig(name, index, base_port + index, var_dir / "nodes" / name)
        for index, name in enumerate(NODE_NAMES[: arguments.nodes])
    ]
    supervisor = Supervisor(stack, nodes)

    def on_signal(signum: int, frame: FrameType | None) -> None:
        supervisor.stopping = True

    signal.signal(signal.SIGINT, on_signal)
    signal.signal(signal.SIGTERM, on_signal)
    try:
        stack.start()
        supervisor.start()
        credentials = json.loads((var_dir / "credentials.json").read_text())
        say("ready. Dashboards (logins in var/credentials.json, mode 0600):")
        for node in nodes:
            entry = credentials.get(node.name, {})
            say(
                f"  {node.name}: {node.base_url}/  user {entry.get('username', '?')}"
                f"  health {node.base_url}/healthz"
            )
        say(f"logs in {var_dir / 'log'}; Ctrl-C or `make stop` stops everything")
        supervisor.watch()
    except ServiceError as error:
        say(f"cannot start: {error}")
        return 1
    finally:
        say("stopping")
        supervisor.stop()
        stack.stop()
        pid_file.unlink(missing_ok=True)
    return 0


def stop(arguments: argparse.Namespace) -> int:
    var_dir = Path(os.environ.get("PARSEC_VAR_DIR", REPO / "var"))
    pid_file = var_dir / "run" / "devstack.pid"
    if not pid_file.exists():
        say("nothing to stop")
        return 0
    pid = int(pid_file.read_text())
    try:
        os.kill(pid, signal.SIGTERM)
    except ProcessLookupError:
        pid_file.unlink(missing_ok=True)
        say("the previous run had already ended")
        Postgres(var_dir / "pg", int(os.environ.get("PARSEC_PG_PORT", "54320"))).stop()
        return 0
    for _ in range(300):
        if not pid_file.exists():
            say("stopped")
            return 0
        time.sleep(0.1)
    say(f"process {pid} did not stop within 30 s")
    return 1


def _run_reporting(command: list[str]) -> int:
    say("$ " + " ".join(command))
    code = subprocess.run(command, cwd=REPO, check=False).returncode
    if code != 0:
        say(f"`{' '.join(command)}` failed with exit code {code}")
    return code


def _pytest_command(workers: int) -> list[str]:
    command = [sys.executable, "-m", "pytest"]
    if workers > 1:
        # Whole files go to one worker (`loadfile`), so a module's nodes start once. In the order
        # collected, not xdist's default of most tests first: that order sends the multi-node
        # files, which have one or two long tests each, last, and the run ends on one worker
        # finishing them. A worker that dies fails the run rather than being replaced by one
        # without services.
        command += ["-p", "devstack.pytest_stacks", "-n", str(workers), "--dist", "loadfile"]
        command += ["--no-loadscope-reorder", "--max-worker-restart", "0"]
    return command


def _lint_beside_pytest(workers: int) -> int:
    """`make lint` runs beside pytest, not before it: pytest's workers spend much of their time
    waiting on the processes they start (nodes, Celery workers, Chromium), so lint's half minute
    of mypy fits in the gaps. Lint's output is held back until it ends, so it does not interleave
    with pytest's; either one failing fails the run."""
    with tempfile.TemporaryFile(mode="w+") as lint_output:
        say("$ make lint (beside pytest; its output follows when it ends)")
        # Its own process group, so that stopping it stops make's children (mypy, ruff) too.
        lint = subprocess.Popen(
            ["make", "lint"],
            cwd=REPO,
            stdout=lint_output,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        try:
            pytest_code = _run_reporting(_pytest_command(workers))
            lint_code = lint.wait()
        finally:
            if lint.poll() is None:
                os.killpg(lint.pid, signal.SIGKILL)
                lint.wait()
        lint_output.seek(0)
        print(lint_output.read(), end="", flush=True)
    if lint_code != 0:
        say(f"`make lint` failed with exit code {lint_code}")
    return pytest_code or lint_code


def _test_workers() -> int:
    """How many pytest processes share the suite: PARSEC_TEST_WORKERS, by default one per core.
    The suite waits more than it computes (on processes it starts, on anvil, on timeouts), so
    two workers on two cores take about half the time one does."""
    value = os.environ.get("PARSEC_TEST_WORKERS", str(os.cpu_count() or 1))
    if not value.isdigit() or int(value) < 1:
        raise ServiceError(f"PARSEC_TEST_WORKERS must be a whole number of at least 1, not {value!r}")
    return int(value)


def _services_settings(stack: Stack) -> dict[str, str]:
    """What the tests read to find one set of services."""
    return {
        "DATABASE_URL": stack.postgres.url("parsec"),
        "REDIS_URL": f"redis://127.0.0.1:{stack.redis_port}/1",
        "ETH_RPC_URL": stack.eth_rpc_url,
        "PARSEC_VAR_DIR": str(stack.root),
        "PARSEC_CONTRACTS_FILE": str(stack.contracts_file),
        "PARSEC_TEST_REDIS_PORT": str(stack.redis_port),
    }


def test(arguments: argparse.Namespace) -> int:
    root = Path(tempfile.mkdtemp(prefix="parsec-test-"))
    stacks: list[Stack] = []
    started = time.monotonic()
    # A run stopped from outside (a CI timeout, `kill`) must still stop its services and remove
    # its directory: SystemExit unwinds through the `finally` below, which SIGTERM would skip.
    signal.signal(signal.SIGTERM, lambda number, frame: sys.exit(128 + number))
    try:
        # A given command gets one set of services; the whole suite one set per pytest worker,
        # since the workers must not share a chain, a Redis or a database server.
        workers = 1 if arguments.command else _test_workers()
        for number in range(workers):
            directory = root / f"services-{number}"
            directory.mkdir()
            for path in (root, directory):
                os.chmod(path, 0o755)  # noqa: S103 - the PostgreSQL server runs as its own user and must reach its files
            stack = Stack(
                directory, pg_port=free_port(), redis_port=free_port(), anvil_port=free_port(), fast=True
            )
            stacks.append(stack)
            stack.start()
            stack.postgres.ensure_database("parsec")
        env = {
            **_services_settings(stacks[0]),
            "SECRET_KEY": "test-only-secret-key-" + os.urandom(8).hex(),
            "NODE_KEY_PASSPHRASE": "test-only-passphrase-" + os.urandom(8).hex(),
            "NODE_NAME": "bank-test",
            "PATH": f"{VENV_BIN}:{os.environ.get('PATH', '')}",
        }
        if workers > 1:
            env["PARSEC_TEST_STACKS"] = json.dumps([_services_settings(stack) for stack in stacks])
        os.environ.update(env)
        say(f"{workers} set(s) of services up in {time.monotonic() - started:.1f} s under {root}")
        if arguments.command:
            return _run_reporting(arguments.command)
        return _lint_beside_pytest(workers)
    except ServiceError as error:
        say(f"cannot start the test services: {error}")
        return 1
    finally:
        for stack in reversed(stacks):
            stack.stop()
        shutil.rmtree(root, ignore_errors=True)
        say(f"test services stopped after {time.monotonic() - started:.0f} s")


def main() -> int:
    parser = argparse.ArgumentParser(prog="python -m devstack", description=__doc__.splitlines()[0])
    commands = parser.add_subparsers(dest="action", required=True)
    run_parser = commands.add_parser("run", help="start the local network")
    run_parser.add_argument(
        "--nodes", type=int, default=len(NODE_NAMES), choices=range(1, len(NODE_NAMES) + 1)
    )
    commands.add_parser("stop", help="stop the local network")
    for name in ("test", "exec"):
        test_parser = commands.add_parser(name, help="run a command against throw-away services")
        test_parser.add_argument("command", nargs=argparse.REMAINDER, help="default: make lint beside pytest")
    arguments = parser.parse_args()
    if getattr(arguments, "command", None) and arguments.command[0] == "--":
        arguments.command = arguments.command[1:]
    handlers = {"run": run, "stop": stop, "test": test, "exec": test}
    return handlers[arguments.action](arguments)


if __name__ == "__main__":
    sys.exit(main())
