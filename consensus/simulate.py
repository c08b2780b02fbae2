"""Deterministic network simulator for ``consensus.protocol``: the evidence that it is safe.

    python -m consensus.simulate --peers 7 --faulty 2 --seed 42 [--payloads 40] [--byzantine fork,...]

One seeded ``random.Random`` drives everything (the seed is printed on failure, so any failure
replays exactly), over a virtual clock in microseconds. The network delays messages (exponential
with a heavy Pareto tail, which reorders them), duplicates some, drops some and redelivers them
later, and partitions the peers into two sides for a while before healing. Up to ``faulty`` peers
are faulty: crash-stopped (never started, all at once, or at random points) or Byzantine (fork,
invalid events, spam, false accusations). A correct peer may also crash and restart from its
persisted snapshot (round-tripped through JSON, as the shell would store it).

Checked after every step: agreement (every correct peer's blocks are a prefix of one chain). At
the end: validity (every observation was voted by some peer; every block carries signatures of
more than 2/3 of its validators), integrity (no observation twice; outputs only grow),
accountability (every injected provable malice is known to every correct peer; no correct peer
is accused) and liveness (every correct peer's payload is agreed within a bounded number of
messages after the network heals and the restarted peers are back).
"""

from __future__ import annotations

import argparse
import functools
import heapq
import json
import operator
import random
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from typing import Any

from consensus.protocol import (
    Block,
    BlockHeight,
    ConsensusError,
    Epoch,
    Event,
    MaliceKind,
    Parsec,
    Payload,
    Request,
    Response,
    Section,
    ValidatorId,
    check_accusation,
    is_certified,
)
from consensus.protocol.event import create_event
from consensus.protocol.malice import make_accusation
from consensus.protocol.parsec import MessageT
from settlement.protocol.signing import SigningKey

BYZANTINE_BEHAVIOURS = ("fork", "invalid-event", "spam", "false-accusation")
CRASH_MODES = ("never-started", "all-at-once", "random")
SECOND = 1_000_000


class SimulationFailure(AssertionError):  # noqa: N818 - the name says what happened
    """A property did not hold. The message names the seed that replays it."""


@dataclass(frozen=True)
class SimConfig:
    peers: int = 4
    faulty: int = 1
    seed: int = 0
    payloads: int = 10
    """Payloads voted by each peer over the voting period."""
    payload_size: int = 100
    vote_chunk: int = 1
    """Payloads voted together at one moment (the benchmark's way to offer load cheaply)."""
    byzantine: tuple[str, ...] = BYZANTINE_BEHAVIOURS
    """Behaviours of the Byzantine peers; with none, every faulty peer crash-stops."""
    byzantine_peers: int | None = None
    """How many of the faulty peers are Byzantine (default: half, rounded up, when behaviours are set)."""
    crash_mode: str = "random"
    restart: bool = True
    """Crash one correct peer and restart it from its snapshot."""
    partition: bool = True
    drop_rate: float = 0.05
    duplicate_rate: float = 0.05
    mean_delay_us: int = 20_000
    gossip_interval_us: int = 10_000
    voting_period_us: int = 2 * SECOND
    max_messages_after_heal: int = 40_000
    cpu_budget_s: float | None = None
    """Fail a run that spends more CPU than this (the soak's guard against one seed that spins:
    CPU rather than wall time, so that a loaded machine does not fail a healthy run)."""
    check_certificates: bool = True
    snapshot_through_json: bool = True

    def byzantine_count(self) -> int:
        if not self.byzantine:
            return 0
        if self.byzantine_peers is not None:
            return min(self.byzantine_peers, self.faulty)
        return (self.faulty + 1) // 2


@dataclass
class SimResult:
    config: SimConfig
    messages: int = 0
    blocks: int = 0
    agreed_payloads: int = 0
    correct_payloads: int = 0
    """Payloads voted by correct peers (all must be agreed: liveness)."""
    max_graph_events: int = 0
    virtual_end_us: int = 0
    wall_seconds: float = 0.0
    latencies_us: list[int] = field(default_factory=list)
    rejected_messages: int = 0
    accusations: dict[str, list[str]] = field(default_factory=dict)
    graph_sizes: list[int] = field(default_factory=list)


class ByzantineParsec(Parsec):
    """A validator that follows the protocol except where ``behaviours`` tells it to cheat."""

    def __init__(
        self,
        *args: Any,
        behaviours: tuple[str, ...],
        rng: random.Random,
        victims: list[ValidatorId],
        **kwargs: Any,
    ) -> None:
        super().__init__(*args, **kwargs)
        self.behaviours = behaviours
        self.rng = rng
        self.victims = victims
        self.fork_sibling: Event | None = None
        self.fork_targets: set[ValidatorId] = set()
        self.false_accusation_sent = False
        self.broken_events: list[Event] = []

    def _create_own_event(self, other_parent: Any) -> None:
        if "false-accusation" in self.behaviours and not self.false_accusation_sent and self.victims:
            victim = self.victims[0]
            bogus = make_accusation(MaliceKind.FORK, victim, {"events": []})
            self._to_accuse.append(bogus)
            self.false_accusation_sent = True
        slot = self.graph.slot_of[self.our_id]
        index, self_parent = self.graph.count[slot], self.graph.newest[slot]
        super()._create_own_event(other_parent)
        if "fork" in self.behaviours and self.fork_sibling is None and index >= 2:
            # A second event at the same position, shown only to half of the peers.
            sibling, _ = create_event(
                self._key,
                epoch=self.epoch,
                index=index,
                self_parent=self_parent,
                other_parent=None,
                observations=(b"p" + b"fork-" + self.our_id[:4],),
            )
            self.fork_sibling = sibling
            others = [peer for peer in self.validators if peer != self.our_id]
            self.fork_targets = set(others[: max(1, len(others) // 2)])

    def _extra_events(self, peer: ValidatorId) -> tuple[Event, ...]:
        if self.fork_sibling is not None and peer in self.fork_targets:
            self.fork_targets.discard(peer)
            return (self.fork_sibling,)
        return ()

    def _tamper(self, message: MessageT, peer: ValidatorId) -> MessageT:
        extra = self._extra_events(peer)
        events = tuple(message.events)
        if extra:
            events = extra + events
        if "invalid-event" in self.behaviours and self.rng.random() < 0.05 and events:
            victim = events[-1]
            broken = replace(victim, signature=bytes(64 - 1) + b"\x01")
            self.broken_events.append(broken)
            events = (*events, broken)
        if events is message.events:
            return message
        cls = type(message)
        return self._signed(cls, peer, message.epoch, message.known, message.wants, list(events))

    def create_gossip(self, peer: ValidatorId) -> Request:
        return self._tamper(super().create_gossip(peer), peer)

    def handle_request(self, peer: ValidatorId, request: Request) -> Response:
        return self._tamper(super().handle_request(peer, request), peer)


class Simulation:
    def __init__(self, config: SimConfig) -> None:
        if config.peers < 1:
            raise ValueError("at least one peer")
        if 3 * config.faulty >= config.peers and config.faulty > 0:
            raise ValueError("faulty peers must be fewer than a third")
        self.config = config
        self.rng = random.Random(config.seed)
        self.now = 0
        self._seq = 0
        self.queue: list[tuple[int, int, Callable[[], None]]] = []
        self.keys = [SigningKey(self.rng.randbytes(32)) for _ in range(config.peers)]
        self.ids = [ValidatorId(key.public_key) for key in self.keys]
        self.result = SimResult(config)
        indices = list(range(config.peers))
        self.rng.shuffle(indices)
        byzantine_count = config.byzantine_count()
        self.byzantine = set(indices[:byzantine_count])
        self.crash_stop = set(indices[byzantine_count : config.faulty])
        self.correct = [
            i for i in range(config.peers) if i not in self.byzantine and i not in self.crash_stop
        ]
        self.nodes: dict[int, Parsec | None] = {}
        for i in range(config.peers):
            if i in self.byzantine:
                victims = [self.ids[j] for j in self.correct]
                self.nodes[i] = ByzantineParsec(
                    self.ids[i],
                    self.keys[i],
                    Section(Epoch(0), tuple(sorted(self.ids)), BlockHeight(0), bytes(32)),
                    behaviours=config.byzantine,
                    rng=random.Random(self.rng.random()),
                    victims=victims,
                )
            else:
                self.nodes[i] = Parsec.from_genesis(self.ids[i], self.keys[i], self.ids)
        self.snapshots: dict[int, str] = {}
        self.blocks: dict[int, list[Block]] = {i: [] for i in range(config.peers)}
        self.chain: list[Block] = []
        self.chain_seen: set[bytes] = set()
        self.voted: dict[bytes, tuple[int, int]] = {}
        self.correct_payloads: set[bytes] = set()
        self.agreed_at: dict[bytes, int] = {}
        self.partition_until = 0
        self.partition_sides: tuple[set[int], set[int]] | None = None
        self.down_until: dict[int, int] = {}
        self.heal_time = 0
        self.messages_after_heal = 0
        self.agreed_correct = 0
        self.expected: set[tuple[str, ValidatorId]] = set()

    # ----- scheduling ----------------------------------------------------------------------

    def at(self, when: int, action: Callable[[], None]) -> None:
        self._seq += 1
        heapq.heappush(self.queue, (when, self._seq, action))

    def fail(self, what: str) -> SimulationFailure:
        return SimulationFailure(
            f"{what} (seed={self.config.seed}, peers={self.config.peers}, faulty={self.config.faulty}, "
            f"t={self.now}us; replay: python -m consensus.simulate --peers {self.config.peers} "
            f"--faulty {self.config.faulty} --seed {self.config.seed})"
        )

    def delay(self) -> int:
        base = self.rng.expovariate(1 / self.config.mean_delay_us)
        if self.rng.random() < 0.05:
            base *= min(self.rng.paretovariate(1.5), 50.0)  # the heavy tail: rare, very late messages
        return int(base) + 1

    # ----- the run -------------------------------------------------------------------------

    def plan(self) -> None:
        config = self.config
        n = config.peers
        for i in range(n):
            self.at(self.rng.randrange(config.gossip_interval_us), self._ticker(i))
            for k in range(0, config.payloads, config.vote_chunk):
                when = self.rng.randrange(config.voting_period_us)
                for j in range(k, min(k + config.vote_chunk, config.payloads)):
                    self.at(when, self._voter(i, j))
        if self.crash_stop:
            if config.crash_mode == "never-started":
                for i in self.crash_stop:
                    self.nodes[i] = None
            elif config.crash_mode == "all-at-once":
                when = self.rng.randrange(config.voting_period_us)
                for i in self.crash_stop:
                    self.at(when, self._crasher(i))
            else:
                for i in self.crash_stop:
                    self.at(self.rng.randrange(config.voting_period_us), self._crasher(i))
        if config.partition and n >= 2:
            start = self.rng.randrange(config.voting_period_us // 2)
            length = self.rng.randrange(config.voting_period_us // 4, config.voting_period_us // 2)
            members = list(range(n))
            self.rng.shuffle(members)
            cut = self.rng.randrange(1, n)
            sides = (set(members[:cut]), set(members[cut:]))

            def begin() -> None:
                self.partition_sides = sides
                self.partition_until = start + length

            self.at(start, begin)
            self.heal_time = max(self.heal_time, start + length)
        if config.restart and len(self.correct) >= 2:
            # Restart a correct peer (not counted among the faulty): snapshot, silence, restore.
            who = self.rng.choice(self.correct)
            crash_at = self.rng.randrange(config.voting_period_us)
            back_at = crash_at + self.rng.randrange(
                config.voting_period_us // 8, config.voting_period_us // 3
            )
            self.at(crash_at, self._restart_crash(who, back_at))
            self.heal_time = max(self.heal_time, back_at)

    def _ticker(self, i: int) -> Callable[[], None]:
        def tick() -> None:
            node = self.nodes[i]
            if node is not None and self.down_until.get(i, -1) <= self.now:
                others = [j for j in range(self.config.peers) if j != i]
                if others:
                    peer = self.rng.choice(others)
                    try:
                        request = node.create_gossip(self.ids[peer])
                    except ConsensusError:
                        request = None
                    if request is not None:
                        self.send(i, peer, request)
                    if i in self.byzantine and "spam" in self.config.byzantine and self.rng.random() < 0.2:
                        self.send(i, peer, self._spam(i, peer))
                self._poll(i)
            interval = int(self.rng.expovariate(1 / self.config.gossip_interval_us)) + 1
            if not self.done():
                self.at(self.now + interval, tick)

        return tick

    def _spam(self, i: int, peer: int) -> Any:
        choice = self.rng.randrange(3)
        if choice == 0:
            return Request(self.ids[i], self.ids[peer], Epoch(0), (), (), (), self.rng.randbytes(64))
        if choice == 1:
            return b"\x00garbage" + self.rng.randbytes(16)
        return Response(self.ids[i], self.ids[i], Epoch(0), (), (), (), self.rng.randbytes(64))

    def _voter(self, i: int, k: int) -> Callable[[], None]:
        def vote() -> None:
            node = self.nodes[i]
            if node is None or self.down_until.get(i, -1) > self.now:
                return
            body = f"{i}:{k}:".encode()
            payload = body + self.rng.randbytes(max(0, self.config.payload_size - len(body)))
            node.vote_for(Payload(payload))
            self.voted[b"p" + payload] = (i, self.now)
            if i in self.correct:
                self.correct_payloads.add(b"p" + payload)
            self._poll(i)

        return vote

    def _crasher(self, i: int) -> Callable[[], None]:
        def crash() -> None:
            self.nodes[i] = None

        return crash

    def _restart_crash(self, i: int, back_at: int) -> Callable[[], None]:
        def crash() -> None:
            node = self.nodes[i]
            assert node is not None
            snapshot = node.snapshot()
            self.snapshots[i] = json.dumps(snapshot) if self.config.snapshot_through_json else ""
            self.nodes[i] = None
            self.down_until[i] = back_at

            def restart() -> None:
                data = json.loads(self.snapshots[i]) if self.config.snapshot_through_json else snapshot
                self.nodes[i] = Parsec.restore(self.keys[i], data)

            self.at(back_at, restart)

        return crash

    def send(self, src: int, dst: int, message: Any) -> None:
        when = self.now + self.delay()
        if self.rng.random() < self.config.drop_rate:
            when += 10 * self.config.mean_delay_us  # dropped, then redelivered by the transport's retry
        self.at(when, self._deliverer(src, dst, message))
        if self.rng.random() < self.config.duplicate_rate:
            self.at(self.now + self.delay(), self._deliverer(src, dst, message))

    def _deliverer(self, src: int, dst: int, message: Any) -> Callable[[], None]:
        def deliver() -> None:
            sides = self.partition_sides
            if (
                sides is not None
                and self.now < self.partition_until
                and (src in sides[0]) != (dst in sides[0])
            ):
                # Held by the partition and delivered once it heals.
                self.at(self.partition_until + self.delay(), deliver)
                return
            node = self.nodes[dst]
            if node is None or self.down_until.get(dst, -1) > self.now:
                return  # a crashed peer loses what reaches it
            self.result.messages += 1
            if src in self.byzantine and dst in self.correct:
                self._expect_malice(src, message)
            if self.now >= self.heal_time:
                self.messages_after_heal += 1
            try:
                if isinstance(message, Request):
                    response = node.handle_request(self.ids[src], message)
                    self.send(dst, src, response)
                elif isinstance(message, Response):
                    node.handle_response(self.ids[src], message)
                else:
                    node.handle_request(self.ids[src], message)
            except ConsensusError:
                self.result.rejected_messages += 1
            self._poll(dst)

        return deliver

    def _expect_malice(self, src: int, message: Any) -> None:
        """Note the provable malice a correct peer is now able to report (and so must)."""
        node = self.nodes[src]
        if not isinstance(node, ByzantineParsec) or not isinstance(message, Request | Response):
            return
        offender = self.ids[src]
        for event in message.events:
            if event is node.fork_sibling:
                self.expected.add((MaliceKind.FORK.value, offender))
            elif event in node.broken_events:
                self.expected.add((MaliceKind.INVALID_EVENT_IN_MESSAGE.value, offender))
                break  # the receiver stops reading the message at the first invalid event
            elif event.creator == offender and any(not check_accusation(item) for item in event.accusations):
                self.expected.add((MaliceKind.FALSE_ACCUSATION.value, offender))

    def _poll(self, i: int) -> None:
        node = self.nodes[i]
        if node is None:
            return
        while (block := node.poll()) is not None:
            self._check_agreement(i, block)
        size = len(node.graph)
        if size > self.result.max_graph_events:
            self.result.max_graph_events = size

    def _check_agreement(self, i: int, block: Block) -> None:
        mine = self.blocks[i]
        if block.height != len(mine):
            raise self.fail(f"integrity: peer {i} output height {block.height} after {len(mine)} blocks")
        mine.append(block)
        for observation in block.observations:
            if isinstance(observation, Payload):
                voter = self.voted.get(b"p" + observation.data)
                if voter is not None and voter[0] == i:
                    self.result.latencies_us.append(self.now - voter[1])
        if block.height < len(self.chain):
            if self.chain[block.height].hash != block.hash:
                raise self.fail(f"agreement: peer {i} decided a different block at height {block.height}")
            return
        if block.previous_hash != (self.chain[-1].hash if self.chain else bytes(32)):
            raise self.fail("integrity: block does not link to the previous block")
        if self.config.check_certificates and not is_certified(block, tuple(self.ids)):
            raise self.fail(f"validity: block {block.height} lacks signatures of more than 2/3")
        self.chain.append(block)
        for observation in block.observations:
            assert isinstance(observation, Payload)
            key = b"p" + observation.data
            if key in self.chain_seen:
                raise self.fail("integrity: an observation was agreed twice")
            if key not in self.voted and not observation.data.startswith(b"fork-"):
                raise self.fail("validity: an agreed observation was never voted")
            self.chain_seen.add(key)
            if key in self.correct_payloads:
                self.agreed_correct += 1
        self.result.blocks += 1

    def live_correct(self) -> list[int]:
        return [i for i in self.correct if self.nodes[i] is not None or i in self.down_until]

    def done(self) -> bool:
        if self.now < self.config.voting_period_us or self.now < self.heal_time:
            return False
        if self.agreed_correct < len(self.correct_payloads):
            return False
        height = len(self.chain)
        if not all(len(self.blocks[i]) == height for i in self.live_correct()):
            return False
        # Accountability is part of finishing: every correct peer must have learnt every
        # injected malice (within the same message budget as liveness).
        for i in self.live_correct():
            node = self.nodes[i]
            if node is None:
                return False
            known = {(accusation.kind, accusation.offender) for accusation in node.accusations()}
            if not self.expected <= known:
                return False
        return True

    def run(self) -> SimResult:
        started = time.perf_counter()
        cpu_started = time.process_time()
        self.plan()
        steps = 0
        while self.queue and not self.done():
            self.now, _, action = heapq.heappop(self.queue)
            action()
            steps += 1
            if steps % 512 == 0:
                self.result.graph_sizes.append(
                    max((len(node.graph) for node in self.nodes.values() if node is not None), default=0)
                )
            if self.messages_after_heal > self.config.max_messages_after_heal:
                raise self.fail(
                    f"liveness: {len(self.correct_payloads - self.chain_seen)} correct payloads not agreed "
                    f"after {self.messages_after_heal} messages since the network healed"
                )
            if (
                self.config.cpu_budget_s is not None
                and steps % 64 == 0
                and time.process_time() - cpu_started > self.config.cpu_budget_s
            ):
                raise self.fail(
                    f"liveness: CPU budget of {self.config.cpu_budget_s:g} s exhausted "
                    f"({self.agreed_correct}/{len(self.correct_payloads)} correct payloads agreed, "
                    f"{self.messages_after_heal} messages since the network healed)"
                )
        if not self.done():
            raise self.fail("liveness: the simulation ran out of events before agreeing everything")
        self.check_accountability()
        self.result.wall_seconds = time.perf_counter() - started
        self.result.virtual_end_us = self.now
        self.result.agreed_payloads = len(self.chain_seen)
        self.result.correct_payloads = len(self.correct_payloads)
        return self.result

    def check_accountability(self) -> None:
        expected = self.expected
        correct_ids = {self.ids[i] for i in self.correct}
        for i in self.live_correct():
            node = self.nodes[i]
            assert node is not None
            known = {(accusation.kind, accusation.offender) for accusation in node.accusations()}
            self.result.accusations[self.ids[i].hex()[:8]] = sorted(f"{k}:{o.hex()[:8]}" for k, o in known)
            for kind, offender in known:
                if offender in correct_ids:
                    raise self.fail(f"accountability: correct peer {offender.hex()[:8]} accused of {kind}")
            missing = expected - known
            if missing:
                raise self.fail(f"accountability: peer {i} does not know of {sorted(k for k, _ in missing)}")
            for accusation in node.accusations():
                if not check_accusation(accusation):
                    raise self.fail(f"accountability: an accusation ({accusation.kind}) does not check")


def simulate(config: SimConfig) -> SimResult:
    return Simulation(config).run()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--peers", type=int, default=7)
    parser.add_argument("--faulty", type=int, default=None, help="default: the most allowed, (peers-1)//3")
    parser.add_argument("--seed", type=int, default=None, help="the first seed (default 42; 0 with --soak)")
    parser.add_argument("--seeds", type=int, default=1, help="run this many consecutive seeds")
    parser.add_argument(
        "--soak",
        type=int,
        default=None,
        metavar="SEEDS",
        help="run this many consecutive seeds from --seed, go on past failures, "
        "each seed under --seed-cpu-budget, and list every failing seed at the end",
    )
    parser.add_argument(
        "--seed-cpu-budget", type=float, default=120.0, help="CPU seconds one seed may take in --soak"
    )
    parser.add_argument("--payloads", type=int, default=20, help="payloads voted by each peer")
    parser.add_argument("--byzantine", default=",".join(BYZANTINE_BEHAVIOURS), help="comma list or 'none'")
    parser.add_argument("--crash-mode", choices=CRASH_MODES, default="random")
    parser.add_argument("--no-partition", action="store_true")
    parser.add_argument("--no-restart", action="store_true")
    arguments = parser.parse_args(argv)
    faulty = arguments.faulty if arguments.faulty is not None else (arguments.peers - 1) // 3
    behaviours = () if arguments.byzantine == "none" else tuple(arguments.byzantine.split(","))
    soak = arguments.soak is not None
    first = arguments.seed if arguments.seed is not None else (0 if soak else 42)
    count = arguments.soak if soak else arguments.seeds
    failed: list[int] = []
    started = time.perf_counter()
    for seed in range(first, first + count):
        config = SimConfig(
            peers=arguments.peers,
            faulty=faulty,
            seed=seed,
            payloads=arguments.payloads,
            byzantine=behaviours,
            crash_mode=arguments.crash_mode,
            partition=not arguments.no_partition,
            restart=not arguments.no_restart,
            cpu_budget_s=arguments.seed_cpu_budget if soak else None,
        )
        try:
            result = simulate(config)
        except SimulationFailure as failure:
            print(f"FAIL {failure}", flush=True)
            if not soak:
                return 1
            failed.append(seed)
            continue
        if soak:
            if (seed - first + 1) % 100 == 0:
                print(
                    f"soak: {seed - first + 1}/{count} seeds, {len(failed)} failed, "
                    f"{time.perf_counter() - started:.0f} s",
                    flush=True,
                )
            continue
        print(
            f"ok seed={seed} peers={config.peers} faulty={faulty} blocks={result.blocks} "
            f"payloads={result.agreed_payloads} messages={result.messages} rejected={result.rejected_messages} "
            f"max_graph={result.max_graph_events} virtual={result.virtual_end_us / SECOND:.2f}s "
            f"wall={result.wall_seconds:.2f}s accusations={sorted(set(functools.reduce(operator.iadd, result.accusations.values(), [])))}"
        )
    if soak:
        print(
            f"soak: peers={arguments.peers} faulty={faulty} seeds {first}..{first + count - 1}: "
            f"{len(failed)} failed {failed} in {time.perf_counter() - started:.0f} s"
        )
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
