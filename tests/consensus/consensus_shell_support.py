"""Helpers for the consensus shell's tests (fixtures are imported from here by each test file)."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from typing import Any

import pytest


def wait_for(condition: Callable[[], Any], *, timeout: float = 30.0, what: str = "the condition") -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = condition()
        if value:
            return value
        time.sleep(0.05)
    raise AssertionError(f"timed out after {timeout} s waiting for {what}")


@pytest.fixture
def single_validator(transactional_db: None) -> Iterator[Any]:
    """This node as the only validator (N=1), its keys made, no state cached from other tests."""
    from django.conf import settings

    from consensus import services
    from settlement.keystore import node_identity_ensure

    services.forget_cached_state()
    node_identity_ensure()
    yield services.consensus_state_ensure(validators=[settings.NODE_NAME])
    services.forget_cached_state()


def agree(payloads: list[bytes], *, kind: str = "test.payment") -> None:
    """Vote and run the worker's step in this process (N=1 needs no gossip to agree)."""
    from consensus import services

    services.consensus_vote_many(payloads=payloads, kind=kind)
    services.votes_apply()
