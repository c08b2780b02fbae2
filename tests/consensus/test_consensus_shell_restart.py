"""A worker that restarts (nothing cached in memory) resumes from the snapshot and the
write-ahead log in PostgreSQL: the chain continues where it stopped, with no block lost,
repeated or forked, and no event of ours signed twice at one position."""

from __future__ import annotations

import pytest
from consensus_shell_support import agree_with_peer, dispatched, two_validators

from consensus import services
from consensus.models import (
    Block,
    BlockObservation,
    ConsensusState,
    ConsensusStep,
    ObservationStatus,
    PendingObservation,
)
from consensus.protocol import SnapshotError

__all__ = ["dispatched", "two_validators"]


def test_a_fresh_process_resumes_from_the_persisted_snapshot(two_validators, dispatched):
    agree_with_peer(two_validators, dispatched, [b"before the restart"])
    before = list(Block.objects.order_by("height").values_list("height", "block_hash"))
    version = ConsensusState.objects.get().version

    services.forget_cached_state()  # what a new worker process starts with
    agree_with_peer(two_validators, dispatched, [b"after the restart"])

    after = list(Block.objects.order_by("height").values_list("height", "block_hash"))
    assert after[: len(before)] == before
    assert len(after) > len(before)
    assert [height for height, _ in after] == list(range(len(after)))
    assert ConsensusState.objects.get().version > version
    # The peer built the same chain: nobody saw a fork or a second event at one position.
    assert [bytes(block_hash) for _, block_hash in after] == [block.hash for block in two_validators.blocks]
    assert not two_validators.parsec.accusations()


def _our_events(message_wire: dict, our_id: bytes) -> list[tuple[int, str]]:
    from consensus.protocol.event import Event, checked_event_id

    events = [Event.from_wire(item) for item in message_wire["events"]]
    return [(event.index, checked_event_id(event).hex()) for event in events if event.creator == our_id]


def test_a_crash_after_the_commit_and_before_the_send_signs_the_same_events_again(two_validators, dispatched):
    """The step commits its log row, then the process dies before its response leaves: the
    restarted worker (snapshot + log replayed) must sign the very same event at that position,
    never a second one (a fork the peer would accuse us of)."""
    from settlement.keystore import node_signer

    our_id = node_signer().public_key
    agree_with_peer(two_validators, dispatched, [b"before the crash"])
    services.consensus_vote_many(payloads=[b"voted just before the crash"], kind="test.payment")
    services.votes_apply()
    dispatched.clear()  # our request with the vote never left either
    services.gossip_receive(
        peer_name=two_validators.name, wire=two_validators.parsec.create_gossip(our_id).to_wire()
    )
    lost = [args for task, *args in dispatched if task == "gossip_send"]
    assert lost, "the step answered the peer's request"
    signed_but_not_sent = _our_events(lost[-1][1], our_id)
    assert signed_but_not_sent, "the answer carried a new event of ours"
    dispatched.clear()  # the crash: nothing the step produced was sent
    services.forget_cached_state()
    assert ConsensusStep.objects.exists(), "the restart replays the log, not only a snapshot"

    agree_with_peer(two_validators, dispatched, [b"after the crash"])

    graph = two_validators.parsec.graph
    slot = graph.slot_of[our_id]
    for index, event_id in signed_but_not_sent:
        assert [item.hex() for item in graph.by_position.get((slot, index), [])] in ([event_id], [])
        assert index < graph.count[slot]
    assert not two_validators.parsec.accusations()
    stored = [bytes(item) for item in Block.objects.order_by("height").values_list("block_hash", flat=True)]
    assert stored == [block.hash for block in two_validators.blocks]
    kinds = {bytes(data) for data in BlockObservation.objects.values_list("data", flat=True)}
    assert any(b"voted just before the crash" in item for item in kinds)


def test_the_log_is_compacted_into_a_snapshot_and_a_restart_resumes_from_both(
    two_validators, dispatched, settings
):
    settings.CONSENSUS_SNAPSHOT_EVERY_STEPS = 4
    agree_with_peer(two_validators, dispatched, [b"one", b"two"])
    state = ConsensusState.objects.get()
    assert state.snapshot_version > 1, "a full snapshot replaced the log"
    assert state.version - state.snapshot_version < 4
    assert list(ConsensusStep.objects.values_list("version", flat=True)) == list(
        range(state.snapshot_version + 1, state.version + 1)
    )

    services.forget_cached_state()
    agree_with_peer(two_validators, dispatched, [b"three"])

    stored = [bytes(item) for item in Block.objects.order_by("height").values_list("block_hash", flat=True)]
    assert stored == [block.hash for block in two_validators.blocks]
    assert not two_validators.parsec.accusations()


def test_a_log_that_replays_to_another_chain_head_is_refused_and_nothing_is_sent(two_validators, dispatched):
    agree_with_peer(two_validators, dispatched, [b"before the damage"])
    last = ConsensusStep.objects.order_by("-version").first()
    assert last is not None
    assert last.own is not None
    last.own = [last.own[0], last.own[1] + 1, last.own[2]]
    last.save()
    services.forget_cached_state()
    dispatched.clear()
    services.consensus_vote_many(payloads=[b"after the damage"], kind="test.payment")
    dispatched.clear()

    with pytest.raises(SnapshotError, match="refusing to sign"):
        services.gossip_tick()

    assert not [task for task, *_ in dispatched if task == "gossip_send"]
    assert PendingObservation.objects.filter(status=ObservationStatus.QUEUED).count() == 1
