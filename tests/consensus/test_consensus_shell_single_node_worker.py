"""A single validator (N=1) agrees blocks end to end: vote → real Celery worker → stored blocks."""

from __future__ import annotations

import pytest
from consensus_shell_support import single_validator, wait_for

from consensus.models import Block, BlockObservation, ObservationStatus, PendingObservation
from consensus.protocol import Block as ProtocolBlock
from consensus.protocol.block import block_signature_is_valid
from consensus.protocol.types import observation_from_bytes
from consensus.services import _loop_lock_key, _votes_scheduled_key, consensus_vote, gossip_loop_running
from settlement.keystore import node_signer

pytestmark = pytest.mark.worker
__all__ = ["single_validator"]


def vote_and_wait_until_agreed(payloads: list[bytes], *, timeout: float = 30.0) -> None:
    for payload in payloads:
        consensus_vote(payload=payload, kind="test.payment")
    wait_for(
        lambda: PendingObservation.objects.filter(status=ObservationStatus.AGREED).count() == len(payloads),
        what="every observation agreed",
        timeout=timeout,
    )


def test_votes_become_signed_blocks_through_a_real_worker(single_validator, celery_worker):
    payloads = [f"payment {number}".encode() for number in range(25)]
    vote_and_wait_until_agreed(payloads)
    blocks = list(Block.objects.order_by("height"))
    assert [block.height for block in blocks] == list(range(len(blocks)))
    stored = [
        bytes(item).split(b"\n", 1)[1]
        for item in BlockObservation.objects.order_by("block__height", "index").values_list("data", flat=True)
    ]
    assert sorted(stored) == sorted(payloads)
    our_key = node_signer().public_key.hex()
    previous = bytes(32)
    for block in blocks:
        assert bytes(block.previous_hash) == previous
        previous = bytes(block.block_hash)
        rebuilt = ProtocolBlock(
            height=block.height,
            previous_hash=bytes(block.previous_hash),
            epoch=block.epoch,
            round=block.round,
            observations=tuple(
                observation_from_bytes(bytes(item))
                for item in block.observations.order_by("index").values_list("data", flat=True)
            ),
            merkle_root=bytes(block.merkle_root),
        )
        assert rebuilt.hash == bytes(block.block_hash)
        assert [item["validator"] for item in block.signatures] == [our_key]
        from consensus.protocol import ValidatorSignature

        signature = block.signatures[0]
        assert block_signature_is_valid(
            rebuilt,
            ValidatorSignature(bytes.fromhex(signature["validator"]), bytes.fromhex(signature["signature"])),
        )


def test_the_same_observation_twice_is_agreed_once(single_validator, celery_worker):
    first = consensus_vote(payload=b"once", kind="test.payment")
    again = consensus_vote(payload=b"once", kind="test.payment")
    assert first.pk == again.pk
    wait_for(
        lambda: PendingObservation.objects.filter(status=ObservationStatus.AGREED).exists(), what="agreement"
    )
    assert BlockObservation.objects.count() == 1


@pytest.fixture
def left_by_an_earlier_test(single_validator):
    """What an earlier test's processes can leave in Redis when it ends: the "votes scheduled"
    flag of a votes_apply task the next worker purges, and the gossip-loop lock of a worker
    killed mid-loop (it expires by itself, in seconds)."""
    from settlement import health

    client = health.redis_client()
    client.set(_votes_scheduled_key(), "1", ex=2)
    client.set(_loop_lock_key(), "gone-host:1:deadbeef", ex=10)


def test_votes_are_agreed_after_an_earlier_test_left_its_wake_flags(left_by_an_earlier_test, celery_worker):
    # Failed once in a clean run (2026-11-22): the votes, cast while such a flag stood, woke
    # nobody and waited 30 s. The worker fixture starts without them, as it starts on an empty queue.
    assert not gossip_loop_running()
    vote_and_wait_until_agreed([f"after {number}".encode() for number in range(5)], timeout=15.0)
