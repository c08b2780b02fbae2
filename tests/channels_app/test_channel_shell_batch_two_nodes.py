"""Two real nodes (two databases, two daphne processes): one pays on several channels with the
other in one batch over the signed transport. Both nodes persist every both-signed state; an
update that cannot be made is refused alone and the rest of the batch goes through."""

from __future__ import annotations

import pytest
from channel_shell_peer_node import PeerNode
from conftest import ONE_ETH, run_chain_work
from eth_account import Account
from eth_account.messages import encode_typed_data

from channels_app import batch, services
from channels_app.models import Channel, ChannelBatchChange, ChannelState, ChannelStateChange
from channels_app.protocol import eip712
from channels_app.protocol.errors import BadState
from channels_app.protocol.types import ETH
from settlement.identity import fetch_identity_document, peer_add

pytestmark = [pytest.mark.ethereum]


@pytest.fixture
def peer_node(live_web, tmp_path, node_account):
    node = PeerNode(tmp_path)
    node.manage("peer_add", live_web.url)  # the peer trusts our published keys
    yield node
    node.stop()


def _peer_channels(node: PeerNode, channel_ids: list[str]) -> dict:
    return node.query(
        "from channels_app.models import Channel, ChannelState\n"
        f"ids = {channel_ids!r}\n"
        "result = {c.channel_id: {'version': c.version, 'ours': c.balances[0]['ours'],"
        " 'states': ChannelState.objects.filter(channel=c).count()}"
        " for c in Channel.objects.filter(channel_id__in=ids)}"
    )


def test_one_batch_pays_on_several_channels_between_two_nodes(peer_node):
    peer = peer_add(base_url=peer_node.url, document=fetch_identity_document(peer_node.url), actor="test")
    channels = []
    for _ in range(3):
        channel = services.peer_channel_open(peer=peer, deposits={ETH: (ONE_ETH, 0)}, actor="test")
        services.channel_deposit(channel=channel, asset=ETH, amount=ONE_ETH, actor="test")
        channels.append(channel)
    run_chain_work(2)
    peer_node.shell("from channels_app.watcher import watcher_poll; watcher_poll()")
    ids = [channel.channel_id for channel in channels]
    assert set(Channel.objects.filter(channel_id__in=ids).values_list("phase", flat=True)) == {"open"}

    with pytest.raises(BadState):  # one update per channel per batch
        batch.peer_payments(peer=peer, payments=[batch.Payment(ids[0], ETH, 1)] * 2, actor="test")

    outcomes = batch.peer_payments(
        peer=peer, payments=[batch.Payment(channel_id, ETH, 1000) for channel_id in ids], actor="test"
    )
    assert [(o.ok, o.version) for o in outcomes] == [(True, 1)] * 3
    # The proposer's log: one row for the proposals (their digests are the history rows' now),
    # one for the countersignatures taken, each naming the batch's channels in its order.
    pks = [Channel.objects.get(channel_id=channel_id).pk for channel_id in ids]
    proposed, countersigned = ChannelBatchChange.objects.filter(channels__overlap=pks).order_by("id")
    assert (proposed.change, proposed.channels, proposed.versions) == ("UpdateProposed", pks, [1, 1, 1])
    assert proposed.digests == [ChannelState.objects.get(channel_id=pk, version=1).digest for pk in pks]
    assert (countersigned.change, countersigned.channels, countersigned.versions, countersigned.digests) == (
        "CountersignatureReceived",
        pks,
        [1, 1, 1],
        [],
    )
    assert not ChannelStateChange.objects.filter(
        channel_id__in=pks, change__in=[proposed.change, countersigned.change]
    )
    theirs = _peer_channels(peer_node, ids)
    assert {
        channel_id: (row["version"], row["ours"], row["states"]) for channel_id, row in theirs.items()
    } == {channel_id: (1, "1000", 2) for channel_id in ids}
    domain = services.domain()
    for channel_id in ids:
        stored = ChannelState.objects.get(channel__channel_id=channel_id, version=1)
        message = encode_typed_data(full_message=eip712.typed_data(domain, stored.protocol_state))
        signers = [
            Account.recover_message(message, signature=bytes.fromhex(s[2:])).lower()
            for s in stored.signatures
        ]
        assert signers == [services.node_address(), peer.ethereum_address.lower()]

    # More than the channel holds: refused here, alone, and never sent; the others go through.
    outcomes = batch.peer_payments(
        peer=peer,
        payments=[
            batch.Payment(ids[0], ETH, 2 * ONE_ETH),
            batch.Payment(ids[1], ETH, 500),
            batch.Payment(ids[2], ETH, 500),
        ],
        actor="test",
    )
    assert outcomes[0].error is not None
    assert outcomes[0].error.code == "bad_state"
    assert [(o.ok, o.version) for o in outcomes[1:]] == [(True, 2)] * 2
    theirs = _peer_channels(peer_node, ids)
    assert (theirs[ids[0]]["version"], theirs[ids[0]]["ours"]) == (1, "1000")
    assert (theirs[ids[1]]["version"], theirs[ids[1]]["ours"]) == (2, "1500")
    assert [Channel.objects.get(channel_id=i).version for i in ids] == [1, 2, 2]
