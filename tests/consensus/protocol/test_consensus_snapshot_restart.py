"""A peer restarted from its JSON snapshot resumes exactly: it outputs the same blocks as the
peers that never stopped, never forks its own chain, and a corrupt snapshot is refused."""

from __future__ import annotations

import json

import pytest
from parsec_network import gossip_until, make_network, sync

from consensus.protocol import Parsec, Payload, SnapshotError


def test_restart_from_snapshot_continues_with_the_same_blocks() -> None:
    keys, ids, nodes = make_network(4, seed=41)
    outputs: list[list] = [[] for _ in nodes]
    for i, node in enumerate(nodes):
        node.vote_for(Payload(b"early-%d" % i))
    gossip_until(nodes, ids, outputs, lambda: all(len(out) >= 1 for out in outputs), seed=1)
    saved = json.dumps(nodes[2].snapshot())
    nodes[2] = Parsec.restore(keys[2], json.loads(saved))
    for i, node in enumerate(nodes):
        node.vote_for(Payload(b"late-%d" % i))
    gossip_until(
        nodes,
        ids,
        outputs,
        lambda: all(sum(len(b.observations) for b in out) == 8 for out in outputs),
        seed=2,
    )
    hashes = [[block.hash for block in out] for out in outputs]
    assert all(h == hashes[0] for h in hashes)
    assert all(node.accusations() == () for node in nodes)


def test_restart_while_others_move_on_catches_up() -> None:
    keys, ids, nodes = make_network(4, seed=42)
    outputs: list[list] = [[] for _ in nodes]
    nodes[3].vote_for(Payload(b"voted-before-crash"))
    sync(nodes, ids, 3, 0)
    saved = json.dumps(nodes[3].snapshot())
    for i in range(3):
        nodes[i].vote_for(Payload(b"while-down-%d" % i))
    gossip_until(nodes, ids, outputs, lambda: all(len(outputs[i]) >= 1 for i in range(3)), active=[0, 1, 2])
    nodes[3] = Parsec.restore(keys[3], json.loads(saved))
    gossip_until(
        nodes,
        ids,
        outputs,
        lambda: all(sum(len(b.observations) for b in out) == 4 for out in outputs),
        seed=3,
    )
    assert [b.hash for b in outputs[3]] == [b.hash for b in outputs[0]]


def test_a_snapshot_for_another_key_or_corrupted_is_refused() -> None:
    keys, _ids, nodes = make_network(4, seed=43)
    snapshot = nodes[0].snapshot()
    with pytest.raises(SnapshotError):
        Parsec.restore(keys[1], snapshot)
    with pytest.raises(SnapshotError):
        Parsec.restore(keys[0], {**snapshot, "graph": {"records": "nope"}})
    with pytest.raises(SnapshotError):
        Parsec.restore(keys[0], {**snapshot, "version": 99})
