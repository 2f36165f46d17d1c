"""Threads of a fit: BLAS stays single-threaded; a step is shared by up to
two of our own threads, with results that never depend on how many run.

BLAS. The kernels call BLAS (through SciPy's bindings) on per-batch
matrices. OpenBLAS's results depend on its thread count (measured: a (256,
256) network on 784 features at batch 512 got different weights with 1 and
2 BLAS threads), and loky workers of a parallel search run BLAS on fewer
threads than the parent process, so a fit that followed BLAS's thread pool
would differ between ``n_jobs=1`` and ``n_jobs=2``. Its spinning threads
also slowed a whole fit more than tenfold on a loaded machine (0.89 s vs
0.027 s per epoch at batch 256 while another process was busy). So BLAS
runs on one thread inside a fit. The limit is process-wide (that is how
BLAS thread pools work), so it is reference-counted: with the threading
backend the first fit to start sets it and the last one to finish restores
the previous setting.

Our threads. Instead, ``train_steps`` cuts every step into a fixed number
of parts (:func:`step_parts`: 2, or 1 for steps too small to share) that
depends only on the network and the batch size. Up to that many threads run
the parts (:func:`run_train_steps`); one thread runs them all in turn and
computes exactly the same numbers, so the weights are bit-identical with any
number of threads, in any process, with any ``n_jobs``. How many threads a
call gets is decided per compiled call (about every 0.2 s): the CPUs this
process may use (affinity, cgroup quota -- :func:`joblib.cpu_count`), capped
by ``SKMINIBATCH_NUM_THREADS`` or else ``OMP_NUM_THREADS`` when set (joblib's
loky workers set it to their share of the machine), shared among the fits
training at that moment in this process (the threading backend).
"""

import os
import threading
from contextlib import contextmanager

import numpy as np

_lock = threading.Lock()
_active = 0
_controller = None
_restore = None
_training = 0  # fits inside ``training_threads`` right now

#: Steps with fewer multiply-adds than this (batch x weights) run as one
#: part: sharing them costs more in barriers than it saves.
MIN_SHARED_WORK = 1_000_000
#: The most parts (and so threads) a step is cut into.
MAX_PARTS = 2


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


def step_parts(batch_size, n_weights):
    """How many parts each step of a fit is cut into (see module doc): a
    function of the problem's shape only, never of the threads available."""
    if batch_size < 2 or batch_size * n_weights < MIN_SHARED_WORK:
        return 1
    return MAX_PARTS


def _env_threads():
    for name in ("SKMINIBATCH_NUM_THREADS", "OMP_NUM_THREADS"):
        value = os.environ.get(name, "").strip()
        if value:
            try:
                return max(1, int(value))
            except ValueError:
                continue
    return None


def cpu_budget():
    """Threads this process should use for one fit at most."""
    import joblib

    budget = joblib.cpu_count()
    env = _env_threads()
    if env is not None:
        budget = min(budget, env)
    return max(1, budget)


@contextmanager
def training_threads():
    """Count a fit as training (for sharing the CPU among concurrent fits);
    yields a function giving the threads a compiled call may use now."""
    global _training
    budget = cpu_budget()
    with _lock:
        _training += 1
    try:
        yield lambda n_parts: max(1, min(n_parts, budget // max(_training, 1)))
    finally:
        with _lock:
            _training -= 1


def run_train_steps(kernels, n_threads, n_parts, args):
    """``kernels.train_steps`` on ``n_threads`` threads (this one and
    ``n_threads - 1`` helpers), all parts of every step done once.

    A helper that fails, or this thread failing, aborts the others at their
    next barrier; the failure is re-raised here after every helper ended.
    """
    sync = np.zeros((n_threads + 1) * kernels.SYNC_STRIDE, dtype=np.int64)
    helpers, failures = [], []

    def helper(tid):
        try:
            kernels.train_steps(tid, n_threads, n_parts, sync, *args)
        except BaseException as exc:  # noqa: BLE001  re-raised by the caller
            failures.append(exc)
            sync[kernels.SYNC_ABORT] = 1

    if n_threads > 1:
        try:
            for tid in range(1, n_threads):
                thread = threading.Thread(target=helper, args=(tid,), daemon=True,
                                          name=f"skminibatch-step-{tid}")
                thread.start()
                helpers.append(thread)
        except RuntimeError:  # can't start a thread: run on the ones we have
            sync[kernels.SYNC_ABORT] = 1
            for thread in helpers:
                thread.join()
            return run_train_steps(kernels, 1, n_parts, args)
    try:
        result = kernels.train_steps(0, n_threads, n_parts, sync, *args)
    except BaseException:
        sync[kernels.SYNC_ABORT] = 1
        raise
    finally:
        for thread in helpers:
            thread.join()
    if failures:
        raise failures[0]
    return result
