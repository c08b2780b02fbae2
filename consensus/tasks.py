"""Consensus work in the Celery worker. Tasks take plain values, call one service, are safe twice
(a repeated step only gossips once more; a repeated message is known events, ignored)."""

from __future__ import annotations

from typing import Any

from celery import shared_task

from consensus import anchoring, services


@shared_task(ignore_result=True)
def votes_apply() -> None:
    services.votes_apply()


@shared_task(ignore_result=True)
def gossip_tick() -> None:
    services.gossip_tick()


@shared_task(ignore_result=True)
def gossip_handle(peer_name: str, wire: dict[str, Any]) -> None:
    services.gossip_receive(peer_name=peer_name, wire=wire)


@shared_task(ignore_result=True)
def gossip_send(peer_name: str, wire: dict[str, Any]) -> None:
    services.gossip_deliver(peer_name=peer_name, wire=wire)


@shared_task(ignore_result=True)
def anchors_tick() -> None:
    anchoring.anchors_tick()
