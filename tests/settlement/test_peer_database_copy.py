"""Peer nodes in multi-node tests start on copies of the test database (tests/support.py)."""

from __future__ import annotations

import threading
import time
from typing import Any

import psycopg
import pytest
from django.conf import settings
from django.db import connections

from tests.support import copy_database, database_url_for_processes


@pytest.mark.django_db(transaction=True)
def test_a_connection_an_earlier_test_left_idle_does_not_stop_the_copy() -> None:
    """An earlier test's thread left its connection to the test database open and idle (what
    executor threads of a closed event loop did, found when two pytest workers ran the files in
    a new order); the copy ends it and goes ahead."""
    source = settings.DATABASES["default"]["NAME"]
    left: list[Any] = []

    def earlier_test_thread() -> None:
        connection = psycopg.connect(database_url_for_processes())
        connection.execute("SELECT 1")
        connection.commit()
        left.append(connection)  # kept alive, idle, after the thread ends

    thread = threading.Thread(target=earlier_test_thread)
    thread.start()
    thread.join()
    connections.close_all()
    admin = database_url_for_processes().rsplit("/", 1)[0] + "/postgres"
    copy = f"{source}_copy_check"
    with psycopg.connect(admin, autocommit=True) as server:
        server.execute(f'DROP DATABASE IF EXISTS "{copy}"')
        started = time.monotonic()
        copy_database(server, name=copy, source=source)
        assert time.monotonic() - started < 30
        (exists,) = server.execute("SELECT count(*) FROM pg_database WHERE datname = %s", (copy,)).fetchone()
        server.execute(f'DROP DATABASE "{copy}"')
    assert exists == 1
    with pytest.raises(psycopg.OperationalError):
        left[0].execute("SELECT 1")
