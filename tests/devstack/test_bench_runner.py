"""`make bench` runs every module `bench.__main__.benchmark_names` lists as a benchmark: each must
be one (a module-level ``main`` called under ``if __name__ == "__main__"``), and the helpers that
are not (the profiled-node wrapper) must not be listed, or `make bench` fails on them."""

from __future__ import annotations

import ast
from pathlib import Path

from bench.__main__ import FIRST, NOT_BENCHMARKS, benchmark_names

BENCH = Path(__file__).resolve().parents[2] / "bench"


def _runs_main(path: Path) -> bool:
    tree = ast.parse(path.read_text())
    defines_main = any(isinstance(node, ast.FunctionDef) and node.name == "main" for node in tree.body)
    guarded = any(
        isinstance(node, ast.If) and "__main__" in ast.unparse(node.test) and "main(" in ast.unparse(node)
        for node in tree.body
    )
    return defines_main and guarded


def test_every_listed_benchmark_is_a_runnable_benchmark_and_the_ceilings_come_first():
    names = benchmark_names()
    assert names[: len(FIRST)] == FIRST
    assert "profiled_node" not in names
    for name in names:
        assert _runs_main(BENCH / f"{name}.py"), f"bench/{name}.py is listed but has no main to run"


def test_every_module_left_out_is_a_helper_not_a_benchmark():
    listed = set(benchmark_names())
    for path in BENCH.glob("*.py"):
        assert (path.stem in listed) != (path.stem in NOT_BENCHMARKS), path.name
