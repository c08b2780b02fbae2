"""The stored forms of a channel: signed states as bytes, the machine without its latest state.

Pure (no database): every state the rules can hold comes back from its bytes equal, with the
same EIP-712 digest, and anything that is not such bytes is refused rather than misread.
"""

from __future__ import annotations

import random

import pytest
from hypothesis import given
from hypothesis import strategies as st

from channels_app import codec
from channels_app.protocol import eip712, proposals
from channels_app.protocol.channel_state import Allocation, ChannelState, SubAllocation
from channels_app.protocol.state import ChannelKind, PendingUpdate, Phase, SignedState
from channels_app.protocol.transition import transition
from channels_app.protocol.types import ETH, MAX_UINT64, MAX_UINT256, Address, ChannelId, Version

DOMAIN = eip712.Domain(31337, Address("0x" + "ad" * 20))

addresses = st.binary(min_size=20, max_size=20).map(lambda raw: Address("0x" + raw.hex()))
channel_ids = st.binary(min_size=32, max_size=32).map(ChannelId)
amounts = st.integers(min_value=0, max_value=MAX_UINT256)
signatures = st.binary(min_size=65, max_size=65)


@st.composite
def states(draw: st.DrawFn) -> ChannelState:
    assets = draw(st.lists(addresses, min_size=1, max_size=4, unique=True))
    allocations = tuple(Allocation(asset, draw(amounts), draw(amounts)) for asset in assets)
    subs = draw(st.lists(channel_ids, max_size=3, unique=True))
    sub_allocations = tuple(
        SubAllocation(sub, draw(st.sampled_from(assets)), draw(st.integers(1, MAX_UINT256))) for sub in subs
    )
    return ChannelState(
        draw(channel_ids),
        Version(draw(st.integers(0, MAX_UINT64))),
        allocations,
        sub_allocations,
        draw(st.booleans()),
    )


@given(states(), signatures, signatures)
def test_a_signed_state_comes_back_from_its_bytes_with_the_same_digest(state, first, second):
    signed = SignedState(state, (first, second))
    stored = codec.signed_state_bytes(signed)
    back = codec.signed_state_from_bytes(memoryview(stored))  # as PostgreSQL hands bytea back
    assert back == signed
    assert eip712.state_digest(DOMAIN, back.state) == eip712.state_digest(DOMAIN, state)
    assert codec.pending_from_bytes(codec.pending_bytes(PendingUpdate(state, first))) == PendingUpdate(
        state, first
    )


def test_a_one_asset_state_is_a_fraction_of_its_json():
    state = ChannelState(ChannelId(b"\x01" * 32), Version(7), (Allocation(ETH, 10**18, 3 * 10**17),))
    stored = codec.signed_state_bytes(SignedState(state, (b"\x02" * 65, b"\x03" * 65)))
    assert len(stored) == 1 + 32 + 8 + 1 + 2 + 84 + 2 + 1 + 130


@given(states(), signatures, signatures, st.data())
def test_bytes_that_are_not_a_stored_state_are_refused(state, first, second, data):
    stored = codec.signed_state_bytes(SignedState(state, (first, second)))
    cut = data.draw(st.integers(0, len(stored) - 1))
    with pytest.raises(ValueError, match=r"stored format|cut short|missing bytes"):
        codec.signed_state_from_bytes(stored[:cut])
    with pytest.raises(ValueError, match="trailing or missing bytes"):
        codec.signed_state_from_bytes(stored + b"\x00")
    with pytest.raises(ValueError, match="not a signed channel state"):
        codec.signed_state_from_bytes(bytes([2]) + stored[1:])  # a format this code does not know
    with pytest.raises(ValueError, match="our signature alone"):
        codec.pending_from_bytes(stored)  # two signatures: a both-signed state, not a proposal


def test_the_machine_is_stored_without_its_latest_state_and_rebuilt_whole():
    from channels_app.protocol.state import NodeChannels
    from channels_app.protocol.state_changes import ChannelOpened, DepositObserved, UpdateProposed

    key_a, key_b = b"\x11" * 32, b"\x22" * 32
    us, them = eip712.address_of_key(key_a), eip712.address_of_key(key_b)
    params = proposals.channel_params(31337, (us, them), 600, random.Random(5))
    opening = proposals.opening_state(params, {ETH: (1000, 1000)})
    signed = SignedState(
        opening, (eip712.sign_state(key_a, DOMAIN, opening), eip712.sign_state(key_b, DOMAIN, opening))
    )
    node = NodeChannels(us=us, domain=DOMAIN)
    node = transition(node, ChannelOpened(params, ChannelKind.LEDGER, signed)).new_state
    node = transition(node, DepositObserved(params.channel_id, ETH, 2000)).new_state
    channel = node.channels[params.channel_id]
    assert channel.phase == Phase.OPEN
    new = proposals.payment(channel, ETH, 10)
    proposed = transition(
        node, UpdateProposed(params.channel_id, new, eip712.sign_state(key_a, DOMAIN, new))
    ).new_state.channels[params.channel_id]

    stored = codec.machine_encode(proposed)
    assert not {"latest", "pending"} & stored.keys()
    parts = codec.machine_parts_decode(stored)
    assert parts == codec.machine_parts_of(proposed)
    rebuilt = codec.machine_build(
        parts, proposed.latest, codec.pending_from_bytes(codec.pending_bytes(proposed.pending))
    )
    assert rebuilt == proposed
    # Proposing touched only the pending proposal: the stored machine is the one before.
    assert codec.machine_unchanged(channel, proposed)
    with pytest.raises(ValueError, match="not a stored channel machine"):
        codec.machine_parts_decode(codec.encode(proposed))  # the old, whole form: not mistaken for parts
