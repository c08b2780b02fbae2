"""Three real nodes for virtual-channel tests: the node under test (Alice, the pytest process
served by ``live_web``), Ingrid and Bob (two ``PeerNode`` processes with their own databases),
each a peer of the other two, and the two ledger channels Alice-Ingrid and Ingrid-Bob funded on
anvil. Alice puts her deposit in Alice-Ingrid, Ingrid hers in Ingrid-Bob: enough for Alice to
lock her part and Ingrid to lock the mirror."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from channel_shell_peer_node import PeerNode, peer_nodes_start
from conftest import ONE_ETH, fund, run_chain_work

from channels_app import services
from channels_app.models import Channel, ChannelPhase
from channels_app.protocol.types import ETH
from settlement.identity import fetch_identity_document, peer_add
from settlement.models import Peer

CHAIN_WORK = (
    "from channels_app import services, watcher\n"
    "for _ in range(2):\n"
    "    services.onchain_transactions_follow(); watcher.watcher_poll()\n"
)


@dataclass
class ThreeNodes:
    ingrid: PeerNode
    bob: PeerNode
    ingrid_peer: Peer
    bob_peer: Peer
    alice_ingrid: Channel
    ingrid_bob_id: str

    def row(self, node: PeerNode, channel_id: str) -> dict[str, Any]:
        """A channel row as ``node`` keeps it."""
        return node.query(  # type: ignore[return-value]
            "from channels_app.models import Channel, OnChainTransaction\n"
            f"c = Channel.objects.filter(channel_id='{channel_id}').first()\n"
            "result = None if c is None else {'phase': c.phase, 'version': c.version, "
            "'balances': c.balances, 'kind': c.kind}"
        )

    def transactions(self, node: PeerNode) -> int:
        return node.query(  # type: ignore[return-value]
            "from channels_app.models import OnChainTransaction\nresult = OnChainTransaction.objects.count()"
        )


def three_nodes_start(tmp_path: Any, live_web: Any, deposit: int = ONE_ETH) -> ThreeNodes:
    ingrid, bob = peer_nodes_start(tmp_path, None, None)
    try:
        ingrid.manage("peer_add", live_web.url, bob.url)
        bob.manage("peer_add", live_web.url, ingrid.url)
        ingrid_peer = peer_add(
            base_url=ingrid.url, document=fetch_identity_document(ingrid.url), actor="test"
        )
        bob_peer = peer_add(base_url=bob.url, document=fetch_identity_document(bob.url), actor="test")
        fund(ingrid_peer.ethereum_address)
        alice_ingrid = services.peer_channel_open(
            peer=ingrid_peer, deposits={ETH: (deposit, 0)}, actor="test", challenge_duration=600
        )
        services.channel_deposit(channel=alice_ingrid, asset=ETH, amount=deposit, actor="test")
        ingrid_bob_id = ingrid.query(
            "from channels_app import services\n"
            "from channels_app.protocol.types import ETH\n"
            "from settlement.models import Peer\n"
            f"bob = Peer.objects.get(ethereum_address__iexact='{bob_peer.ethereum_address}')\n"
            f"c = services.peer_channel_open(peer=bob, deposits={{ETH: ({deposit}, 0)}}, actor='test', "
            "challenge_duration=600)\n"
            f"services.channel_deposit(channel=c, asset=ETH, amount={deposit}, actor='test')\n"
            "result = c.channel_id"
        )
        run_chain_work(2)
        ingrid.shell(CHAIN_WORK)
        bob.shell(CHAIN_WORK)
        alice_ingrid.refresh_from_db()
        assert alice_ingrid.phase == ChannelPhase.OPEN
        nodes = ThreeNodes(ingrid, bob, ingrid_peer, bob_peer, alice_ingrid, str(ingrid_bob_id))
        for node, channel_id in (
            (ingrid, alice_ingrid.channel_id),
            (ingrid, nodes.ingrid_bob_id),
            (bob, nodes.ingrid_bob_id),
        ):
            assert nodes.row(node, channel_id)["phase"] == "open"
        return nodes
    except BaseException:
        ingrid.stop()
        bob.stop()
        raise


def three_nodes_stop(nodes: ThreeNodes) -> None:
    nodes.ingrid.stop()
    nodes.bob.stop()
