"""A real Celery worker runs the watcher; killed and restarted mid-dispute, it still refutes."""

from __future__ import annotations

import time

import pytest
from conftest import ONE_ETH, on_chain_status, open_funded_channel, register_as_counterparty

from channels_app import services
from channels_app.models import OnChainTransaction, WatcherCursor
from channels_app.protocol.types import ETH
from channels_app.tasks import channels_watch

pytestmark = [pytest.mark.ethereum, pytest.mark.worker]


def _wait_for(predicate, timeout: float = 20.0) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError("timed out")
        time.sleep(0.2)


def test_the_watcher_killed_and_restarted_mid_dispute_still_refutes(
    node_account, make_counterparty, celery_worker
):
    channel = open_funded_channel(make_counterparty("custodial"), ONE_ETH, ONE_ETH, challenge=600)
    services.channel_pay(channel=channel, asset=ETH, amount=ONE_ETH // 10, actor="test")
    services.channel_pay(
        channel=channel, asset=ETH, amount=ONE_ETH // 2, actor="test", from_counterparty=True
    )

    channels_watch.delay()  # the worker catches up: the cursor is at the head
    head = services.ethereum.block("latest").number
    _wait_for(lambda: WatcherCursor.objects.filter(block_number__gte=head).exists())

    celery_worker.stop()  # the node is down while the counterparty cheats
    register_as_counterparty(channel, version=1)
    assert on_chain_status(channel).version == 1

    celery_worker.start()
    channels_watch.delay()
    _wait_for(
        lambda: (
            OnChainTransaction.objects.filter(channel=channel, purpose="refute").exclude(tx_hash="").exists()
        )
    )
    _wait_for(lambda: on_chain_status(channel).version == 2)
    assert on_chain_status(channel).finalizes_at > 0
