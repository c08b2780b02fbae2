"""A validator the others have never heard from can still join: pruning keeps what it needs.

The simulator's seed 1057 (N = 4) never finished: one correct peer was cut off by the partition
from its first moment and then crash-restarted, so none of its events reached the others while
they decided ~25 rounds. Their pruning did not count a validator with no event as a laggard, so
they dropped the start of every chain; once it came back, every event it was sent named a
self-parent nobody held any more, it kept them all as orphans and never agreed a block. Once it
can catch up, it builds dozens of blocks at once and must still be able to sign its next event
(the block signatures it owes are capped per event, like observations).
"""

from __future__ import annotations

import random

import pytest
from parsec_network import make_network, sync

from consensus.protocol import Block, Parsec, Payload, ValidatorId
from consensus.protocol.event import MAX_BLOCK_SIGNATURES_PER_EVENT
from consensus.simulate import SimConfig, simulate


def _gossip(
    nodes: list[Parsec],
    ids: list[ValidatorId],
    outputs: list[list[Block]],
    members: list[int],
    syncs: int,
    *,
    seed: int,
    tag: bytes,
) -> None:
    """Random syncs among ``members`` only; every member votes now and then, so rounds advance
    (a graph with nothing to order makes no new events)."""
    rng = random.Random(seed)
    for step in range(syncs):
        if step % 6 == 0:
            voter = members[step // 6 % len(members)]
            nodes[voter].vote_for(Payload(b"%s-%d-%d" % (tag, voter, step)))
        a, b = rng.sample(members, 2)
        sync(nodes, ids, a, b)
        for i in (a, b):
            while (block := nodes[i].poll()) is not None:
                outputs[i].append(block)


def _payloads(blocks: list[Block]) -> set[bytes]:
    return {observation.data for block in blocks for observation in block.observations}  # type: ignore[union-attr]


def test_a_validator_never_heard_from_catches_up_after_the_others_decided_many_rounds() -> None:
    _keys, ids, nodes = make_network(4, seed=57, prune_margin=4)
    outputs: list[list[Block]] = [[] for _ in nodes]
    nodes[3].vote_for(Payload(b"late-starter"))  # queued: it reaches nobody while peer 3 is cut off
    _gossip(nodes, ids, outputs, [0, 1, 2], 500, seed=1, tag=b"early")
    graph = nodes[0].graph
    assert graph.decided_round > 4 * graph.prune_margin  # far past the margin: the old rule pruned
    # Nobody knows anything of peer 3 yet, so it needs every chain from index 0: nothing is gone.
    assert all(node.graph.pruned_index == [-1, -1, -1, -1] for node in nodes[:3])
    # Peer 3 will build all these blocks in its first syncs, owing more signatures than fit in
    # one event.
    assert len(outputs[0]) > MAX_BLOCK_SIGNATURES_PER_EVENT

    _gossip(nodes, ids, outputs, [0, 1, 2, 3], 400, seed=2, tag=b"healed")

    assert not nodes[3]._orphans  # everything it was sent could be placed
    assert not nodes[3]._signatures_to_send  # every block signature it owed went out
    assert b"late-starter" in _payloads(outputs[0])
    height = min(len(out) for out in outputs)
    assert height > 10
    assert all([b.hash for b in out[:height]] == [b.hash for b in outputs[0][:height]] for out in outputs)
    # Once peer 3 holds the old events, pruning resumes: the graph stays bounded.
    assert all(node.graph.pruned_below > 10 for node in nodes)
    assert all(node.accusations() == () for node in nodes)


@pytest.mark.parametrize("seed", [1057, 495])
def test_simulator_seeds_that_never_finished_now_finish(seed: int) -> None:
    # As `python -m consensus.simulate --peers 4 --faulty 1 --seed <seed>` runs them. 1057: a
    # peer never heard from (above). 495: a peer restarted after the partition pruned its own
    # old event that another peer, not having its later events yet, had just named as
    # other-parent; nobody held it any more. Each takes about a CPU second; the old code span
    # until the message bound, minutes later, so a CPU budget makes a regression fail quickly.
    result = simulate(SimConfig(peers=4, faulty=1, seed=seed, payloads=20, cpu_budget_s=10))
    assert result.agreed_payloads >= result.correct_payloads > 0
