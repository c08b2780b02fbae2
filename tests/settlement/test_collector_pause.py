"""``settlement.collector.cyclic_gc_paused``: the cyclic collector is off inside, back on after,
whatever happens inside; nested and concurrent pauses end with the last one; a collector someone
else switched off stays off; pauses that overlap for long still collect now and then."""

from __future__ import annotations

import gc
import threading
import weakref
from collections.abc import Iterator

import pytest

from settlement import collector
from settlement.collector import cyclic_gc_paused


@pytest.fixture(autouse=True)
def _collector_enabled() -> Iterator[None]:
    was = gc.isenabled()
    gc.enable()
    yield
    if was:
        gc.enable()
    else:
        gc.disable()


def test_the_collector_is_off_inside_and_on_after():
    with cyclic_gc_paused():
        assert not gc.isenabled()
    assert gc.isenabled()


def test_an_exception_inside_still_switches_it_back_on():
    with pytest.raises(ValueError, match="refused"), cyclic_gc_paused():
        raise ValueError("refused")
    assert gc.isenabled()


def test_nested_pauses_end_with_the_outer_one():
    with cyclic_gc_paused():
        with cyclic_gc_paused():
            assert not gc.isenabled()
        assert not gc.isenabled()
    assert gc.isenabled()


def test_as_a_decorator_each_call_pauses():
    seen = []

    @cyclic_gc_paused()
    def work() -> None:
        seen.append(gc.isenabled())

    work()
    work()
    assert seen == [False, False]
    assert gc.isenabled()


def test_a_collector_switched_off_elsewhere_stays_off():
    gc.disable()
    with cyclic_gc_paused():
        assert not gc.isenabled()
    assert not gc.isenabled()


def test_concurrent_pauses_end_when_the_last_thread_leaves():
    """Thread one leaves while thread two is still inside: the collector stays off for two."""
    inside = threading.Barrier(2)
    first_left = threading.Event()
    observed: dict[str, bool] = {}

    def first() -> None:
        with cyclic_gc_paused():
            inside.wait(timeout=10)
        first_left.set()

    def second() -> None:
        with cyclic_gc_paused():
            inside.wait(timeout=10)
            first_left.wait(timeout=10)
            observed["after the first left"] = gc.isenabled()

    threads = [threading.Thread(target=first), threading.Thread(target=second)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=20)
    assert observed == {"after the first left": False}
    assert gc.isenabled()


class _Node:
    def __init__(self) -> None:
        self.other: _Node | None = None


def _a_cycle() -> weakref.ref[_Node]:
    first, second = _Node(), _Node()
    first.other, second.other = second, first
    return weakref.ref(first)


def test_pauses_that_overlap_for_long_still_collect_the_cycles_made_meanwhile(monkeypatch):
    """Back-to-back batches on two threads never leave a gap: the collector must not stay off
    for as long as that lasts."""
    monkeypatch.setattr(collector, "LONGEST_PAUSE_SECONDS", 0.05)
    with cyclic_gc_paused():
        cycle = _a_cycle()
        with cyclic_gc_paused():
            pass  # begins within the bound: nothing collected yet
        assert cycle() is not None
        threading.Event().wait(0.1)
        with cyclic_gc_paused():
            assert cycle() is None, "a pause begun after the bound collected the cycle"
            assert not gc.isenabled()
        threading.Event().wait(0.1)
        later = _a_cycle()
        with cyclic_gc_paused():
            assert later() is None, "the bound counts again from the last collection"
    assert gc.isenabled()
