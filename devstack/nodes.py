"""What a node is made of: its processes and its environment.

docker-compose.yml runs the same three processes with the same commands; a test checks that
the two agree.
"""

from __future__ import annotations

import os
import secrets
from dataclasses import dataclass
from pathlib import Path

NODE_NAMES = ("bank-a", "bank-b", "bank-c", "bank-d")
PROCESS_KINDS = ("web", "worker", "beat")


def node_commands(*, node: str, bind: str, port: int, beat_schedule: str) -> dict[str, list[str]]:
    """The command line of each process of one node, with programs named as on $PATH."""
    return {
        "web": ["daphne", "--bind", bind, "--port", str(port), "settlement.asgi:application"],
        "worker": [
            "celery",
            "--app",
            "settlement",
            "worker",
            "--loglevel",
            "INFO",
            "--hostname",
            f"worker@{node}",
            "--concurrency",
            "2",
        ],
        "beat": ["celery", "--app", "settlement", "beat", "--loglevel", "INFO", "--schedule", beat_schedule],
    }


def database_name(node: str) -> str:
    return "parsec_" + node.replace("-", "_")


def _secret_file(path: Path, nbytes: int) -> str:
    """A secret made once and kept: a second `make run` must open the same keys and sessions."""
    if not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True)
        descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(descriptor, "w") as handle:
            handle.write(secrets.token_urlsafe(nbytes) + "\n")
    return path.read_text().strip()


@dataclass(frozen=True)
class NodeConfig:
    name: str
    index: int
    port: int
    node_dir: Path

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def beat_schedule(self) -> Path:
        return self.node_dir / "celerybeat-schedule"

    def environment(
        self, *, database_url: str, redis_port: int, eth_rpc_url: str, var_dir: Path, contracts_file: Path
    ) -> dict[str, str]:
        return {
            "DJANGO_SETTINGS_MODULE": "settlement.settings",
            "NODE_NAME": self.name,
            "NODE_DOMAIN": f"{self.name}.test",
            "NODE_BASE_URL": self.base_url,
            "ALLOWED_HOSTS": "127.0.0.1,localhost",
            "CSRF_TRUSTED_ORIGINS": f"{self.base_url},http://localhost:{self.port}",
            "DATABASE_URL": database_url,
            # One Redis database per node: the Celery queues of two nodes must never mix.
            "REDIS_URL": f"redis://127.0.0.1:{redis_port}/{self.index + 1}",
            "ETH_RPC_URL": eth_rpc_url,
            "SECRET_KEY": _secret_file(self.node_dir / "secret_key", 48),
            "NODE_KEY_PASSPHRASE_FILE": str(self.node_dir / "passphrase"),
            "PARSEC_VAR_DIR": str(var_dir),
            "PARSEC_CONTRACTS_FILE": str(contracts_file),
        }

    def ensure_passphrase(self) -> None:
        _secret_file(self.node_dir / "passphrase", 32)
