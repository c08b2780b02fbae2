"""`make test` runs the suite in pytest-xdist workers, each against its own services."""

from __future__ import annotations

import json
import os

import pytest
from django.conf import settings

from devstack.__main__ import _pytest_command, _test_workers
from devstack.pytest_stacks import _settings_for_this_worker
from devstack.services import ServiceError

TWO_SETS = [
    {"ETH_RPC_URL": "http://127.0.0.1:1001", "REDIS_URL": "redis://127.0.0.1:2001/1"},
    {"ETH_RPC_URL": "http://127.0.0.1:1002", "REDIS_URL": "redis://127.0.0.1:2002/1"},
]


def test_each_worker_takes_the_set_of_services_with_its_number(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PARSEC_TEST_STACKS", json.dumps(TWO_SETS))
    monkeypatch.setenv("PYTEST_XDIST_WORKER", "gw1")
    assert _settings_for_this_worker() == TWO_SETS[1]
    monkeypatch.delenv("PYTEST_XDIST_WORKER")
    assert _settings_for_this_worker() == TWO_SETS[0]  # the controller, which runs no test


def test_a_worker_without_a_set_of_its_own_stops_rather_than_share_one(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("PARSEC_TEST_STACKS", json.dumps(TWO_SETS))
    monkeypatch.setenv("PYTEST_XDIST_WORKER", "gw2")
    with pytest.raises(RuntimeError, match="gw2 has no services: 2 were started"):
        _settings_for_this_worker()


@pytest.mark.parametrize("value", ["0", "-1", "two", ""])
def test_a_worker_count_that_is_not_a_positive_whole_number_is_refused(
    monkeypatch: pytest.MonkeyPatch, value: str
) -> None:
    monkeypatch.setenv("PARSEC_TEST_WORKERS", value)
    with pytest.raises(ServiceError, match="PARSEC_TEST_WORKERS must be a whole number of at least 1"):
        _test_workers()


def test_one_worker_runs_plain_pytest_and_more_run_whole_files_per_worker() -> None:
    assert "-n" not in _pytest_command(1)
    several = _pytest_command(3)
    assert several[several.index("-n") + 1] == "3"
    assert several[several.index("--dist") + 1] == "loadfile"
    assert several[several.index("-p") + 1] == "devstack.pytest_stacks"
    assert "--no-loadscope-reorder" in several  # the multi-node files early, not last


def test_this_worker_talks_to_its_own_services_only() -> None:
    if "PARSEC_TEST_STACKS" not in os.environ:
        pytest.skip("the suite runs in one process here (a given command, or PARSEC_TEST_WORKERS=1)")
    sets = json.loads(os.environ["PARSEC_TEST_STACKS"])
    mine = sets[int(os.environ["PYTEST_XDIST_WORKER"].removeprefix("gw"))]
    assert mine["ETH_RPC_URL"] == settings.ETH_RPC_URL
    assert mine["REDIS_URL"] == settings.REDIS_URL
    assert os.environ["DATABASE_URL"] == mine["DATABASE_URL"]
    # No two sets share a port: not PostgreSQL's, Redis's or anvil's.
    for key in ("DATABASE_URL", "REDIS_URL", "ETH_RPC_URL"):
        assert len({services[key] for services in sets}) == len(sets)
