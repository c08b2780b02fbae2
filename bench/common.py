"""What every benchmark shares: timing, percentiles, an aligned table, JSON under bench/results/.

A benchmark measures callables with :func:`measure`, prints :func:`print_table` and saves
with :func:`write_results`; `make bench` runs them all.
"""

from __future__ import annotations

import datetime
import json
import os
import platform
import statistics
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

RESULTS_DIR = Path(__file__).resolve().parent / "results"

# A batch of calls is timed as one sample, so the clock's own cost (~0.1 us for perf_counter,
# ~1 us for process_time here) stays negligible next to sub-microsecond operations.
_TARGET_BATCH_SECONDS = 0.002

WALL_CLOCK = time.perf_counter
"""Elapsed time: for benchmarks that wait on other processes (nodes, workers, anvil)."""

CPU_CLOCK = time.process_time
"""CPU time of this process: for single-core, in-process benchmarks. On a machine shared with
other work, the other processes then slow the figures far less than they slow wall time."""


@dataclass(frozen=True)
class Measurement:
    """One measured operation. Latencies are per call, from batches of ``batch`` calls."""

    name: str
    operations: int
    seconds: float
    batch: int
    p50_us: float
    p99_us: float
    best_us: float
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def ops_per_second(self) -> float:
        return self.operations / self.seconds if self.seconds else 0.0

    def as_dict(self) -> dict[str, Any]:
        return {**asdict(self), "ops_per_second": self.ops_per_second}


def _calibrate(fn: Callable[[], object], clock: Callable[[], float]) -> int:
    batch = 1
    while True:
        start = clock()
        for _ in range(batch):
            fn()
        elapsed = clock() - start
        if elapsed >= _TARGET_BATCH_SECONDS or batch >= 1 << 20:
            return batch
        batch *= 2 if elapsed * 4 >= _TARGET_BATCH_SECONDS else 8


def measure(
    name: str,
    fn: Callable[[], object],
    *,
    seconds: float = 1.0,
    max_iterations: int | None = None,
    min_iterations: int = 3,
    batch: int | None = None,
    extra: dict[str, Any] | None = None,
    clock: Callable[[], float] = WALL_CLOCK,
) -> Measurement:
    """Call ``fn`` for about ``seconds`` of wall time (or ``max_iterations`` calls).

    ``batch`` calls make one timed sample; by default, as many as take ~2 ms. ``clock`` times
    the samples: :data:`WALL_CLOCK` or :data:`CPU_CLOCK`.
    """
    batch = batch or _calibrate(fn, clock)
    samples: list[float] = []
    operations = 0
    deadline = time.perf_counter() + seconds
    while True:
        start = clock()
        for _ in range(batch):
            fn()
        samples.append((clock() - start) / batch)
        operations += batch
        if max_iterations is not None and operations >= max_iterations:
            break
        if len(samples) >= min_iterations and time.perf_counter() >= deadline:
            break
    total = sum(sample * batch for sample in samples)
    return Measurement(
        name=name,
        operations=operations,
        seconds=total,
        batch=batch,
        p50_us=statistics.median(samples) * 1e6,
        p99_us=_percentile(samples, 0.99) * 1e6,
        best_us=min(samples) * 1e6,
        extra={"clock": "cpu" if clock is CPU_CLOCK else "wall", **(extra or {})},
    )


def _percentile(samples: Sequence[float], fraction: float) -> float:
    ordered = sorted(samples)
    return ordered[min(len(ordered) - 1, round(fraction * (len(ordered) - 1)))]


def format_number(value: float) -> str:
    """Readable magnitudes: 1,234,567 / 12,345 / 123.4 / 1.234."""
    if value >= 1000:
        return f"{value:,.0f}"
    if value >= 100:
        return f"{value:.1f}"
    return f"{value:.3g}"


def print_table(title: str, rows: Sequence[dict[str, Any]], columns: Sequence[str]) -> None:
    """An aligned plain-text table; numbers right-aligned, text left-aligned."""
    cells = [[_cell(row.get(column, "")) for column in columns] for row in rows]
    widths = [max([len(name), *(len(line[index]) for line in cells)]) for index, name in enumerate(columns)]
    # A column is numeric if every filled cell is a number; blanks do not make it text.
    numeric = [
        all(isinstance(row.get(name), (int, float)) for row in rows if row.get(name, "") != "")
        for name in columns
    ]

    def line(values: Sequence[str]) -> str:
        return "  ".join(
            value.rjust(width) if is_number else value.ljust(width)
            for value, width, is_number in zip(values, widths, numeric, strict=True)
        ).rstrip()

    print(f"\n{title}")
    print(line(list(columns)))
    print(line(["-" * width for width in widths]))
    for values in cells:
        print(line(values))


def _cell(value: Any) -> str:
    if isinstance(value, bool):
        return str(value)
    if isinstance(value, (int, float)):
        return format_number(float(value))
    return str(value)


def machine_info() -> dict[str, Any]:
    return {
        "cpu_count": os.cpu_count(),
        "cpu_model": _cpu_model(),
        "python": sys.version.split()[0],
        "implementation": platform.python_implementation(),
        "platform": platform.platform(),
        "timestamp": datetime.datetime.now(datetime.UTC).isoformat(timespec="seconds"),
    }


def _cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


def write_results(name: str, results: dict[str, Any], directory: Path = RESULTS_DIR) -> Path:
    """Write ``bench/results/<name>.json``: the results plus the machine they came from."""
    directory.mkdir(parents=True, exist_ok=True)
    path = directory / f"{name}.json"
    document = {"benchmark": name, "machine": machine_info(), "results": results}
    path.write_text(json.dumps(document, indent=2, sort_keys=True, default=_json_default) + "\n")
    return path


def _json_default(value: Any) -> Any:
    if isinstance(value, Measurement):
        return value.as_dict()
    if isinstance(value, bytes):
        return value.hex()
    raise TypeError(f"{type(value).__name__} is not JSON serialisable")
