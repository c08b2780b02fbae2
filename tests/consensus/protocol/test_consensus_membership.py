"""Adding or removing a validator is an observation: once agreed it ends the epoch at the same
block on every peer, the new validator set runs the next epoch, and a joiner started with
``from_existing`` agrees on the blocks that follow."""

from __future__ import annotations

import pytest
from parsec_network import gossip_until, make_keys, make_network

from consensus.protocol import AddValidator, NotAValidator, Parsec, Payload, RemoveValidator, ValidatorId


def _payloads(blocks: list) -> list[bytes]:
    return [item.data for block in blocks for item in block.observations if isinstance(item, Payload)]


def test_an_added_validator_joins_and_agrees_on_later_blocks() -> None:
    _keys, ids, nodes = make_network(4, seed=51)
    joiner_key = make_keys(5, seed=51)[4]
    joiner = ValidatorId(joiner_key.public_key)
    outputs: list[list] = [[] for _ in range(5)]
    nodes[0].vote_for(AddValidator(joiner))
    gossip_until(nodes, ids, outputs, lambda: all(node.epoch == 1 for node in nodes), seed=1)
    assert all(joiner in node.validators for node in nodes)
    nodes.append(Parsec.from_existing(joiner, joiner_key, nodes[0].section()))
    ids.append(joiner)
    for i, node in enumerate(nodes):
        node.vote_for(Payload(b"after-join-%d" % i))
    gossip_until(
        nodes,
        ids,
        outputs,
        lambda: all(len(_payloads(out)) >= 5 for out in outputs[:4]) and len(_payloads(outputs[4])) == 5,
        seed=2,
    )
    tail = [block.hash for block in outputs[4]]
    assert tail
    assert all([b.hash for b in out][-len(tail) :] == tail for out in outputs[:4])


def test_a_removed_validator_leaves_and_the_rest_go_on() -> None:
    _keys, ids, nodes = make_network(5, seed=52)
    outputs: list[list] = [[] for _ in range(5)]
    nodes[1].vote_for(RemoveValidator(ids[4]))
    gossip_until(nodes, ids, outputs, lambda: all(node.epoch == 1 for node in nodes[:4]), seed=3)
    assert all(ids[4] not in node.validators for node in nodes[:4])
    for i in range(4):
        nodes[i].vote_for(Payload(b"after-removal-%d" % i))
    gossip_until(
        nodes,
        ids,
        outputs,
        lambda: all(len(_payloads(out)) == 4 for out in outputs[:4]),
        seed=4,
        active=[0, 1, 2, 3],
    )
    assert all([b.hash for b in out] == [b.hash for b in outputs[0]] for out in outputs[:4])


def test_joining_before_the_addition_is_agreed_is_refused() -> None:
    _keys, _ids, nodes = make_network(4, seed=53)
    stranger = make_keys(5, seed=53)[4]
    with pytest.raises(NotAValidator):
        Parsec.from_existing(ValidatorId(stranger.public_key), stranger, nodes[0].section())
