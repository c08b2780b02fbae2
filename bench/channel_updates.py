"""Off-chain channel updates per second, in process, across many channels.

One update is the whole exchange through the channel rules, both sides: A builds the next
state and signs it (``UpdateProposed``), B checks it and countersigns (``ProposalReceived``),
A takes the countersignature (``CountersignatureReceived``), and both keep the both-signed
state (appended to an in-memory log, standing in for the write-ahead log). Each side's view is
one ``NodeChannels`` per channel, as the Django shell builds it, so an update never copies
other channels' state. Keys are loaded once (``Signer``) and each state is hashed once (the
digest cache), so the cost is the cryptography: two signatures and the recoveries the rules
check.

The secp256k1 ceiling from the same run: an update needs at least two signatures and two
recoveries, so one core cannot do more than 1 / (2/sign + 2/recover) updates per second. The
figure is measured on one core and on all cores (one process per core), in CPU time: on a
shared machine, wall time would measure the neighbours. The rules check four signatures per
update (each side also checks its own, a guard against a signing bug), so the cost is about
two signatures and four recoveries.
Run: ``python -m bench.channel_updates [--channels 1000] [--seconds 2]``.
"""

from __future__ import annotations

import argparse
import multiprocessing
import os
import random
import time
from dataclasses import dataclass
from typing import Any

from bench.ceilings import measure_ceilings
from bench.common import CPU_CLOCK, print_table, write_results
from channels_app.protocol import eip712, proposals
from channels_app.protocol.state import ChannelKind, NodeChannels, SignedState
from channels_app.protocol.state_changes import (
    ChannelOpened,
    CountersignatureReceived,
    DepositObserved,
    ProposalReceived,
    UpdateProposed,
)
from channels_app.protocol.transition import transition
from channels_app.protocol.types import ETH, Address, Wei

GOAL_IN_PROCESS = 10_000
DOMAIN = eip712.Domain(31337, Address("0x" + "ad" * 20))
DEPOSIT = 10**18


@dataclass
class Pair:
    """One channel as both of its participants see it."""

    a: NodeChannels
    b: NodeChannels
    signer_a: eip712.Signer
    signer_b: eip712.Signer
    channel_id: bytes


def _open_pair(rng: random.Random) -> Pair:
    keys = (rng.randbytes(32), rng.randbytes(32))
    signers = (eip712.Signer(keys[0]), eip712.Signer(keys[1]))
    params = proposals.channel_params(31337, (signers[0].address, signers[1].address), 3600, rng)
    opening = proposals.opening_state(params, {ETH: (DEPOSIT, DEPOSIT)})
    signed = SignedState(
        opening, (signers[0].sign_state(DOMAIN, opening), signers[1].sign_state(DOMAIN, opening))
    )
    views = []
    for signer in signers:
        view = NodeChannels(us=signer.address, domain=DOMAIN)
        view = transition(view, ChannelOpened(params, ChannelKind.LEDGER, signed)).new_state
        view = transition(view, DepositObserved(params.channel_id, ETH, Wei(2 * DEPOSIT))).new_state
        views.append(view)
    return Pair(views[0], views[1], signers[0], signers[1], params.channel_id)


def update(pair: Pair, log: list[SignedState]) -> None:
    """One full update, A pays B one wei; both keep the both-signed state."""
    channel_id = pair.channel_id
    new = proposals.payment(pair.a.channels[channel_id], ETH, 1)  # type: ignore[index]
    signature = pair.signer_a.sign_state(DOMAIN, new)
    pair.a = transition(pair.a, UpdateProposed(channel_id, new, signature)).new_state  # type: ignore[arg-type]
    countersignature = pair.signer_b.sign_state(DOMAIN, new)
    received = transition(pair.b, ProposalReceived(channel_id, new, signature, countersignature))  # type: ignore[arg-type]
    pair.b = received.new_state
    accepted = transition(pair.a, CountersignatureReceived(channel_id, new.version, countersignature))  # type: ignore[arg-type]
    pair.a = accepted.new_state
    signed = pair.a.channels[channel_id].latest  # type: ignore[index]
    log.append(signed)  # A persists
    log.append(signed)  # B persists (its copy of the same both-signed state)


def _run_updates(
    channels: int, seconds: float, seed: int, clock: Any = time.perf_counter
) -> tuple[int, float, list[float]]:
    """Round-robin updates over ``channels`` channels for ``seconds``; (updates, elapsed, latencies)."""
    rng = random.Random(seed)
    pairs = [_open_pair(rng) for _ in range(channels)]
    log: list[SignedState] = []
    latencies: list[float] = []
    done = 0
    started = clock()
    deadline = time.perf_counter() + seconds
    while time.perf_counter() < deadline:
        for pair in pairs:
            begin = time.perf_counter()
            update(pair, log)
            latencies.append(time.perf_counter() - begin)
        done += len(pairs)
        if len(log) > 200_000:
            log.clear()
    return done, clock() - started, latencies


def _worker(arguments: tuple[int, float, int]) -> tuple[int, float]:
    channels, seconds, seed = arguments
    done, elapsed, _ = _run_updates(channels, seconds, seed, clock=CPU_CLOCK)
    return done, elapsed


def _percentile(values: list[float], fraction: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(fraction * (len(ordered) - 1)))]


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--channels", type=int, default=1000)
    parser.add_argument("--seconds", type=float, default=2.0)
    arguments = parser.parse_args(argv)

    ceilings = measure_ceilings(0.3)
    sign, recover = ceilings["secp256k1_sign_recoverable"], ceilings["secp256k1_recover"]
    ceiling_per_core = 1 / (2 / sign + 2 / recover)

    done, cpu_seconds, latencies = _run_updates(arguments.channels, arguments.seconds, 1, clock=CPU_CLOCK)
    one_core = done / cpu_seconds

    cores = os.cpu_count() or 1
    share = max(1, arguments.channels // cores)
    context = multiprocessing.get_context("fork")
    started = time.perf_counter()
    with context.Pool(cores) as pool:
        results = pool.map(_worker, [(share, arguments.seconds, 100 + index) for index in range(cores)])
    # Each process's rate is over its own CPU time (the machine may be shared): their sum is what
    # the cores do together when nothing else runs.
    all_cores = sum(done / elapsed for done, elapsed in results)
    wall = time.perf_counter() - started

    rows = [
        {
            "measure": "one core (CPU time)",
            "updates/s": one_core,
            "p50 us": _percentile(latencies, 0.5) * 1e6,
            "p99 us": _percentile(latencies, 0.99) * 1e6,
            "ceiling/s": ceiling_per_core,
            "of ceiling": f"{one_core / ceiling_per_core:.0%}",
        },
        {
            "measure": f"{cores} cores (a process each, CPU time)",
            "updates/s": all_cores,
            "p50 us": "",
            "p99 us": "",
            "ceiling/s": ceiling_per_core * cores,
            "of ceiling": f"{all_cores / (ceiling_per_core * cores):.0%}",
        },
    ]
    print_table(
        f"Off-chain channel updates in process, {arguments.channels} channels "
        "(sign, check, countersign, both persist)",
        rows,
        ["measure", "updates/s", "p50 us", "p99 us", "ceiling/s", "of ceiling"],
    )
    best = max(one_core, all_cores)
    print(
        f"\ngoal {GOAL_IN_PROCESS:,}/s in process: {'met' if best >= GOAL_IN_PROCESS else 'not met'} ({best:,.0f}/s)"
    )
    print(
        "ceiling per core = 1 / (2/sign + 2/recover) with "
        f"sign {sign:,.0f}/s and recover {recover:,.0f}/s measured in this run"
    )
    path = write_results(
        "channel_updates",
        {
            "channels": arguments.channels,
            "one_core_updates_per_second": one_core,
            "one_core_p50_us": _percentile(latencies, 0.5) * 1e6,
            "one_core_p99_us": _percentile(latencies, 0.99) * 1e6,
            "all_cores_updates_per_second": all_cores,
            "cores": cores,
            "wall_seconds_all_cores": wall,
            "ceiling_updates_per_second_per_core": ceiling_per_core,
            "ratio_to_ceiling_one_core": one_core / ceiling_per_core,
            "secp256k1_sign_per_second": sign,
            "secp256k1_recover_per_second": recover,
            "goal_in_process": GOAL_IN_PROCESS,
            "goal_met": best >= GOAL_IN_PROCESS,
            "transport": "not measured: two-node transport benchmark not built yet",
        },
    )
    print(f"written to {path}")


if __name__ == "__main__":
    main()
