"""Agreement and liveness survive a hostile network: a third of all messages dropped (and
redelivered late) and a third duplicated, on top of heavy-tailed delays, a partition, crashes
and Byzantine peers."""

from __future__ import annotations

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from consensus.simulate import SimConfig, simulate


@settings(
    max_examples=20,
    deadline=None,
    derandomize=True,
    database=None,
    suppress_health_check=[HealthCheck.too_slow],
)
@given(peers=st.integers(min_value=4, max_value=7), seed=st.integers(min_value=0, max_value=2**32 - 1))
def test_heavy_drops_and_duplicates_do_not_break_agreement_or_liveness(peers: int, seed: int) -> None:
    result = simulate(
        SimConfig(
            peers=peers,
            faulty=(peers - 1) // 3,
            seed=seed,
            payloads=2,
            voting_period_us=200_000,
            mean_delay_us=8_000,
            drop_rate=0.3,
            duplicate_rate=0.3,
        )
    )
    assert result.agreed_payloads >= result.correct_payloads > 0
