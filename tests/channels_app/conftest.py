"""Fixtures for the channel shell on anvil: a funded node account and fresh counterparties.

Anvil is shared by the whole session: every test makes its own channels and accounts and never
assumes a block number. Tests that send transactions use ``transactional_db``, because the
sends happen after commit (as in production) and other processes must see the rows.
"""

from __future__ import annotations

import secrets
from collections.abc import Callable
from typing import Any

import pytest
from eth_account import Account
from web3 import Web3

ONE_ETH = 10**18


def _web3() -> Web3:
    from settlement import ethereum

    return ethereum.web3()


def fund(address: str, wei: int = 10 * ONE_ETH) -> None:
    """Send ether from anvil's first dev account (unlocked) and wait for it."""
    web3 = _web3()
    tx_hash = web3.eth.send_transaction(
        {"from": web3.eth.accounts[0], "to": Web3.to_checksum_address(address), "value": wei}
    )
    web3.eth.wait_for_transaction_receipt(tx_hash, timeout=10)


def mint_demo_coin(address: str, amount: int) -> None:
    from settlement import ethereum

    web3 = _web3()
    coin = ethereum.contract("DemoStableCoin")
    tx_hash = coin.functions.mint(Web3.to_checksum_address(address), amount).transact(
        {"from": web3.eth.accounts[0]}
    )
    web3.eth.wait_for_transaction_receipt(tx_hash, timeout=10)


def chain_rpc(method: str, *params: Any) -> Any:
    return _web3().provider.make_request(method, list(params))  # type: ignore[arg-type]


def advance_chain_time(seconds: int) -> None:
    chain_rpc("evm_increaseTime", seconds)
    chain_rpc("evm_mine")


def run_chain_work(rounds: int = 3) -> None:
    """What beat would run: send and follow transactions, then let the watcher catch up."""
    from channels_app import services, watcher

    for _ in range(rounds):
        services.onchain_transactions_follow()
        watcher.watcher_poll()


@pytest.fixture
def node_account(transactional_db: None) -> str:
    from channels_app.services import node_address
    from settlement.keystore import node_identity_ensure

    node_identity_ensure()
    address = node_address()
    fund(address)
    return address


@pytest.fixture
def make_counterparty(transactional_db: None) -> Callable[..., Any]:
    """An ACCEPTED counterparty; custodial (the node holds its sealed keys) or self-custody
    (the test holds its key, returned as ``.test_private_key``)."""
    from settlement.counterparties import services
    from settlement.counterparties.models import Counterparty, KycStatus

    def make(custody: str = "custodial", *, funded: bool = True, accepted: bool = True) -> Any:
        name = "cp" + secrets.token_hex(4)
        extra: dict[str, str] = {}
        private_key = None
        if custody == "self":
            from nacl.public import PrivateKey
            from nacl.signing import SigningKey

            private_key = secrets.token_bytes(32)
            extra = {
                "ed25519_public_key": SigningKey.generate().verify_key.encode().hex(),
                "x25519_public_key": PrivateKey.generate().public_key.encode().hex(),
                "ethereum_address": Account.from_key(private_key).address,
            }
        counterparty = services.counterparty_create(
            actor="test",
            kind="person",
            contact_email=f"{name}@example.org",
            legal_name=f"Test {name}",
            country="DE",
            federation_name=name,
            custody=custody,
            **extra,
        )
        if accepted:
            Counterparty.objects.filter(pk=counterparty.pk).update(kyc_status=KycStatus.ACCEPTED)
            counterparty.refresh_from_db()
        if funded:
            fund(counterparty.ethereum_address)
        counterparty.test_private_key = private_key
        return counterparty

    return make


def open_funded_channel(
    counterparty: Any, node_deposit: int, their_deposit: int, challenge: int = 600
) -> Any:
    """A ledger channel in ETH with both deposits on-chain and seen by the watcher."""
    from channels_app import services
    from channels_app.models import ChannelPhase
    from channels_app.protocol.types import ETH

    channel = services.channel_open(
        counterparty=counterparty,
        deposits={ETH: (node_deposit, their_deposit)},
        actor="test",
        challenge_duration=challenge,
    )
    if node_deposit:
        services.channel_deposit(channel=channel, asset=ETH, amount=node_deposit, actor="test")
    if their_deposit:
        services.channel_deposit(
            channel=channel, asset=ETH, amount=their_deposit, actor="test", by_counterparty=True
        )
    run_chain_work(2)
    channel.refresh_from_db()
    assert channel.phase == ChannelPhase.OPEN
    return channel


def register_as_counterparty(channel: Any, version: int) -> str:
    """The counterparty (misbehaving) registers the both-signed state of ``version`` itself."""
    from channels_app import services
    from channels_app.models import ChannelState
    from settlement import ethereum, keystore

    signed = ChannelState.objects.get(channel=channel, version=version).protocol_signed
    data = services._call("register", channel, signed)
    key = keystore.open_custodial(channel.counterparty.custodial_keys.sealed_ethereum)
    sent = ethereum.transaction_send(to=ethereum.contract_address("Adjudicator"), data=data, private_key=key)
    receipt = _web3().eth.wait_for_transaction_receipt(sent.tx_hash, timeout=10)  # type: ignore[arg-type]
    assert receipt["status"] == 1
    return sent.tx_hash


def on_chain_status(channel: Any) -> Any:
    from channels_app.protocol.eip712 import OnChainStatus
    from settlement import ethereum

    word = ethereum.contract("Adjudicator").functions.statusOf(channel.id_bytes).call()
    return OnChainStatus.from_word(int(word))
