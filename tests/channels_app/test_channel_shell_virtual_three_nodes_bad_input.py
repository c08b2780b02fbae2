"""Bad input to virtual channels across three nodes: Ingrid refuses a lock with a wrong
version, a bad signature, an allocation that does not conserve money, or for an unknown
channel, with a 4xx and a code, and stores nothing; Bob refuses an update of a closed virtual
channel; the API refuses an opening it cannot fund before any node signs anything."""

from __future__ import annotations

import random
import secrets

import pytest
from conftest import ONE_ETH
from virtual_three_nodes import ThreeNodes, three_nodes_start, three_nodes_stop

from channels_app import services, virtual
from channels_app.api import state_output
from channels_app.models import Channel, ChannelKind
from channels_app.protocol import eip712, proposals
from channels_app.protocol.channel_state import Allocation, ChannelState
from channels_app.protocol.state import SignedState
from channels_app.protocol.types import ETH, Version, Wei, address
from settlement import ethereum, keystore
from settlement.transport import peer_request

pytestmark = pytest.mark.ethereum

TENTH = ONE_ETH // 10


@pytest.fixture
def nodes(live_web, tmp_path, node_account):
    started = three_nodes_start(tmp_path, live_web)
    yield started
    three_nodes_stop(started)


def _ingrid_stored(nodes: ThreeNodes) -> list:
    return nodes.ingrid.query(  # type: ignore[return-value]
        "from channels_app.models import Channel, ChannelStateChange, ChannelState, VirtualChannel\n"
        f"c = Channel.objects.get(channel_id='{nodes.alice_ingrid.channel_id}')\n"
        "result = [c.version, ChannelStateChange.objects.filter(channel=c).count(), "
        "ChannelState.objects.filter(channel=c).count(), VirtualChannel.objects.count()]"
    )


def _send_lock(nodes: ThreeNodes, channel_id: str, state: ChannelState, signature: bytes, evidence: dict):
    return peer_request(
        nodes.ingrid_peer,
        "POST",
        f"/node-api/channels/{channel_id}/virtual-proposals",
        json_body={"state": state_output(state), "signature": "0x" + signature.hex(), "evidence": [evidence]},
    )


def test_ingrid_refuses_bad_locks_with_a_code_and_stores_nothing(nodes: ThreeNodes):
    key = keystore.node_ethereum_private_key()
    domain = services.domain()
    ledger = nodes.alice_ingrid
    params = proposals.channel_params(
        ethereum.chain_id(),
        (services.node_address(), address(nodes.bob_peer.ethereum_address)),
        600,
        random.SystemRandom(),
    )
    opening = proposals.opening_state(params, {ETH: (3 * TENTH, 0)})
    # Bob's signature is not ours to make: the evidence's second signature is Alice's again.
    evidence = virtual.signed_document(
        params, SignedState(opening, (eip712.sign_state(key, domain, opening),) * 2)
    )
    good = proposals.lock(ledger.protocol_channel, params, ETH, 3 * TENTH, 0)
    before = _ingrid_stored(nodes)

    wrong_version = ChannelState(
        good.channel_id, Version(good.version + 1), good.allocations, good.sub_allocations
    )
    creates_money = ChannelState(
        good.channel_id,
        good.version,
        (Allocation(ETH, Wei(ONE_ETH), Wei(0)),),  # keeps Alice's whole balance and locks 0.3 more
        good.sub_allocations,
    )
    cases = [
        (
            ledger.channel_id,
            wrong_version,
            eip712.sign_state(key, domain, wrong_version),
            400,
            "wrong_version",
        ),
        (
            ledger.channel_id,
            creates_money,
            eip712.sign_state(key, domain, creates_money),
            400,
            "not_conserved",
        ),
        (
            ledger.channel_id,
            good,
            eip712.sign_state(secrets.token_bytes(32), domain, good),
            400,
            "bad_signature",
        ),
        (ledger.channel_id, good, eip712.sign_state(key, domain, good), 400, "bad_signature"),  # the evidence
        ("0x" + "ab" * 32, good, eip712.sign_state(key, domain, good), 404, "unknown_channel"),
    ]
    for channel_id, state, signature, status, code in cases:
        answer = _send_lock(nodes, channel_id, state, signature, evidence)
        assert (answer.status, answer.json()["error"]["code"]) == (status, code), answer.body
        assert answer.json()["error"]["message"]
    assert _ingrid_stored(nodes) == before  # nothing stored, not even the evidence
    ledger.refresh_from_db()
    assert ledger.version == 0


def test_a_closed_virtual_channel_takes_no_update_and_an_unfundable_one_is_refused_before_signing(
    nodes: ThreeNodes, client, make_user
):
    client.force_login(make_user("operator-v3", "operator"))
    too_much = client.post(
        "/api/virtual-channels/through-peer/",
        {
            "intermediary": nodes.ingrid_peer.name,
            "peer": nodes.bob_peer.name,
            "asset": "ETH",
            "ours": str(2 * ONE_ETH),
            "theirs": "0",
        },
        content_type="application/json",
    )
    assert too_much.status_code == 400
    assert too_much.json()["error"]["code"] == "bad_state"
    unknown = client.post(
        "/api/virtual-channels/through-peer/",
        {
            "intermediary": "no-such-bank",
            "peer": nodes.bob_peer.name,
            "asset": "ETH",
            "ours": "1",
            "theirs": "0",
        },
        content_type="application/json",
    )
    assert (unknown.status_code, unknown.json()["error"]["code"]) == (404, "not_found")
    assert not Channel.objects.filter(kind=ChannelKind.VIRTUAL).exists()
    assert (
        nodes.bob.query(
            "from channels_app.models import Channel\nresult = Channel.objects.filter(kind='virtual').count()"
        )
        == 0
    )

    opened = client.post(
        "/api/virtual-channels/through-peer/",
        {
            "intermediary": nodes.ingrid_peer.name,
            "peer": nodes.bob_peer.name,
            "asset": "ETH",
            "ours": str(TENTH),
            "theirs": "0",
        },
        content_type="application/json",
    )
    assert opened.status_code == 201, opened.json()
    assert (opened.json()["kind"], opened.json()["phase"]) == ("virtual", "open")
    channel_id = opened.json()["channel_id"]
    paid = client.post(
        f"/api/channels/{channel_id}/payments/",
        {"asset": "ETH", "amount": "1000"},
        content_type="application/json",
    )
    assert paid.status_code == 200, paid.json()
    settled = client.post(
        f"/api/channels/{channel_id}/settle/", {"mode": "cooperative"}, content_type="application/json"
    )
    assert (settled.status_code, settled.json()["phase"]) == (202, "concluded")

    refused = client.post(
        f"/api/channels/{channel_id}/payments/",
        {"asset": "ETH", "amount": "1000"},
        content_type="application/json",
    )
    assert (refused.status_code, refused.json()["error"]["code"]) == (409, "channel_closed")
    # Alice's node bypassed: a signed update sent straight to Bob is refused there too.
    row = Channel.objects.get(channel_id=channel_id)
    latest = row.protocol_channel.latest.state
    late = ChannelState(latest.channel_id, Version(latest.version + 1), latest.allocations)
    answer = peer_request(
        nodes.bob_peer,
        "POST",
        f"/node-api/channels/{channel_id}/proposals",
        json_body={
            "state": state_output(late),
            "signature": "0x"
            + eip712.sign_state(keystore.node_ethereum_private_key(), services.domain(), late).hex(),
        },
    )
    assert (answer.status, answer.json()["error"]["code"]) == (400, "channel_closed")
    assert nodes.row(nodes.bob, channel_id)["version"] == latest.version
