"""What a node pays for its transactions must not feed back into what it pays next (on anvil)."""

from __future__ import annotations

import pytest
from eth_account import Account
from web3 import Web3

from settlement import ethereum

pytestmark = [pytest.mark.ethereum, pytest.mark.django_db]


def test_forty_sends_in_a_row_pay_a_steady_price_not_a_compounding_one():
    web3 = ethereum.web3()
    key = Account.create().key
    sender = ethereum.address_of(key)
    funding = web3.eth.send_transaction(
        {"from": web3.eth.accounts[0], "to": Web3.to_checksum_address(sender), "value": 10**18}
    )
    web3.eth.wait_for_transaction_receipt(funding, timeout=10)
    receiver = web3.eth.accounts[2]

    prices = []
    for _ in range(40):
        sent = ethereum.transaction_send(to=receiver, data="0x", value=1, private_key=key)
        receipt = web3.eth.wait_for_transaction_receipt(sent.tx_hash, timeout=10)
        assert receipt["status"] == 1
        assert receipt["type"] == 2  # EIP-1559 fees, not a legacy price
        prices.append(int(receipt["effectiveGasPrice"]))

    # A price that doubled with every send (the old legacy pricing) would be 2**39 times the first.
    assert max(prices) <= 2 * prices[0], prices
