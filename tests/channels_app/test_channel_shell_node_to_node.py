"""Between two nodes: a peer node opens a channel with us and proposes updates over the signed
transport; we countersign only after persisting, refuse bad proposals with a code (storing
nothing) and refuse unsigned requests."""

from __future__ import annotations

import random

import pytest

from channels_app import services
from channels_app.api import state_output
from channels_app.models import Channel, ChannelState, ChannelStateChange
from channels_app.protocol import eip712, proposals
from channels_app.protocol.types import ETH
from tests.channels_app.signed_peer import make_signed_peer, post_as_peer

pytestmark = pytest.mark.ethereum


@pytest.fixture
def peer_node(transactional_db):
    """A peer node whose Ed25519 transport key and Ethereum key the test holds."""
    return make_signed_peer("bank-y")


def _post(client, transport_key, path: str, body: dict, *, signed: bool = True):
    return post_as_peer(client, "bank-y", transport_key, path, body, signed=signed)


def test_a_peer_node_opens_a_channel_and_its_proposals_are_checked_and_countersigned(client, peer_node):
    transport_key, ethereum_key = peer_node
    domain = services.domain()
    params = proposals.channel_params(
        31337,
        (eip712.address_of_key(ethereum_key), services.node_address()),
        600,
        random.Random(5),
    )
    opening = proposals.opening_state(params, {ETH: (1000, 1000)})
    body = {
        "params": services.params_document(params),
        "state": state_output(opening),
        "signature": "0x" + eip712.sign_state(ethereum_key, domain, opening).hex(),
    }

    assert _post(client, transport_key, "/node-api/channels/open", body, signed=False).status_code == 401
    assert not Channel.objects.exists()

    answer = _post(client, transport_key, "/node-api/channels/open", body)
    assert answer.status_code == 201, answer.json()
    countersignature = bytes.fromhex(answer.json()["signature"][2:])
    eip712.verify_state_signature(domain, opening, services.node_address(), countersignature)
    channel = Channel.objects.get(channel_id=answer.json()["channel_id"])
    assert channel.our_index == 1
    assert channel.peer.name == "bank-y"
    assert ChannelState.objects.filter(channel=channel, version=0).exists()

    # Mark it funded as the watcher would, then take a payment from the peer.
    from django.db import transaction

    from channels_app.protocol.state_changes import DepositObserved

    with transaction.atomic():
        services.channel_observe(
            channel_id=channel.channel_id, changes=[DepositObserved(channel.id_bytes, ETH, 2000)]
        )
    channel.refresh_from_db()
    assert channel.phase == "open"
    state = opening.next(allocations=[type(opening.allocations[0])(ETH, 900, 1100)])
    path = f"/node-api/channels/{channel.channel_id}/proposals"

    before = (ChannelState.objects.count(), ChannelStateChange.objects.count())
    wrong = type(state)(state.channel_id, 2, state.allocations)
    refused = _post(
        client,
        transport_key,
        path,
        {
            "state": state_output(wrong),
            "signature": "0x" + eip712.sign_state(ethereum_key, domain, wrong).hex(),
        },
    )
    assert refused.status_code == 400
    assert refused.json()["error"]["code"] == "wrong_version"
    assert (ChannelState.objects.count(), ChannelStateChange.objects.count()) == before

    answer = _post(
        client,
        transport_key,
        path,
        {
            "state": state_output(state),
            "signature": "0x" + eip712.sign_state(ethereum_key, domain, state).hex(),
        },
    )
    assert answer.status_code == 200, answer.json()
    eip712.verify_state_signature(
        domain, state, services.node_address(), bytes.fromhex(answer.json()["countersignature"][2:])
    )
    channel.refresh_from_db()
    assert channel.version == 1
    assert channel.balances[0]["ours"] == "1100"
