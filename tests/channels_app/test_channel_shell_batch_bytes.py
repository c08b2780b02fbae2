"""The batch endpoint in its binary encoding (``channels_app.batch_wire``), what nodes send.

The same rules as the JSON batch (``test_channel_shell_batch.py``): each proposal is checked on
its own, the good ones are countersigned after they are persisted, a bad one is refused with its
code and sentence and stores nothing; a body that is not a batch at all is refused whole with
400. The answer is bytes too, and signed by the node like any answer.
"""

from __future__ import annotations

import secrets

import pytest
from eth_account import Account
from eth_account.messages import encode_typed_data

from channels_app import batch_wire, codec, services
from channels_app.models import Channel, ChannelBatchChange, ChannelState, ChannelStateChange
from channels_app.protocol import eip712
from channels_app.protocol.channel_state import Allocation, SubAllocation
from channels_app.protocol.channel_state import ChannelState as ProtocolState
from channels_app.protocol.state import PendingUpdate
from channels_app.protocol.types import ETH, Wei
from tests.channels_app.signed_peer import make_signed_peer, post_as_peer
from tests.channels_app.test_channel_shell_batch import _batch_logged_once, _open_funded, _pays_us

pytestmark = pytest.mark.ethereum

BATCH = "/node-api/channels/proposals/batch"


@pytest.fixture
def peer_node(transactional_db):
    """A peer node whose Ed25519 transport key and Ethereum key the test holds."""
    return make_signed_peer("bank-z")


def _post_bytes(client, transport_key, body: bytes, *, signed: bool = True):
    return post_as_peer(
        client,
        "bank-z",
        transport_key,
        BATCH,
        body,
        signed=signed,
        content_type=batch_wire.BATCH_CONTENT_TYPE,
    )


def _proposal(state: ProtocolState, key: bytes) -> bytes:
    signature = eip712.sign_state(key, services.domain(), state)
    return codec.pending_bytes(PendingUpdate(state, signature))  # type: ignore[return-value]


def test_a_binary_batch_countersigns_the_good_updates_and_refuses_each_bad_one_alone(client, peer_node):
    transport_key, ethereum_key = peer_node
    domain = services.domain()
    channels = [_open_funded(client, transport_key, ethereum_key, seed) for seed in range(30, 36)]
    (good, g0), (_, w0), (_, b0), (_, n0), (_, f0), (_, l0) = channels
    good_state = _pays_us(g0, 100)
    inflated = ProtocolState(n0.channel_id, 1, (Allocation(ETH, Wei(900), Wei(1200)),))
    closing = ProtocolState(f0.channel_id, 1, f0.allocations, (), True)
    locking = ProtocolState(
        l0.channel_id,
        1,
        (Allocation(ETH, Wei(900), Wei(1000)),),
        (SubAllocation(bytes(range(32)), ETH, Wei(100)),),  # type: ignore[arg-type]
    )
    unknown = ProtocolState(bytes.fromhex("ab" * 32), 1, g0.allocations)  # type: ignore[arg-type]
    cut = _proposal(_pays_us(g0, 1), ethereum_key)[:-10]
    huge = bytearray(_proposal(_pays_us(w0, 1), ethereum_key))
    huge[33:41] = (2**64 - 1).to_bytes(8, "big")  # version: fits the field, beyond the rules
    body = batch_wire.request_bytes(
        [
            _proposal(good_state, ethereum_key),
            _proposal(_pays_us(w0, 10, version=2), ethereum_key),
            _proposal(_pays_us(b0, 10), secrets.token_bytes(32)),
            _proposal(inflated, ethereum_key),
            _proposal(closing, ethereum_key),
            _proposal(locking, ethereum_key),
            _proposal(unknown, ethereum_key),
            cut,
            bytes(huge),
        ]
    )
    before = (
        ChannelState.objects.count(),
        ChannelStateChange.objects.count(),
        ChannelBatchChange.objects.count(),
    )

    assert _post_bytes(client, transport_key, body, signed=False).status_code == 401
    answer = _post_bytes(client, transport_key, body)
    assert answer.status_code == 200, answer.content[:300]
    assert answer["Content-Type"] == batch_wire.BATCH_CONTENT_TYPE
    results = batch_wire.answer_results(answer.content)
    assert [result.code or None for result in results] == [
        None,
        "wrong_version",
        "bad_signature",
        "not_conserved",
        "not_batchable",
        "not_batchable",
        "unknown_channel",
        "bad_state",
        "wrong_version",
    ]
    for result in results[1:]:
        assert result.message  # a sentence, not only a code
        assert result.countersignature is None
    # Each result names its proposal's channel and version.
    assert [r.channel_id for r in results[:7]] == [bytes.fromhex(c.channel_id[2:]) for c, _ in channels] + [
        bytes.fromhex("ab" * 32)
    ]
    assert [r.version for r in results] == [1, 2, 1, 1, 1, 1, 1, batch_wire.NO_VERSION, 2**64 - 1]

    # The good update: persisted before the answer; the countersignature is ours as
    # eth_account sees it, and the stored row carries both signatures.
    countersignature = results[0].countersignature
    assert countersignature is not None
    message = encode_typed_data(full_message=eip712.typed_data(domain, good_state))
    assert Account.recover_message(message, signature=countersignature).lower() == services.node_address()
    stored = ChannelState.objects.get(channel=good, version=1)
    for signer, signature in zip(
        (eip712.address_of_key(ethereum_key), services.node_address()), stored.signatures, strict=True
    ):
        assert Account.recover_message(message, signature=bytes.fromhex(signature[2:])).lower() == signer
    good.refresh_from_db()
    assert (good.version, good.balances[0]["ours"]) == (1, "1100")

    # Every refused proposal stored nothing and left its channel as it was.
    assert ChannelState.objects.count() == before[0] + 1
    _batch_logged_once(before, good, stored)
    for channel, _ in channels[1:]:
        channel.refresh_from_db()
        assert (channel.version, channel.balances[0]["ours"]) == (0, "1000")

    # The same request again (a retry with another nonce, no idempotency key): the version
    # is taken, so nothing is stored twice.
    again = batch_wire.answer_results(_post_bytes(client, transport_key, body).content)
    assert again[0].code == "wrong_version"
    assert ChannelState.objects.count() == before[0] + 1


def test_a_body_that_is_not_a_binary_batch_is_refused_whole(client, peer_node):
    transport_key, ethereum_key = peer_node
    channel, opening = _open_funded(client, transport_key, ethereum_key, 41)
    one = _proposal(_pays_us(opening, 1), ethereum_key)
    good = batch_wire.request_bytes([one])
    before = (
        ChannelState.objects.count(),
        ChannelStateChange.objects.count(),
        ChannelBatchChange.objects.count(),
    )
    for body in (
        b"",
        b'{"proposals": []}',
        batch_wire.request_bytes([]),
        good[:-1],  # cut short
        good + b"\x00",  # trailing bytes
        good[:4] + (2).to_bytes(2, "big") + good[6:],  # announces two, carries one
        batch_wire.request_bytes([one] * 1001),
    ):
        answer = _post_bytes(client, transport_key, body)
        assert answer.status_code == 400, body[:20]
        assert answer.json()["error"]["code"] == "bad_state"
        assert answer.json()["error"]["message"]
    assert (
        ChannelState.objects.count(),
        ChannelStateChange.objects.count(),
        ChannelBatchChange.objects.count(),
    ) == before
    channel.refresh_from_db()
    assert channel.version == 0
    # And the good one still goes through afterwards.
    results = batch_wire.answer_results(_post_bytes(client, transport_key, good).content)
    assert results[0].countersignature is not None
    assert Channel.objects.get(pk=channel.pk).version == 1


def test_the_wire_format_round_trips_and_refuses_cut_or_padded_answers():
    signature = bytes(range(65))
    results = [
        batch_wire.Result(b"\x01" * 32, 7, signature),
        batch_wire.Result(b"\x02" * 32, 8, code="wrong_version", message="expected version 8, got 9 é"),
        batch_wire.Result(bytes(32), batch_wire.NO_VERSION, code="bad_state", message=""),
    ]
    encoded = batch_wire.answer_bytes(results)
    assert batch_wire.answer_results(encoded) == results
    for broken in (encoded[:-1], encoded + b"\x00", b"PCB\x01" + encoded[4:], encoded[:5]):
        with pytest.raises(ValueError, match="answer"):
            batch_wire.answer_results(broken)
    proposals = [b"\x01" * 10, b"", b"\x02" * 300]
    assert batch_wire.request_items(batch_wire.request_bytes(proposals)) == proposals
    with pytest.raises(ValueError, match="32-byte channel id"):
        batch_wire.answer_bytes([batch_wire.Result(b"\x01" * 31, 1, signature)])
    with pytest.raises(ValueError, match="65 bytes"):
        batch_wire.answer_bytes([batch_wire.Result(b"\x01" * 32, 1, signature[:64])])
