"""benchmarks/bench_step.py, the developer's step timer, runs on tiny shapes
(so it does not rot between kernel changes)."""

import subprocess

import pytest
from _benchmarks import BENCHMARKS, load_benchmark


def _module():
    return load_benchmark("bench_step")


@pytest.mark.parametrize("units, batch, kernel", [
    ("6,4,3", 8, "train_steps"),               # a small step: one part
    ("20,16,2", 64, "train_steps_units"),      # cut by hidden units
])
def test_times_both_thread_counts(units, batch, kernel, capsys):
    bench = _module()
    times = bench.main(["--units", units, "--batch", str(batch), "--samples", "256",
                        "--repeats", "2", "--steps", "3"])
    assert sorted(times) == [1, 2]
    assert all(len(v) == 2 and min(v) > 0 for v in times.values())
    out = capsys.readouterr().out
    assert f"kernel {kernel}" in out
    assert "two-thread speedup" in out


def _in_git_checkout():
    try:
        subprocess.run(["git", "-C", str(BENCHMARKS), "rev-parse", "HEAD"],
                       check=True, capture_output=True)
    except (OSError, subprocess.CalledProcessError):
        return False
    return True


@pytest.mark.skipif(not _in_git_checkout(), reason="needs a git checkout")
def test_compares_a_revision_with_the_working_tree(capsys):
    """--against HEAD: the committed package is exported and imported under
    its own name, and both versions' calls are timed in turn."""
    bench = _module()
    times = bench.main(["--units", "6,4,3", "--batch", "8", "--samples", "256",
                        "--repeats", "2", "--steps", "3", "--against", "HEAD",
                        "--threads", "1"])
    assert len(times) == 2
    assert all(len(v) == 2 and min(v) > 0 for v in times.values())
    out = capsys.readouterr().out
    assert "working tree: " in out and "HEAD (" in out
    assert "per pair of calls: median" in out


@pytest.mark.skipif(not _in_git_checkout(), reason="needs a git checkout")
def test_against_an_unknown_revision_says_so():
    with pytest.raises(SystemExit, match="is not a commit"):
        _module().export_revision("no-such-revision-here")


@pytest.mark.parametrize("argv, message", [
    (["--units", "100,x"], "--units must be integers"),
    (["--units", "100,1"], "at least one hidden layer"),
    (["--batch", "0"], "--batch must be between 1"),
    (["--threads", "0"], "--threads must be >= 1"),
    (["--against", "HEAD", "--watch", "3"], "do not go together"),
])
def test_bad_arguments(argv, message, capsys):
    with pytest.raises(SystemExit):
        _module().parse_args(argv)
    assert message in capsys.readouterr().err
