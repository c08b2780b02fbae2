"""Where an intra-bank payment's CPU time goes: the paying process under cProfile, and
PostgreSQL's backend CPU per statement (issue 4's speed goal).

``python -m bench.ledger_payments_profile [--batches 20] [--batch 1000] [--out DIR]`` (under
``python -m devstack exec --``). It makes its own database, opens 200 custodial ledgers as
``bench.ledger_payments`` does, warms up, then runs ``--batches`` batches of
``payment_intrabank_batch`` with:

* cProfile on this thread's CPU clock (``time.thread_time``: on a shared machine wall time would
  charge a function for the time it waited for a core), written to ``DIR/intrabank.prof``;
* the CPU time of this connection's PostgreSQL backend, read from ``/proc/<pid>/schedstat``
  (nanoseconds on a core) before and after every statement Django runs, every COPY, every
  statement bound in binary (``bulk.execute_binary``) and the commit, summed per statement.
  What the backend ran between them is reported as "other".
"""

from __future__ import annotations

import argparse
import cProfile
import os
import pstats
import re
import sys
import time
from collections import defaultdict
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from bench.ledger_payments import PARTIES, _drop, _name, _recreate, _requests, _setup_parties, _urls


class BackendClock:
    """CPU nanoseconds of one PostgreSQL backend process (the server side of a connection)."""

    def __init__(self, pid: int) -> None:
        self.path = f"/proc/{pid}/schedstat"

    def __call__(self) -> int:
        with open(self.path) as handle:
            return int(handle.read().split()[0])


class StatementTally:
    """Backend CPU summed per statement (its first words, numbers and literals blanked)."""

    def __init__(self, clock: BackendClock) -> None:
        self.clock = clock
        self.nanoseconds: dict[str, int] = defaultdict(int)
        self.calls: dict[str, int] = defaultdict(int)
        self._nested: list[int] = []  # per open measurement: what inner measurements counted

    @staticmethod
    def shape(sql: str) -> str:
        text = re.sub(r"\s+", " ", sql).strip()
        text = re.sub(r"'[^']*'|\b\d+\b", "?", text)
        # Django names each savepoint anew ("s<thread>_x<n>"): one line for all of them.
        text = re.sub(r'SAVEPOINT "[^"]*"', "SAVEPOINT ?", text)
        return text[:110]

    def add(self, label: str, nanoseconds: int) -> None:
        self.nanoseconds[label] += nanoseconds
        self.calls[label] += 1

    @contextmanager
    def measuring(self, label: str) -> Iterator[None]:
        """Count the backend's CPU during the block under ``label``, less what measurements
        inside it counted (a COPY's nextval query is its own line)."""
        before = self.clock()
        self._nested.append(0)
        try:
            yield
        finally:
            spent = self.clock() - before
            inner = self._nested.pop()
            self.add(label, spent - inner)
            if self._nested:
                self._nested[-1] += spent

    def wrapper(self, execute: Callable[..., Any], sql: str, params: Any, many: bool, context: Any) -> Any:
        with self.measuring(self.shape(sql)):
            return execute(sql, params, many, context)


class Sections:
    """This thread's CPU time per wrapped function, exclusive of the wrapped functions it calls
    (a stack, like :class:`StatementTally`): no profiler, so each figure is what the code costs
    (plus about a microsecond per call for the two clock reads)."""

    def __init__(self) -> None:
        self.seconds: dict[str, float] = defaultdict(float)
        self.calls: dict[str, int] = defaultdict(int)
        self._nested: list[float] = []
        self._undo: list[tuple[Any, str, Any]] = []

    def wrap(self, owner: Any, name: str, label: str | None = None) -> None:
        original = getattr(owner, name)
        label = label or f"{getattr(owner, '__name__', owner)}.{name}"
        clock, nested, seconds, calls = time.thread_time, self._nested, self.seconds, self.calls

        def measured(*args: Any, **kwargs: Any) -> Any:
            before = clock()
            nested.append(0.0)
            try:
                return original(*args, **kwargs)
            finally:
                spent = clock() - before
                seconds[label] += spent - nested.pop()
                calls[label] += 1
                if nested:
                    nested[-1] += spent

        setattr(owner, name, measured)
        self._undo.append((owner, name, original))

    def unwrap(self) -> None:
        for owner, name, original in reversed(self._undo):
            setattr(owner, name, original)
        self._undo.clear()


def _wrap_sections(sections: Sections) -> None:
    from consensus import services as consensus_services
    from ledgers import services
    from ledgers.protocol import chain, intrabank
    from settlement import bulk

    for name in (
        "_ledger_ids",
        "_lock_ledgers",
        "_assets",
        "_existing_transfers",
        "_load_state",
        "party_signer",
        "minor_units",
        "_fingerprint",
        "_apply",
        "_write",
        "_entry_values",
        "consensus_vote_in_transaction",
    ):
        sections.wrap(services, name)
    sections.wrap(intrabank, "plan_intrabank_payment")
    sections.wrap(intrabank, "check_intrabank_payment")
    sections.wrap(intrabank, "check_entry", "chain.check_entry (rules, encoding)")
    sections.wrap(intrabank, "finish_append", "chain.finish_append (signatures, result)")
    sections.wrap(services.chain_rules, "cosign")
    sections.wrap(chain, "sign_encoded", "Ed25519 sign")
    sections.wrap(chain, "encode_entry", "canonical encoding + SHA-256 of an entry")
    sections.wrap(bulk, "copy_rows", "bulk.copy_rows (COPY)")
    sections.wrap(bulk, "loaded", "bulk.loaded (model objects)")
    sections.wrap(consensus_services, "observation_bytes")
    sections.wrap(consensus_services, "observation_for")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--batches", type=int, default=20)
    parser.add_argument("--batch", type=int, default=1000)
    parser.add_argument("--out", default=None, help="where to write intrabank.prof (default: var/profile)")
    parser.add_argument("--top", type=int, default=45)
    arguments = parser.parse_args(argv)

    os.environ.setdefault("NODE_KEY_PASSPHRASE", "bench-only-passphrase")
    os.environ.setdefault("SECRET_KEY", "bench-only-secret-key")
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "settlement.settings")
    admin, a_url, _ = _urls()
    url = a_url.replace(_name(a_url), _name(a_url) + "_profile")
    os.environ.update(
        {"DATABASE_URL": url, "NODE_NAME": "bench-a", "NODE_DOMAIN": "bench-a.test", "LOG_LEVEL": "WARNING"}
    )
    _recreate(admin, url)
    import random

    import django

    django.setup()
    from django.core.management import call_command
    from django.db import connection, connections, transaction

    from ledgers import services
    from settlement import bulk

    out = Path(arguments.out or Path(__file__).resolve().parent.parent / "var" / "profile")
    out.mkdir(parents=True, exist_ok=True)
    try:
        call_command("migrate", verbosity=0)
        eur, ubis = _setup_parties(PARTIES)
        rng = random.Random(7)
        for warm in range(3):
            services.payment_intrabank_batch(
                requests=_requests(arguments.batch, ubis, eur.uai, rng, f"warm-{warm}")
            )
        with connection.cursor() as cursor:
            cursor.execute("VACUUM ANALYZE")
            cursor.execute("SELECT pg_backend_pid()")
            backend = cursor.fetchone()[0]
        tally = StatementTally(BackendClock(backend))
        batches = [
            _requests(arguments.batch, ubis, eur.uai, rng, f"profile-{number}")
            for number in range(arguments.batches)
        ]

        original_copy_rows = bulk.copy_rows

        def measured_copy_rows(model: Any, values: Any, *, binary: bool = False) -> list[int]:
            # The COPY stream bypasses Django's execute wrappers; the nextval query inside
            # is counted under its own statement too (so COPY's figure is the stream alone).
            with tally.measuring(f"COPY {model._meta.db_table}"):
                return original_copy_rows(model, values, binary=binary)

        original_execute_binary = bulk.execute_binary

        def measured_execute_binary(sql: str, params: Any) -> int:
            # Bound by the server on a cursor of its own, so Django's execute wrappers miss it.
            with tally.measuring(tally.shape(sql)):
                return original_execute_binary(sql, params)

        original_copy_binary = bulk.copy_binary

        def measured_copy_binary(table: str, columns: Any, types: Any, rows: Any) -> None:
            # The votes' binary COPY, on a cursor of its own as well.
            with tally.measuring(f"COPY {table} (binary)"):
                original_copy_binary(table, columns, types, rows)

        bulk.copy_rows = measured_copy_rows
        bulk.execute_binary = measured_execute_binary
        bulk.copy_binary = measured_copy_binary
        profile = cProfile.Profile(time.thread_time)
        cpu_started, wall_started = time.thread_time(), time.perf_counter()
        backend_started = tally.clock()
        with connection.execute_wrapper(tally.wrapper):
            for requests in batches:
                profile.enable()
                # An outer atomic block, so the commit is at its exit and measured on its own.
                with transaction.atomic():
                    services.payment_intrabank_batch(requests=requests)
                    commit_from = tally.clock()
                profile.disable()
                tally.add("COMMIT", tally.clock() - commit_from)
        cpu = time.thread_time() - cpu_started
        wall = time.perf_counter() - wall_started
        backend_total = tally.clock() - backend_started
        bulk.copy_rows = original_copy_rows
        bulk.execute_binary = original_execute_binary
        bulk.copy_binary = original_copy_binary
        payments = arguments.batch * arguments.batches
        stats = pstats.Stats(profile)
        path = out / "intrabank.prof"
        stats.dump_stats(str(path))
        print(
            f"\n{payments} payments in {arguments.batches} batches: {wall:.2f} s wall, "
            f"paying thread {1000 * cpu / payments:.3f} ms CPU per payment, "
            f"PostgreSQL backend {1e-6 * backend_total / payments:.3f} ms CPU per payment "
            f"(load average {os.getloadavg()[0]:.1f})"
        )
        print("\nPostgreSQL backend CPU per payment, by statement (µs):")
        for label, nanoseconds in sorted(tally.nanoseconds.items(), key=lambda item: -item[1]):
            print(f"  {1e-3 * nanoseconds / payments:8.1f}  {tally.calls[label]:5d} calls  {label}")
        other = backend_total - sum(tally.nanoseconds.values())
        print(f"  {1e-3 * other / payments:8.1f}              between statements")
        # Again without the profiler: CPU per payment by section.
        sections = Sections()
        _wrap_sections(sections)
        more = [
            _requests(arguments.batch, ubis, eur.uai, rng, f"sections-{number}")
            for number in range(arguments.batches)
        ]
        cpu_started = time.thread_time()
        for requests in more:
            services.payment_intrabank_batch(requests=requests)
        cpu = time.thread_time() - cpu_started
        sections.unwrap()
        print(
            f"\nPaying thread without the profiler: {1000 * cpu / payments:.3f} ms CPU per payment; by section (µs):"
        )
        for label, seconds in sorted(sections.seconds.items(), key=lambda item: -item[1]):
            print(f"  {1e6 * seconds / payments:8.1f}  {sections.calls[label]:7d} calls  {label}")
        rest = cpu - sum(sections.seconds.values())
        print(
            f"  {1e6 * rest / payments:8.1f}                 payment_intrabank_batch itself (its loop, transfers)"
        )
        print(f"\nPaying thread, top {arguments.top} by own time (profile in {path}):")
        stats.sort_stats("tottime").print_stats(arguments.top)
        stats.sort_stats("cumulative").print_stats(arguments.top)
    finally:
        connections.close_all()
        _drop(admin, url)
    return 0


if __name__ == "__main__":
    sys.exit(main())
