"""The gossip loop's steps skip the locking read and write the state row only if it is still at
the version they started from (``_commit_step``). Driven here in this process, step by step,
against an in-process peer: such steps agree blocks and compact the log like locked ones, a
fresh process resumes from what they wrote, and a step whose row another process changed
meanwhile commits nothing and sends nothing. A loop step stores its blocks after its messages
left; a process stopped in between leaves them to the next one, which stores them from the log."""

from __future__ import annotations

import time
from typing import Any

from consensus_shell_support import InProcessPeer, agree_with_peer, dispatched, two_validators
from django.db.models import F

from consensus import services
from consensus.models import Block, ConsensusState, ConsensusStep, ObservationStatus, PendingObservation
from consensus.protocol import Request, message_from_wire
from settlement.keystore import node_signer

__all__ = ["dispatched", "two_validators"]


def _loop() -> Any:
    return services._GossipLoop(services.health.redis_client(), lock=None)


def _exchange(loop: Any, peer: InProcessPeer, dispatched: list[tuple[Any, ...]]) -> None:
    """The peer asks the loop, then answers whatever the loop sent it, into the loop."""
    our_id = node_signer().public_key
    loop._step([(peer.name, peer.parsec.create_gossip(our_id).to_wire(), time.time())])
    while dispatched:
        task, *args = dispatched.pop(0)
        if task != "gossip_send":
            continue  # votes_apply: the loop votes itself (check_votes)
        message = message_from_wire(args[1])
        if isinstance(message, Request):
            answer = peer.parsec.handle_request(our_id, message)
            loop._step([(peer.name, answer.to_wire(), time.time())])
        else:
            peer.parsec.handle_response(our_id, message)
        peer.collect_blocks()


def test_loop_steps_agree_compact_and_a_fresh_process_resumes_from_them(
    two_validators, dispatched, settings, monkeypatch
):
    peer = two_validators
    settings.CONSENSUS_SNAPSHOT_EVERY_STEPS = 5
    unlocked = []
    commit_step = services._commit_step
    monkeypatch.setattr(
        services,
        "_commit_step",
        lambda step, expected, *blocks: (unlocked.append(expected), commit_step(step, expected, *blocks)),
    )
    loop = _loop()
    services.consensus_vote_many(payloads=[f"loop {n}".encode() for n in range(30)], kind="test.payment")
    loop.check_votes = True
    for _ in range(200):
        _exchange(loop, peer, dispatched)
        if not PendingObservation.objects.exclude(status=ObservationStatus.AGREED).exists():
            break
    assert not PendingObservation.objects.exclude(status=ObservationStatus.AGREED).exists()
    assert len(unlocked) >= 3, "the loop's usual steps take the one-statement path"
    state = ConsensusState.objects.get()
    assert state.snapshot_version > 1, "the log was compacted along the way"
    assert ConsensusStep.objects.filter(version__lte=state.snapshot_version).count() == 0

    services.forget_cached_state()  # a new process: snapshot + log as the loop left them
    agree_with_peer(peer, dispatched, [b"after the loop"])
    ours = [bytes(item) for item in Block.objects.order_by("height").values_list("block_hash", flat=True)]
    assert ours == [block.hash for block in peer.blocks]
    assert not peer.parsec.accusations()


def test_a_loop_step_whose_row_changed_meanwhile_commits_and_sends_nothing(two_validators, dispatched):
    peer = two_validators
    loop = _loop()
    _exchange(loop, peer, dispatched)  # the loop now knows the row (its last step wrote it)
    assert loop.state is not None
    before = ConsensusState.objects.get().version
    steps_before = ConsensusStep.objects.count()
    # Another process's step bumps the version (what a racing drain or restarted loop does).
    ConsensusState.objects.filter(pk=services.STATE_PK).update(version=F("version") + 1)

    our_id = node_signer().public_key
    dispatched.clear()
    loop._step([(peer.name, peer.parsec.create_gossip(our_id).to_wire(), time.time())])

    assert not [item for item in dispatched if item[0] == "gossip_send"], "nothing of the step was sent"
    assert ConsensusStep.objects.count() == steps_before
    assert ConsensusState.objects.get().version == before + 1
    assert loop.state is None  # the next step reads the row under FOR UPDATE and restores
    assert services._cache.parsec is None


def test_blocks_a_loop_step_left_unstored_are_stored_by_the_next_process(
    two_validators, dispatched, monkeypatch
):
    peer = two_validators
    never_stored: list[int] = []
    store_deferred_blocks = services._store_deferred_blocks
    # The process "stops" after each step's commit and sends, before it stores the step's blocks.
    monkeypatch.setattr(
        services,
        "_store_deferred_blocks",
        lambda step: never_stored.extend(b.height for b in step.deferred_blocks),
    )
    loop = _loop()
    services.consensus_vote_many(payloads=[f"unstored {n}".encode() for n in range(5)], kind="test.payment")
    loop.check_votes = True
    for _ in range(100):
        _exchange(loop, peer, dispatched)
        if never_stored:
            break
    assert never_stored, "a loop step agreed a block and left it for after its sends"
    assert not Block.objects.filter(height__in=never_stored).exists()
    assert ConsensusStep.objects.exists(), "what produced them is in the log"

    monkeypatch.setattr(services, "_store_deferred_blocks", store_deferred_blocks)
    services.forget_cached_state()  # the next process: snapshot + log, nothing cached
    agree_with_peer(peer, dispatched, [b"after the stop"])

    ours = [bytes(item) for item in Block.objects.order_by("height").values_list("block_hash", flat=True)]
    assert ours == [block.hash for block in peer.blocks][: len(ours)]
    assert set(never_stored) <= set(Block.objects.values_list("height", flat=True))
    assert not PendingObservation.objects.exclude(status=ObservationStatus.AGREED).exists()
    assert ConsensusState.objects.get().next_height == len(ours)
    assert not peer.parsec.accusations()
