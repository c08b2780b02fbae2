"""The block log's root is anchored in AnchorRegistry on anvil: transaction, block and log index are
recorded; the anchor is final after N confirmations; a reorg that drops it makes the node send
it again."""

from __future__ import annotations

import pytest
from consensus_shell_support import agree, dispatched, single_validator
from web3 import Web3

from consensus import anchoring
from consensus.models import Anchor, AnchorStatus, Block
from settlement import ethereum

pytestmark = pytest.mark.ethereum
__all__ = ["dispatched", "single_validator"]


def _chain(method: str, *params: object) -> object:
    return ethereum.web3().provider.make_request(method, list(params))  # type: ignore[arg-type]


@pytest.fixture
def funded(single_validator, dispatched, settings):
    settings.ANCHOR_EVERY_BLOCKS = 1
    settings.ANCHOR_EVERY_SECONDS = 0
    settings.ANCHOR_CONFIRMATIONS = 3
    web3 = ethereum.web3()
    address = ethereum.address_of(ethereum.node_private_key())
    tx_hash = web3.eth.send_transaction(
        {"from": web3.eth.accounts[0], "to": Web3.to_checksum_address(address), "value": 10**18}
    )
    web3.eth.wait_for_transaction_receipt(tx_hash, timeout=10)
    return address


def test_an_anchor_records_transaction_block_and_log_index_and_becomes_final(funded):
    agree([b"anchor me"])
    block = Block.objects.get()
    anchoring.anchors_tick()  # creates and sends
    anchor = Anchor.objects.get(height=block.height)
    assert anchor.status == AnchorStatus.SUBMITTED
    assert anchor.tx_hash.startswith("0x")
    anchoring.anchors_tick()  # anvil mined it at once: follow it
    anchor.refresh_from_db()
    assert anchor.status == AnchorStatus.MINED
    assert anchor.confirmations == 1
    assert anchor.block_number is not None
    assert anchor.log_index is not None
    assert 0 < anchor.gas_used < 50_000

    events = ethereum.events("AnchorRegistry", anchor.block_number, anchor.block_number)
    [event] = [item for item in events if item.transaction_hash == anchor.tx_hash]
    assert event.log_index == anchor.log_index
    assert event.args["node"].lower() == funded.lower()
    assert event.args["height"] == block.height
    assert bytes(event.args["root"]) == bytes(block.log_root) == bytes(anchor.log_root)
    assert anchor.account == funded.lower()

    _chain("evm_mine")
    anchoring.anchors_tick()
    anchor.refresh_from_db()
    assert (anchor.status, anchor.confirmations) == (AnchorStatus.MINED, 2)
    _chain("evm_mine")
    anchoring.anchors_tick()
    anchor.refresh_from_db()
    assert (anchor.status, anchor.confirmations) == (AnchorStatus.FINAL, 3)


def test_a_reorg_that_drops_the_anchor_makes_the_node_send_it_again(funded):
    agree([b"reorg me"])
    anchoring.anchors_tick()
    anchoring.anchors_tick()
    anchor = Anchor.objects.get()
    assert anchor.status == AnchorStatus.MINED
    first_hash, first_block, first_block_hash = anchor.tx_hash, anchor.block_number, anchor.block_hash

    _chain("anvil_reorg", 1, [])  # the block holding the anchor is replaced by an empty one
    anchoring.anchors_tick()  # noticed: back to pending and sent again in the same tick
    anchor.refresh_from_db()
    assert anchor.previous_tx_hashes == [first_hash]
    assert anchor.status == AnchorStatus.SUBMITTED
    # The hash may be the dropped one's: the same signed transaction (same nonce and fees) is a
    # legitimate way to send it again. What matters is that it is mined again, in another block.
    assert anchor.tx_hash != ""
    anchoring.anchors_tick()
    anchor.refresh_from_db()
    assert anchor.status == AnchorStatus.MINED
    assert anchor.block_number >= first_block
    assert anchor.block_hash != first_block_hash
    events = ethereum.events("AnchorRegistry", anchor.block_number, anchor.block_number)
    assert [bytes(item.args["root"]) for item in events if item.transaction_hash == anchor.tx_hash] == [
        bytes(anchor.log_root)
    ]


def test_every_k_blocks_and_after_t_seconds(single_validator, dispatched, settings):
    settings.ANCHOR_EVERY_BLOCKS = 3
    settings.ANCHOR_EVERY_SECONDS = 0
    for number in range(7):
        agree([f"block {number}".encode()])
    assert Block.objects.count() == 7
    anchoring.anchors_due()
    assert sorted(Anchor.objects.values_list("height", flat=True)) == [2, 5]
    settings.ANCHOR_EVERY_SECONDS = 0.001
    anchoring.anchors_due()
    assert sorted(Anchor.objects.values_list("height", flat=True)) == [2, 5, 6]
