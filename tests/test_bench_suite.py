"""benchmarks/bench_suite.py, the issue 4 benchmark, runs end to end on tiny
data (so it does not rot between changes), and spreads each cell's
repetitions over the run."""

import json

from _benchmarks import load_benchmark


def test_repetitions_take_turns_over_all_cells(tmp_path, monkeypatch, capsys):
    bench = load_benchmark("bench_suite")
    order = []
    repeat = bench.CellTiming.repeat

    def recorded(cell):
        order.append((cell.cfg["kind"], cell.dtype.name, cell.batch_size))
        repeat(cell)

    monkeypatch.setattr(bench.CellTiming, "repeat", recorded)
    # the numpy references' pause and minimum timing only slow the test
    monkeypatch.setattr(bench.time, "sleep", lambda s: None)
    seconds = bench.MatmulReference.seconds_per_step
    monkeypatch.setattr(bench.MatmulReference, "seconds_per_step",
                        lambda self, input_grad, min_time=0.08, threads=1:
                        seconds(self, input_grad, 0.0, threads))
    bench.main(["--configs", "c1", "r1", "--dtypes", "float32", "--batch-sizes",
                "16", "64", "--repeats", "3", "--epochs", "1", "--samples", "200",
                "--no-torch", "--no-startup", "--no-memory",
                "--no-sklearn-1thread", "--out", str(tmp_path)])
    cells = [("classifier", "float32", 16), ("classifier", "float32", 64),
             ("regressor", "float32", 16), ("regressor", "float32", 64)]
    assert order == cells * 3  # round 1 of every cell, then round 2, ...
    out = json.loads((tmp_path / "bench_suite.json").read_text())
    assert out["meta"]["repeats_in_rounds"] is True
    for name in ("c1", "r1"):
        rows = out["results"][name]
        assert [r["batch_size"] for r in rows] == [16, 64]
        for r in rows:
            times = r["ours"]["seconds_per_epoch"]
            assert len(times) == 3 and len(r["sklearn"]["seconds_per_epoch"]) == 3
            assert r["ours"]["median"] == sorted(times)[1]
            assert len(r["loadavg_per_repeat"]) == 3
    md = (tmp_path / "bench_suite.md").read_text()
    assert "median of 3 fits in rotation, each repetition a round over all cells" in md
    printed = capsys.readouterr().out
    assert printed.index("c1: classifier") < printed.index("r1: regressor")
