"""The firehose's pure rules: which resume heights are accepted, and that the flow window
never lets more than its limit (plus one message) stay unacknowledged."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from consensus.protocol.firehose import (
    BAD_ACK,
    BAD_HEIGHT,
    HEIGHT_NOT_REACHED,
    FirehoseRequestError,
    FlowWindow,
    resume_height,
)


@given(next_height=st.integers(0, 10**6), data=st.data())
def test_every_height_up_to_the_next_one_is_accepted(next_height, data):
    height = data.draw(st.integers(0, next_height))
    assert resume_height([str(height)], next_height=next_height) == height


def test_no_height_means_from_the_first_block():
    assert resume_height([], next_height=7) == 0


@given(next_height=st.integers(0, 10**6), beyond=st.integers(1, 10**30))
def test_a_height_the_chain_has_not_reached_is_refused(next_height, beyond):
    with pytest.raises(FirehoseRequestError) as refused:
        resume_height([str(next_height + beyond)], next_height=next_height)
    assert refused.value.code in (HEIGHT_NOT_REACHED, BAD_HEIGHT)  # over 20 digits: not a height at all
    assert str(next_height) in refused.value.message or refused.value.code == BAD_HEIGHT


@pytest.mark.parametrize("raw", ["-1", "", " 1", "1 ", "+1", "1.0", "1e3", "0x10", "\u0663", "abc", "1" * 21])
def test_anything_but_a_whole_number_is_a_bad_height(raw):
    with pytest.raises(FirehoseRequestError) as refused:
        resume_height([raw], next_height=10**9)
    assert refused.value.code == BAD_HEIGHT


def test_two_resume_heights_are_refused():
    with pytest.raises(FirehoseRequestError) as refused:
        resume_height(["1", "2"], next_height=5)
    assert refused.value.code == BAD_HEIGHT


@given(
    limit=st.integers(1, 10_000),
    steps=st.lists(st.tuples(st.booleans(), st.integers(1, 5_000)), max_size=200),
)
def test_the_window_bounds_what_is_unacknowledged(limit, steps):
    window = FlowWindow(limit=limit)
    next_height = 0
    acknowledged = 0
    largest = 0
    for send, size in steps:
        if send:
            if not window.has_room():
                continue
            next_height += 1
            window.sent(next_height, size)
            largest = max(largest, size)
        else:
            acknowledged = min(next_height, acknowledged + 1)
            window.acknowledge(acknowledged)
        # Never more than the limit plus the one message that was let through at the edge.
        assert window.unacknowledged < limit + largest
    window.acknowledge(next_height)
    assert window.unacknowledged == 0
    assert window.has_room()


def test_acknowledging_more_than_was_sent_is_refused():
    window = FlowWindow(limit=100)
    window.sent(3, 10)
    for bad in (4, -1, "3", 3.0, True, None):
        with pytest.raises(FirehoseRequestError) as refused:
            window.acknowledge(bad)
        assert refused.value.code == BAD_ACK
    assert window.unacknowledged == 10
