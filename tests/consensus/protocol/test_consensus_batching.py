"""Batching: one event carries every observation voted since the creator's previous event, and
the application cannot vote one observation twice; a lone validator orders by itself."""

from __future__ import annotations

import pytest
from parsec_network import make_network, sync

from consensus.protocol import DuplicateVote, Payload


def test_many_votes_travel_in_one_event() -> None:
    _keys, ids, nodes = make_network(4, seed=63)
    for k in range(500):
        nodes[0].vote_for(Payload(b"batched-%d" % k))
    sync(nodes, ids, 1, 0)  # node 0 answers a request: one new event of its own
    graph = nodes[0].graph
    own = [graph.event(eid) for eid in graph.records if graph.event(eid).creator == ids[0]]
    assert len(own) == 1
    assert len(own[0].observations) == 500


def test_a_payload_voted_twice_by_the_application_is_refused() -> None:

    _keys, _ids, nodes = make_network(2, seed=64)
    nodes[0].vote_for(Payload(b"once"))
    with pytest.raises(DuplicateVote):
        nodes[0].vote_for(Payload(b"once"))


def test_a_single_validator_orders_alone() -> None:
    _keys, _ids, nodes = make_network(1, seed=65)
    nodes[0].vote_for(Payload(b"solo"))
    block = nodes[0].poll()
    assert block is not None
    assert block.observations == (Payload(b"solo"),)
