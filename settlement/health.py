"""The node's health: PostgreSQL, Redis, the Celery worker and the Ethereum RPC.

`/healthz`, the Overview page and the health samples all read it from here. Each probe is
short and bounded by a timeout: a health check that hangs is itself an outage.
"""

from __future__ import annotations

import functools
import threading
import time
from dataclasses import asdict, dataclass, field
from typing import Any

import redis
from asgiref.sync import async_to_sync
from channels.layers import get_channel_layer
from django.conf import settings
from django.db import connection
from web3 import HTTPProvider, Web3

HEALTH_GROUP = "node-health"


@dataclass(frozen=True)
class ServiceHealth:
    name: str
    up: bool
    detail: dict[str, Any] = field(default_factory=dict)
    error: str = ""


@dataclass(frozen=True)
class NodeHealth:
    node: str
    services: tuple[ServiceHealth, ...]

    @property
    def up(self) -> bool:
        return all(service.up for service in self.services)

    @property
    def down(self) -> list[str]:
        return [service.name for service in self.services if not service.up]

    def as_json(self) -> dict[str, Any]:
        return {
            "node": self.node,
            "status": "up" if self.up else "down",
            "down": self.down,
            "services": {service.name: asdict(service) for service in self.services},
        }

    def signature(self) -> tuple[tuple[str, bool], ...]:
        """What a viewer must be told about when it changes (not every block number)."""
        return tuple((service.name, service.up) for service in self.services)


@functools.cache
def _redis_client_for(url: str) -> redis.Redis:
    return redis.Redis.from_url(url, socket_timeout=1, socket_connect_timeout=1, health_check_interval=30)


def redis_client() -> redis.Redis:
    """One client (and connection pool, which is thread-safe) per process and URL: a new client
    per call would open a TCP connection per nonce check."""
    return _redis_client_for(settings.REDIS_URL)


def _heartbeat_key(hostname: str) -> str:
    return f"{settings.REDIS_KEY_PREFIX}:worker-heartbeat:{hostname}"


def worker_heartbeat_write(hostname: str) -> None:
    # The key expires after three missed beats, so a worker killed with SIGKILL goes down too.
    ttl = max(1, int(settings.WORKER_HEARTBEAT_SECONDS * 3))
    redis_client().set(_heartbeat_key(hostname), str(time.time()), ex=ttl)


def worker_heartbeat_clear(hostname: str) -> None:
    redis_client().delete(_heartbeat_key(hostname))


def check_database() -> ServiceHealth:
    try:
        started = time.perf_counter()
        with connection.cursor() as cursor:
            cursor.execute("SELECT version()")
            (version,) = cursor.fetchone()
        elapsed_ms = round((time.perf_counter() - started) * 1000, 2)
    except Exception as error:  # any driver error means the same thing to an operator: down
        return ServiceHealth("database", False, error=_one_line(error))
    return ServiceHealth("database", True, {"server": version.split(" on ")[0], "latency_ms": elapsed_ms})


def check_redis() -> ServiceHealth:
    try:
        started = time.perf_counter()
        redis_client().ping()
        elapsed_ms = round((time.perf_counter() - started) * 1000, 2)
    except redis.RedisError as error:
        return ServiceHealth("redis", False, error=_one_line(error))
    return ServiceHealth("redis", True, {"latency_ms": elapsed_ms})


def check_worker() -> ServiceHealth:
    try:
        client = redis_client()
        keys = list(client.scan_iter(match=_heartbeat_key("*"), count=100))
        beats = {key.decode().rsplit(":", 1)[-1]: float(client.get(key) or 0) for key in keys}
    except redis.RedisError as error:
        return ServiceHealth("worker", False, error=f"cannot read heartbeats: {_one_line(error)}")
    if not beats:
        return ServiceHealth("worker", False, error="no Celery worker has sent a heartbeat")
    now = time.time()
    return ServiceHealth(
        "worker",
        True,
        {"workers": sorted(beats), "last_heartbeat_age_s": round(now - max(beats.values()), 2)},
    )


def check_ethereum() -> ServiceHealth:
    try:
        started = time.perf_counter()
        web3 = Web3(
            HTTPProvider(settings.ETH_RPC_URL, request_kwargs={"timeout": settings.ETH_RPC_TIMEOUT_SECONDS})
        )
        chain_id = web3.eth.chain_id
        latest = web3.eth.block_number
        elapsed_ms = round((time.perf_counter() - started) * 1000, 2)
    except Exception as error:  # web3 raises many types for one fact: the RPC did not answer
        return ServiceHealth("ethereum", False, error=_one_line(error))
    return ServiceHealth(
        "ethereum", True, {"chain_id": chain_id, "latest_block": latest, "latency_ms": elapsed_ms}
    )


def node_health() -> NodeHealth:
    return NodeHealth(
        node=settings.NODE_NAME,
        services=(check_database(), check_redis(), check_worker(), check_ethereum()),
    )


def broadcast(group: str, event_type: str) -> None:
    """Tell every open page in ``group`` to look again. Best effort: a dashboard refresh is
    not worth failing the work that caused it, and the pages re-read on their own anyway."""
    try:
        layer = get_channel_layer()
        if layer is not None:
            async_to_sync(layer.group_send)(group, {"type": event_type})
    except Exception:  # noqa: S110 - see the docstring
        pass


class ThrottledBroadcast:
    """Tells the pages of ``group`` to look again, at most every ``interval`` seconds, off the
    caller's thread. "Look again" is idempotent, so a thousand changes a second need a few
    messages, not a thousand, and the work that caused them does not wait for the channel layer."""

    interval = 0.2

    def __init__(self, group: str, event_type: str) -> None:
        self.group, self.event_type = group, event_type
        self.wanted = threading.Event()
        self.thread: threading.Thread | None = None
        self.lock = threading.Lock()

    def request(self) -> None:
        self.wanted.set()
        with self.lock:
            if self.thread is None or not self.thread.is_alive():
                self.thread = threading.Thread(target=self.run, name=f"broadcast-{self.group}", daemon=True)
                self.thread.start()

    def run(self) -> None:
        while self.wanted.wait(timeout=60):
            self.wanted.clear()
            broadcast(self.group, self.event_type)
            time.sleep(self.interval)
        with self.lock:
            self.thread = None


def broadcast_health_changed() -> None:
    broadcast(HEALTH_GROUP, "health.changed")


def _one_line(error: BaseException) -> str:
    text = str(error).strip().splitlines()
    return f"{type(error).__name__}: {text[0] if text else ''}"[:300]
