"""The watcher refutes a stale state registered on-chain, within the challenge period, and
concludes disputes once the period is over; chain time moves with evm_increaseTime."""

from __future__ import annotations

import pytest
from conftest import (
    ONE_ETH,
    advance_chain_time,
    on_chain_status,
    open_funded_channel,
    register_as_counterparty,
    run_chain_work,
)

from channels_app import services, watcher
from channels_app.models import ChannelPhase, DisputeAction, DisputeRecord, OnChainTransaction
from channels_app.protocol.types import ETH
from settlement.models import AuditEvent

pytestmark = pytest.mark.ethereum


def _two_updates(channel):
    services.channel_pay(channel=channel, asset=ETH, amount=ONE_ETH // 10, actor="test")  # v1: node pays
    services.channel_pay(
        channel=channel, asset=ETH, amount=ONE_ETH // 2, actor="test", from_counterparty=True
    )  # v2


def test_the_watcher_refutes_a_stale_registered_state_and_the_latest_pays_out(
    node_account, make_counterparty
):
    channel = open_funded_channel(make_counterparty("custodial"), ONE_ETH, ONE_ETH, challenge=600)
    _two_updates(channel)
    register_as_counterparty(channel, version=1)  # v1 is better for the counterparty than v2

    watcher.watcher_poll()  # sees Registered(v1), records the refutation and sends it after commit
    refute = OnChainTransaction.objects.get(channel=channel, purpose="refute")
    assert refute.tx_hash
    status = on_chain_status(channel)
    assert status.version == 2
    assert status.finalizes_at > 0
    assert DisputeRecord.objects.filter(
        channel=channel, action=DisputeAction.REFUTED, registered_version=1
    ).exists()
    assert AuditEvent.objects.filter(action="channel.refute", target_id=str(channel.pk)).exists()

    run_chain_work()
    channel.refresh_from_db()
    assert channel.phase == ChannelPhase.DISPUTE
    advance_chain_time(601)
    run_chain_work()
    channel.refresh_from_db()
    assert channel.phase == ChannelPhase.CONCLUDED
    assert on_chain_status(channel).paid
    assert OnChainTransaction.objects.get(channel=channel, purpose="conclude_registered").gas_used


def test_a_stale_state_seen_after_the_deadline_is_not_refuted(node_account, make_counterparty):
    channel = open_funded_channel(make_counterparty("custodial"), ONE_ETH, ONE_ETH, challenge=60)
    _two_updates(channel)
    watcher.watcher_poll()
    register_as_counterparty(channel, version=1)
    advance_chain_time(61)
    watcher.watcher_poll()
    assert not OnChainTransaction.objects.filter(channel=channel, purpose="refute").exists()


def test_an_operator_settles_by_dispute_and_the_node_concludes_after_the_period(
    node_account, make_counterparty
):
    channel = open_funded_channel(make_counterparty("custodial"), ONE_ETH, ONE_ETH, challenge=120)
    _two_updates(channel)
    services.channel_dispute(channel=channel, actor="test")
    run_chain_work()
    channel.refresh_from_db()
    assert channel.phase == ChannelPhase.DISPUTE
    assert on_chain_status(channel).version == 2
    assert not OnChainTransaction.objects.filter(channel=channel, purpose="refute").exists()
    advance_chain_time(121)
    run_chain_work()
    channel.refresh_from_db()
    assert channel.phase == ChannelPhase.CONCLUDED
