"""Consensus in the simulator: agreed transactions per second and vote_for -> block latency.

    python -m bench.consensus_sim [--quick]

Each run is a clean network of N validators in one process (no faults: this measures cost, the
tests measure safety), 100-byte payloads, real Ed25519 signatures on every event and every
gossip message, every event's signature verified by every peer, blocks signed by every peer and
their signatures checked. Throughput is agreed payloads divided by the *CPU time of the whole
simulation*, i.e. all N peers' work on one core: a real node does 1/N of it, so per-node cost is
lower by up to N (reported as ``tx/s per-node CPU``), but the single-process figure is the
honest one to quote. Latency is in the simulator's virtual time, from the voting peer's
``vote_for`` to that peer's ``poll`` returning the certified block, under the stated network
model (exponential delays, gossip ticks): it measures rounds of communication, not CPU.
"""

from __future__ import annotations

import argparse
import statistics
import time
from typing import Any

from bench.common import CPU_CLOCK, print_table, write_results
from consensus.simulate import SimConfig, Simulation

GOALS = {4: 20_000, 7: 10_000, 16: 2_500}


def run(peers: int, payloads_per_peer: int, seed: int) -> dict[str, Any]:
    config = SimConfig(
        peers=peers,
        faulty=0,
        seed=seed,
        payloads=payloads_per_peer,
        vote_chunk=max(1, payloads_per_peer // 20),
        byzantine=(),
        restart=False,
        partition=False,
        drop_rate=0.0,
        duplicate_rate=0.0,
        mean_delay_us=20_000,
        gossip_interval_us=10_000,
        voting_period_us=1_000_000,
        check_certificates=False,  # checked by the tests; here it would double the signature work
    )
    simulation = Simulation(config)
    cpu_start, wall_start = CPU_CLOCK(), time.perf_counter()
    result = simulation.run()
    cpu = CPU_CLOCK() - cpu_start
    wall = time.perf_counter() - wall_start
    latencies = sorted(result.latencies_us)
    agreed = result.agreed_payloads
    return {
        "peers": peers,
        "payloads": agreed,
        "blocks": result.blocks,
        "messages": result.messages,
        "cpu_s": round(cpu, 3),
        "wall_s": round(wall, 3),
        "tx_per_s": round(agreed / cpu),
        "tx_per_s_per_node_cpu": round(agreed / (cpu / peers)),
        "goal_tx_per_s": GOALS.get(peers, ""),
        "p50_ms": round(latencies[len(latencies) // 2] / 1000, 1),
        "p99_ms": round(latencies[min(len(latencies) - 1, int(len(latencies) * 0.99))] / 1000, 1),
        "mean_ms": round(statistics.fmean(latencies) / 1000, 1),
        "max_graph_events": result.max_graph_events,
        "network": "mean delay 20 ms (exp., 5% Pareto tail), gossip tick 10 ms per peer",
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="consensus simulator benchmark")
    parser.add_argument("--quick", action="store_true", help="a small load, N=4 and 7 only (a few seconds)")
    parser.add_argument("--seed", type=int, default=1)
    arguments = parser.parse_args(argv)
    # The same offered load for every network size (payloads over one virtual second, spread
    # over the peers), so that the sizes compare like for like.
    offered = 8_000 if arguments.quick else 48_000
    sizes = (4, 7) if arguments.quick else (4, 7, 16, 32)
    rows = [run(peers, offered // peers, arguments.seed) for peers in sizes]
    columns = [
        "peers",
        "payloads",
        "blocks",
        "messages",
        "cpu_s",
        "tx_per_s",
        "tx_per_s_per_node_cpu",
        "goal_tx_per_s",
        "p50_ms",
        "p99_ms",
        "max_graph_events",
    ]
    print_table("Consensus in the simulator (all peers on one core; latency in virtual time)", rows, columns)
    path = write_results(
        "consensus_sim",
        {"quick": arguments.quick, "seed": arguments.seed, "offered_payloads": offered, "runs": rows},
    )
    print(f"\nwrote {path}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
