"""A self-custody counterparty streams signed micro-payments through the API: arrivals out of
order within the window are put back in order, duplicates are dropped, a payment too far ahead
is refused, and every m payments the node countersigns a checkpoint."""

from __future__ import annotations

import pytest
from conftest import ONE_ETH, run_chain_work
from web3 import Web3

from channels_app import codec, services
from channels_app.api import state_output
from channels_app.models import ChannelState, OnChainTransaction, StreamPayment
from channels_app.protocol import eip712
from channels_app.protocol.channel_state import Allocation
from channels_app.protocol.proposals import stream_genesis_hash, stream_payment_hash
from channels_app.protocol.state import StreamPayment as Payment
from channels_app.protocol.types import ETH, Wei
from settlement import ethereum

pytestmark = pytest.mark.ethereum

STEP = ONE_ETH // 100


def _self_custody_channel(counterparty):
    channel = services.channel_open(counterparty=counterparty, deposits={ETH: (0, ONE_ETH)}, actor="test")
    state = codec.decode(channel.opening["state"])
    services.channel_open_countersign(
        channel=channel,
        signature=eip712.sign_state(counterparty.test_private_key, services.domain(), state),
        actor="test",
    )
    data = ethereum.encode_call(
        "Adjudicator", "deposit", channel.id_bytes, Web3.to_checksum_address(ETH), ONE_ETH
    )
    sent = ethereum.transaction_send(
        to=ethereum.contract_address("Adjudicator"),
        data=data,
        value=ONE_ETH,
        private_key=counterparty.test_private_key,
    )
    ethereum.web3().eth.wait_for_transaction_receipt(sent.tx_hash, timeout=10)
    run_chain_work(1)
    channel.refresh_from_db()
    assert channel.phase == "open"
    return channel


def _payments(channel, key, count):
    base = channel.protocol_channel.latest.state
    previous_state, previous_hash = base, stream_genesis_hash(base)
    made = []
    for sequence in range(1, count + 1):
        allocation = previous_state.allocation(ETH)
        state = previous_state.next(
            allocations=[Allocation(ETH, Wei(allocation.balance_a + STEP), Wei(allocation.balance_b - STEP))]
        )
        payment = Payment(
            channel.id_bytes,
            sequence,
            previous_hash,
            ETH,
            Wei(STEP),
            state,
            eip712.sign_state(key, services.domain(), state),
        )
        made.append(payment)
        previous_state, previous_hash = state, stream_payment_hash(payment)
    return made


def _body(payment):
    return {
        "sequence": payment.sequence,
        "previous_hash": "0x" + payment.previous_hash.hex(),
        "asset": "ETH",
        "amount": str(payment.amount),
        "state": state_output(payment.state),
        "signature": "0x" + payment.signature.hex(),
    }


def test_payments_out_of_order_are_reordered_duplicates_dropped_and_checkpointed(
    node_account, make_counterparty, client, make_user
):
    client.force_login(make_user("operator-s", "operator"))
    counterparty = make_counterparty("self")
    channel = _self_custody_channel(counterparty)
    base = f"/api/channels/{channel.channel_id}/"
    answer = client.post(
        base + "streams/",
        {"asset": "ETH", "window": 2, "checkpoint_every": 3},
        content_type="application/json",
    )
    assert answer.status_code == 201, answer.json()
    payments = _payments(channel, counterparty.test_private_key, 6)

    def send(payment):
        return client.post(base + "stream-payments/", _body(payment), content_type="application/json")

    assert send(payments[1]).json()["duplicate"] is False  # 2 waits for 1
    assert not StreamPayment.objects.filter(stream__channel=channel).exists()
    assert send(payments[0]).status_code == 200  # 1 arrives: 1 and 2 apply
    assert send(payments[0]).json()["duplicate"] is True
    refused = send(payments[5])  # 6 is more than the window of 2 ahead of 3
    assert refused.status_code == 400
    assert refused.json()["error"]["code"] == "outside_window"
    answer = send(payments[2])  # the third payment: a checkpoint, countersigned by the node
    assert answer.status_code == 200
    assert answer.json()["version"] == 3
    balances = [
        int(b)
        for b in StreamPayment.objects.filter(stream__channel=channel).values_list("balance_after", flat=True)
    ]
    assert balances == [STEP, 2 * STEP, 3 * STEP]
    checkpoint = ChannelState.objects.get(channel=channel, version=3)
    for participant, signature in zip(
        channel.protocol_params.participants, checkpoint.signatures, strict=True
    ):
        eip712.verify_state_signature(
            services.domain(), payments[2].state, participant, bytes.fromhex(signature[2:])
        )
    assert OnChainTransaction.objects.filter(channel=channel, purpose="checkpoint").count() == 1
