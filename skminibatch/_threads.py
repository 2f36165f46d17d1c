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

Our threads. Instead, the training kernels cut every step into a fixed
number of parts (:func:`step_plan`: 2, or 1 for steps too small to share)
that depends only on the network, the batch size and whether the input is
sparse: ``train_steps_units`` (dense input, hidden layers of at least
``MIN_UNITS_HIDDEN`` units) gives each part its own hidden units,
``train_steps`` (the rest, and two or more hidden layers at large batches
-- ``ROWS_MIN_BATCH``) cuts by batch rows (sparse: input features first)
and then by weights. Up to that many threads run the parts
(:func:`run_train_steps`); one thread runs them all in turn and
computes exactly the same numbers, so the weights are bit-identical with any
number of threads, in any process, with any ``n_jobs``. How many threads a
call gets is decided per compiled call (every 0.2-0.3 s): the CPUs this
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
#: Networks whose hidden layers all have at least this many units, on
#: dense input, are cut by hidden units instead (``train_steps_units``:
#: each thread keeps its own weights; one barrier a step with one hidden
#: layer) ...
MIN_UNITS_HIDDEN = 16
#: ... once a step has this many multiply-adds (batch x weights): measured
#: here, two threads beat one from about 25,000 (20 features, 32 units,
#: batch 64) and the cut costs nothing on one thread.
MIN_UNITS_WORK = 20_000


#: Bytes every buffer that the threads of a step share starts on: a 4 KiB
#: page. The hidden-unit kernel pads each thread's block to whole pages
#: (``_network.BLOCK_VALUES``), so a block starts on its own page only when
#: the buffer does; NumPy's allocator aligns to 16 bytes. Not merely whole
#: cache lines (128 bytes, as before): a core's hardware prefetchers fetch
#: the lines after (or before) the ones it streams through, up to the end
#: of the page, so a thread writing its block pulled the next thread's
#: first lines into its own cache and the two cores passed them back and
#: forth at every step. They do not cross page boundaries.
BUFFER_ALIGN = 4096


def aligned_empty(shape, dtype):
    """``np.empty(shape, dtype)`` starting on a ``BUFFER_ALIGN`` boundary.

    With the buffer's start aligned, the blocks that different threads write
    (padded to whole 128-byte units by the kernels, some to whole pages)
    never share a cache line (a page). Unaligned, each boundary between two
    threads' blocks was one line both wrote at every step. Measured (two
    threads, per-pair medians against 16-byte aligned buffers):
    784-256-256-10 float64 steps at batch 256 1.06-1.08x faster, at batch
    16 1.04x; 100-100-1 at batch 16 1.02x; float32 and the other shapes
    tried within the noise. (Page alignment instead of 128 bytes measured
    as fast for the kernel that cuts by rows: 784-256-256-10 float64 at
    batch 256 0.996x, 100-256-256-2 float32 at batch 1024 0.999-1.005x.)
    """
    dtype = np.dtype(dtype)
    shape = (shape,) if np.ndim(shape) == 0 else tuple(shape)
    nbytes = int(np.prod(shape, dtype=np.int64)) * dtype.itemsize
    if nbytes == 0:
        return np.empty(shape, dtype)
    raw = np.empty(nbytes + BUFFER_ALIGN, dtype=np.uint8)
    start = -raw.ctypes.data % BUFFER_ALIGN
    return raw[start:start + nbytes].view(dtype).reshape(shape)


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


#: Values from which :func:`all_finite` splits its sum over two threads.
FINITE_SPLIT_VALUES = 1 << 20


def run_on_threads(work, n_threads):
    """``work(t)`` for ``t`` in ``range(n_threads)``: ``t = 0`` on this
    thread, the others on helper threads (``work`` releases the GIL: BLAS or
    a compiled kernel). The first failure is re-raised once all have ended."""
    failures = []

    def helper(t):
        try:
            work(t)
        except BaseException as exc:  # noqa: BLE001  re-raised below
            failures.append(exc)

    helpers = [threading.Thread(target=helper, args=(t,), daemon=True,
                                name=f"skminibatch-{t}")
               for t in range(1, n_threads)]
    for thread in helpers:
        thread.start()
    try:
        work(0)
    finally:
        for thread in helpers:
            thread.join()
    if failures:
        raise failures[0]


def all_finite(values):
    """Whether the 1-D float array ``values`` is free of NaN and infinity,
    or its squares overflow: ``False`` when ``values @ values`` (BLAS's
    ``dot``) is not finite. The sum runs on BLAS's single-threaded path, in
    halves on two threads when large: a call that lets OpenBLAS use its own
    threads leaves its idle worker spinning for ~0.1 s afterwards
    (``OPENBLAS_THREAD_TIMEOUT``), and that worker took a core from the
    fit's first steps (784-256-256-10 float64 at batch 1024: 60-70 ms more a
    fit). 20,000 x 784 float64 values: 4.5 ms, against 13-14 ms for
    scikit-learn's check (a pairwise ``np.sum`` on one core)."""
    n = values.shape[0]
    n_parts = 2 if n >= FINITE_SPLIT_VALUES and cpu_budget() > 1 else 1
    sums = [0.0] * n_parts

    def part(k):
        v = values[k * n // n_parts:(k + 1) * n // n_parts]
        sums[k] = np.dot(v, v)

    with single_threaded_blas(), np.errstate(over="ignore", invalid="ignore"):
        run_on_threads(part, n_parts)
    return bool(np.isfinite(sums).all())


def available_threads():
    """Threads a compiled pass outside the training steps (prediction) may
    use now: :func:`cpu_budget`, shared among the fits training now."""
    return max(1, cpu_budget() // max(_training, 1))


def step_parts(batch_size, n_weights):
    """How many parts each step of a fit is cut into (see module doc): a
    function of the problem's shape only, never of the threads available."""
    if batch_size < 2 or batch_size * n_weights < MIN_SHARED_WORK:
        return 1
    return MAX_PARTS


#: Dense input with two or more hidden layers, at batches of at least
#: ``ROWS_MIN_BATCH`` (and steps big enough for two parts, see
#: :func:`step_parts`), goes to ``train_steps`` after all: cut by batch
#: rows, each part runs full-width products over its rows and takes their
#: gradient sums for every weight. Measured against the hidden-unit cut
#: (two threads, steps alternating in one process, calls of ~0.2 s as in a
#: fit: shorter calls favour this cut, as the hidden-unit cut copies the
#: weights in and out once a call): 784-256-256-10 1.03x faster at batch
#: 256 (batch 1024, before the per-part gradient sums: 15.1-15.8 against
#: 15.9-16.6 ms a step); 100-256-256-2 at batches 256 and 1024, 1.02x in
#: float64 and 1.03x in float32; 50-128-128-1 at batch 1024, 1.10x; about
#: even for 20-64-64-64-1 at batch 512 and 300-128-128-10 at batch 256
#: (0.98-1.02x, shorter calls). Not at smaller batches (784-256-256-10 at
#: batch 64: 0.87x in float32, 0.38x in float64; at batch 16: 0.57-0.70x),
#: nor with one hidden layer (one barrier a step in the hidden-unit cut;
#: 100-100-1 at batch 1024: 0.89x). Nor at batch 256 after all: each step,
#: this cut passes half of every part's gradient sums and half the updated
#: weights to the other core (about 2 MB at 784-256-256-10 float64, from
#: the sizes), the hidden-unit cut about 0.5 MB of activations and deltas;
#: in the machine's slow spells, when a cache line takes 320 ns instead of
#: 55 between our two vCPUs, the hidden-unit cut was much faster. Per-pair
#: medians of a step's time, this cut's over the hidden-unit cut's, quiet
#: and slow calls: 784-256-256-10 float32 0.98 / 1.18 (slow: 2.86 against
#: 2.43 ms a step), float64 0.99 / 1.22, 100-256-256-2 float64 1.01 /
#: 1.35. At batch 512 (784-256-256-10 float64: 0.96 / 1.01) and 1024 (0.96
#: / 0.91; float32 0.97 / 0.98; 100-256-256-2 float64 0.94 quiet) this cut
#: stays ahead. Those were measured on an AMD EPYC VM. On an Intel Xeon VM
#: (bench_step --against, per-pair medians, quiet and slow calls not told
#: apart), this cut over the hidden-unit cut's time: 784-256-256-10 at
#: batch 1024 0.89 (float32 0.82); at batch 256 0.96 (float32 0.95),
#: 100-256-256-2 0.99. The threshold stays at 512 for the slow spells
#: measured on the AMD machine.
ROWS_MIN_BATCH = 512


def step_plan(batch_size, layout, sparse):
    """``(n_parts, kernel)``: how each step of a fit is cut and the kernel
    (name in :mod:`skminibatch._kernels._network`) that runs it -- from the
    problem's shape only."""
    hidden = layout.units[1:-1]
    by_rows = (layout.n_layers >= 3 and batch_size >= ROWS_MIN_BATCH
               and step_parts(batch_size, layout.n_params) > 1)
    if (not sparse and layout.n_layers >= 2 and batch_size >= 2
            and min(hidden) >= MIN_UNITS_HIDDEN and not by_rows
            and batch_size * layout.n_params >= MIN_UNITS_WORK):
        return MAX_PARTS, "train_steps_units"
    return step_parts(batch_size, layout.n_params), "train_steps"


def _env_threads():
    for name in ("SKMINIBATCH_NUM_THREADS", "OMP_NUM_THREADS"):
        value = os.environ.get(name, "").strip()
        if value:
            try:
                return max(1, int(value))
            except ValueError:
                continue
    return None


_cpus = None  # (CPU affinity, joblib.cpu_count()) of the last lookup


def _usable_cpus():
    """:func:`joblib.cpu_count` (affinity, cgroup quota), looked up again
    only when this process's CPU affinity changed: it reads the cgroup files
    every time (0.18 ms of a 50 ms fit). A quota changed while the process
    runs is not seen."""
    global _cpus
    try:
        affinity = frozenset(os.sched_getaffinity(0))
    except AttributeError:  # no affinity API (macOS, Windows): every time
        affinity = None
    cached = _cpus
    if cached is None or affinity is None or cached[0] != affinity:
        import joblib

        cached = _cpus = (affinity, joblib.cpu_count())
    return cached[1]


def cpu_budget():
    """Threads this process should use for one fit at most."""
    budget = _usable_cpus()
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


class ThreadChoice:
    """Per compiled call, run on all the threads the budget allows or on
    one, whichever measured faster per step in this fit.

    Both give the same numbers, so this is purely about speed: on a shared
    machine the second core can be busy or slow, and then two threads wait
    for each other at every barrier (measured here: 470 us per step on two
    threads against 310 us on one, in a spell when the two vCPUs did not
    run in parallel; 215 us on two at other times). All threads are used
    first; once the fit has trained ``FIRST_TRIAL_AFTER`` seconds, and long
    enough that the first trial's expected extra time (its steps at one
    thread's speed if the threads share the work perfectly) is at most
    ``TRIAL_SHARE`` of the time trained, one thread is timed; then the
    faster option is used and the other re-timed every ``RETRY`` calls.
    The timing calls ("trials") are kept to ``1 / TRIAL_FRACTION`` of a
    normal call (calls last ~0.2 s, so the machine's state is followed
    within seconds at a cost of a few percent; a short fit pays nothing: a
    3-epoch fit of 784-256-256-10 at batch 1024 on 20,000 rows, 0.9 s, had
    paid 30 ms, 3%, for a two-step trial at ~29 ms a step).
    """

    RETRY = 16
    FIRST_TRIAL_AFTER = 0.5
    TRIAL_SHARE = 0.02
    TRIAL_FRACTION = 8

    def __init__(self):
        self._per_step = {}  # threads -> seconds per step (running mean)
        self._calls = 0
        self._seconds = 0.0  # time in timed calls so far

    def choose(self, budget, steps_per_call):
        """``(threads, trial)`` for a call of ``steps_per_call`` steps:
        ``trial`` marks a call that times the option not currently
        preferred (the caller keeps such calls short, see
        :meth:`trial_steps`)."""
        if budget <= 1:
            return 1, False
        if budget not in self._per_step:
            return budget, False
        if 1 not in self._per_step:
            extra = (self.trial_steps(steps_per_call) * self._per_step[budget]
                     * (budget - 1))
            if self._seconds < max(self.FIRST_TRIAL_AFTER, extra / self.TRIAL_SHARE):
                return budget, False
            return 1, True
        self._calls += 1
        faster = min((budget, 1), key=self._per_step.__getitem__)
        if self._calls % self.RETRY == 0:
            return (budget if faster == 1 else 1), True
        return faster, False

    def trial_steps(self, steps_per_call):
        """Steps of a trial call, given a normal call's."""
        return max(2, steps_per_call // self.TRIAL_FRACTION)

    def record(self, threads, n_steps, seconds):
        self._seconds += seconds
        if n_steps < 2:  # a single step mostly measures the call itself
            return
        per_step = seconds / n_steps
        old = self._per_step.get(threads)
        self._per_step[threads] = per_step if old is None else 0.5 * (old + per_step)


def run_train_steps(kernels, n_threads, n_parts, args, entry="train_steps"):
    """``kernels.<entry>`` (a ``train_steps`` kernel) on ``n_threads``
    threads (this one and ``n_threads - 1`` helpers), all parts of every
    step done once.

    A helper that fails, or this thread failing, aborts the others at their
    next barrier; the failure is re-raised here after every helper ended.
    """
    sync = aligned_empty((n_threads + 1) * kernels.SYNC_STRIDE, np.int64)
    sync[:] = 0
    helpers, failures = [], []
    kernel = getattr(kernels, entry)

    def helper(tid):
        try:
            kernel(tid, n_threads, n_parts, sync, *args)
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
            return run_train_steps(kernels, 1, n_parts, args, entry)
    try:
        result = kernel(0, n_threads, n_parts, sync, *args)
    except BaseException:
        sync[kernels.SYNC_ABORT] = 1
        raise
    finally:
        for thread in helpers:
            thread.join()
    if failures:
        raise failures[0]
    return result
