"""The gossip loop in a real Celery worker: beat's tick starts it, at most one runs per node (a
Redis lock), a loop that dies is replaced at the next tick, and a gossip message arriving over
HTTP wakes it at once (it blocks on the inbox; it does not poll).

The worker here has two processes, as `make run` starts it, so a second loop *could* start in
the other process if the lock did not stop it; its lock and idle timers are set long enough
that only a wake-up, never a timer, can explain a prompt answer."""

from __future__ import annotations

import json
import os
import signal
import time
from collections.abc import Iterator
from typing import Any

import pytest
from consensus_shell_support import single_validator, wait_for
from test_consensus_shell_bad_gossip import _post, inbox, validator_pair_behind_inbox

from consensus import services, tasks
from consensus.models import Block, ObservationStatus, PendingObservation
from consensus.protocol import Request, message_from_wire
from settlement.keystore import node_signer
from tests.conftest import CeleryWorker

pytestmark = pytest.mark.worker
__all__ = ["inbox", "single_validator"]

LOCK_SECONDS = 3.0


def _worker(tmp_path: Any, **env: str) -> CeleryWorker:
    worker = CeleryWorker(tmp_path)
    command = worker.process.command
    command[command.index("--concurrency") + 1] = "2"
    worker.process.env = {**(worker.process.env or {}), **env}
    return worker


def _loop_worker(tmp_path: Any, lock_seconds: float) -> Iterator[CeleryWorker]:
    # Idle rounds and request timeouts far away: the loop wakes by itself only to refresh its
    # lock (every third of lock_seconds).
    worker = _worker(
        tmp_path,
        CONSENSUS_LOOP_LOCK_SECONDS=str(lock_seconds),
        CONSENSUS_GOSSIP_SECONDS="60",
        CONSENSUS_RESPONSE_TIMEOUT_SECONDS="60",
    )
    worker.start()
    yield worker
    worker.stop()
    services.health.redis_client().delete(services._loop_lock_key(), services._inbox_key())


@pytest.fixture
def loop_worker(transactional_db: None, tmp_path: Any) -> Iterator[CeleryWorker]:
    """A two-process worker whose loop holds a 3 s lock."""
    yield from _loop_worker(tmp_path, LOCK_SECONDS)


@pytest.fixture
def slow_timer_worker(transactional_db: None, tmp_path: Any) -> Iterator[CeleryWorker]:
    """A two-process worker whose loop looks around by itself only every 10 s."""
    yield from _loop_worker(tmp_path, 30.0)


def _tick_until_a_loop_runs(*, other_than: str | None = None, timeout: float = 30.0) -> str:
    """Send beat's tick (as beat would, every 0.2 s) until a loop holds the lock."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        tasks.gossip_tick.delay()
        holder = services.gossip_loop_holder()
        if holder is not None and holder != other_than:
            return holder
        time.sleep(0.2)
    raise AssertionError(f"no gossip loop started within {timeout} s")


def _pid_of(holder: str) -> int:
    return int(holder.split(":")[1])


def test_ticks_start_one_loop_and_only_one(single_validator, loop_worker):
    holder = _tick_until_a_loop_runs()
    assert _pid_of(holder) != os.getpid()

    # Ticks keep coming (the worker's other process takes them) and the same loop keeps the
    # lock for longer than the lock lasts unrefreshed; a loop started here is refused too.
    for _ in range(15):
        tasks.gossip_tick.delay()
        time.sleep(0.2)
    assert services.gossip_loop_holder() == holder
    assert services.gossip_loop(seconds=1) == "busy"
    assert services.gossip_loop_holder() == holder

    # The one loop does the work: a vote is agreed (N = 1) without any votes_apply task.
    services.consensus_vote(payload=b"through the loop", kind="test.payment")
    wait_for(
        lambda: PendingObservation.objects.filter(status=ObservationStatus.AGREED).exists(), what="agreement"
    )
    assert Block.objects.exists()


def test_a_killed_loop_is_replaced_at_the_next_tick(single_validator, loop_worker):
    first = _tick_until_a_loop_runs()
    os.kill(_pid_of(first), signal.SIGKILL)  # the worker process running the loop dies at once

    # Its lock is not released by anyone: it expires, and a later tick starts a new loop
    # (in the process the worker made to replace the dead one, or in its other one).
    killed_at = time.monotonic()
    second = _tick_until_a_loop_runs(other_than=first)
    assert _pid_of(second) != _pid_of(first)
    assert time.monotonic() - killed_at < LOCK_SECONDS + 10

    services.consensus_vote(payload=b"after the crash", kind="test.payment")
    wait_for(
        lambda: PendingObservation.objects.filter(status=ObservationStatus.AGREED).exists(),
        what="agreement by the new loop",
    )


def test_a_loop_that_fails_releases_its_lock_for_the_next_tick(single_validator, monkeypatch):
    """In this process: a step that raises ends the loop, and its lock goes with it, so the
    next tick does not wait for the lock to expire."""

    def broken_step(self: Any, messages: Any) -> None:
        raise RuntimeError("the database went away")

    monkeypatch.setattr(services._GossipLoop, "_step", broken_step)
    with pytest.raises(RuntimeError):
        services.gossip_loop(seconds=5)
    assert not services.gossip_loop_running()


@pytest.fixture
def two_validators_over_http(transactional_db, inbox, live_web, slow_timer_worker):
    yield from validator_pair_behind_inbox(inbox, live_web)


def test_incoming_gossip_wakes_the_loop(two_validators_over_http):
    peer, web, inbox = two_validators_over_http
    our_id = node_signer().public_key
    _tick_until_a_loop_runs()

    answered_within = []
    for _ in range(4):
        # Wait a moment so the loop is blocked on the inbox again when the request arrives.
        time.sleep(0.5)
        request = peer.parsec.create_gossip(our_id)
        sent = time.monotonic()
        answer = _post(peer, web.url, json.dumps({"message": request.to_wire()}).encode())
        assert answer.status_code == 202, answer.content
        while True:
            message = message_from_wire(inbox.messages.get(timeout=30)["message"])
            if isinstance(message, Request):  # the loop's own round (its first step): answer it
                response = peer.parsec.handle_request(our_id, message)
                _post(peer, web.url, json.dumps({"message": response.to_wire()}).encode())
                continue
            answered_within.append(time.monotonic() - sent)
            peer.parsec.handle_response(our_id, message)
            break

    # Left alone the loop would look at the inbox only when its lock needs refreshing (every
    # 10 s) or a timer falls due (a minute): four answers within 2 s come from the wake-up.
    assert max(answered_within) < 2.0, answered_within
    assert services.gossip_loop_running()
