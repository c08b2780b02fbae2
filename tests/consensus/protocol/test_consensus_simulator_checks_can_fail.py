"""The simulator's checks are not vacuous: each one fires on a run that breaks its property."""

from __future__ import annotations

from dataclasses import replace

import pytest

from consensus.protocol import Payload
from consensus.simulate import SimConfig, Simulation, SimulationFailure


def _finished(seed: int = 3) -> Simulation:
    simulation = Simulation(SimConfig(peers=4, faulty=1, seed=seed, voting_period_us=200_000, payloads=2))
    simulation.run()
    return simulation


def test_agreement_check_rejects_a_different_block_at_a_decided_height() -> None:
    simulation = _finished()
    forged = replace(simulation.chain[0], observations=(Payload(b"forged"),))
    simulation.blocks[simulation.correct[0]] = []
    with pytest.raises(SimulationFailure, match="agreement"):
        simulation._check_agreement(simulation.correct[0], forged)


def test_integrity_check_rejects_a_skipped_height() -> None:
    simulation = _finished()
    with pytest.raises(SimulationFailure, match="integrity"):
        simulation._check_agreement(simulation.correct[0], simulation.chain[0])


def test_validity_check_rejects_an_uncertified_block() -> None:
    simulation = _finished()
    head = simulation.chain[-1]
    unsigned = replace(head, height=head.height + 1, previous_hash=head.hash, signatures=())
    peer = simulation.correct[0]
    with pytest.raises(SimulationFailure, match="validity"):
        simulation._check_agreement(peer, unsigned)


def test_accountability_check_fires_when_expected_malice_is_unknown() -> None:
    simulation = _finished()
    simulation.expected.add(("fork", simulation.ids[simulation.correct[0]]))
    with pytest.raises(SimulationFailure, match="accountability"):
        simulation.check_accountability()


def test_liveness_check_fires_when_the_message_budget_runs_out() -> None:
    simulation = Simulation(
        SimConfig(peers=4, faulty=1, seed=5, voting_period_us=200_000, payloads=2, max_messages_after_heal=5)
    )
    with pytest.raises(SimulationFailure, match=r"liveness.*seed=5"):
        simulation.run()
