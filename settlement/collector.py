"""Pausing Python's cyclic garbage collector around bulk work (a batch of payments).

A batch of a thousand payments allocates a few hundred thousand small containers (entries,
their bodies, signatures, rows) that reference counting frees as soon as they are done with; very
few form cycles. Yet every 700 allocations the collector walks the young objects, and the
batch's survivors, promoted on, bring on full collections that walk every object the process
holds (Django's ~200,000 at start-up): measured on the intra-bank batch, 60-70 µs of CPU per
payment, a fifth of the paying process's time, collecting nothing.

Paused while the batch runs, the collector does nothing it needed to: garbage without cycles is
freed by reference counts either way, and what the batch leaves behind is walked once, by the
first young collection after the pause. The pause is process-wide (the collector has no other
switch), so it is counted: nested or concurrent pauses (two threads paying at once) end when the
last one does, and a collector someone else had switched off is left off.

Pauses that overlap without a gap (batches arriving back to back on several threads) would keep
the collector off for as long as the load lasts, and any cycle made meanwhile (a request's
exception and its traceback, say) would stay in memory. So a pause that begins when the
collector has been off for longer than ``LONGEST_PAUSE_SECONDS`` collects once first: about a
full walk a second at most, a few per cent of a core, instead of none for hours.
"""

from __future__ import annotations

import gc
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager

LONGEST_PAUSE_SECONDS = 1.0

_lock = threading.Lock()
_pauses = 0
_disabled_here = False
_off_since = 0.0


@contextmanager
def cyclic_gc_paused() -> Iterator[None]:
    """Run the block with the cyclic collector switched off; reference counting goes on."""
    global _pauses, _disabled_here, _off_since
    overdue = False
    with _lock:
        if _pauses == 0 and gc.isenabled():
            gc.disable()
            _disabled_here = True
            _off_since = time.monotonic()
        elif _disabled_here and time.monotonic() - _off_since > LONGEST_PAUSE_SECONDS:
            overdue = True
            _off_since = time.monotonic()
        _pauses += 1
    if overdue:
        # The pauses have overlapped this long: what cycles they left, once. Outside the lock, so
        # other threads entering or leaving a pause do not wait for the walk (and a finalizer
        # that starts a batch cannot deadlock on it).
        gc.collect()
    try:
        yield
    finally:
        with _lock:
            _pauses -= 1
            if _pauses == 0 and _disabled_here:
                _disabled_here = False
                gc.enable()
