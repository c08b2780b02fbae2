"""The web process takes its PostgreSQL connections from a pool (settlement/settings.py): under
ASGI every request runs in a thread of its own, and without the pool each one started a
PostgreSQL backend of its own (about 18 ms with SCRAM here)."""

from __future__ import annotations

import time

import requests
from django.db import connection

from settlement import keystore


def _sessions_started() -> int:
    """Sessions PostgreSQL has counted for this database (a backend's count is flushed when it
    ends, or at most a second after its last transaction)."""
    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_stat_clear_snapshot()")
        cursor.execute("SELECT sessions FROM pg_stat_database WHERE datname = current_database()")
        return int(cursor.fetchone()[0])


def test_requests_to_the_web_process_reuse_pooled_connections(live_web):
    keystore.node_identity_ensure()
    identity_url = f"{live_web.url}/.well-known/parsec.json"
    assert requests.get(identity_url, timeout=10).status_code == 200  # the pool opens
    time.sleep(1.5)
    before = _sessions_started()

    for _ in range(30):
        response = requests.get(identity_url, timeout=10)
        assert response.status_code == 200
        assert response.json()["keys"]  # read from the database, not a cache of the first answer

    time.sleep(1.5)  # let ended backends (one per request, without the pool) report
    assert _sessions_started() - before < 10
