"""Point each pytest-xdist worker at its own PostgreSQL, Redis and anvil.

`python -m devstack test` runs the suite in several worker processes and starts one set of
services per worker; it lists each set's settings in PARSEC_TEST_STACKS and loads this module with
`-p devstack.pytest_stacks`. A `-p` plugin is imported while pytest parses its arguments, before
pytest-django imports the Django settings (which read these variables), so setting them here, at
import, is early enough.

The workers share nothing then. Sharing would not do: anvil has one clock and one chain that
tests move (`evm_increaseTime`, `anvil_reorg`, snapshots), Celery workers on one Redis take each
other's tasks, and peer nodes' databases are named after the test database.
"""

from __future__ import annotations

import json
import os


def _settings_for_this_worker() -> dict[str, str]:
    stacks: list[dict[str, str]] = json.loads(os.environ["PARSEC_TEST_STACKS"])
    # "gw0", "gw1", ...; the controller, which runs no test, keeps the first set.
    worker = os.environ.get("PYTEST_XDIST_WORKER", "gw0")
    index = int(worker.removeprefix("gw"))
    if index >= len(stacks):
        # A restarted worker gets a fresh number; `--max-worker-restart 0` should prevent it.
        raise RuntimeError(f"pytest worker {worker} has no services: {len(stacks)} were started")
    return stacks[index]


if "PARSEC_TEST_STACKS" in os.environ:
    os.environ.update(_settings_for_this_worker())
