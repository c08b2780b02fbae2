"""Malformed, unsigned, misaddressed or oversized gossip is refused with a typed error, blames
nobody (nothing about it can be proven), and changes nothing; the node keeps working."""

from __future__ import annotations

import random
from dataclasses import replace

import pytest
from parsec_network import gossip_until, make_keys, make_network

from consensus.protocol import (
    ConsensusError,
    InvalidMessageSignature,
    MalformedMessage,
    NotAValidator,
    Payload,
    Request,
    Response,
    message_from_wire,
)
from consensus.protocol.parsec import MAX_EVENTS_PER_MESSAGE


def test_a_request_with_a_forged_message_signature_is_refused_without_blame() -> None:
    _keys, ids, nodes = make_network(4, seed=21)
    nodes[1].vote_for(Payload(b"p1"))
    request = nodes[1].create_gossip(ids[0])
    with pytest.raises(InvalidMessageSignature):
        nodes[0].handle_request(ids[1], replace(request, signature=bytes(64)))
    assert len(nodes[0].graph) == 0
    assert nodes[0].accusations() == ()


def test_a_message_claiming_another_sender_is_refused() -> None:
    _keys, ids, nodes = make_network(4, seed=22)
    request = nodes[1].create_gossip(ids[0])
    with pytest.raises(MalformedMessage):
        nodes[0].handle_request(ids[2], request)


def test_a_message_from_a_stranger_is_refused() -> None:
    _keys, ids, nodes = make_network(4, seed=23)
    stranger = make_keys(5, seed=99)[4]
    forged = Request(stranger.public_key, ids[0], 0, (), (), (), bytes(64))  # type: ignore[arg-type]
    with pytest.raises(NotAValidator):
        nodes[0].handle_request(stranger.public_key, forged)  # type: ignore[arg-type]


def test_a_response_where_a_request_belongs_is_refused() -> None:
    _keys, ids, nodes = make_network(4, seed=24)
    response = nodes[1].handle_request(ids[0], nodes[0].create_gossip(ids[1]))
    with pytest.raises(MalformedMessage):
        nodes[2].handle_request(ids[1], response)  # type: ignore[arg-type]
    assert isinstance(response, Response)


@pytest.mark.parametrize(
    "wire",
    [
        {},
        {"header": {"kind": "request"}},
        {
            "header": {
                "kind": "nonsense",
                "sender": "00",
                "recipient": "00",
                "epoch": 0,
                "known": [],
                "wants": [],
            },
            "events": [],
            "signature": "",
        },
        {
            "header": {
                "kind": "request",
                "sender": "zz",
                "recipient": "00",
                "epoch": 0,
                "known": [],
                "wants": [],
            },
            "events": [],
            "signature": "",
        },
        {
            "header": {
                "kind": "request",
                "sender": "00",
                "recipient": "00",
                "epoch": 0,
                "known": [],
                "wants": [],
            },
            "events": [{"creator": "00"}],
            "signature": "",
        },
        {
            "header": {
                "kind": "request",
                "sender": "00",
                "recipient": "00",
                "epoch": 0,
                "known": [],
                "wants": [],
            },
            "events": [{}] * (MAX_EVENTS_PER_MESSAGE + 1),
            "signature": "",
        },
    ],
)
def test_malformed_wire_messages_raise_a_typed_error(wire: dict) -> None:
    with pytest.raises(MalformedMessage):
        message_from_wire(wire)


def test_a_node_flooded_with_garbage_still_agrees() -> None:
    _keys, ids, nodes = make_network(4, seed=25)
    rng = random.Random(25)
    for _ in range(200):
        garbage = Request(ids[3], ids[0], 0, (rng.randrange(9),), (), (), rng.randbytes(64))  # type: ignore[arg-type]
        with pytest.raises(ConsensusError):
            nodes[0].handle_request(ids[3], garbage)
    for i, node in enumerate(nodes):
        node.vote_for(Payload(b"after-flood-%d" % i))
    outputs: list[list] = [[] for _ in nodes]
    gossip_until(
        nodes, ids, outputs, lambda: all(sum(len(b.observations) for b in out) == 4 for out in outputs)
    )
    assert nodes[0].accusations() == ()


def test_wire_round_trip_preserves_a_message() -> None:
    _keys, ids, nodes = make_network(3, seed=26)
    nodes[0].vote_for(Payload(b"round-trip"))
    request = nodes[0].create_gossip(ids[1])
    nodes[1].handle_request(ids[0], nodes[0].create_gossip(ids[1]))
    assert message_from_wire(request.to_wire()) == request
