"""A worker that restarts (nothing cached in memory) resumes from the snapshot in PostgreSQL:
the chain continues where it stopped, with no block lost, repeated or forked."""

from __future__ import annotations

from consensus_shell_support import agree_with_peer, dispatched, two_validators

from consensus import services
from consensus.models import Block, ConsensusState

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
