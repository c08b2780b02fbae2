"""On-chain actions through the API: a checkpoint records the latest state as the floor (the
watcher sees it), a disputed settlement registers it, and a withdrawal without credit is
refused with a code."""

from __future__ import annotations

import pytest
from conftest import ONE_ETH, on_chain_status, open_funded_channel, run_chain_work

from channels_app import services
from channels_app.models import OnChainTransaction
from channels_app.protocol.types import ETH

pytestmark = pytest.mark.ethereum


def test_checkpoint_dispute_and_withdraw_through_the_api(node_account, make_counterparty, client, make_user):
    client.force_login(make_user("operator-c", "operator"))
    channel = open_funded_channel(make_counterparty("custodial"), ONE_ETH, ONE_ETH)
    base = f"/api/channels/{channel.channel_id}/"

    refused = client.post(base + "checkpoint/", content_type="application/json")
    assert refused.status_code == 409  # version 0 is the opening state: nothing to record
    assert refused.json()["error"]["code"] == "wrong_phase"

    services.channel_pay(channel=channel, asset=ETH, amount=ONE_ETH // 10, actor="test")
    answer = client.post(base + "checkpoint/", content_type="application/json")
    assert answer.status_code == 202, answer.json()
    assert answer.json()["purpose"] == "checkpoint"
    run_chain_work()
    assert on_chain_status(channel).version == 1
    assert on_chain_status(channel).finalizes_at == 0  # a checkpoint starts no timer
    channel.refresh_from_db()
    assert channel.protocol_channel.checkpointed_version == 1

    refused = client.post(
        base + "withdraw/", {"asset": "ETH", "receiver": channel.our_address}, content_type="application/json"
    )
    assert refused.status_code == 400
    assert refused.json()["error"]["code"] == "bad_state"
    assert not OnChainTransaction.objects.filter(channel=channel, purpose="withdraw").exists()

    answer = client.post(base + "settle/", {"mode": "dispute"}, content_type="application/json")
    assert answer.status_code == 202, answer.json()
    run_chain_work()
    status = on_chain_status(channel)
    assert status.version == 1
    assert status.finalizes_at > 0
    dispute = client.get(base + "dispute/").json()
    assert dispute["phase"] == "dispute"
    assert dispute["registered_is_our_latest"] is True
    assert any(record["action"] == "registered_ours" for record in dispute["watcher"])
