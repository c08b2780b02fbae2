"""The Celery application of a node, and the worker's heartbeat.

The heartbeat is a worker bootstep, not a beat task: /healthz must be able to tell "the worker
is down" even when beat is down too, and a stopping worker withdraws its heartbeat at once so
the dashboard changes without waiting for a timeout.
"""

from __future__ import annotations

import os
from typing import Any

from celery import Celery, bootsteps, signals

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "settlement.settings")

app = Celery("settlement")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.autodiscover_tasks()


class WorkerHeartbeat(bootsteps.StartStopStep):
    requires = ("celery.worker.components:Timer",)

    def __init__(self, worker: Any, **kwargs: Any) -> None:
        super().__init__(worker, **kwargs)
        self.timer_entry: Any = None

    def start(self, worker: Any) -> None:
        from django.conf import settings

        from settlement import health

        health.worker_heartbeat_write(worker.hostname)
        health.broadcast_health_changed()
        self.timer_entry = worker.timer.call_repeatedly(
            settings.WORKER_HEARTBEAT_SECONDS, health.worker_heartbeat_write, (worker.hostname,), priority=10
        )

    def stop(self, worker: Any) -> None:
        from settlement import health

        if self.timer_entry is not None:
            self.timer_entry.cancel()
        health.worker_heartbeat_clear(worker.hostname)
        health.broadcast_health_changed()


app.steps["worker"].add(WorkerHeartbeat)


@signals.worker_init.connect
def refuse_to_start_with_a_wrong_passphrase(**kwargs: Any) -> None:
    from settlement.keystore import keystore_check

    keystore_check()


@signals.task_prerun.connect
def reuse_healthy_database_connections(sender: Any = None, **kwargs: Any) -> None:
    """What Django does around each request: drop a connection that is broken or older than
    CONN_MAX_AGE, keep the others (CELERY_DB_REUSE_MAX stops Celery closing them every task).
    Not for an eager task: it runs inside its caller's transaction (as Celery's fix-up skips it)."""
    from django.db import close_old_connections

    if getattr(getattr(sender, "request", None), "is_eager", False):
        return
    close_old_connections()
