"""Hops per payload: the protocol driven the way the nodes' gossip loops drive it, in hop units.

    python -m bench.consensus_hops [--peers 4] [--hops 300] [--seeds 3]

The node benchmark (`bench.consensus_nodes`) measures a payload's latency in seconds on a shared
machine, where a hop costs 115 ms when it is quiet and 200-350 ms when it is not, and the
run-to-run spread is larger than a change of one hop. This benchmark takes the machine out: it
runs the pure protocol (real Ed25519, real events) under the shell's rules, in a virtual time
whose unit is one hop, so a protocol or gossip-pattern change shows as a change in hops.

The shell's rules, as in `consensus.services` (the gossip loop):

- a node handles everything that arrived while it was busy in one step, then, while anything
  waits for agreement or signatures (`has_unfinished_work`), starts a round with every peer it
  is not waiting for (at most one unanswered request per peer), otherwise one round with a
  random free peer per idle interval;
- a request is answered in the same step (push-pull: the response goes back in the request's
  HTTP answer), the requester handles the response in its next step;
- votes submitted to a node are queued; the node steps for them at once only when it has a free
  peer, otherwise the next step (the one that handles the next message) votes them.

Delays, from the quiet-machine trace in docs/consensus.md (a hop 115 ms: the POST until the
receiver's step, then the step; the response's way back about half of that): a request reaches
the receiver's inbox after 0.8 units, a step takes 0.2, a response reaches the requester after
0.45; each is drawn from uniform(0.6, 1.4) times that, so no two nodes run in lockstep.
The latency is from a payload's submission to its node's `poll` returning the certified block
(the node benchmark also counts the block's storing, after the step's sends), split into the
wait until that node's graph built the block and the wait for its signatures.
"""

from __future__ import annotations

import argparse
import heapq
import random
import statistics
from collections import deque
from dataclasses import dataclass, field
from typing import Any

from bench.common import print_table, write_results
from consensus.protocol import Parsec, Payload, ValidatorId
from settlement.protocol.signing import SigningKey

REQUEST_DELAY = 0.8
STEP_TIME = 0.2
RESPONSE_DELAY = 0.45


@dataclass
class _Node:
    parsec: Parsec
    inbox: deque[tuple[int, str, Any]] = field(default_factory=deque)
    awaiting: dict[int, int] = field(default_factory=dict)
    votes: list[tuple[bytes, float]] = field(default_factory=list)
    busy: bool = False
    next_idle: float = 0.0
    voted_at: dict[bytes, float] = field(default_factory=dict)
    built_at: dict[int, float] = field(default_factory=dict)
    sends: int = 0
    events: int = 0


class HopModel:
    def __init__(
        self,
        *,
        peers: int,
        seed: int,
        payloads_per_hop: float,
        hops: float,
        fan_out: str,
        idle_interval: float,
        in_flight: int = 1,
    ) -> None:
        self.rng = random.Random(seed)
        keys = [SigningKey(self.rng.randbytes(32)) for _ in range(peers)]
        self.ids = [ValidatorId(key.public_key) for key in keys]
        self.nodes = [_Node(Parsec.from_genesis(self.ids[i], keys[i], self.ids)) for i in range(peers)]
        self.payloads_per_hop = payloads_per_hop
        self.hops = hops
        self.fan_out = fan_out
        self.in_flight = in_flight
        self.idle_interval = idle_interval
        self.now = 0.0
        self.queue: list[tuple[float, int, Any]] = []
        self._seq = 0
        self.latencies: list[float] = []
        self.to_build: list[float] = []
        self.to_certify: list[float] = []
        self.messages = 0

    def at(self, when: float, action: Any) -> None:
        self._seq += 1
        heapq.heappush(self.queue, (when, self._seq, action))

    def jitter(self, base: float) -> float:
        return base * self.rng.uniform(0.6, 1.4)

    def run(self) -> None:
        # Submissions: each node gets its share of the offered rate, in batches every 0.25 units
        # (the benchmark's client posts a batch to each node every few tens of milliseconds).
        count = 0
        tick = 0.25
        per_batch = self.payloads_per_hop * tick / len(self.nodes)
        carry = [self.rng.random() for _ in self.nodes]
        when = tick
        while when < self.hops:
            for i in range(len(self.nodes)):
                carry[i] += per_batch
                batch = int(carry[i])
                carry[i] -= batch
                if batch:
                    items = [b"hop-%d" % (count + k) for k in range(batch)]
                    count += batch
                    self.at(when + self.rng.uniform(0, tick), ("votes", i, items))
            when += tick
        for i in range(len(self.nodes)):
            self.at(self.rng.uniform(0, self.idle_interval), ("wake", i))
        while self.queue:
            self.now, _seq, action = heapq.heappop(self.queue)
            if self.now > self.hops * 3:
                break
            kind, i, *rest = action
            node = self.nodes[i]
            if kind == "votes":
                node.votes.extend((item, self.now) for item in rest[0])
                self._maybe_step(i, for_votes=True)
            elif kind == "deliver":
                node.inbox.append(rest[0])
                self._maybe_step(i)
            elif kind == "wake":
                self._maybe_step(i, idle=True)
                self.at(self.now + self.idle_interval, ("wake", i))
            elif kind == "done":
                node.busy = False
                if node.inbox or (node.votes and self._free(i)):
                    self._maybe_step(i)
            if self.now > self.hops and all(not n.parsec.has_unfinished_work() for n in self.nodes):
                break

    def _free(self, i: int) -> list[int]:
        awaiting = self.nodes[i].awaiting
        return [j for j in range(len(self.nodes)) if j != i and awaiting.get(j, 0) < self.in_flight]

    def _maybe_step(self, i: int, *, for_votes: bool = False, idle: bool = False) -> None:
        node = self.nodes[i]
        if node.busy:
            return
        free = self._free(i)
        unfinished = node.parsec.has_unfinished_work()
        if not node.inbox and not ((node.votes and free) or (unfinished and free) or (idle and free)):
            return
        self._step(i)

    def _step(self, i: int) -> None:
        node = self.nodes[i]
        parsec = node.parsec
        node.busy = True
        done = self.now + self.jitter(STEP_TIME)
        for item, submitted in node.votes:
            parsec.vote_for(Payload(item))
            node.voted_at[item] = submitted
        node.votes = []
        sends: list[tuple[int, str, Any]] = []
        while node.inbox:
            sender, kind, message = node.inbox.popleft()
            self.messages += 1
            if kind == "request":
                sends.append((sender, "response", parsec.handle_request(self.ids[sender], message)))
            else:
                parsec.handle_response(self.ids[sender], message)
                node.awaiting[sender] = max(0, node.awaiting.get(sender, 0) - 1)
        free = self._free(i)
        if free and parsec.has_unfinished_work():
            peers = free if self.fan_out == "all" else [self.rng.choice(free)]
        elif free and self.now >= node.next_idle:
            peers = [self.rng.choice(free)]
            node.next_idle = self.now + self.idle_interval
        else:
            peers = []
        for j in peers:
            sends.append((j, "request", parsec.create_gossip(self.ids[j])))
            node.awaiting[j] = node.awaiting.get(j, 0) + 1
        built = parsec.section().next_height
        for height in range(len(node.built_at), built):
            node.built_at[height] = done
        while (block := parsec.poll()) is not None:
            for observation in block.observations:
                if not isinstance(observation, Payload):
                    continue
                submitted = node.voted_at.pop(observation.data, -1.0)
                if submitted >= 0:
                    self.latencies.append(done - submitted)
                    self.to_build.append(node.built_at[int(block.height)] - submitted)
                    self.to_certify.append(done - node.built_at[int(block.height)])
        for j, kind, message in sends:
            delay = REQUEST_DELAY if kind == "request" else RESPONSE_DELAY
            self.at(done + self.jitter(delay), ("deliver", j, (i, kind, message)))
        node.sends += len(sends)
        self.at(done, ("done", i))


def _percentile(values: list[float], fraction: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(len(ordered) * fraction))] if ordered else float("nan")


def run(
    peers: int, seed: int, payloads_per_hop: float, hops: float, fan_out: str, in_flight: int = 1
) -> dict[str, Any]:
    model = HopModel(
        peers=peers,
        seed=seed,
        payloads_per_hop=payloads_per_hop,
        hops=hops,
        fan_out=fan_out,
        idle_interval=0.5 / 0.115,
        in_flight=in_flight,
    )
    model.run()
    return {
        "peers": peers,
        "seed": seed,
        "fan_out": fan_out,
        "in_flight": in_flight,
        "agreed": len(model.latencies),
        "p50_hops": round(_percentile(model.latencies, 0.5), 2),
        "p99_hops": round(_percentile(model.latencies, 0.99), 2),
        "mean_hops": round(statistics.fmean(model.latencies), 2) if model.latencies else None,
        "built_p50": round(_percentile(model.to_build, 0.5), 2),
        "certified_after_built_p50": round(_percentile(model.to_certify, 0.5), 2),
        "messages_per_node_per_hop": round(model.messages / peers / model.now, 2),
        "hops_per_round": round(model.now / max(1, model.nodes[0].parsec.graph.max_round), 2),
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="hops per payload under the nodes' gossip rules")
    parser.add_argument("--peers", type=int, nargs="+", default=[4, 7])
    parser.add_argument("--hops", type=float, default=300.0, help="how long payloads are submitted, in hops")
    parser.add_argument("--rate", type=float, default=200.0, help="offered tx/s, at 115 ms a hop")
    parser.add_argument("--seeds", type=int, default=3)
    parser.add_argument("--fan-out", choices=("all", "one"), default="all")
    parser.add_argument("--in-flight", type=int, nargs="+", default=[1], help="unanswered requests per peer")
    arguments = parser.parse_args(argv)
    rows = [
        run(peers, seed, arguments.rate * 0.115, arguments.hops, arguments.fan_out, in_flight)
        for peers in arguments.peers
        for in_flight in arguments.in_flight
        for seed in range(1, arguments.seeds + 1)
    ]
    columns = [
        "peers",
        "seed",
        "fan_out",
        "in_flight",
        "agreed",
        "p50_hops",
        "p99_hops",
        "mean_hops",
        "built_p50",
        "certified_after_built_p50",
        "messages_per_node_per_hop",
        "hops_per_round",
    ]
    print_table("Hops per payload under the nodes' gossip rules (virtual time, 1 = a hop)", rows, columns)
    path = write_results("consensus_hops", {"arguments": vars(arguments), "runs": rows})
    print(f"\nwrote {path}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
