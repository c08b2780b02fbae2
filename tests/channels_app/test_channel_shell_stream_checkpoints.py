"""A micro-payment stream checkpoints on-chain every m payments, and after checkpoint_timeout
seconds without m (the beat task); the balance after each payment is kept."""

from __future__ import annotations

import pytest
from conftest import ONE_ETH, open_funded_channel, run_chain_work

from channels_app import services
from channels_app.models import ChannelState, OnChainTransaction, Stream, StreamPayment
from channels_app.protocol.types import ETH

pytestmark = pytest.mark.ethereum

STEP = ONE_ETH // 1000


def test_a_stream_checkpoints_every_m_payments_and_after_the_timeout(node_account, make_counterparty):
    channel = open_funded_channel(make_counterparty("custodial"), 0, ONE_ETH)
    services.stream_open(
        channel=channel, asset=ETH, window=4, checkpoint_every=3, checkpoint_timeout=30, actor="test"
    )
    for _ in range(3):
        services.stream_pay_custodial(channel=channel, amount=STEP, actor="test")
    channel.refresh_from_db()
    assert channel.version == 3  # the third payment was countersigned as a checkpoint
    assert ChannelState.objects.filter(channel=channel, version=3).exists()
    assert OnChainTransaction.objects.filter(channel=channel, purpose="checkpoint").count() == 1
    balances = list(
        StreamPayment.objects.filter(stream__channel=channel).values_list("balance_after", flat=True)
    )
    assert [int(b) for b in balances] == [STEP, 2 * STEP, 3 * STEP]

    services.stream_pay_custodial(channel=channel, amount=STEP, actor="test")
    assert services.streams_checkpoint_due(services.now_seconds()) == 0  # the timeout has not passed
    assert services.streams_checkpoint_due(services.now_seconds() + 31) == 1
    channel.refresh_from_db()
    assert channel.version == 4
    assert Stream.objects.get(channel=channel).last_checkpoint_version == 4

    run_chain_work()
    checkpoints = OnChainTransaction.objects.filter(channel=channel, purpose="checkpoint")
    assert all(tx.status in ("mined", "final") for tx in checkpoints)
    channel.refresh_from_db()
    assert channel.protocol_channel.checkpointed_version == 4
