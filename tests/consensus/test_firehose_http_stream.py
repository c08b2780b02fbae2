"""GET /api/firehose on a real daphne: every stored block from the resume height, then live
ones as the shell stores them, heartbeats while idle; a response ends after its byte budget
with the height to resume from; a client cut off anywhere and resumed from its last
next_height gets every block once, no gap, no duplicate."""

from __future__ import annotations

import time

from consensus_shell_support import dispatched, two_validators
from firehose_support import (
    RESPONSE_BUDGET,
    StreamReader,
    check_block_record,
    firehose_web,
    follow_blocks,
    store_blocks,
)
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from consensus.models import Block
from settlement.models import ApiToken

__all__ = ["dispatched", "firehose_web", "two_validators"]


def _token(make_user, role="auditor"):
    _, token = ApiToken.issue(user=make_user(f"integration-{role}", role), name="firehose", role=role)
    return token


def test_from_zero_all_stored_blocks_then_live_ones(firehose_web, two_validators, dispatched, make_user):
    token = _token(make_user)
    stored = store_blocks(two_validators, dispatched, 3)
    reads: list[int] = []
    records = follow_blocks(firehose_web.url, token, 0, len(stored), reads=reads)

    # Caught up: the stream waits with heartbeats, then carries the next block as it is stored.
    reader = StreamReader(firehose_web.url, token, len(stored))
    try:
        heartbeat = reader.next()
        assert heartbeat["type"] == "heartbeat"
        assert heartbeat["next_height"] == len(stored)
        new = store_blocks(two_validators, dispatched, 1)
        message = reader.next()
        while message["type"] == "heartbeat":
            message = reader.next()
        records.append(message)
    finally:
        reader.close()

    assert [record["height"] for record in records] == stored + new[:1]
    for record in records:
        check_block_record(record)
    # Responses ended after their byte budget (the client resumed from each end record): one
    # response carries at most the budget plus the block that crossed it.
    largest = max(len(str(record)) for record in records)
    assert len(reads) > 1
    assert all(size <= RESPONSE_BUDGET + 2 * largest for size in reads)


def test_resuming_from_any_cut_gives_every_block_once(firehose_web, two_validators, dispatched, make_user):
    token = _token(make_user)
    chain = len(store_blocks(two_validators, dispatched, 5))
    whole = follow_blocks(firehose_web.url, token, 0, chain)
    assert (
        [record["height"] for record in whole]
        == list(range(chain))
        == sorted(Block.objects.values_list("height", flat=True))
    )

    @settings(
        max_examples=8,
        deadline=None,
        derandomize=True,
        suppress_health_check=[HealthCheck.function_scoped_fixture],
    )
    @given(cuts=st.lists(st.integers(1, 3), min_size=1, max_size=5))
    def cut_and_resume(cuts):
        # Read a few blocks, hang up, resume from the last next_height; again and again.
        records = []
        position = 0
        for take in cuts:
            if position >= chain:
                break
            part = follow_blocks(firehose_web.url, token, position, min(take, chain - position))
            records.extend(part)
            position = part[-1]["next_height"]
        if position < chain:
            records.extend(follow_blocks(firehose_web.url, token, position, chain - position))
        assert records == whole

    cut_and_resume()


def test_a_client_that_hangs_up_leaves_no_subscription_behind(
    firehose_web, two_validators, dispatched, make_user
):
    from django.conf import settings as django_settings

    from settlement import health

    token = _token(make_user)
    chain = len(store_blocks(two_validators, dispatched, 1))
    group = f"{django_settings.CHANNEL_LAYERS['default']['CONFIG']['prefix']}:group:blocks"
    client = health.redis_client()
    before = client.zcard(group)  # other tests' consumers may have left members in this Redis
    readers = [StreamReader(firehose_web.url, token, chain) for _ in range(3)]
    for reader in readers:
        assert reader.next()["type"] == "heartbeat"  # each is waiting, subscribed
    assert client.zcard(group) == before + 3
    for reader in readers:
        reader.close()
    deadline = time.monotonic() + 10
    while client.zcard(group) > before and time.monotonic() < deadline:
        time.sleep(0.1)
    assert client.zcard(group) == before
