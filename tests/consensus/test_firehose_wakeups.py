"""The HTTP stream's wake-up: storing a block sets the event of every open stream (through the
channel layer, after commit), so a live block does not wait for the next heartbeat."""

from __future__ import annotations

import asyncio

from asgiref.sync import async_to_sync, sync_to_async
from consensus_shell_support import dispatched, two_validators
from firehose_support import store_blocks

from consensus.firehose import block_wakeups

__all__ = ["dispatched", "two_validators"]


def test_storing_a_block_wakes_every_open_stream(two_validators, dispatched):
    async def scenario():
        async with block_wakeups() as first, block_wakeups() as second:
            assert not first.is_set()
            assert not second.is_set()
            await sync_to_async(store_blocks)(two_validators, dispatched, 1)
            await asyncio.wait_for(asyncio.gather(first.wait(), second.wait()), timeout=10)

    async_to_sync(scenario)()


def test_nothing_stored_wakes_nobody(two_validators):
    async def scenario():
        async with block_wakeups() as wake:
            await asyncio.sleep(1.0)
            return wake.is_set()

    assert async_to_sync(scenario)() is False
