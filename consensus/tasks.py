"""Consensus work in the Celery worker. Tasks take plain values, call one service, are safe twice
(a repeated step only gossips once more; a repeated message is known events, ignored)."""

from __future__ import annotations

import logging
import os
from typing import Any

from celery import shared_task, signals

from consensus import anchoring, services

logger = logging.getLogger("parsec.consensus")


@shared_task(ignore_result=True)
def votes_apply() -> None:
    try:
        services.votes_apply()
    except services.ConsensusShellError as error:
        logger.info("consensus: not voting yet: %s", error.message)


@shared_task(ignore_result=True)
def gossip_tick() -> None:
    """Beat's tick: make sure the gossip loop runs. When no loop holds the node's lock (none
    started yet, the last one ended or died), this task becomes the loop; otherwise it returns
    at once."""
    if services.gossip_loop_running():
        return
    try:
        if services.gossip_loop() == "done":
            # Ended after CONSENSUS_LOOP_SECONDS: hand over at once rather than at the next
            # tick (the worker takes whatever was queued meanwhile first).
            gossip_tick.delay()
    except services.ConsensusShellError as error:
        # Before every validator is a known peer (make run adds peers after starting nodes).
        logger.info("consensus: not gossiping yet: %s", error.message)


@shared_task(ignore_result=True)
def gossip_drain() -> None:
    services.gossip_drain()


@shared_task(ignore_result=True)
def gossip_send(peer_name: str, wire: dict[str, Any]) -> None:
    services.gossip_deliver(peer_name=peer_name, wire=wire)


@shared_task(ignore_result=True)
def anchors_tick() -> None:
    anchoring.anchors_tick()


@signals.worker_shutting_down.connect
def stop_the_gossip_loop(**kwargs: Any) -> None:
    """A warm shutdown waits for running tasks: tell the gossip loop (if it runs here) to end."""
    try:
        services.gossip_loop_stop(worker_pid=os.getpid())
    except Exception:
        logger.warning("consensus: could not ask the gossip loop to stop")
