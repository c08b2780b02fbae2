"""Contracts are compiled by the pinned solc and deployed to anvil before the tests run."""

from __future__ import annotations

import json

from django.conf import settings
from web3 import Web3

from devstack.contracts import artifact


def test_the_anchor_registry_is_deployed_and_anchors_a_root():
    deployed = json.loads(settings.CONTRACTS_FILE.read_text())
    web3 = Web3(Web3.HTTPProvider(settings.ETH_RPC_URL))
    address = deployed["contracts"]["AnchorRegistry"]["address"]
    assert deployed["chain_id"] == web3.eth.chain_id
    assert web3.eth.get_code(address) != b""

    registry = web3.eth.contract(address=address, abi=artifact("AnchorRegistry")["abi"])
    root = bytes(range(32))
    tx_hash = registry.functions.anchor(7, root).transact({"from": web3.eth.accounts[1]})
    receipt = web3.eth.wait_for_transaction_receipt(tx_hash, timeout=10)

    (event,) = registry.events.Anchored().process_receipt(receipt)
    assert (event.args.node, event.args.height, event.args.root) == (web3.eth.accounts[1], 7, root)
    assert receipt.gasUsed < 50_000
