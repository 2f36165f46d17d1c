"""benchmarks/readme_table.py builds the README's speed table from the
committed benchmark results."""

import json

import pytest
from _benchmarks import BENCHMARKS, load_benchmark


def _module():
    return load_benchmark("readme_table")


def test_table_from_the_committed_results():
    runs = [json.loads((BENCHMARKS / "results" / f"{name}.json").read_text())
            for name in ("bench_suite", "bench_suite_rerun")]
    table = _module().table(*runs).splitlines()
    assert table[0].startswith("| config | dtype | batch | ours s |")
    rows, config = {}, None
    for line in table[2:]:
        cells = [c.strip() for c in line.strip("|").split("|")]
        config = cells[0].split(":")[0] or config  # blank: the row above's
        rows[(config, cells[1], int(cells[2]))] = cells
    # every float64 cell of c1 and c3 is shown
    for config in ("c1", "c3"):
        for batch in (16, 64, 256, 1024):
            assert (config, "float64", batch) in rows
    ratio = [r["sklearn_over_ours"] for run in runs for r in run["results"]["c3"]
             if r["dtype"] == "float64" and r["batch_size"] == 1024]
    assert rows[("c3", "float64", 1024)][4] == f"{ratio[0]:.2f}x / {ratio[1]:.2f}x"


def test_needs_two_files():
    with pytest.raises(SystemExit, match="usage"):
        _module().main(["one.json"])


def test_closest_torch_cell_is_judged_against_torchs_faster_setting():
    """The torch targets compare with torch's faster thread setting, so the
    cell shown as closest to missing one is the one whose faster torch came
    closest -- here c2 at batch 1024 (torch x2 1.1x), not c3 (1.5x), even
    though torch x1 makes c2 look far ahead."""
    def row(dtype, batch, sk, t1, t2):
        return {"dtype": dtype, "batch_size": batch, "sklearn_over_ours": sk,
                "torch_1_over_ours": t1, "torch_2_over_ours": t2}

    # c3 is the closest to the scikit-learn target, c2 to the torch one
    run = {"results": {"c2": [row("float32", 1024, 9.0, 9.0, 1.1)],
                       "c3": [row("float32", 1024, 2.0, 1.6, 1.5)]}}
    runs = [_module().cells(run)] * 2
    assert ("c2", "float32", 1024) in _module().selected(runs)
