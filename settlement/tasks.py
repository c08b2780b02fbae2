"""Background work shared by every app. Tasks take ids, reload, call a service; safe twice."""

from __future__ import annotations

from datetime import timedelta

from celery import shared_task
from django.utils import timezone

from settlement import health
from settlement.models import HealthSample

HEALTH_HISTORY = timedelta(hours=24)


@shared_task(ignore_result=True)
def health_sample() -> None:
    """Record one reading for the Overview's plot, and forget readings older than a day."""
    state = health.node_health()
    by_name = {service.name: service for service in state.services}
    HealthSample.objects.create(
        database_up=by_name["database"].up,
        redis_up=by_name["redis"].up,
        worker_up=by_name["worker"].up,
        ethereum_up=by_name["ethereum"].up,
        ethereum_block=by_name["ethereum"].detail.get("latest_block"),
        ethereum_latency_ms=by_name["ethereum"].detail.get("latency_ms"),
        database_latency_ms=by_name["database"].detail.get("latency_ms"),
    )
    HealthSample.objects.filter(taken_at__lt=timezone.now() - HEALTH_HISTORY).delete()


@shared_task(ignore_result=True)
def peers_ping() -> None:
    """Ping every peer; the Peers page shows who answered and how fast."""
    from settlement.identity import peers_ping_all

    peers_ping_all()
