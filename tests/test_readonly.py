"""Read-only installs (DESIGN §4, issue 5 §4): with the package directory not
writable and no ``NUMBA_CACHE_DIR``, import and fit still work (the kernels
compile without a disk cache); with ``NUMBA_CACHE_DIR`` set, a second process
loads every kernel from it and writes nothing new.

A copy of the package is made read-only for a subprocess, together with the
HOME and XDG_CACHE_HOME the subprocess sees, so neither Numba's in-tree cache
(``__pycache__`` beside the sources) nor its per-user fallback
(``$XDG_CACHE_HOME/numba``, else ``~/.cache/numba``) is writable. Permission
bits do not stop root, so how the tree is made read-only depends on who runs
the tests:

* root (CI and the dev machines): a read-only bind mount of the tree onto
  itself inside a private mount namespace (``unshare -m``), which disappears
  with the subprocess;
* root without mount rights: the subprocess runs as ``nobody``
  (``setpriv``), for whom the root-owned tree is not writable;
* anyone else: the tree's write permission bits are cleared.

Each way is first checked with a probe (Python starts, a write into the tree
fails); the tests skip, naming every way that failed and why, only if none
works.
"""

import json
import os
import shutil
import stat
import subprocess
import sys
import tempfile
import textwrap
import warnings
from pathlib import Path

import numpy as np
import pytest

import skminibatch
from skminibatch import MiniBatchMLPClassifier

PACKAGE_DIR = Path(skminibatch.__file__).resolve().parent

# Run in the subprocess, with the read-only tree as its working directory and
# the read-only copy of the package first on PYTHONPATH.
FIT_SCRIPT = textwrap.dedent(
    """
    import errno, json, os, sys, time, warnings

    def writable(directory):
        try:
            os.makedirs(directory, exist_ok=True)
            with open(os.path.join(directory, "probe.txt"), "w") as f:
                f.write("x")
        except OSError as exc:
            return errno.errorcode.get(exc.errno, str(exc.errno))
        return "writable"

    t0 = time.perf_counter()
    import skminibatch
    from skminibatch._kernels import _config, _network
    import_s = time.perf_counter() - t0
    import numpy as np

    package_dir = os.path.dirname(skminibatch.__file__)
    xdg = os.environ.get("XDG_CACHE_HOME")
    probes = {
        "package": writable(os.path.join(package_dir, "__pycache__")),
        "kernels": writable(os.path.join(package_dir, "_kernels", "__pycache__")),
        "home": writable(os.path.join(os.path.expanduser("~"), ".cache", "numba")),
        "xdg": writable(os.path.join(xdg, "numba")) if xdg else "unset",
    }
    rng = np.random.RandomState(0)
    X = rng.rand(80, 4)
    y = (X[:, 0] + X[:, 1] > 1).astype(int)
    warnings.simplefilter("ignore")  # ConvergenceWarning from max_iter=3
    t0 = time.perf_counter()
    est = skminibatch.MiniBatchMLPClassifier(
        hidden_layer_sizes=(5,), max_iter=3, batch_size=16, random_state=0)
    proba = est.fit(X, y).predict_proba(X)
    fit_s = time.perf_counter() - t0
    dispatchers = [getattr(_network, n) for n in dir(_network)
                   if hasattr(getattr(_network, n), "stats")]
    print(json.dumps(dict(
        package_file=skminibatch.__file__,
        cache_dir=os.environ.get("NUMBA_CACHE_DIR"),
        cache_enabled=_config.CACHE_ENABLED,
        probes=probes,
        cache_hits=sum(sum(d.stats.cache_hits.values()) for d in dispatchers),
        cache_misses=sum(sum(d.stats.cache_misses.values()) for d in dispatchers),
        import_s=import_s, fit_s=fit_s,
        coefs=[c.tolist() for c in est.coefs_],
        proba=proba.tolist(),
    )))
    """
)

PROBE_SCRIPT = textwrap.dedent(
    """
    import os, sys
    import numpy, numba  # the interpreter and its packages are usable
    try:
        open(os.path.join(sys.argv[1], "probe.txt"), "w").close()
    except OSError:
        print("read-only")
    else:
        print("writable")
    """
)


def _reference_fit():
    """The subprocess's fit, here in the test process (normal install)."""
    rng = np.random.RandomState(0)
    X = rng.rand(80, 4)
    y = (X[:, 0] + X[:, 1] > 1).astype(int)
    est = MiniBatchMLPClassifier(hidden_layer_sizes=(5,), max_iter=3,
                                 batch_size=16, random_state=0)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # ConvergenceWarning from max_iter=3
        proba = est.fit(X, y).predict_proba(X)
    return est.coefs_, proba


# --- ways of making a tree read-only for a subprocess -----------------------

def _mount_prefix(tree):
    script = ('set -e; mount --bind "$1" "$1"; mount -o remount,ro,bind "$1" "$1"; '
              'shift; exec "$@"')
    return ["unshare", "--mount", "--propagation", "private",
            "sh", "-c", script, "sh", str(tree)]


def _setpriv_prefix(tree):
    return ["setpriv", "--reuid=nobody", "--regid=nogroup", "--clear-groups"]


def _chmod_prefix(tree):
    for path in [tree, *tree.rglob("*")]:
        mode = path.stat().st_mode
        path.chmod(mode & ~(stat.S_IWUSR | stat.S_IWGRP | stat.S_IWOTH))
    return []


def _candidate_ways():
    if os.geteuid() != 0:
        return [("permission bits", _chmod_prefix, None)]
    ways = []
    if shutil.which("unshare") and shutil.which("mount"):
        ways.append(("read-only bind mount", _mount_prefix, None))
    else:
        ways.append(("read-only bind mount", None, "unshare or mount not found"))
    if shutil.which("setpriv"):
        ways.append(("setpriv as nobody", _setpriv_prefix, None))
    else:
        ways.append(("setpriv as nobody", None, "setpriv not found"))
    return ways


def _make_writable(tree):
    for path in [tree, *tree.rglob("*")]:
        if not path.is_symlink():
            path.chmod(path.stat().st_mode | stat.S_IWUSR)


@pytest.fixture
def readonly_env():
    """(run, tree): ``run(env_extra)`` runs FIT_SCRIPT with a read-only copy
    of the package, HOME and XDG_CACHE_HOME inside ``tree``.

    The base directory is a world-traversable temporary directory (pytest's
    tmp_path is private to its user, which the ``nobody`` way cannot enter);
    ``writable/`` beside the tree is open to anyone for NUMBA_CACHE_DIR.
    """
    base = Path(tempfile.mkdtemp(prefix="skminibatch-readonly-"))
    base.chmod(0o755)
    tree = base / "tree"
    (tree / "home").mkdir(parents=True)
    (tree / "xdg-cache").mkdir()
    shutil.copytree(PACKAGE_DIR, tree / "site" / "skminibatch",
                    ignore=shutil.ignore_patterns("__pycache__", "*.pyc",
                                                  "*.nbi", "*.nbc"))
    writable = base / "writable"
    writable.mkdir()
    writable.chmod(0o777)
    for path in [tree, *tree.rglob("*")]:
        path.chmod(0o755 if path.is_dir() else 0o644)

    env = {k: v for k, v in os.environ.items() if k != "NUMBA_CACHE_DIR"}
    env.update(
        PYTHONPATH=os.pathsep.join([str(tree / "site"),
                                    *filter(None, [os.environ.get("PYTHONPATH")])]),
        HOME=str(tree / "home"),
        XDG_CACHE_HOME=str(tree / "xdg-cache"),
        PYTHONDONTWRITEBYTECODE="1",
    )
    # Whatever a probe (or a failed way) leaves behind must not stay.
    failures = []
    prefix = None
    for name, make_prefix, reason in _candidate_ways():
        if make_prefix is None:
            failures.append(f"{name}: {reason}")
            continue
        candidate = make_prefix(tree)
        probe = subprocess.run(
            [*candidate, sys.executable, "-c", PROBE_SCRIPT, str(tree / "home")],
            env=env, cwd=tree, capture_output=True, text=True)
        if probe.returncode == 0 and probe.stdout.strip() == "read-only":
            prefix = candidate
            break
        detail = (probe.stderr.strip().splitlines() or [probe.stdout.strip()])[-1]
        failures.append(f"{name}: exit {probe.returncode}, {detail!r}")
        for leftover in (tree / "home").iterdir():
            leftover.unlink()
    try:
        if prefix is None:
            pytest.skip("cannot make a directory read-only for a subprocess here "
                        "(running as uid %d): %s" % (os.geteuid(), "; ".join(failures)))

        def run(env_extra=None):
            out = subprocess.run(
                [*prefix, sys.executable, "-c", FIT_SCRIPT],
                env=dict(env, **(env_extra or {})), cwd=tree,
                capture_output=True, text=True, timeout=300)
            assert out.returncode == 0, out.stderr
            return json.loads(out.stdout.strip().splitlines()[-1])

        yield run, tree, writable
    finally:
        _make_writable(tree)
        shutil.rmtree(base)


def _files(directory):
    """{relative path: (size, mtime_ns)} of every file under ``directory``."""
    return {str(p.relative_to(directory)): (p.stat().st_size, p.stat().st_mtime_ns)
            for p in directory.rglob("*") if p.is_file()}


def _assert_read_only_and_same_fit(result, tree):
    # the read-only copy was imported, not the package under test
    assert Path(result["package_file"]).resolve().is_relative_to(tree)
    # neither the package directory nor Numba's per-user cache was writable
    for where in ("package", "kernels", "home", "xdg"):
        assert result["probes"][where] in ("EROFS", "EACCES", "EPERM"), result["probes"]
    coefs, proba = _reference_fit()
    for got, expected in zip(result["coefs"], coefs):
        np.testing.assert_allclose(got, expected, rtol=1e-12, atol=0)
    np.testing.assert_allclose(result["proba"], proba, rtol=1e-12, atol=1e-15)


def test_read_only_install_without_cache_dir_fits_uncached(readonly_env):
    run, tree, _ = readonly_env
    result = run()
    assert result["cache_dir"] is None
    assert result["cache_enabled"] is False
    assert result["cache_hits"] == 0 and result["cache_misses"] > 0
    _assert_read_only_and_same_fit(result, tree)
    assert _files(tree / "home") == {} and _files(tree / "xdg-cache") == {}


def test_read_only_install_second_process_loads_from_cache_dir(readonly_env):
    run, tree, writable = readonly_env
    cache = writable / "numba-cache"
    first = run({"NUMBA_CACHE_DIR": str(cache)})
    assert first["cache_dir"] == str(cache)
    assert first["cache_enabled"] is True
    assert first["cache_hits"] == 0 and first["cache_misses"] > 0
    _assert_read_only_and_same_fit(first, tree)
    written = _files(cache)
    assert any(name.endswith(".nbi") for name in written)
    assert any(name.endswith(".nbc") for name in written)

    second = run({"NUMBA_CACHE_DIR": str(cache)})
    assert second["cache_enabled"] is True
    # every kernel came from the cache: no compilation, nothing (re)written
    assert second["cache_misses"] == 0 and second["cache_hits"] > 0
    assert _files(cache) == written
    assert second["fit_s"] < first["fit_s"] / 3
    _assert_read_only_and_same_fit(second, tree)
