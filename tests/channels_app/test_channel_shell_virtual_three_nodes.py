"""A virtual channel across three real nodes (Perun, length 2): Alice (this node) and Bob (a
second node) open it through Ingrid (a third) with no on-chain transaction, pay each other
without Ingrid, and close it back into both ledger channels, neutral for Ingrid."""

from __future__ import annotations

import pytest
from conftest import ONE_ETH
from virtual_three_nodes import ThreeNodes, three_nodes_start, three_nodes_stop

from channels_app import services, virtual
from channels_app.models import Channel, ChannelPhase, OnChainTransaction
from channels_app.protocol.types import ETH
from settlement import ethereum

pytestmark = pytest.mark.ethereum

TENTH = ONE_ETH // 10


@pytest.fixture
def nodes(live_web, tmp_path, node_account):
    started = three_nodes_start(tmp_path, live_web)
    yield started
    three_nodes_stop(started)


def _ours(balances: list) -> int:
    return int(balances[0]["ours"])


def _ingrid_total(nodes: ThreeNodes) -> int:
    return sum(
        _ours(nodes.row(nodes.ingrid, channel_id)["balances"])
        for channel_id in (nodes.alice_ingrid.channel_id, nodes.ingrid_bob_id)
    )


def test_a_virtual_channel_across_three_nodes_opens_updates_and_closes_off_chain(nodes: ThreeNodes):
    ingrid_before = _ingrid_total(nodes)
    block_before = ethereum.web3().eth.block_number
    transactions_before = (
        OnChainTransaction.objects.count(),
        nodes.transactions(nodes.ingrid),
        nodes.transactions(nodes.bob),
    )

    opened = virtual.virtual_channel_open_through(
        intermediary=nodes.ingrid_peer, peer=nodes.bob_peer, asset=ETH, ours=3 * TENTH, theirs=0, actor="test"
    )
    assert opened.kind == "virtual"
    assert opened.phase == ChannelPhase.OPEN
    bobs = nodes.row(nodes.bob, opened.channel_id)
    assert (bobs["kind"], bobs["phase"]) == ("virtual", "open")
    # Both ledger channels lock 0.3 ETH for it, on every node that is party to them.
    nodes.alice_ingrid.refresh_from_db()
    assert nodes.alice_ingrid.balances[0]["locked"] == str(3 * TENTH)
    assert _ours(nodes.alice_ingrid.balances) == ONE_ETH - 3 * TENTH
    for node, channel_id in (
        (nodes.ingrid, nodes.alice_ingrid.channel_id),
        (nodes.ingrid, nodes.ingrid_bob_id),
        (nodes.bob, nodes.ingrid_bob_id),
    ):
        row = nodes.row(node, channel_id)
        assert (row["version"], row["balances"][0]["locked"]) == (1, str(3 * TENTH))
    # Ingrid held her countersignature on Alice's lock until Bob's mirror lock arrived.
    held = nodes.ingrid.query(
        "from channels_app.models import ChannelStateChange\n"
        f"result = ChannelStateChange.objects.filter(channel__channel_id='{nodes.alice_ingrid.channel_id}', "
        "events__contains=['VirtualLockHeld']).count()"
    )
    assert held == 1

    # Alice pays Bob twice inside the virtual channel; Ingrid sees none of it.
    for _ in range(2):
        services.channel_pay(channel=opened, asset=ETH, amount=TENTH, actor="test")
    opened.refresh_from_db()
    assert opened.version == 2
    bobs = nodes.row(nodes.bob, opened.channel_id)
    assert bobs["version"] == 2
    assert _ours(bobs["balances"]) == 2 * TENTH
    assert nodes.row(nodes.ingrid, opened.channel_id) is None  # Ingrid is no participant
    ingrid_record = nodes.ingrid.query(
        "from channels_app.models import VirtualChannel\n"
        f"result = VirtualChannel.objects.get(channel_id='{opened.channel_id}').version"
    )
    assert ingrid_record == 0  # she holds only the opening state

    closed = virtual.virtual_channel_close(channel=opened, actor="test")
    assert closed.phase == ChannelPhase.CONCLUDED
    assert nodes.row(nodes.bob, opened.channel_id)["phase"] == "concluded"
    # Alice got 0.1 back of her 0.3; Bob got the 0.2 she paid him, in his channel with Ingrid.
    nodes.alice_ingrid.refresh_from_db()
    assert nodes.alice_ingrid.balances[0]["locked"] == "0"
    assert _ours(nodes.alice_ingrid.balances) == ONE_ETH - 2 * TENTH
    bob_ledger = nodes.row(nodes.bob, nodes.ingrid_bob_id)
    assert (bob_ledger["balances"][0]["locked"], _ours(bob_ledger["balances"])) == ("0", 2 * TENTH)
    assert nodes.row(nodes.ingrid, nodes.ingrid_bob_id)["balances"][0]["locked"] == "0"
    assert _ingrid_total(nodes) == ingrid_before  # neutral
    # Not one Ethereum transaction from opening to closing.
    assert ethereum.web3().eth.block_number == block_before
    assert transactions_before == (
        OnChainTransaction.objects.count(),
        nodes.transactions(nodes.ingrid),
        nodes.transactions(nodes.bob),
    )
    assert Channel.objects.get(pk=nodes.alice_ingrid.pk).phase == ChannelPhase.OPEN
