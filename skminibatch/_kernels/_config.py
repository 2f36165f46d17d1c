"""The one place that decides how every kernel is compiled.

Every compiled function in :mod:`skminibatch._kernels` is decorated with
:func:`kernel`; no kernel spells out its own Numba options (a test checks
this). The options and why:

* ``nopython`` (``numba.njit``): no object mode, ever.
* ``nogil=True``: a thread pool (joblib's threading backend) trains several
  models at once.
* ``cache=True``: compile once per machine, not once per process. When no
  cache location is writable (read-only install and no usable
  ``NUMBA_CACHE_DIR``), Numba refuses ``cache=True`` at decoration time; we
  then compile without a cache instead of failing at import.
* ``error_model='numpy'``: with Numba's default ``'python'`` model a division
  must check for zero and raise, which stops LLVM from vectorising the
  optimizer loops (measured 8x slower for Adam). Division by zero gives
  inf/nan as in NumPy, and the estimators check for non-finite weights.
* ``fastmath`` stays off: the losses take logs and exps where reassociation
  or "no NaN/inf" assumptions would turn a large value into a wrong answer.
* ``boundscheck`` is left unset so ``NUMBA_BOUNDSCHECK=1`` switches it on
  for a test run.

While Numba compiles one of these kernels, Python's cyclic garbage collector
is paused (:class:`GCPausedWhileCompiling`).
"""

import gc

import numba
from numba.core import event

from . import gc_paused

_njit = numba.njit  # module-level handle, replaced in tests

JIT_OPTIONS = dict(nogil=True, cache=True, error_model="numpy", fastmath=False)

#: ``True`` while every kernel so far got a disk cache.
CACHE_ENABLED = True


def kernel(func):
    """Compile ``func`` lazily with the project's options (see module doc)."""
    global CACHE_ENABLED
    try:
        return _njit(**JIT_OPTIONS)(func)
    except RuntimeError as exc:  # "cannot cache function ...: no locator available"
        if "cache" not in str(exc):
            raise
        CACHE_ENABLED = False
        options = dict(JIT_OPTIONS, cache=False)
        return _njit(**options)(func)


class GCPausedWhileCompiling(event.Listener):
    """Listens to Numba's ``numba:compile`` events (its documented event
    API) and keeps the garbage collector off from the start of the
    outermost compilation of a skminibatch kernel to its end (nested ones --
    the kernels it calls -- included), then runs one collection.

    Numba's compiler allocates millions of short-lived objects, and each
    collection of the oldest generation walks everything the process holds
    (scikit-learn, SciPy, ...). Cold compile of a default fit + predict
    after ``import sklearn.neural_network``: 14.1-14.4 s with the collector
    on, 12.6-13.0 s paused (peak RSS 436 -> 491 MiB while compiling; the
    collection at the end returns it). Other code's compilations are left
    alone. Numba sends these events while holding its compiler lock, so
    one thread at a time runs this.
    """

    def __init__(self):
        self.depth = 0
        self.pause = None

    @staticmethod
    def _ours(event_):
        func = getattr(event_.data.get("dispatcher"), "py_func", None)
        return getattr(func, "__module__", "").startswith("skminibatch.")

    def on_start(self, event_):
        if not self._ours(event_):
            return
        if self.depth == 0:
            self.pause = gc_paused()
            self.pause.__enter__()
        self.depth += 1

    def on_end(self, event_):
        if not self._ours(event_):
            return
        self.depth -= 1
        if self.depth == 0:
            self.pause.__exit__(None, None, None)
            if self.pause.enabled:
                gc.collect()


GC_LISTENER = GCPausedWhileCompiling()
event.register("numba:compile", GC_LISTENER)
