"""A virtual channel between two custodial counterparties through the node (Ingrid): locks in
both ledger channels with no on-chain transaction, the first held until the mirror arrives,
and a settlement that moves what Alice paid Bob through both ledger channels, neutral for
the node."""

from __future__ import annotations

import pytest
from conftest import ONE_ETH, open_funded_channel

from channels_app import services
from channels_app.models import ChannelStateChange, OnChainTransaction, SubAllocation, VirtualRole
from channels_app.protocol.errors import ChannelError
from channels_app.protocol.types import ETH

pytestmark = pytest.mark.ethereum

TENTH = ONE_ETH // 10


def _ours(channel) -> int:
    channel.refresh_from_db()
    return int(channel.balances[0]["ours"])


def test_a_virtual_channel_through_the_node_opens_and_settles_neutrally(node_account, make_counterparty):
    alice_ingrid = open_funded_channel(make_counterparty("custodial"), ONE_ETH, ONE_ETH)
    ingrid_bob = open_funded_channel(make_counterparty("custodial"), ONE_ETH, ONE_ETH)
    transactions = OnChainTransaction.objects.count()

    virtual = services.virtual_channel_open(
        first=alice_ingrid,
        second=ingrid_bob,
        asset=ETH,
        first_amount=3 * TENTH,
        second_amount=TENTH,
        actor="test",
    )
    assert virtual.role == VirtualRole.INTERMEDIARY
    # The first lock was held (no countersignature) until its mirror arrived.
    assert ChannelStateChange.objects.filter(
        channel=alice_ingrid, events__contains=["VirtualLockHeld"]
    ).exists()
    for channel in (alice_ingrid, ingrid_bob):
        channel.refresh_from_db()
        assert channel.version == 1
        assert channel.balances[0]["locked"] == str(4 * TENTH)
        assert (
            SubAllocation.objects.get(channel=channel, sub_channel_id=virtual.channel_id).released_in_version
            is None
        )
    # Ingrid locked Bob's share in Alice-Ingrid and Alice's in Ingrid-Bob.
    assert _ours(alice_ingrid) == ONE_ETH - TENTH
    assert _ours(ingrid_bob) == ONE_ETH - 3 * TENTH

    with pytest.raises(ChannelError):  # a final state that does not distribute what is locked
        services.virtual_channel_settle(
            virtual=virtual, first_balance=TENTH, second_balance=TENTH, actor="test"
        )

    # Alice paid Bob 0.2 ETH inside the virtual channel: Alice 0.1, Bob 0.3 at the end.
    services.virtual_channel_settle(
        virtual=virtual, first_balance=TENTH, second_balance=3 * TENTH, actor="test"
    )
    assert _ours(alice_ingrid) == ONE_ETH + 2 * TENTH  # Ingrid gains what Alice paid...
    assert _ours(ingrid_bob) == ONE_ETH - 2 * TENTH  # ...and pays it to Bob: neutral
    for channel in (alice_ingrid, ingrid_bob):
        assert channel.version == 2
        assert channel.balances[0]["locked"] == "0"
        assert (
            SubAllocation.objects.get(channel=channel, sub_channel_id=virtual.channel_id).released_in_version
            == 2
        )
    virtual.refresh_from_db()
    assert virtual.version == 1
    assert OnChainTransaction.objects.count() == transactions  # nothing went on-chain


def test_a_virtual_channel_through_the_api(node_account, make_counterparty, client, make_user):
    client.force_login(make_user("operator-v", "operator"))
    first = open_funded_channel(make_counterparty("custodial"), ONE_ETH, ONE_ETH)
    second = open_funded_channel(make_counterparty("custodial"), ONE_ETH, ONE_ETH)
    body = {
        "first_channel_id": first.channel_id,
        "second_channel_id": second.channel_id,
        "asset": "ETH",
        "first_amount": str(TENTH),
        "second_amount": str(TENTH),
    }
    answer = client.post("/api/virtual-channels/", body, content_type="application/json")
    assert answer.status_code == 201, answer.json()
    virtual_id = answer.json()["channel_id"]
    path = f"/api/virtual-channels/{virtual_id}/settle/"
    refused = client.post(
        path, {"first_balance": str(TENTH), "second_balance": "0"}, content_type="application/json"
    )
    assert refused.status_code == 400
    assert refused.json()["error"]["code"] == "bad_sub_allocation"  # distributes less than is locked
    answer = client.post(
        path, {"first_balance": "0", "second_balance": str(2 * TENTH)}, content_type="application/json"
    )
    assert answer.status_code == 200, answer.json()
    assert _ours(first) == ONE_ETH + TENTH
    assert _ours(second) == ONE_ETH - TENTH
