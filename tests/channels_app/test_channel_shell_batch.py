"""The batch endpoint between nodes: many updates in one signed request, each checked on its own.

A peer node proposes updates on several channels at once; we countersign the good ones after
persisting them, and refuse each bad one with its code and sentence, storing nothing for it
(the rest of the batch still goes through). Every countersignature verifies with eth_account.
"""

from __future__ import annotations

import random
import secrets

import pytest
from django.db import transaction
from eth_account import Account
from eth_account.messages import encode_typed_data

from channels_app import services
from channels_app.api import state_output
from channels_app.models import Channel, ChannelBatchChange, ChannelState, ChannelStateChange
from channels_app.protocol import eip712, proposals
from channels_app.protocol.channel_state import Allocation
from channels_app.protocol.channel_state import ChannelState as ProtocolState
from channels_app.protocol.state_changes import DepositObserved
from channels_app.protocol.types import ETH, Wei
from tests.channels_app.signed_peer import make_signed_peer, post_as_peer

pytestmark = pytest.mark.ethereum

BATCH = "/node-api/channels/proposals/batch"


@pytest.fixture
def peer_node(transactional_db):
    """A peer node whose Ed25519 transport key and Ethereum key the test holds."""
    return make_signed_peer("bank-z")


def _post(client, transport_key, path: str, body: dict, *, signed: bool = True):
    return post_as_peer(client, "bank-z", transport_key, path, body, signed=signed)


def _open_funded(client, transport_key, ethereum_key, seed: int) -> tuple[Channel, ProtocolState]:
    domain = services.domain()
    params = proposals.channel_params(
        31337, (eip712.address_of_key(ethereum_key), services.node_address()), 600, random.Random(seed)
    )
    opening = proposals.opening_state(params, {ETH: (1000, 1000)})
    answer = _post(
        client,
        transport_key,
        "/node-api/channels/open",
        {
            "params": services.params_document(params),
            "state": state_output(opening),
            "signature": "0x" + eip712.sign_state(ethereum_key, domain, opening).hex(),
        },
    )
    assert answer.status_code == 201, answer.json()
    channel = Channel.objects.get(channel_id=answer.json()["channel_id"])
    with transaction.atomic():
        services.channel_observe(
            channel_id=channel.channel_id, changes=[DepositObserved(channel.id_bytes, ETH, Wei(2000))]
        )
    channel.refresh_from_db()
    assert channel.phase == "open"
    return channel, opening


def _item(channel: Channel, state: ProtocolState, key: bytes) -> dict:
    return {
        "channel_id": channel.channel_id,
        "state": state_output(state),
        "signature": "0x" + eip712.sign_state(key, services.domain(), state).hex(),
    }


def _pays_us(state: ProtocolState, amount: int, *, version: int | None = None) -> ProtocolState:
    """The peer (participant A) pays us (B) ``amount``."""
    allocation = state.allocations[0]
    moved = Allocation(ETH, Wei(allocation.balance_a - amount), Wei(allocation.balance_b + amount))
    new = state.next(allocations=[moved])
    if version is not None:
        new = ProtocolState(new.channel_id, version, new.allocations)
    return new


def test_a_batch_countersigns_the_good_updates_and_refuses_each_bad_one_alone(client, peer_node):
    transport_key, ethereum_key = peer_node
    domain = services.domain()
    channels = [_open_funded(client, transport_key, ethereum_key, seed) for seed in range(5)]
    (good, g0), (wrong_version, w0), (bad_signature, b0), (not_conserved, n0), (final, f0) = channels
    unknown_id = "0x" + "ab" * 32

    good_state = _pays_us(g0, 100)
    inflated = ProtocolState(n0.channel_id, 1, (Allocation(ETH, Wei(900), Wei(1200)),))
    closing = ProtocolState(f0.channel_id, 1, f0.allocations, (), True)
    body = {
        "proposals": [
            _item(good, good_state, ethereum_key),
            _item(wrong_version, _pays_us(w0, 10, version=2), ethereum_key),
            _item(bad_signature, _pays_us(b0, 10), secrets.token_bytes(32)),
            _item(not_conserved, inflated, ethereum_key),
            _item(final, closing, ethereum_key),
            {
                "channel_id": unknown_id,
                "state": state_output(ProtocolState(bytes.fromhex(unknown_id[2:]), 1, g0.allocations)),
                "signature": "0x" + eip712.sign_state(ethereum_key, domain, good_state).hex(),
            },
            {"channel_id": good.channel_id, "state": {"version": "one"}, "signature": "0x00"},
        ]
    }
    before = (
        ChannelState.objects.count(),
        ChannelStateChange.objects.count(),
        ChannelBatchChange.objects.count(),
    )

    assert _post(client, transport_key, BATCH, body, signed=False).status_code == 401
    answer = _post(client, transport_key, BATCH, body)
    assert answer.status_code == 200, answer.json()
    results = answer.json()["results"]
    assert answer.json()["accepted"] == 1
    assert answer.json()["refused"] == 6
    assert [r.get("error", {}).get("code") for r in results] == [
        None,
        "wrong_version",
        "bad_signature",
        "not_conserved",
        "not_batchable",
        "unknown_channel",
        "bad_state",
    ]
    for result in results[1:]:
        assert result["error"]["message"]  # a sentence, not only a code

    # The good update: persisted before the answer, and the countersignature is ours, as
    # eth_account sees it (independently of the project's own EIP-712 code).
    countersignature = bytes.fromhex(results[0]["countersignature"][2:])
    message = encode_typed_data(full_message=eip712.typed_data(domain, good_state))
    assert Account.recover_message(message, signature=countersignature).lower() == services.node_address()
    stored = ChannelState.objects.get(channel=good, version=1)
    for signer, signature in zip(
        (eip712.address_of_key(ethereum_key), services.node_address()), stored.signatures, strict=True
    ):
        assert Account.recover_message(message, signature=bytes.fromhex(signature[2:])).lower() == signer
    good.refresh_from_db()
    assert (good.version, good.balances[0]["ours"]) == (1, "1100")

    logged = _batch_logged_once(before, good, stored)
    assert logged.events == ["StateAccepted", "SendCountersignature"]
    assert logged.actor.startswith("peer:")

    # Each refused update stored nothing and left its channel as it was.
    assert ChannelState.objects.count() == before[0] + 1
    for channel, _ in channels[1:]:
        channel.refresh_from_db()
        assert channel.version == 0
        assert channel.balances[0]["ours"] == "1000"

    # The refused ones, sent again correctly, go through in the next batch with the good one's next.
    answer = _post(
        client,
        transport_key,
        BATCH,
        {
            "proposals": [
                _item(good, _pays_us(good_state, 50), ethereum_key),
                _item(wrong_version, _pays_us(w0, 10), ethereum_key),
                _item(bad_signature, _pays_us(b0, 10), ethereum_key),
            ]
        },
    )
    assert answer.status_code == 200, answer.json()
    assert answer.json()["accepted"] == 3
    assert [Channel.objects.get(pk=c.pk).version for c in (good, wrong_version, bad_signature)] == [2, 1, 1]


def test_a_request_that_is_not_a_batch_is_refused_whole(client, peer_node):
    transport_key, ethereum_key = peer_node
    channel, opening = _open_funded(client, transport_key, ethereum_key, 11)
    before = ChannelState.objects.count()
    for body, code in (
        ({"proposals": []}, "bad_state"),
        ({"proposals": {"a": 1}}, "bad_state"),
        ({"proposals": [_item(channel, _pays_us(opening, 1), ethereum_key)] * 1001}, "bad_state"),
    ):
        answer = _post(client, transport_key, BATCH, body)
        assert answer.status_code == 400
        assert answer.json()["error"]["code"] == code
        assert answer.json()["error"]["message"]
    assert ChannelState.objects.count() == before
    channel.refresh_from_db()
    assert channel.version == 0


def _stored_fingerprint(channel: Channel) -> bytes:
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT sha256(convert_to(machine::text, 'UTF8')) FROM channels_app_channel WHERE id = %s",
            [channel.pk],
        )
        return bytes(cursor.fetchone()[0])


def test_a_batch_reads_each_machine_as_stored_even_when_the_single_path_changed_it(client, peer_node):
    from channels_app import batch, codec

    transport_key, ethereum_key = peer_node
    channel, opening = _open_funded(client, transport_key, ethereum_key, 21)
    machine_before = _stored_fingerprint(channel)
    first = _pays_us(opening, 10)
    answer = _post(client, transport_key, BATCH, {"proposals": [_item(channel, first, ethereum_key)]})
    assert answer.json()["accepted"] == 1, answer.json()

    # A plain update writes its state once, as the history row the channel's version names;
    # the machine's JSON (everything else) is left as it was.
    channel.refresh_from_db()
    assert _stored_fingerprint(channel) == machine_before
    assert channel.protocol_channel.latest.state == first
    assert (
        ChannelState.objects.get(channel=channel, version=1).protocol_signed
        == channel.protocol_channel.latest
    )
    # The machine the batch remembers is the one PostgreSQL holds, decoded afresh.
    remembered = batch._decoded_machines[_stored_fingerprint(channel)]
    assert remembered == codec.machine_parts_decode(channel.machine)

    # Version 2 through the single path (services._apply, which knows nothing of the batch's
    # memory), then version 3 in a batch: the batch must see version 2, not what it remembered.
    second = _pays_us(first, 10)
    answer = _post(
        client,
        transport_key,
        f"/node-api/channels/{channel.channel_id}/proposals",
        {"state": state_output(second), "signature": _item(channel, second, ethereum_key)["signature"]},
    )
    assert answer.status_code == 200, answer.json()
    third = _pays_us(second, 10)
    stale = _pays_us(first, 5)  # a version 2 the batch would accept if it read the old machine
    answer = _post(client, transport_key, BATCH, {"proposals": [_item(channel, stale, ethereum_key)]})
    assert answer.json()["results"][0]["error"]["code"] == "wrong_version"
    answer = _post(client, transport_key, BATCH, {"proposals": [_item(channel, third, ethereum_key)]})
    assert answer.json()["accepted"] == 1, answer.json()
    channel.refresh_from_db()
    assert (channel.version, channel.balances[0]["ours"]) == (3, "1030")
    versions = ChannelState.objects.filter(channel=channel).order_by("version")
    assert [s.version for s in versions] == [0, 1, 2, 3]

    # A machine not in memory (another process wrote it, or memory was cleared) is read and
    # decoded from the row.
    batch._decoded_machines.clear()
    batch._built_machines.clear()
    batch._decoded_states.clear()
    fourth = _pays_us(third, 10)
    answer = _post(client, transport_key, BATCH, {"proposals": [_item(channel, fourth, ethereum_key)]})
    assert answer.json()["accepted"] == 1, answer.json()
    channel.refresh_from_db()
    assert batch._decoded_machines[_stored_fingerprint(channel)] == codec.machine_parts_decode(
        channel.machine
    )
    assert channel.protocol_channel.latest.state == fourth
    # Each path logs its own way: the batches one row each, the single path one row per change.
    received = ChannelBatchChange.objects.filter(channels__contains=[channel.pk], change="ProposalReceived")
    assert sorted(v for row in received for v in row.versions) == [1, 3, 4]
    single = ChannelStateChange.objects.filter(channel=channel, change="ProposalReceived")
    assert single.count() == 1


def test_the_memory_of_decoded_machines_is_bounded_oldest_first(monkeypatch):
    from channels_app import batch

    monkeypatch.setattr(batch, "_decoded_machines", {})
    monkeypatch.setattr(batch, "_DECODED_MACHINES_MAX", 3)
    machines = [object() for _ in range(5)]
    for index, machine in enumerate(machines):
        batch._remember_machine(bytes([index]) * 32, machine)  # type: ignore[arg-type]
    assert list(batch._decoded_machines) == [bytes([i]) * 32 for i in (2, 3, 4)]
    assert batch._decoded_machines[bytes([4]) * 32] is machines[4]


def _batch_logged_once(
    before: tuple[int, int, int], channel: Channel, stored: ChannelState
) -> ChannelBatchChange:
    """The batch's log: one row naming the one update it applied to ``channel`` (its version and
    the digest its history row ``stored`` holds), and no log row per update."""
    assert ChannelStateChange.objects.count() == before[1]
    assert ChannelBatchChange.objects.count() == before[2] + 1
    logged = ChannelBatchChange.objects.latest("id")
    assert (logged.change, logged.channels, logged.versions, logged.digests) == (
        "ProposalReceived",
        [channel.pk],
        [1],
        [stored.digest],
    )
    return logged
