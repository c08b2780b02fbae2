"""Small server-rendered SVG charts: numbers people would rather see than read."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from settlement.models import HealthSample

WIDTH = 600
HEIGHT = 120


@dataclass(frozen=True)
class LatencyChart:
    width: int
    height: int
    ethereum: str
    database: str
    max_ms: float
    outages: int


def _points(values: Sequence[float | None], top: float) -> str:
    if len(values) < 2:
        return ""
    step = WIDTH / (len(values) - 1)
    return " ".join(
        f"{index * step:.1f},{HEIGHT - (value / top) * (HEIGHT - 8) - 4:.1f}"
        for index, value in enumerate(values)
        if value is not None
    )


def latency_chart(samples: Sequence[HealthSample]) -> LatencyChart:
    ethereum = [sample.ethereum_latency_ms for sample in samples]
    database = [sample.database_latency_ms for sample in samples]
    top = max([value for value in [*ethereum, *database] if value is not None] or [1.0]) or 1.0
    outages = sum(
        1
        for sample in samples
        if not (sample.database_up and sample.redis_up and sample.worker_up and sample.ethereum_up)
    )
    return LatencyChart(WIDTH, HEIGHT, _points(ethereum, top), _points(database, top), round(top, 1), outages)
