"""A tiny in-memory network for protocol tests: deterministic keys, lossless gossip."""

from __future__ import annotations

import random
from collections.abc import Callable

from consensus.protocol import Block, Parsec, ValidatorId
from settlement.protocol.signing import SigningKey


def make_keys(count: int, seed: int = 0) -> list[SigningKey]:
    rng = random.Random(seed)
    return [SigningKey(rng.randbytes(32)) for _ in range(count)]


def make_network(
    count: int, seed: int = 0, **kwargs: int
) -> tuple[list[SigningKey], list[ValidatorId], list[Parsec]]:
    keys = make_keys(count, seed)
    ids = [ValidatorId(key.public_key) for key in keys]
    nodes = [Parsec.from_genesis(ids[i], keys[i], ids, **kwargs) for i in range(count)]
    return keys, ids, nodes


def sync(nodes: list[Parsec], ids: list[ValidatorId], a: int, b: int) -> None:
    request = nodes[a].create_gossip(ids[b])
    response = nodes[b].handle_request(ids[a], request)
    nodes[a].handle_response(ids[b], response)


def gossip_until(
    nodes: list[Parsec],
    ids: list[ValidatorId],
    outputs: list[list[Block]],
    done: Callable[[], bool],
    *,
    seed: int = 0,
    max_syncs: int = 5_000,
    active: list[int] | None = None,
) -> int:
    """Random pairwise syncs among ``active`` peers, polling after each, until ``done()``."""
    rng = random.Random(seed)
    members = active if active is not None else list(range(len(nodes)))
    for count in range(max_syncs):
        if done():
            return count
        a, b = rng.sample(members, 2)
        sync(nodes, ids, a, b)
        for i in (a, b):
            while (block := nodes[i].poll()) is not None:
                outputs[i].append(block)
    raise AssertionError(f"not done after {max_syncs} syncs")
