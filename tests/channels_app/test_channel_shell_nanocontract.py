"""A nanocontract inside a ledger channel: funds locked by a sub-allocation, updated on its own,
closed and released back into the ledger channel, which then settles on-chain."""

from __future__ import annotations

import pytest
from conftest import ONE_ETH, on_chain_status, open_funded_channel, run_chain_work

from channels_app import services
from channels_app.models import ChannelPhase, OnChainTransaction, SubAllocation
from channels_app.protocol.errors import ChannelError
from channels_app.protocol.types import ETH

pytestmark = pytest.mark.ethereum

TENTH = ONE_ETH // 10


def test_a_nanocontract_locks_updates_and_releases_into_its_ledger_channel(node_account, make_counterparty):
    channel = open_funded_channel(make_counterparty("custodial"), ONE_ETH, ONE_ETH)
    nano = services.nanocontract_open(channel=channel, asset=ETH, ours=2 * TENTH, theirs=TENTH, actor="test")
    channel.refresh_from_db()
    assert nano.kind == "nanocontract"
    assert nano.phase == ChannelPhase.OPEN
    assert channel.version == 1
    lock = SubAllocation.objects.get(channel=channel, sub_channel_id=nano.channel_id)
    assert int(lock.amount) == 3 * TENTH
    assert channel.balances[0]["locked"] == str(3 * TENTH)

    with pytest.raises(ChannelError):  # releasing before the nanocontract is final is refused
        services.nanocontract_release(channel=nano, actor="test")

    services.channel_pay(channel=nano, asset=ETH, amount=TENTH // 2, actor="test")
    services.channel_close(channel=nano, actor="test")
    services.nanocontract_release(channel=nano, actor="test")
    channel.refresh_from_db()
    nano.refresh_from_db()
    assert nano.phase == ChannelPhase.CONCLUDED
    assert channel.version == 2
    lock.refresh_from_db()
    assert lock.released_in_version == 2
    balance = channel.balances[0]
    assert balance["ours"] == str(ONE_ETH - TENTH // 2)
    assert balance["theirs"] == str(ONE_ETH + TENTH // 2)
    assert balance["locked"] == "0"
    assert not OnChainTransaction.objects.filter(channel=nano).exists()  # no on-chain step for it

    services.channel_close(channel=channel, actor="test")
    run_chain_work()
    assert on_chain_status(channel).paid


def test_a_nanocontract_through_the_api_and_a_lock_beyond_the_balance_is_refused(
    node_account, make_counterparty, client, make_user
):
    from channels_app.models import Channel, ChannelStateChange

    client.force_login(make_user("operator-n", "operator"))
    channel = open_funded_channel(make_counterparty("custodial"), ONE_ETH, ONE_ETH)
    path = f"/api/channels/{channel.channel_id}/nanocontracts/"
    before = (Channel.objects.count(), ChannelStateChange.objects.count())
    answer = client.post(
        path, {"asset": "ETH", "ours": str(2 * ONE_ETH), "theirs": "0"}, content_type="application/json"
    )
    assert answer.status_code == 400
    assert answer.json()["error"]["code"] == "bad_state"
    assert (Channel.objects.count(), ChannelStateChange.objects.count()) == before

    answer = client.post(
        path, {"asset": "ETH", "ours": str(TENTH), "theirs": str(TENTH)}, content_type="application/json"
    )
    assert answer.status_code == 201, answer.json()
    nano_id = answer.json()["channel_id"]
    assert answer.json()["kind"] == "nanocontract"
    assert (
        client.post(
            f"/api/channels/{nano_id}/settle/", {"mode": "cooperative"}, content_type="application/json"
        ).status_code
        == 202
    )
    answer = client.post(f"/api/channels/{nano_id}/release/", content_type="application/json")
    assert answer.status_code == 200, answer.json()
    assert answer.json()["version"] == 2
    assert answer.json()["balances"][0]["locked"] == "0"
