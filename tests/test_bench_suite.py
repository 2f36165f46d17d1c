"""benchmarks/bench_suite.py, the issue 4 benchmark, runs end to end on tiny
data (so it does not rot between changes), warms ours up at every batch
size, and spreads each cell's repetitions over the run."""

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
    warmed = []  # fits before the first repetition: the warm-ups
    timed = bench.time_estimator

    def logged(est, X, y, epochs, blas_threads=None):
        if not order:
            warmed.append((type(est).__name__, X.dtype.name, est.batch_size))
        return timed(est, X, y, epochs, blas_threads)

    monkeypatch.setattr(bench, "time_estimator", logged)
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
    # ours is warmed up at every batch size (each may run another kernel),
    # scikit-learn once per (config, dtype)
    assert warmed == [
        fit
        for ours, theirs in (("MiniBatchMLPClassifier", "MLPClassifier"),
                             ("MiniBatchMLPRegressor", "MLPRegressor"))
        for fit in [(ours, "float32", 16), (ours, "float32", 64),
                    (theirs, "float32", 16)]]
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


def test_memory_rows_split_the_numba_floor():
    """The peak RSS measurement in its fresh processes, on 1,100 rows: the
    Numba runtime floor comes with its file-backed share and the cost of
    importing Numba's LLVM binding alone, and the target line names both."""
    bench = load_benchmark("bench_suite")
    memory = bench.measure_memory(1100, 1, ["float32"], False, lambda msg: None)
    (row,) = memory["rows"]
    floor = row["numba_runtime_floor_mib"]
    assert 0 < row["numba_floor_file_mib"] <= floor
    # importing numba loads its LLVM binding; RSS readings move by pages
    assert 0 < row["llvmlite_import_mib"] <= row["numba_import_mib"] + 1
    assert row["numba_import_mib"] <= floor + 1
    (line,) = [t for t in bench.evaluate_targets({}, None, memory, [1])
               if "peak RSS" in t["target"]]
    if line["status"] == "not met":
        assert "file-backed pages of shared libraries" in line["detail"]
        assert "import llvmlite.binding" in line["detail"]
