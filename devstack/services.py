"""The backing services a Parsec node needs, started on loopback under one directory.

`make run` keeps them under var/ so a second run finds its data again; `make test` starts the
same services on free ports in a temporary directory. Both go through this module, so what the
tests run against is what an operator runs.
"""

from __future__ import annotations

import contextlib
import glob
import json
import os
import pwd
import secrets
import shutil
import signal
import socket
import subprocess
import time
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
ANVIL_BINARY = REPO / "node_modules" / "@foundry-rs" / "anvil-linux-amd64" / "bin" / "anvil"


class ServiceError(RuntimeError):
    """A service could not be started; the message names it and says how to fix it."""


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def port_open(port: int, host: str = "127.0.0.1") -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.settimeout(0.2)
        return sock.connect_ex((host, port)) == 0


def wait_until(predicate: object, *, timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():  # type: ignore[operator]
            return
        time.sleep(0.1)
    raise ServiceError(f"{what} did not come up within {timeout:.0f} s")


def _postgres_bindir() -> Path:
    """The newest PostgreSQL server binaries installed by Debian's packages (15 or later)."""
    candidates = sorted(
        glob.glob("/usr/lib/postgresql/*/bin/initdb"), key=lambda p: int(Path(p).parent.parent.name)
    )
    for candidate in reversed(candidates):
        if int(Path(candidate).parent.parent.name) >= 15:
            return Path(candidate).parent
    raise ServiceError(
        "PostgreSQL 15 or later is not installed: run `sudo apt-get install postgresql` (make run does this)"
    )


def _server_user() -> pwd.struct_passwd | None:
    """PostgreSQL refuses to run as root; as root we run it as the `postgres` system user."""
    if os.geteuid() != 0:
        return None
    try:
        return pwd.getpwnam("postgres")
    except KeyError as error:
        raise ServiceError(
            "running as root needs the `postgres` system user: apt-get install postgresql"
        ) from error


def _as_server_user(command: list[str]) -> list[str]:
    user = _server_user()
    return ["runuser", "-u", user.pw_name, "--", *command] if user else command


def _give_to_server_user(path: Path) -> None:
    user = _server_user()
    if user:
        os.chown(path, user.pw_uid, user.pw_gid)


@dataclass
class Postgres:
    """A PostgreSQL cluster of our own (initdb + pg_ctl), listening on 127.0.0.1 only."""

    directory: Path
    port: int
    user: str = "parsec"

    @property
    def data_dir(self) -> Path:
        return self.directory / "data"

    @property
    def password_file(self) -> Path:
        return self.directory / "password"

    @property
    def password(self) -> str:
        return self.password_file.read_text().strip()

    def url(self, database: str) -> str:
        return f"postgres://{self.user}:{self.password}@127.0.0.1:{self.port}/{database}"

    def _initialise(self) -> None:
        self.directory.mkdir(parents=True, exist_ok=True)
        # The cluster's directories must be reachable by the server user when we run as root.
        for parent in [self.directory, *self.directory.parents]:
            if parent == Path("/"):
                break
            mode = parent.stat().st_mode
            if os.geteuid() == 0 and not mode & 0o001:
                os.chmod(parent, mode | 0o001)
        _give_to_server_user(self.directory)
        password = secrets.token_urlsafe(24)
        self.password_file.write_text(password + "\n")
        os.chmod(self.password_file, 0o600)
        pwfile = self.directory / "initdb-password"
        pwfile.write_text(password + "\n")
        _give_to_server_user(pwfile)
        try:
            subprocess.run(
                _as_server_user(
                    [
                        str(_postgres_bindir() / "initdb"),
                        "--pgdata",
                        str(self.data_dir),
                        "--username",
                        self.user,
                        "--pwfile",
                        str(pwfile),
                        "--auth-local",
                        "scram-sha-256",
                        "--auth-host",
                        "scram-sha-256",
                        "--encoding",
                        "UTF8",
                        "--locale",
                        "C",
                    ]
                ),
                check=True,
                capture_output=True,
                text=True,
            )
        except subprocess.CalledProcessError as error:
            raise ServiceError(f"initdb failed for {self.data_dir}:\n{error.stderr}") from error
        finally:
            pwfile.unlink(missing_ok=True)

    def start(self, *, fast: bool = False) -> None:
        if not (self.data_dir / "PG_VERSION").exists():
            self._initialise()
        if port_open(self.port):
            if self.is_ours():
                return
            raise ServiceError(
                f"port {self.port} is taken by another program; set PARSEC_PG_PORT to a free port"
            )
        options = [
            f"-p {self.port}",
            "-c listen_addresses=127.0.0.1",
            f"-k {self.data_dir}",
            "-c max_connections=200",
        ]
        if fast:
            # Test clusters are thrown away: durability costs time and buys nothing there.
            options += ["-c fsync=off", "-c synchronous_commit=off", "-c full_page_writes=off"]
        log = self.directory / "postgres.log"
        log.touch()
        _give_to_server_user(log)
        try:
            subprocess.run(
                _as_server_user(
                    [
                        str(_postgres_bindir() / "pg_ctl"),
                        "--pgdata",
                        str(self.data_dir),
                        "--log",
                        str(log),
                        "--options",
                        " ".join(options),
                        "--wait",
                        "--timeout",
                        "60",
                        "start",
                    ]
                ),
                check=True,
                capture_output=True,
                text=True,
            )
        except subprocess.CalledProcessError as error:
            tail = log.read_text()[-2000:] if log.exists() else ""
            raise ServiceError(
                f"PostgreSQL did not start on port {self.port}:\n{error.stdout}\n{tail}"
            ) from error

    def is_ours(self) -> bool:
        pid_file = self.data_dir / "postmaster.pid"
        return pid_file.exists() and f"\n{self.port}\n" in pid_file.read_text()

    def stop(self) -> None:
        if not (self.data_dir / "postmaster.pid").exists():
            return
        subprocess.run(
            _as_server_user(
                [str(_postgres_bindir() / "pg_ctl"), "--pgdata", str(self.data_dir), "--mode", "fast", "stop"]
            ),
            check=False,
            capture_output=True,
        )

    def ensure_database(self, name: str) -> None:
        import psycopg

        with psycopg.connect(self.url("postgres"), autocommit=True) as connection:
            exists = connection.execute("SELECT 1 FROM pg_database WHERE datname = %s", (name,)).fetchone()
            if not exists:
                connection.execute(f'CREATE DATABASE "{name}"')


@dataclass
class ManagedProcess:
    """A child process with its output in a log file, stopped with its whole process group."""

    name: str
    command: list[str]
    log_path: Path
    env: dict[str, str] = field(default_factory=dict)
    cwd: Path = REPO
    process: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        self.log_path.parent.mkdir(parents=True, exist_ok=True)
        log = open(self.log_path, "ab")  # noqa: SIM115 - the child owns it for its lifetime
        self.process = subprocess.Popen(
            self.command,
            stdout=log,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            env={**os.environ, **self.env},
            cwd=self.cwd,
            start_new_session=True,
        )
        log.close()

    def running(self) -> bool:
        return self.process is not None and self.process.poll() is None

    def stop(self, timeout: float = 15.0) -> None:
        if not self.process or self.process.poll() is not None:
            return
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.process.pid, signal.SIGTERM)
        try:
            self.process.wait(timeout)
        except subprocess.TimeoutExpired:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.process.pid, signal.SIGKILL)
            self.process.wait()

    def kill(self) -> None:
        """Stop at once, skipping the graceful shutdown: for a test's throw-away process when the
        test is over (daphne's graceful stop costs a second or more of CPU, tens of times a run).
        A test that examines a shutdown calls ``stop``."""
        if not self.process or self.process.poll() is not None:
            return
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.process.pid, signal.SIGKILL)
        self.process.wait()

    def log_tail(self, characters: int = 3000) -> str:
        return self.log_path.read_text(errors="replace")[-characters:] if self.log_path.exists() else ""


def redis_process(directory: Path, port: int) -> ManagedProcess:
    server = shutil.which("redis-server")
    if not server:
        raise ServiceError("redis-server is not installed: run `sudo apt-get install redis-server`")
    directory.mkdir(parents=True, exist_ok=True)
    return ManagedProcess(
        name="redis",
        command=[
            server,
            "--port",
            str(port),
            "--bind",
            "127.0.0.1",
            "--dir",
            str(directory),
            "--save",
            "60 1",
            "--daemonize",
            "no",
            "--databases",
            "64",
        ],
        log_path=directory / "redis.log",
    )


def redis_ready(port: int) -> bool:
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=0.5) as sock:
            sock.sendall(b"PING\r\n")
            return sock.recv(16).startswith(b"+PONG")
    except OSError:
        return False


def anvil_process(directory: Path, port: int, *, block_time: int | None = None) -> ManagedProcess:
    if not ANVIL_BINARY.exists():
        raise ServiceError("anvil is missing: run `npm ci` (make run does this)")
    directory.mkdir(parents=True, exist_ok=True)
    command = [
        str(ANVIL_BINARY),
        "--host",
        "127.0.0.1",
        "--port",
        str(port),
        "--chain-id",
        "31337",
        "--state",
        str(directory / "state.json"),
        "--silent",
    ]
    if block_time:
        command += ["--block-time", str(block_time)]
    return ManagedProcess(name="anvil", command=command, log_path=directory / "anvil.log")


def json_rpc(url: str, method: str, params: list[object] | None = None, timeout: float = 2.0) -> object:
    body = json.dumps({"jsonrpc": "2.0", "id": 1, "method": method, "params": params or []}).encode()
    if not url.startswith(("http://", "https://")):
        raise ServiceError(f"{url} is not an HTTP JSON-RPC URL")
    request = urllib.request.Request(url, body, {"Content-Type": "application/json"})  # noqa: S310 - checked above
    with urllib.request.urlopen(request, timeout=timeout) as response:  # noqa: S310 - checked above
        answer = json.loads(response.read())
    if "error" in answer:
        raise ServiceError(f"{method}: {answer['error']}")
    return answer["result"]


def anvil_ready(port: int) -> bool:
    try:
        json_rpc(f"http://127.0.0.1:{port}", "eth_chainId", timeout=0.5)
    except (OSError, ServiceError):
        return False
    return True
