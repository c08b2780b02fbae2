"""Our EIP-712 hashing and coincurve signatures agree with eth_account, an independent
implementation: same struct hash, same domain separator, and eth_account recovers our signer."""

from __future__ import annotations

import pytest
from channel_protocol_world import CHAIN_ID, DOMAIN, USD, key_for
from eth_account import Account
from eth_account.messages import encode_typed_data
from hypothesis import given, settings
from hypothesis import strategies as st

from channels_app.protocol.channel_state import Allocation, ChannelParams, ChannelState, SubAllocation
from channels_app.protocol.eip712 import (
    Withdrawal,
    address_of_key,
    recover_digest,
    sign_digest,
    sign_state,
    state_digest,
    state_struct_hash,
    typed_data,
    withdrawal_digest,
)
from channels_app.protocol.errors import BadSignature
from channels_app.protocol.types import ETH, ChannelId, Version, Wei, address

amounts = st.integers(min_value=0, max_value=2**256 - 1)
positive = st.integers(min_value=1, max_value=2**256 - 1)
channel_ids = st.binary(min_size=32, max_size=32).map(ChannelId)

states = st.builds(
    lambda channel_id, version, eth, usd, subs, final: ChannelState(
        channel_id,
        Version(version),
        (Allocation(ETH, Wei(eth[0]), Wei(eth[1])), Allocation(USD, Wei(usd[0]), Wei(usd[1]))),
        tuple(
            SubAllocation(ChannelId(bytes([i]) * 32), ETH if i % 2 else USD, Wei(a))
            for i, a in enumerate(subs)
        ),
        final,
    ),
    channel_ids,
    st.integers(min_value=0, max_value=2**64 - 1),
    st.tuples(amounts, amounts),
    st.tuples(amounts, amounts),
    st.lists(positive, max_size=3),
    st.booleans(),
)


@settings(max_examples=40, deadline=None)
@given(state=states)
def test_struct_hash_and_domain_equal_eth_accounts(state: ChannelState) -> None:
    message = encode_typed_data(full_message=typed_data(DOMAIN, state))
    assert message.header == DOMAIN.separator
    assert message.body == state_struct_hash(state)


@settings(max_examples=25, deadline=None)
@given(state=states, signer=st.sampled_from(["alice", "bob", "ingrid"]))
def test_eth_account_recovers_the_coincurve_signer(state: ChannelState, signer: str) -> None:
    key = key_for(signer)
    signature = sign_state(key, DOMAIN, state)
    message = encode_typed_data(full_message=typed_data(DOMAIN, state))
    assert Account.recover_message(message, signature=signature).lower() == address_of_key(key)


def test_eth_account_signature_recovers_with_our_code() -> None:
    key = key_for("alice")
    params = ChannelParams(CHAIN_ID, (address_of_key(key), address_of_key(key_for("bob"))), 7, 600)
    state = ChannelState(params.channel_id, Version(3), (Allocation(ETH, Wei(5), Wei(7)),))
    signed = Account.sign_message(encode_typed_data(full_message=typed_data(DOMAIN, state)), key)
    assert recover_digest(state_digest(DOMAIN, state), signed.signature) == address_of_key(key)
    assert bytes(signed.signature) == sign_state(key, DOMAIN, state)  # RFC 6979: deterministic


def test_withdrawal_digest_matches_eth_account() -> None:
    key = key_for("alice")
    order = Withdrawal(ChannelId(b"\x01" * 32), address_of_key(key), USD, address("0x" + "be" * 20), Wei(99))
    message = encode_typed_data(
        full_message={
            "types": {
                "EIP712Domain": [
                    {"name": "name", "type": "string"},
                    {"name": "version", "type": "string"},
                    {"name": "chainId", "type": "uint256"},
                    {"name": "verifyingContract", "type": "address"},
                ],
                "Withdrawal": [
                    {"name": "channelId", "type": "bytes32"},
                    {"name": "participant", "type": "address"},
                    {"name": "asset", "type": "address"},
                    {"name": "receiver", "type": "address"},
                    {"name": "amount", "type": "uint256"},
                ],
            },
            "primaryType": "Withdrawal",
            "domain": DOMAIN.as_typed_data(),
            "message": {
                "channelId": order.channel_id,
                "participant": order.participant,
                "asset": order.asset,
                "receiver": order.receiver,
                "amount": order.amount,
            },
        }
    )
    signature = sign_digest(key, withdrawal_digest(DOMAIN, order))
    assert Account.recover_message(message, signature=signature).lower() == order.participant


def test_high_s_twin_of_a_valid_signature_is_refused() -> None:
    digest = b"\x42" * 32
    signature = sign_digest(key_for("alice"), digest)
    order = 0xFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFEBAAEDCE6AF48A03BBFD25E8CD0364141
    high_s = (order - int.from_bytes(signature[32:64], "big")).to_bytes(32, "big")
    twin = signature[:32] + high_s + bytes([55 - signature[64]])
    with pytest.raises(BadSignature):
        recover_digest(digest, twin)


def test_channel_id_is_bound_to_chain_and_participants() -> None:
    a, b = address_of_key(key_for("alice")), address_of_key(key_for("bob"))
    base = ChannelParams(CHAIN_ID, (a, b), 1, 600)
    assert (
        len(
            {
                base.channel_id,
                ChannelParams(CHAIN_ID + 1, (a, b), 1, 600).channel_id,
                ChannelParams(CHAIN_ID, (b, a), 1, 600).channel_id,
                ChannelParams(CHAIN_ID, (a, b), 2, 600).channel_id,
                ChannelParams(CHAIN_ID, (a, b), 1, 601).channel_id,
            }
        )
        == 5
    )
