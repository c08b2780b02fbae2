"""The simulator's properties (agreement, validity, integrity, accountability, liveness) hold for
every network size from 1 to 10 with the most faulty peers allowed, under delays with a heavy
tail, reordering, duplication, redelivered drops, a healing partition, crash-stop, crash-restart
from a JSON snapshot and Byzantine peers. Each run checks agreement after every step and the
rest at the end, and raises ``SimulationFailure`` naming the seed that replays it."""

from __future__ import annotations

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from consensus.simulate import SimConfig, simulate

FAST = {"voting_period_us": 200_000, "mean_delay_us": 8_000, "payloads": 2}


@settings(
    max_examples=60,
    deadline=None,
    derandomize=True,
    database=None,
    suppress_health_check=[HealthCheck.too_slow],
)
@given(peers=st.integers(min_value=1, max_value=10), seed=st.integers(min_value=0, max_value=2**32 - 1))
def test_every_network_size_with_maximum_faults_stays_safe_and_live(peers: int, seed: int) -> None:
    faulty = (peers - 1) // 3
    result = simulate(SimConfig(peers=peers, faulty=faulty, seed=seed, **FAST))
    assert result.correct_payloads > 0
    assert result.agreed_payloads >= result.correct_payloads


@settings(
    max_examples=150,
    deadline=None,
    derandomize=True,
    database=None,
    suppress_health_check=[HealthCheck.too_slow],
)
@given(
    peers=st.integers(min_value=1, max_value=6),
    seed=st.integers(min_value=0, max_value=2**32 - 1),
    crash_mode=st.sampled_from(["never-started", "all-at-once", "random"]),
    byzantine=st.sampled_from([(), ("fork",), ("invalid-event", "spam"), ("false-accusation", "fork")]),
)
def test_small_networks_stay_safe_and_live_under_each_fault_mix(
    peers: int, seed: int, crash_mode: str, byzantine: tuple[str, ...]
) -> None:
    faulty = (peers - 1) // 3
    simulate(
        SimConfig(
            peers=peers,
            faulty=faulty,
            seed=seed,
            crash_mode=crash_mode,
            byzantine=byzantine,
            byzantine_peers=1 if byzantine and faulty else 0,
            **FAST,
        )
    )
