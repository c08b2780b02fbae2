"""Run a node's daphne with every thread under cProfile; each thread's profile is written on exit.

For ``bench.channel_updates --profile DIR``: node B runs as
``python -m bench.profiled_node OUT.prof <daphne arguments>``. Django runs synchronous views on
executor threads, so one profiler per thread is started as each thread begins (through
``threading.setprofile``), and the main thread (the event loop) has its own. Each counts its
thread's CPU time (``time.thread_time``): on a shared machine, wall time would charge a
function for the time its thread waited for a core or for the GIL. Daphne stops on
SIGTERM (Twisted's handler); each thread's profile is then written to ``OUT.prof.<n>``.
"""

from __future__ import annotations

import cProfile
import sys
import threading
import time
from typing import Any

_profiles: list[cProfile.Profile] = []
_lock = threading.Lock()


def _profile_this_thread(frame: Any, event: str, arg: Any) -> None:
    # Called once, at the new thread's first event: enabling the profiler replaces this hook.
    profile = cProfile.Profile(time.thread_time)
    with _lock:
        _profiles.append(profile)
    profile.enable()


def main() -> None:
    output, arguments = sys.argv[1], sys.argv[2:]
    from daphne.cli import CommandLineInterface

    threading.setprofile(_profile_this_thread)
    main_profile = cProfile.Profile(time.thread_time)
    _profiles.append(main_profile)
    main_profile.enable()
    try:
        CommandLineInterface().run(arguments)
    finally:
        main_profile.disable()
        with _lock:
            profiles = list(_profiles)
        # One file per thread (OUT.prof.0, OUT.prof.1, ...): merging here would keep the node
        # from stopping in time on a loaded machine; bench.channel_updates merges them.
        for index, profile in enumerate(profiles):
            try:
                profile.dump_stats(f"{output}.{index}")
            except TypeError:  # a thread that never ran a profiled call has no stats
                continue


if __name__ == "__main__":
    main()
