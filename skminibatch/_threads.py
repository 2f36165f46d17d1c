"""One fit, one core: BLAS runs single-threaded inside the training loop.

The kernels call BLAS (through SciPy's bindings) on per-batch matrices.
Multi-threaded OpenBLAS gains little on such sizes and, on a shared or
loaded machine, its spinning threads slowed a whole fit more than tenfold
(measured here: 0.89 s vs 0.027 s per epoch at batch 256 while another
process was busy). Parallelism belongs one level up, as in scikit-learn:
``GridSearchCV(n_jobs=...)`` runs several fits at once.

It also keeps fits reproducible: OpenBLAS's results depend on its thread
count (measured: a (256, 256) network on 784 features at batch 512 got
different weights with 1 and 2 BLAS threads), and loky workers of a
parallel search run BLAS on fewer threads than the parent process, so a
fit that followed the thread pool would differ between ``n_jobs=1`` and
``n_jobs=2``. With one thread always, the same ``random_state`` gives the
same weights in any process and with any ``n_jobs``.

The limit is process-wide (that is how BLAS thread pools work), so it is
reference-counted: with the threading backend the first fit to start sets
it and the last one to finish restores the previous setting.
"""

import threading
from contextlib import contextmanager

_lock = threading.Lock()
_active = 0
_controller = None
_restore = None


def _get_controller():
    global _controller
    if _controller is None:
        import scipy.linalg.cython_blas  # noqa: F401  the BLAS Numba calls
        from threadpoolctl import ThreadpoolController

        _controller = ThreadpoolController()
    return _controller


@contextmanager
def single_threaded_blas():
    global _active, _restore
    with _lock:
        if _active == 0:
            _restore = _get_controller().limit(limits=1, user_api="blas")
        _active += 1
    try:
        yield
    finally:
        with _lock:
            _active -= 1
            if _active == 0:
                _restore.restore_original_limits()
                _restore = None
