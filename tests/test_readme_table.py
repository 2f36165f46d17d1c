"""benchmarks/readme_table.py builds the README's speed table from the
committed benchmark results."""

import importlib.util
import json
from pathlib import Path

import pytest

_BENCH = Path(__file__).resolve().parents[1] / "benchmarks"


def _module():
    spec = importlib.util.spec_from_file_location("readme_table",
                                                  _BENCH / "readme_table.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_table_from_the_committed_results():
    runs = [json.loads((_BENCH / "results" / f"{name}.json").read_text())
            for name in ("bench_suite", "bench_suite_rerun")]
    table = _module().table(*runs).splitlines()
    assert table[0].startswith("| config | dtype | batch | ours s |")
    c3 = [line for line in table if "| float64 | 1024 |" in line]
    assert len(c3) == 2  # c1 and c3: every float64 cell of both is shown
    first, second = runs[0]["results"]["c3"], runs[1]["results"]["c3"]
    ratio = [r["sklearn_over_ours"] for run in (first, second) for r in run
             if r["dtype"] == "float64" and r["batch_size"] == 1024]
    assert f"| {ratio[0]:.2f}x / {ratio[1]:.2f}x |" in c3[1]


def test_needs_two_files():
    with pytest.raises(SystemExit, match="usage"):
        _module().main(["one.json"])
