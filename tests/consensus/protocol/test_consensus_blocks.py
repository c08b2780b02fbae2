"""Blocks: RFC 9162 Merkle roots, more than 2/3 validator signatures checked, hash links, and
the same chain on every peer."""

from __future__ import annotations

import hashlib
import itertools
import random
from dataclasses import replace

from parsec_network import gossip_until, make_network, sync

from consensus.protocol import Payload, is_certified, merkle_root


def _reference_root(leaves: list[bytes]) -> bytes:
    # RFC 9162 §2.1.1, written as the RFC states it: split at the largest power of two < n.
    if not leaves:
        return hashlib.sha256(b"").digest()
    if len(leaves) == 1:
        return hashlib.sha256(b"\x00" + leaves[0]).digest()
    k = 1
    while k * 2 < len(leaves):
        k *= 2
    return hashlib.sha256(b"\x01" + _reference_root(leaves[:k]) + _reference_root(leaves[k:])).digest()


def test_merkle_root_matches_the_rfc_9162_definition_for_every_size_up_to_33() -> None:
    for size in range(34):
        leaves = [bytes([i]) * (i + 1) for i in range(size)]
        assert merkle_root(leaves) == _reference_root(leaves)


def test_blocks_are_certified_linked_and_identical_on_every_peer() -> None:
    _keys, ids, nodes = make_network(4, seed=61)
    outputs: list[list] = [[] for _ in nodes]
    for round_number in range(3):
        for i, node in enumerate(nodes):
            node.vote_for(Payload(b"blk-%d-%d" % (round_number, i)))
        for a in range(4):
            sync(nodes, ids, a, (a + 1) % 4)
    gossip_until(
        nodes, ids, outputs, lambda: all(sum(len(b.observations) for b in out) == 12 for out in outputs)
    )
    chain = outputs[0]
    for previous, block in itertools.pairwise(chain):
        assert block.previous_hash == previous.hash
        assert block.height == previous.height + 1
    assert all(is_certified(block, tuple(ids)) for block in chain)
    assert all([b.hash for b in out] == [b.hash for b in chain] for out in outputs)


def test_a_block_with_a_forged_signature_is_not_certified() -> None:
    _keys, ids, nodes = make_network(4, seed=62)
    outputs: list[list] = [[] for _ in nodes]
    nodes[0].vote_for(Payload(b"one"))
    gossip_until(nodes, ids, outputs, lambda: all(out for out in outputs))
    block = outputs[0][0]
    forged = tuple(replace(item, signature=bytes(64)) for item in block.signatures)
    assert is_certified(block, tuple(ids))
    assert not is_certified(replace(block, signatures=forged), tuple(ids))
    assert not is_certified(replace(block, signatures=block.signatures[:2]), tuple(ids))


def test_the_answer_that_follows_a_new_block_carries_the_signature_on_it() -> None:
    """A peer whose graph builds a block while it handles a request signs the block in an event
    made at once, so the signature leaves with that request's response rather than a gossip hop
    later: certification (more than 2/3 of the signatures) waits for it on every payload."""
    _keys, ids, nodes = make_network(4, seed=17)
    rng = random.Random(5)
    checked = 0
    for count in range(3_000):
        if count % 10 == 0:
            for i, node in enumerate(nodes):
                node.vote_for(Payload(b"signed-at-once-%d-%d" % (count, i)))
        a, b = rng.sample(range(4), 2)
        request = nodes[a].create_gossip(ids[b])
        built_before = nodes[b].section().next_height
        response = nodes[b].handle_request(ids[a], request)
        if nodes[b].section().next_height > built_before:
            signed = {
                int(item.height)
                for event in response.events
                if event.creator == ids[b]
                for item in event.block_signatures
            }
            assert built_before in signed, (built_before, signed)
            checked += 1
            if checked >= 5:
                break
        nodes[a].handle_response(ids[b], response)
        for node in nodes:
            while node.poll() is not None:
                pass
    assert checked >= 5
