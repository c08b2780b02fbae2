"""`make bench`: run every benchmark in bench/, one process each, in a fixed order.

Each benchmark prints its table and writes bench/results/<name>.json. The machine's ceilings
run first, so the figures that follow can be read against them. Benchmarks that need
PostgreSQL, Redis or anvil find them in the environment `make bench` sets up (devstack).
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
# Modules here that are not benchmarks: the package, this runner, shared helpers, and the
# wrapper bench.channel_updates and bench.ledger_payments run a profiled node through.
NOT_BENCHMARKS = {"__init__", "__main__", "common", "profiled_node"}
FIRST = ["ceilings"]


def benchmark_names() -> list[str]:
    found = sorted(path.stem for path in HERE.glob("*.py") if path.stem not in NOT_BENCHMARKS)
    return [name for name in FIRST if name in found] + [name for name in found if name not in FIRST]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("names", nargs="*", help="only these benchmarks (default: all)")
    arguments = parser.parse_args()
    names = arguments.names or benchmark_names()
    failed = []
    for name in names:
        print(f"\n=== bench/{name}.py ===", flush=True)
        started = time.monotonic()
        command = [sys.executable, "-m", f"bench.{name}"]
        if subprocess.run(command, cwd=HERE.parent, check=False).returncode != 0:
            failed.append(name)
        print(f"({name}: {time.monotonic() - started:.1f} s)", flush=True)
    if failed:
        print(f"\nfailed: {', '.join(failed)}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
