"""canonical() against rfc8785.dumps on the objects every node encodes all day.

``canonical`` is on the path of every signed ledger entry, gossip event and node request. The
cases are a ledger entry as ``Entry.to_json()`` builds it, a gossip event body as
``event_body()`` builds it (8 block signatures, one accusation), and the entry again with a memo
beyond the BMP (an emoji), and with an emoji key (the UTF-16 re-sorting path). "before" is the previous
implementation, the domain check and then rfc8785.dumps (still the reference path for values
the fast path hands over). The bytes are checked equal before timing. Run:
``python -m bench.canonical [--seconds 1.0]``.
"""

from __future__ import annotations

import argparse
import functools
from typing import Any

import rfc8785

from bench.common import CPU_CLOCK, measure, print_table, write_results
from settlement.protocol import encoding
from settlement.protocol.encoding import canonical

LEDGER_ENTRY: dict[str, Any] = {
    "ledger": "ubi:bank-a:alice",
    "height": 7,
    "prev": "9f" * 32,
    "kind": "payment",
    "body": {"amount": "125000", "asset": "EUR", "to": "bob*bank-b.test"},
    "time": 1763700000123,
}

GOSSIP_EVENT: dict[str, Any] = {
    "creator": "d75a980182b10ab7d54bfed3c964073a0ee172f3daa62325af021a68f707511a",
    "epoch": 3,
    "index": 48213,
    "self_parent": "1e" * 32,
    "other_parent": "2f" * 32,
    "observations": {"count": 12, "digest": "3a" * 32},
    "block_signatures": [[10_000 + height, f"{height:02x}" * 32, "5c" * 64] for height in range(8)],
    "accusations": [
        {
            "kind": "fork",
            "offender": "79b5562e8fe654f94078b112e8a98ba7901f853ae695bed7e0e3910bad049664",
            "evidence": {"first": "6d" * 32, "second": "7e" * 32, "index": 48190},
        }
    ],
}

ENTRY_WITH_EMOJI: dict[str, Any] = {
    **LEDGER_ENTRY,
    "body": {**LEDGER_ENTRY["body"], "memo": "Café au lait \U0001f375 für Zoë"},
}

# Not a shape Parsec produces (our keys are ASCII field names): the cost of the UTF-16 re-sort.
ENTRY_WITH_EMOJI_KEY: dict[str, Any] = {**LEDGER_ENTRY, "body": {**LEDGER_ENTRY["body"], "\U0001f375": "tea"}}

CASES = [
    ("ledger entry", LEDGER_ENTRY),
    ("gossip event", GOSSIP_EVENT),
    ("ledger entry, emoji memo", ENTRY_WITH_EMOJI),
    ("ledger entry, emoji key", ENTRY_WITH_EMOJI_KEY),
]


def run(seconds: float) -> list[dict[str, object]]:
    rows: list[dict[str, object]] = []
    for label, value in CASES:
        expected = rfc8785.dumps(value)
        if canonical(value) != expected or encoding._reference(value) != expected:
            raise SystemExit(
                f"canonical() and rfc8785 disagree on the {label}: the comparison is meaningless"
            )
        ours = measure(
            f"canonical {label}", functools.partial(canonical, value), seconds=seconds, clock=CPU_CLOCK
        )
        theirs = measure(
            f"rfc8785.dumps {label}",
            functools.partial(rfc8785.dumps, value),
            seconds=seconds,
            clock=CPU_CLOCK,
        )
        before = measure(
            f"before {label}",
            functools.partial(encoding._reference, value),
            seconds=seconds,
            clock=CPU_CLOCK,
        )
        # CPU time, best batch (as timeit advises): other processes share this machine.
        rows.append(
            {
                "case": label,
                "bytes": len(expected),
                "canonical us": ours.best_us,
                "rfc8785 us": theirs.best_us,
                "before us": before.best_us,
                "canonical ops/s": 1e6 / ours.best_us,
                "rfc8785 ops/s": 1e6 / theirs.best_us,
                "x rfc8785": theirs.best_us / ours.best_us,
                "x before": before.best_us / ours.best_us,
                "canonical p50 us": ours.p50_us,
                "rfc8785 p50 us": theirs.p50_us,
                "before p50 us": before.p50_us,
            }
        )
    return rows


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description="canonical() against rfc8785.dumps")
    parser.add_argument("--seconds", type=float, default=1.0, help="seconds per measured operation")
    arguments = parser.parse_args(argv)
    rows = run(arguments.seconds)
    print_table(
        "RFC 8785 canonical JSON: canonical() against rfc8785.dumps (CPU time, best batch)",
        rows,
        [
            "case",
            "bytes",
            "canonical us",
            "rfc8785 us",
            "before us",
            "canonical ops/s",
            "x rfc8785",
            "x before",
        ],
    )
    path = write_results("canonical", {"seconds": arguments.seconds, "rows": rows})
    print(f"written to {path}")


if __name__ == "__main__":
    main()
