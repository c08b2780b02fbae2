"""A reorganisation drops a mined settlement: the node notices and sends it again."""

from __future__ import annotations

import pytest
from conftest import (
    ONE_ETH,
    chain_rpc,
    on_chain_status,
    open_funded_channel,
    register_as_counterparty,
    run_chain_work,
)

from channels_app import services, watcher
from channels_app.models import DisputeAction, DisputeRecord, OnChainTransaction, TransactionStatus
from channels_app.protocol.types import ETH

pytestmark = pytest.mark.ethereum


def test_a_reorg_that_drops_the_mined_conclude_is_noticed_and_the_conclude_resent(
    node_account, make_counterparty
):
    channel = open_funded_channel(make_counterparty("custodial"), ONE_ETH, ONE_ETH)
    services.channel_pay(channel=channel, asset=ETH, amount=ONE_ETH // 3, actor="test")
    services.channel_close(channel=channel, actor="test")
    services.onchain_transactions_follow()
    watcher.watcher_poll()
    conclude = OnChainTransaction.objects.get(channel=channel, purpose="conclude")
    assert conclude.status == TransactionStatus.MINED
    assert conclude.confirmations < conclude.confirmations_needed
    assert on_chain_status(channel).paid
    first_hash = conclude.tx_hash

    chain_rpc("anvil_reorg", 1, [])  # the block holding the conclude is replaced by an empty one
    assert not on_chain_status(channel).paid

    services.onchain_transactions_follow()
    conclude.refresh_from_db()
    assert conclude.previous_hashes == [first_hash]
    # Sent again (possibly as the very same signed transaction: same nonce and fees) and mined.
    assert conclude.tx_hash != ""
    assert on_chain_status(channel).paid

    watcher.watcher_poll()  # the block the watcher stopped at changed hash: it rewinds
    assert DisputeRecord.objects.filter(action=DisputeAction.REORG).exists()
    run_chain_work()
    conclude.refresh_from_db()
    assert conclude.status in (TransactionStatus.MINED, TransactionStatus.FINAL)


def test_a_refute_dropped_with_the_stale_registration_it_answered_is_not_sent_again(
    node_account, make_counterparty
):
    channel = open_funded_channel(make_counterparty("custodial"), ONE_ETH, ONE_ETH)
    services.channel_pay(channel=channel, asset=ETH, amount=ONE_ETH // 10, actor="test")
    services.channel_pay(
        channel=channel, asset=ETH, amount=ONE_ETH // 2, actor="test", from_counterparty=True
    )
    register_as_counterparty(channel, version=1)
    watcher.watcher_poll()
    refute = OnChainTransaction.objects.get(channel=channel, purpose="refute")
    services.onchain_transactions_follow()
    assert on_chain_status(channel).version == 2

    chain_rpc("anvil_reorg", 2, [])  # both the stale registration and the refutation are gone
    assert on_chain_status(channel).version == 0

    services.onchain_transactions_follow()
    refute.refresh_from_db()
    assert refute.status == TransactionStatus.DROPPED
    assert on_chain_status(channel).version == 0  # no challenge was started by re-sending it
