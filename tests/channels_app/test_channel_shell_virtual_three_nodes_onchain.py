"""Bob stops answering in the middle of a virtual channel across three nodes: Alice settles on
anvil through her ledger channel with Ingrid, with the latest virtual state (registered,
concluded, then the lock claimed by the watcher); when Bob comes back he claims his lock in
Ingrid-Bob the same way, and Ingrid ends with exactly what she deposited."""

from __future__ import annotations

import pytest
from conftest import ONE_ETH, advance_chain_time, run_chain_work
from virtual_three_nodes import CHAIN_WORK, ThreeNodes, three_nodes_start, three_nodes_stop

from channels_app import services, virtual
from channels_app.models import Channel, ChannelPhase, OnChainTransaction, SubAllocation, TransactionStatus
from channels_app.protocol.types import ETH
from settlement import ethereum
from settlement.transport import PeerUnreachable

pytestmark = pytest.mark.ethereum

TENTH = ONE_ETH // 10
CHALLENGE = 600  # the ledger channels' (three_nodes_start), which the virtual channel takes


@pytest.fixture
def nodes(live_web, tmp_path, node_account):
    started = three_nodes_start(tmp_path, live_web)
    yield started
    three_nodes_stop(started)


def _balance(account: str) -> int:
    web3 = ethereum.web3()
    return int(web3.eth.get_balance(web3.to_checksum_address(account)))


def _holdings(channel_id: str) -> int:
    return int(ethereum.contract("Adjudicator").functions.holdings(bytes.fromhex(channel_id[2:]), ETH).call())


def test_bob_stops_answering_and_alice_then_bob_settle_on_chain_with_ingrid_neutral(nodes: ThreeNodes):
    opened = virtual.virtual_channel_open_through(
        intermediary=nodes.ingrid_peer, peer=nodes.bob_peer, asset=ETH, ours=3 * TENTH, theirs=0, actor="test"
    )
    for _ in range(2):
        services.channel_pay(channel=opened, asset=ETH, amount=TENTH, actor="test")  # Alice 0.1, Bob 0.2
    ingrid_before = _balance(nodes.ingrid_peer.ethereum_address)

    nodes.bob.web.stop()
    with pytest.raises(PeerUnreachable):
        virtual.virtual_channel_close(channel=opened, actor="test")
    opened.refresh_from_db()
    assert (opened.phase, opened.version) == (ChannelPhase.OPEN, 2)  # the final state went unanswered

    # Alice registers the virtual channel (its latest both-signed state) and Alice-Ingrid.
    virtual.virtual_channel_dispute(channel=opened, actor="test")
    run_chain_work()
    ledger = Channel.objects.get(pk=nodes.alice_ingrid.pk)
    assert ledger.phase == ChannelPhase.DISPUTE
    advance_chain_time(CHALLENGE + 1)
    run_chain_work(5)  # conclude both, then the watcher claims the lock
    ledger.refresh_from_db()
    assert ledger.phase == ChannelPhase.CONCLUDED
    claim = OnChainTransaction.objects.get(channel=ledger, purpose="claim_sub_allocation")
    assert claim.status in (TransactionStatus.MINED, TransactionStatus.FINAL)
    assert SubAllocation.objects.get(channel=ledger).released_in_version == 1  # claimed on-chain
    assert _holdings(ledger.channel_id) == 0  # all paid out
    # Ingrid got Bob's 0.2 of the virtual channel in Alice-Ingrid (she sent nothing: no gas).
    ingrid_from_x = _balance(nodes.ingrid_peer.ethereum_address) - ingrid_before
    assert ingrid_from_x == 2 * TENTH

    # Bob never comes back. Ingrid learnt the registered virtual state from Alice's register
    # transaction (she held only the opening) and settles Ingrid-Bob by dispute; her watcher
    # claims the lock there, which pays Bob his 0.2 too.
    bob_before = _balance(nodes.bob_peer.ethereum_address)
    nodes.ingrid.shell(
        CHAIN_WORK + "from channels_app import services\nfrom channels_app.models import Channel\n"
        f"services.channel_dispute(channel=Channel.objects.get(channel_id='{nodes.ingrid_bob_id}'), actor='test')\n"
    )
    learnt = nodes.ingrid.query(
        "from channels_app.models import VirtualChannel\n"
        f"result = VirtualChannel.objects.get(channel_id='{opened.channel_id}').version"
    )
    assert learnt == 2
    nodes.ingrid.shell(CHAIN_WORK)
    advance_chain_time(CHALLENGE + 1)
    for _ in range(3):
        nodes.ingrid.shell(CHAIN_WORK)
    assert nodes.row(nodes.ingrid, nodes.ingrid_bob_id)["phase"] == "concluded"
    assert _holdings(nodes.ingrid_bob_id) == 0
    assert _balance(nodes.bob_peer.ethereum_address) - bob_before == 2 * TENTH
    # Ingrid: 0.2 in Alice-Ingrid, her free 0.7 and Alice's 0.1 in Ingrid-Bob, less her gas:
    # exactly the 1 ETH she deposited.
    hashes = nodes.ingrid.query(
        "from channels_app.models import OnChainTransaction\n"
        "result = [t.tx_hash for t in OnChainTransaction.objects.exclude(tx_hash='').exclude(purpose='deposit')]"
    )
    web3 = ethereum.web3()
    gas = 0
    for tx_hash in hashes:
        receipt = web3.eth.get_transaction_receipt(tx_hash)
        gas += int(receipt["gasUsed"]) * int(receipt["effectiveGasPrice"])
    assert _balance(nodes.ingrid_peer.ethereum_address) - ingrid_before + gas == ONE_ETH
