"""`channels_demo_seed` on three real nodes, as `make run` calls it: ledger channels between the
banks funded on anvil, counterparty channels with a stream and payments, a virtual channel from
the first bank to the third through the second; safe to run twice; and the dashboard's settle
and dispute buttons work on what it seeded."""

from __future__ import annotations

import secrets

import pytest
from channel_shell_peer_node import PeerNode, peer_nodes_start
from conftest import ONE_ETH, advance_chain_time, run_chain_work
from django.core.management import call_command
from virtual_three_nodes import CHAIN_WORK

from channels_app.models import Channel, ChannelKind, ChannelPhase, Stream
from settlement.identity import fetch_identity_document, peer_add

pytestmark = pytest.mark.ethereum

CHALLENGE = 60


@pytest.fixture
def banks(live_web, tmp_path, node_account):
    # Name order decides the parts: this node (bank-test) first, then Ingrid, then Bob.
    suffix = secrets.token_hex(2)
    ingrid, bob = peer_nodes_start(tmp_path, f"bank-u{suffix}", f"bank-v{suffix}")
    try:
        ingrid.manage("peer_add", live_web.url, bob.url)
        bob.manage("peer_add", live_web.url, ingrid.url)
        for node in (ingrid, bob):
            peer_add(base_url=node.url, document=fetch_identity_document(node.url), actor="test")
        yield ingrid, bob
    finally:
        ingrid.stop()
        bob.stop()


def _seed(ingrid: PeerNode, bob: PeerNode, stage: str) -> None:
    call_command("channels_demo_seed", stage=stage, challenge_seconds=CHALLENGE)
    for node in (ingrid, bob):
        node.manage("channels_demo_seed", "--stage", stage, "--challenge-seconds", str(CHALLENGE))
    # What beat does on each node of `make run`: follow the chain (the peers here run no beat).
    run_chain_work(2)
    for node in (ingrid, bob):
        node.shell(CHAIN_WORK)


def _row(node: PeerNode, kind: str) -> list:
    return node.query(  # type: ignore[return-value]
        "from channels_app.models import Channel\n"
        f"result = [[c.phase, c.version, c.balances] for c in Channel.objects.filter(kind='{kind}')]"
    )


def test_the_demo_seed_opens_every_kind_of_channel_and_its_buttons_settle_them(banks, client, make_user):
    ingrid, bob = banks
    call_command("counterparties_demo_seed")
    for stage in ("fund", "use"):
        _seed(ingrid, bob, stage)

    to_ingrid = Channel.objects.get(kind=ChannelKind.LEDGER, peer__name=ingrid.name)
    assert (to_ingrid.phase, to_ingrid.version) == (ChannelPhase.OPEN, 4)  # 3 payments and a lock
    alice = Channel.objects.get(counterparty__federation_name="alice")
    assert Stream.objects.get(channel=alice).payments_received == 7
    bobs_channel = Channel.objects.get(counterparty__federation_name="bob")
    assert (bobs_channel.phase, bobs_channel.version) == (ChannelPhase.OPEN, 4)
    virtual = Channel.objects.get(kind=ChannelKind.VIRTUAL)
    assert (virtual.peer.name, virtual.phase, virtual.version) == (bob.name, ChannelPhase.OPEN, 2)
    assert [row[:2] for row in _row(bob, "virtual")] == [["open", 2]]
    # Ingrid locked the same amount in both of her ledger channels.
    assert sorted(row[2][0]["locked"] for row in _row(ingrid, "ledger")) == [str(ONE_ETH // 2)] * 2

    count = Channel.objects.count()
    _seed(ingrid, bob, "use")  # a second run leaves everything as it is
    assert Channel.objects.count() == count
    assert Channel.objects.get(pk=virtual.pk).version == 2

    client.force_login(make_user("operator-demo", "operator"))
    for channel, action in ((bobs_channel, "settle"), (alice, "dispute"), (virtual, "settle")):
        answer = client.post(
            f"/channels/{channel.channel_id}/actions/{action}/", {"confirm": "yes"}, follow=True
        )
        assert f"{action}: done" in answer.content.decode(), answer.content.decode()[-3000:]
    run_chain_work()
    bobs_channel.refresh_from_db()
    assert bobs_channel.phase == ChannelPhase.CONCLUDED  # cooperatively, at once
    virtual.refresh_from_db()
    assert virtual.phase == ChannelPhase.CONCLUDED  # back into both ledger channels, off-chain
    assert [row[:2] for row in _row(bob, "virtual")] == [["concluded", 3]]
    alice.refresh_from_db()
    assert alice.phase == ChannelPhase.DISPUTE, (
        list(alice.transactions.values_list("purpose", "status", "error")),
        list(alice.changes.values_list("change", "events")[:5]),
    )
    advance_chain_time(CHALLENGE + 1)
    run_chain_work(4)
    alice.refresh_from_db()
    assert alice.phase == ChannelPhase.CONCLUDED  # by dispute, after the challenge period
