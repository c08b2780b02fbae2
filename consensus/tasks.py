"""Consensus work in the Celery worker. Tasks take plain values, call one service, are safe twice
(a repeated step only gossips once more; a repeated message is known events, ignored)."""

from __future__ import annotations

import logging
from typing import Any

from celery import shared_task

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
    try:
        services.gossip_tick()
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
