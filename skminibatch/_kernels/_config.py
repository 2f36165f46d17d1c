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
"""

import numba

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
