"""Two real nodes (two databases, two daphne processes): one opens a channel with the other over
the signed transport, funds it on anvil, pays, and settles cooperatively; each update is
countersigned by the other node only after it persisted the state."""

from __future__ import annotations

import pytest
from channel_shell_peer_node import PeerNode
from conftest import ONE_ETH, on_chain_status, run_chain_work

from channels_app import services
from channels_app.models import Channel, ChannelPhase
from channels_app.protocol.types import ETH
from settlement.identity import fetch_identity_document, peer_add

pytestmark = [pytest.mark.ethereum]


@pytest.fixture
def peer_node(live_web, tmp_path, node_account):
    node = PeerNode(tmp_path)
    node.manage("peer_add", live_web.url)  # the peer trusts our published keys
    yield node
    node.stop()


def _peer_channel(node: PeerNode, channel_id: str) -> dict:
    return node.query(
        "from channels_app.models import Channel\n"
        f"c = Channel.objects.get(channel_id='{channel_id}')\n"
        "result = {'phase': c.phase, 'version': c.version, 'balances': c.balances, 'peer': c.peer.name}"
    )


def test_two_nodes_open_pay_and_settle_a_channel_over_the_transport(peer_node, live_web, client, make_user):
    peer = peer_add(base_url=peer_node.url, document=fetch_identity_document(peer_node.url), actor="test")
    client.force_login(make_user("operator-t", "operator"))
    answer = client.post(
        "/api/channels/",
        {
            "peer": peer.name,
            "deposits": [{"asset": "ETH", "ours": str(ONE_ETH), "theirs": "0"}],
            "challenge_seconds": 600,
        },
        content_type="application/json",
    )
    assert answer.status_code == 201, answer.json()
    channel = Channel.objects.get(channel_id=answer.json()["channel_id"])
    assert channel.our_index == 0
    services.channel_deposit(channel=channel, asset=ETH, amount=ONE_ETH, actor="test")
    run_chain_work(2)
    peer_node.shell("from channels_app.watcher import watcher_poll; watcher_poll()")
    channel.refresh_from_db()
    assert channel.phase == ChannelPhase.OPEN
    theirs = _peer_channel(peer_node, channel.channel_id)
    assert theirs["phase"] == "open"
    assert theirs["peer"] != peer.name  # the peer knows us under our own name

    for _ in range(3):
        services.channel_pay(channel=channel, asset=ETH, amount=ONE_ETH // 10, actor="test")
    channel.refresh_from_db()
    assert channel.version == 3
    theirs = _peer_channel(peer_node, channel.channel_id)
    assert theirs["version"] == 3
    assert theirs["balances"][0]["ours"] == str(3 * ONE_ETH // 10)

    services.channel_close(channel=channel, actor="test")
    run_chain_work(2)
    assert on_chain_status(channel).paid
    peer_node.shell("from channels_app.watcher import watcher_poll; watcher_poll()")
    assert _peer_channel(peer_node, channel.channel_id)["phase"] == "concluded"
