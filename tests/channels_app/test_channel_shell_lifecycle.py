"""The whole life of a ledger channel on anvil: open, fund in ETH and the demo stable-coin,
pay both ways off-chain, settle cooperatively; every signed state verifies with eth_account."""

from __future__ import annotations

import pytest
from conftest import ONE_ETH, mint_demo_coin, run_chain_work
from eth_account import Account
from eth_account.messages import encode_typed_data
from web3 import Web3

from channels_app import services
from channels_app.models import Channel, ChannelPhase, ChannelState, OnChainTransaction, TransactionStatus
from channels_app.protocol import eip712
from channels_app.protocol.types import ETH
from settlement import ethereum

pytestmark = pytest.mark.ethereum


def test_a_custodial_channel_opens_funds_pays_and_settles_cooperatively(node_account, make_counterparty):
    counterparty = make_counterparty("custodial")
    coin = services.demo_coin_address()
    mint_demo_coin(counterparty.ethereum_address, 500_000_000)
    channel = services.channel_open(
        counterparty=counterparty,
        deposits={ETH: (ONE_ETH, ONE_ETH // 2), coin: (0, 200_000_000)},
        actor="test",
    )
    assert channel.phase == ChannelPhase.FUNDING
    services.channel_deposit(channel=channel, asset=ETH, amount=ONE_ETH, actor="test")
    services.channel_deposit(
        channel=channel, asset=ETH, amount=ONE_ETH // 2, actor="test", by_counterparty=True
    )
    services.channel_deposit(
        channel=channel, asset=coin, amount=200_000_000, actor="test", by_counterparty=True
    )
    run_chain_work()
    channel.refresh_from_db()
    assert channel.phase == ChannelPhase.OPEN

    services.channel_pay(channel=channel, asset=ETH, amount=ONE_ETH // 4, actor="test")
    services.channel_pay(channel=channel, asset=coin, amount=50_000_000, actor="test", from_counterparty=True)
    channel.refresh_from_db()
    assert channel.version == 2
    balances = {row["asset"]: row for row in channel.balances}
    assert balances[ETH]["ours"] == str(ONE_ETH * 3 // 4)
    assert balances[coin]["ours"] == "50000000"

    node_eth_before = ethereum.web3().eth.get_balance(Web3.to_checksum_address(node_account))
    services.channel_close(channel=channel, actor="test")
    run_chain_work()
    channel.refresh_from_db()
    assert channel.phase == ChannelPhase.CONCLUDED
    conclude = OnChainTransaction.objects.get(channel=channel, purpose="conclude")
    assert conclude.status in (TransactionStatus.MINED, TransactionStatus.FINAL)
    assert (
        ethereum.web3().eth.get_balance(Web3.to_checksum_address(node_account))
        > node_eth_before + ONE_ETH // 2
    )
    assert (
        ethereum.contract("DemoStableCoin").functions.balanceOf(Web3.to_checksum_address(node_account)).call()
        == 50_000_000
    )

    # Every both-signed state verifies with eth_account, independently of our hashing code.
    domain = services.domain()
    params = channel.protocol_params
    states = list(ChannelState.objects.filter(channel=channel).order_by("version"))
    assert [s.version for s in states] == [0, 1, 2, 3]
    for row in states:
        message = encode_typed_data(full_message=eip712.typed_data(domain, row.protocol_state))
        for participant, signature in zip(params.participants, row.signatures, strict=True):
            assert Account.recover_message(message, signature=signature).lower() == participant


def test_the_channel_cannot_be_paid_before_it_is_funded(node_account, make_counterparty):
    from channels_app.protocol.errors import NotFunded

    counterparty = make_counterparty("custodial", funded=False)
    channel = services.channel_open(counterparty=counterparty, deposits={ETH: (ONE_ETH, 0)}, actor="test")
    with pytest.raises(NotFunded):
        services.channel_pay(channel=channel, asset=ETH, amount=1, actor="test")
    assert Channel.objects.get(pk=channel.pk).version == 0
