"""A real Celery worker announces itself, runs tasks against PostgreSQL, and withdraws at once on stop."""

from __future__ import annotations

import time

from settlement import health
from settlement.models import HealthSample
from settlement.tasks import health_sample


def test_a_stopped_worker_is_reported_down_at_once(celery_worker):
    assert health.check_worker().up

    celery_worker.stop()

    assert not health.check_worker().up


def test_the_worker_records_a_health_sample_in_postgresql(celery_worker):
    health_sample.delay()

    deadline = time.monotonic() + 20
    while not HealthSample.objects.exists() and time.monotonic() < deadline:
        time.sleep(0.1)
    sample = HealthSample.objects.get()
    assert sample.database_up
    assert sample.redis_up
    assert sample.worker_up
    assert sample.ethereum_up
    assert sample.ethereum_block is not None
