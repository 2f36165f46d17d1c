"""Compilation and caching (DESIGN §4): importing compiles nothing, the disk
cache honours NUMBA_CACHE_DIR and a second process loads from it, and an
unusable cache location degrades to uncached compilation."""

import os
import subprocess
import sys
import textwrap

import numba

from skminibatch._kernels import _config

FIT_SCRIPT = textwrap.dedent(
    """
    import json, sys, time, warnings
    t0 = time.perf_counter()
    import skminibatch
    from skminibatch._kernels import _network as K
    import_s = time.perf_counter() - t0
    compiled_at_import = sum(len(getattr(K, n).signatures) for n in dir(K)
                             if hasattr(getattr(K, n), "signatures"))
    import numpy as np
    X = np.random.RandomState(0).rand(60, 3)
    y = (X[:, 0] > 0.5).astype(int)
    warnings.simplefilter("ignore")
    t0 = time.perf_counter()
    skminibatch.MiniBatchMLPClassifier(hidden_layer_sizes=(4,), max_iter=2,
                                       random_state=0).fit(X, y).predict(X)
    fit_s = time.perf_counter() - t0
    print(json.dumps(dict(compiled_at_import=compiled_at_import, fit_s=fit_s,
                          import_s=import_s)))
    """
)


def _run(env_extra):
    env = dict(os.environ, **env_extra)
    out = subprocess.run([sys.executable, "-c", FIT_SCRIPT], env=env,
                         capture_output=True, text=True, check=True)
    import json

    return json.loads(out.stdout.strip().splitlines()[-1])


def test_import_compiles_nothing_and_cache_dir_is_used(tmp_path):
    cache = tmp_path / "numba_cache"
    first = _run({"NUMBA_CACHE_DIR": str(cache)})
    assert first["compiled_at_import"] == 0
    cached = [f for _, _, files in os.walk(cache) for f in files if f.endswith(".nbc")]
    assert cached, "nothing was written to NUMBA_CACHE_DIR"
    second = _run({"NUMBA_CACHE_DIR": str(cache)})
    # loading from the cache is far cheaper than compiling
    assert second["fit_s"] < first["fit_s"] / 3


def test_no_cache_location_falls_back_to_uncached(monkeypatch):
    calls = []
    real_njit = numba.njit

    def refusing_njit(**options):
        calls.append(options)
        if options.get("cache"):
            raise RuntimeError("cannot cache function 'f': no locator available")
        return real_njit(**options)

    monkeypatch.setattr(_config, "_njit", refusing_njit)
    monkeypatch.setattr(_config, "CACHE_ENABLED", True)

    def add_one(x):
        return x + 1

    compiled = _config.kernel(add_one)
    assert compiled(1) == 2
    assert [c["cache"] for c in calls] == [True, False]
    assert _config.CACHE_ENABLED is False


def test_import_does_not_load_numba():
    # the kernels (and Numba, ~0.2 s) load on first fit/predict, not at import
    code = "import sys, skminibatch; print('numba' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True,
                         text=True, check=True)
    assert out.stdout.strip() == "False"


def test_gc_paused_restores_the_collector_state():
    import gc

    import pytest

    from skminibatch._kernels import gc_paused

    assert gc.isenabled()
    try:
        with pytest.raises(ValueError):
            with gc_paused():
                assert not gc.isenabled()
                raise ValueError("inside")
        assert gc.isenabled()  # restored after an error too
        gc.disable()  # the user's choice is kept
        with gc_paused():
            assert not gc.isenabled()
        assert not gc.isenabled()
    finally:
        gc.enable()


def test_first_kernel_use_leaves_the_collector_on_and_numba_started():
    # network() pauses the collector while it imports Numba and makes the
    # first compiled call; afterwards it is on again and nothing else waits
    code = textwrap.dedent(
        """
        import gc, sys
        from skminibatch._kernels import network
        assert gc.isenabled()
        K = network()
        assert gc.isenabled()
        assert K._padded.signatures, "no compiled call was made"
        assert network() is K is sys.modules["skminibatch._kernels._network"]
        print("ok")
        """
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True,
                         text=True, check=True)
    assert out.stdout.strip() == "ok"


def _njit_in_module(module, source, name, namespace=None):
    """``numba.njit`` of a function defined in ``source`` whose
    ``__module__`` is ``module``."""
    glb = {"__name__": module, **(namespace or {})}
    exec(textwrap.dedent(source), glb)
    return numba.njit(glb[name])


def test_gc_paused_while_a_skminibatch_kernel_compiles():
    import gc

    import numpy as np
    import pytest
    from numba.core import event

    seen = []

    class Observer(event.Listener):
        def on_start(self, ev):
            seen.append((ev.data["dispatcher"].py_func.__name__, gc.isenabled()))

        def on_end(self, ev):
            pass

    inner = _njit_in_module("skminibatch._fake", "def inner(x):\n    return x + 1\n",
                            "inner")
    outer = _njit_in_module("skminibatch._fake",
                            "def outer(x):\n    return inner(x) * 2\n", "outer",
                            {"inner": inner})
    other = _njit_in_module("userland", "def other(x):\n    return x - 1\n", "other")
    observer = Observer()
    event.register("numba:compile", observer)
    try:
        assert gc.isenabled()
        assert outer(np.float64(1.0)) == 4.0
        assert gc.isenabled()
        assert ("outer", False) in seen and ("inner", False) in seen
        assert other(np.float64(1.0)) == 0.0
        assert ("other", True) in seen  # other code's compilations: untouched
        # a compilation that fails (a typing error) turns it back on as well
        with pytest.raises(numba.core.errors.TypingError):
            outer("not a number")
        assert gc.isenabled()
        assert _config.GC_LISTENER.depth == 0
    finally:
        event.unregister("numba:compile", observer)
        gc.enable()
