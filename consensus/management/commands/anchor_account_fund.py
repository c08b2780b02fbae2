"""Give the node's Ethereum account ether from anvil's first dev account, for anchoring gas.

Only on a local development chain (chain id 31337, where the dev accounts are unlocked); on
any other chain it refuses, because an operator funds a real account themselves.
"""

from __future__ import annotations

from typing import Any

from django.core.management.base import BaseCommand, CommandError

from settlement import ethereum

DEV_CHAIN_ID = 31337
TOP_UP_WEI = 100 * 10**18


class Command(BaseCommand):
    help = "Fund the node's Ethereum account from anvil's dev account (local chain only)."

    def handle(self, *args: Any, **options: Any) -> None:
        web3 = ethereum.web3()
        if ethereum.chain_id() != DEV_CHAIN_ID:
            raise CommandError("only on a local anvil chain (chain id 31337): fund a real account yourself")
        address = ethereum.address_of(ethereum.node_private_key())
        balance = int(web3.eth.get_balance(address))  # type: ignore[arg-type]
        if balance >= TOP_UP_WEI // 10:
            self.stdout.write(f"{address} holds {balance / 10**18:.2f} ETH; enough for anchoring")
            return
        tx_hash = web3.eth.send_transaction(
            {"from": web3.eth.accounts[0], "to": address, "value": TOP_UP_WEI}  # type: ignore[typeddict-item]
        )
        web3.eth.wait_for_transaction_receipt(tx_hash, timeout=30)
        self.stdout.write(f"funded {address} with {TOP_UP_WEI // 10**18} ETH for anchoring")
