"""The gossip graph is pruned: over a long run (hundreds of decided rounds, thousands of events)
the number of events a peer holds stays under a fixed bound instead of growing with time."""

from __future__ import annotations

import random

from parsec_network import make_network, sync

from consensus.protocol import Payload


def test_graph_size_stays_bounded_over_a_long_run() -> None:
    _keys, ids, nodes = make_network(4, seed=31, prune_margin=4)
    rng = random.Random(31)
    sizes: list[int] = []
    created = 0
    for step in range(2_000):
        if step % 5 == 0:
            for i, node in enumerate(nodes):
                node.vote_for(Payload(b"long-%d-%d" % (i, step)))
        a, b = rng.sample(range(4), 2)
        sync(nodes, ids, a, b)
        for node in nodes:
            while node.poll() is not None:
                pass
        sizes.append(max(len(node.graph) for node in nodes))
        created = sum(nodes[0].graph.count)
    assert nodes[0].graph.decided_round > 150
    assert created > 3_000  # far more events were made than are held
    late = sizes[len(sizes) // 2 :]
    early_peak = max(sizes[: len(sizes) // 2])
    assert max(late) <= early_peak * 1.5  # no growth with time
    assert max(late) < 300


def test_pruned_rounds_leave_no_votes_or_witness_lists_behind() -> None:
    _keys, ids, nodes = make_network(4, seed=32, prune_margin=4)
    rng = random.Random(32)
    for step in range(800):
        if step % 7 == 0:
            nodes[step % 4].vote_for(Payload(b"tidy-%d" % step))
        a, b = rng.sample(range(4), 2)
        sync(nodes, ids, a, b)
    graph = nodes[0].graph
    assert graph.pruned_below > 20
    assert min(graph.witnesses) >= graph.pruned_below
    assert all(
        record.round >= graph.pruned_below - 1 or graph.newest[record.slot] == record.id
        for record in graph.records.values()
    )
