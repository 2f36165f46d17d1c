"""Threads inside one fit (``skminibatch._threads``).

A step is cut into a number of parts fixed by the problem's shape; any
number of threads runs them with bit-identical results. These tests check
that promise at the estimator level, the thread budget, and that a failing
or interrupted thread never leaves another one waiting forever.
"""

import sys
import threading
import types

import numpy as np
import pytest
import scipy.sparse as sp
from joblib import Parallel, delayed, parallel_backend

from skminibatch import MiniBatchMLPClassifier, MiniBatchMLPRegressor
from skminibatch import _threads
from skminibatch._kernels import _network as K

pytestmark = pytest.mark.filterwarnings(
    "ignore::sklearn.exceptions.ConvergenceWarning")


def _data(n=300, n_features=40, seed=0, classes=3):
    rng = np.random.RandomState(seed)
    X = rng.standard_normal((n, n_features))
    y = (X[:, :3].sum(axis=1) > 0).astype(int) + (X[:, 3] > 1)
    return X, y % classes


def _weights(est):
    return est.coefs_ + est.intercepts_


def _fit(monkeypatch, n_threads, est, X, y):
    monkeypatch.setenv("SKMINIBATCH_NUM_THREADS", str(n_threads))
    return est.fit(X, y)


SHARED = dict(hidden_layer_sizes=(64, 32), batch_size=32, max_iter=4,
              random_state=0)


@pytest.fixture(autouse=True)
def _cut_small_steps(monkeypatch):
    """Cut even these small test networks' steps in two (production cuts
    only steps of >= MIN_SHARED_WORK / MIN_UNITS_WORK multiply-adds, checked
    below)."""
    monkeypatch.setattr(_threads, "MIN_SHARED_WORK", 0)
    monkeypatch.setattr(_threads, "MIN_UNITS_WORK", 0)


def test_shape_decides_the_parts_not_the_threads(monkeypatch):
    monkeypatch.undo()  # the production threshold
    assert _threads.step_parts(1, 10**9) == 1  # one row: nothing to share
    # 784 features, hidden (256, 256), 10 classes: shared from batch 16 on
    assert _threads.step_parts(16, 268_800) == 2
    # 100 features, hidden (100,), 1 output: two threads lose to the
    # barriers and to moving the weights between cores below ~1M
    assert _threads.step_parts(64, 10_201) == 1
    assert _threads.step_parts(256, 10_201) == 2


def test_dense_input_is_cut_by_hidden_units(monkeypatch):
    from skminibatch._layout import Layout

    monkeypatch.undo()  # the production thresholds
    c1 = Layout([100, 100, 1])  # 10,201 weights
    units = (2, "train_steps_units")
    assert _threads.step_plan(16, c1, sparse=False) == units
    assert _threads.step_plan(16, Layout([784, 256, 256, 10]), False) == units
    assert _threads.step_plan(1, c1, sparse=False) == (1, "train_steps")
    # sparse input, a narrow hidden layer or a tiny step: the general kernel
    # (cut by step_parts)
    assert _threads.step_plan(16, c1, sparse=True) == (1, "train_steps")
    assert _threads.step_plan(256, c1, sparse=True) == (2, "train_steps")
    assert _threads.step_plan(128, Layout([100, 100, 8, 1]), False) == (
        2, "train_steps")
    assert _threads.step_plan(64, Layout([100, 8, 1]), False) == (1, "train_steps")
    assert _threads.step_plan(16, Layout([20, 32, 1]), False) == (1, "train_steps")
    assert _threads.step_plan(64, Layout([20, 32, 1]), False) == units


def test_two_hidden_layers_at_large_batches_are_cut_by_rows(monkeypatch):
    """Dense input, two or more hidden layers, batch >= ROWS_MIN_BATCH and a
    step big enough for two parts: the kernel cut by batch rows, whose parts
    run full-width products and take their rows' gradient sums."""
    from skminibatch._layout import Layout

    monkeypatch.undo()
    c3 = Layout([784, 256, 256, 10])
    units = (2, "train_steps_units")
    rows = (2, "train_steps")
    assert _threads.ROWS_MIN_BATCH == 512
    assert _threads.step_plan(1024, c3, sparse=False) == rows
    assert _threads.step_plan(512, c3, sparse=False) == rows
    # batch 256: by units (much less traffic between the cores)
    assert _threads.step_plan(256, c3, sparse=False) == units
    assert _threads.step_plan(256, Layout([100, 256, 256, 2]), False) == units
    assert _threads.step_plan(128, c3, sparse=False) == units
    assert _threads.step_plan(1024, Layout([100, 256, 256, 2]), False) == rows
    assert _threads.step_plan(512, Layout([20, 64, 64, 64, 1]), False) == rows
    # a single hidden layer, or a step too small for two parts by rows
    # (20-32-32-1 at batch 512: 901,632 multiply-adds): still cut by units
    assert _threads.step_plan(1024, Layout([784, 100, 10]), False) == units
    small = Layout([20, 32, 32, 1])
    assert 512 * small.n_params < _threads.MIN_SHARED_WORK
    assert _threads.step_plan(512, small, False) == units
    # sparse input keeps its cut (first layer by input features)
    assert _threads.step_plan(1024, c3, sparse=True) == rows


ONE_HIDDEN = dict(hidden_layer_sizes=(24,), batch_size=16, max_iter=3,
                  random_state=0)


@pytest.mark.parametrize("solver", ["adam", "sgd"])
@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_hidden_unit_cut_bit_identical_with_one_or_two_threads(monkeypatch, solver,
                                                                dtype):
    X, y = _data()
    X = X.astype(dtype)
    seen = []
    real = K.train_steps_units

    def spy(tid, n_threads, *args):
        seen.append((tid, n_threads))
        return real(tid, n_threads, *args)

    monkeypatch.setattr(K, "train_steps_units", spy)
    fits = []
    for threads in (1, 2):
        monkeypatch.setattr(_threads, "cpu_budget", lambda: threads)
        fits.append(MiniBatchMLPClassifier(solver=solver, **ONE_HIDDEN).fit(X, y))
    assert (1, 2) in seen and (0, 1) in seen  # both kernels' ways were run
    for a, b in zip(_weights(fits[0]), _weights(fits[1])):
        assert a.dtype == dtype
        np.testing.assert_array_equal(a, b)
    assert fits[0].loss_curve_ == fits[1].loss_curve_


@pytest.mark.parametrize("solver", ["adam", "sgd"])
@pytest.mark.parametrize("dtype", [np.float64, np.float32])
@pytest.mark.parametrize("sparse", [False, True], ids=["dense", "csr"])
def test_one_or_two_threads_fit_bit_identical_weights(monkeypatch, solver, dtype,
                                                      sparse):
    X, y = _data()
    X = X.astype(dtype)
    if sparse:
        X[np.abs(X) < 1] = 0
        X = sp.csr_matrix(X)
    fits = [_fit(monkeypatch, t, MiniBatchMLPClassifier(solver=solver, **SHARED),
                 X, y) for t in (1, 2)]
    for a, b in zip(_weights(fits[0]), _weights(fits[1])):
        assert a.dtype == dtype
        np.testing.assert_array_equal(a, b)
    assert fits[0].loss_curve_ == fits[1].loss_curve_


@pytest.mark.parametrize("solver", ["adam", "sgd"])
def test_wide_first_layer_kept_transposed_same_fit(monkeypatch, solver):
    """Dense float64, a first layer of more inputs than units and large
    products, cut by rows: its weights live transposed during each call
    (``first_t``). The fit is bit-identical on one or two threads and the
    same, to rounding, as without that layout."""
    X, y = _data(n=1200, n_features=300)
    params = dict(hidden_layer_sizes=(64, 32), batch_size=512, max_iter=3,
                  random_state=0, solver=solver)
    widths = []
    real_steps, real_buffer = K.train_steps, K.first_layer_buffer

    def spy(tid, n_threads, *args):
        widths.append(args[-8].shape[1])  # first_t
        return real_steps(tid, n_threads, *args)

    monkeypatch.setattr(K, "train_steps", spy)
    fits = [_fit(monkeypatch, t, MiniBatchMLPClassifier(**params), X, y)
            for t in (1, 2)]
    assert set(widths) == {300 * 64}
    monkeypatch.setattr(K, "first_layer_buffer",
                        lambda units, dtype, *a: real_buffer(units, np.float32, *a)
                        .astype(dtype))  # never chosen for float32: off
    widths.clear()
    plain = _fit(monkeypatch, 2, MiniBatchMLPClassifier(**params), X, y)
    assert set(widths) == {0}
    for a, b, c in zip(_weights(fits[0]), _weights(fits[1]), _weights(plain)):
        np.testing.assert_array_equal(a, b)
        np.testing.assert_allclose(a, c, rtol=1e-9, atol=1e-12)
    assert fits[0].loss_curve_ == fits[1].loss_curve_
    np.testing.assert_allclose(fits[0].loss_curve_, plain.loss_curve_, rtol=1e-10)


def test_regressor_with_early_stopping_bit_identical(monkeypatch):
    X, _ = _data(seed=1)
    y = X[:, :2] @ [1.0, -2.0]
    fits = [_fit(monkeypatch, t, MiniBatchMLPRegressor(early_stopping=True,
                                                       **SHARED), X, y)
            for t in (1, 2)]
    for a, b in zip(_weights(fits[0]), _weights(fits[1])):
        np.testing.assert_array_equal(a, b)
    assert fits[0].validation_scores_ == fits[1].validation_scores_


def test_two_threads_are_used(monkeypatch):
    """The second thread really runs: the kernel is entered from two
    threads when the budget allows, from one when it does not."""
    seen = set()

    def spy(real):
        def kernel(tid, n_threads, *args):
            seen.add((tid, n_threads, threading.get_ident()))
            return real(tid, n_threads, *args)
        return kernel

    for name in ("train_steps", "train_steps_units"):
        monkeypatch.setattr(K, name, spy(getattr(K, name)))
    monkeypatch.setattr(_threads, "cpu_budget", lambda: 2)
    X, y = _data()
    MiniBatchMLPClassifier(**SHARED).fit(X, y)
    # both threads' calls (ThreadChoice also tries one thread now and then)
    assert {(0, 2), (1, 2)} <= {(tid, n) for tid, n, _ in seen}
    # thread 0 is the caller's, the others are helpers (new ones each call)
    main = threading.get_ident()
    assert {ident for tid, n, ident in seen if tid == 0} == {main}
    assert main not in {ident for tid, n, ident in seen if tid == 1}

    seen.clear()
    monkeypatch.setattr(_threads, "cpu_budget", lambda: 1)
    MiniBatchMLPClassifier(**SHARED).fit(X, y)
    assert {(tid, n) for tid, n, _ in seen} == {(0, 1)}


def test_concurrent_fits_share_the_budget_and_match_serial(monkeypatch):
    """Fits in a thread pool (joblib's threading backend) split the CPUs
    among themselves and still give the weights of a lone fit."""
    monkeypatch.setattr(_threads, "cpu_budget", lambda: 2)
    X, y = _data()
    alone = MiniBatchMLPClassifier(**SHARED).fit(X, y)
    with parallel_backend("threading", n_jobs=3):
        fits = Parallel()(delayed(MiniBatchMLPClassifier(**SHARED).fit)(X, y)
                          for _ in range(3))
    for est in fits:
        for a, b in zip(_weights(alone), _weights(est)):
            np.testing.assert_array_equal(a, b)
    assert _threads._training == 0


@pytest.mark.parametrize("value,expected", [("1", 1), ("2", 2), ("64", None),
                                            ("zero", None), ("", None)])
def test_thread_budget_from_environment(monkeypatch, value, expected):
    import joblib

    monkeypatch.delenv("OMP_NUM_THREADS", raising=False)
    monkeypatch.setenv("SKMINIBATCH_NUM_THREADS", value)
    cpus = joblib.cpu_count()
    assert _threads.cpu_budget() == (cpus if expected is None
                                     else min(expected, cpus))
    # joblib's loky workers set OMP_NUM_THREADS to their share
    monkeypatch.delenv("SKMINIBATCH_NUM_THREADS")
    monkeypatch.setenv("OMP_NUM_THREADS", "1")
    assert _threads.cpu_budget() == 1


def test_cpu_count_looked_up_again_when_the_affinity_changes(monkeypatch):
    import joblib

    monkeypatch.delenv("OMP_NUM_THREADS", raising=False)
    monkeypatch.delenv("SKMINIBATCH_NUM_THREADS", raising=False)
    monkeypatch.setattr(_threads, "_cpus", None)
    calls = []
    monkeypatch.setattr(joblib, "cpu_count", lambda: calls.append(1) or 8)
    affinity = [{0, 1, 2, 3, 4, 5, 6, 7}]
    monkeypatch.setattr(_threads.os, "sched_getaffinity",
                        lambda pid: affinity[0], raising=False)
    assert _threads.cpu_budget() == 8
    assert _threads.cpu_budget() == 8
    assert len(calls) == 1  # cached while the affinity stays
    affinity[0] = {0}
    monkeypatch.setattr(joblib, "cpu_count", lambda: calls.append(1) or 1)
    assert _threads.cpu_budget() == 1
    assert len(calls) == 2
    monkeypatch.delattr(_threads.os, "sched_getaffinity")  # no affinity API
    assert _threads.cpu_budget() == 1
    assert _threads.cpu_budget() == 1
    assert len(calls) == 4


# ---------------------------------------------------------------------------
# failures never leave a thread waiting
# ---------------------------------------------------------------------------
def _kernel_args(n_parts):
    """Arguments of a real ``train_steps`` call (dense, adam) after the
    thread arguments."""
    from skminibatch._layout import Layout

    rng = np.random.RandomState(0)
    lay = Layout([5, 8, 3])
    n, bs = 64, 8
    X = rng.standard_normal((n, 5))
    Y = np.eye(3)[rng.randint(0, 3, n)]
    params = 0.1 * rng.standard_normal(lay.n_params)
    hyper = np.array([0.1, 0.9, 0.9, 0.999, 1e-8, 1e-4, 1e-15, 1e-3])
    acts = np.empty(lay.act_size(bs))
    empty_i = np.empty(0, np.int32)
    return (X, np.empty(0), empty_i, empty_i, False, Y, np.ones(n),
            np.arange(n, dtype=np.int64), 0, n // bs, bs, params,
            np.empty(n_parts * lay.n_params), np.zeros_like(params),
            np.zeros_like(params),
            hyper, lay.units, lay.coef_off, lay.icpt_off, np.empty(bs * 5),
            np.empty((bs, 3)), np.empty(bs), np.empty(bs), acts,
            np.empty_like(acts), np.empty(0), np.empty(8 * n_parts),
            lay.act_offsets(bs), np.empty((3, 0)),
            K.TANH, K.OUT_SOFTMAX_LOG, K.ADAM, False, 0, 0.0, K.blas_functions())


def _run_with_timeout(target, seconds=60):
    """Run ``target`` in a thread; fail (instead of hanging) past ``seconds``."""
    outcome = {}

    def wrapper():
        try:
            outcome["value"] = target()
        except BaseException as exc:  # noqa: BLE001
            outcome["error"] = exc

    thread = threading.Thread(target=wrapper, daemon=True)
    thread.start()
    thread.join(seconds)
    assert not thread.is_alive(), "a thread of the fit is still waiting"
    return outcome


def _run_two_threads_failing(failing_tid, exc):
    """``run_train_steps`` on two threads whose thread ``failing_tid``
    raises ``exc`` instead of entering the kernel; returns (outcome, the
    thread ids that were called)."""
    entered = []

    def train_steps(tid, *args):
        entered.append(tid)
        if tid == failing_tid:
            raise exc
        return K.train_steps(tid, *args)

    fake = types.SimpleNamespace(train_steps=train_steps, SYNC_STRIDE=K.SYNC_STRIDE,
                                 SYNC_ABORT=K.SYNC_ABORT)
    outcome = _run_with_timeout(
        lambda: _threads.run_train_steps(fake, 2, 2, _kernel_args(2)))
    return outcome, sorted(entered)


def test_failing_helper_aborts_the_caller_and_is_reraised():
    outcome, entered = _run_two_threads_failing(1, MemoryError("helper failed"))
    assert isinstance(outcome.get("error"), MemoryError)
    assert entered == [0, 1]


def test_caller_failing_before_its_kernel_releases_the_helper():
    # e.g. Ctrl-C in the calling thread before its compiled call started
    outcome, entered = _run_two_threads_failing(0, KeyboardInterrupt())
    assert isinstance(outcome.get("error"), KeyboardInterrupt)
    assert entered == [0, 1]


def test_kernel_told_to_abort_returns_at_its_next_barrier():
    sync = np.zeros(3 * K.SYNC_STRIDE, np.int64)
    sync[K.SYNC_ABORT] = 1
    # thread 0 of 2, alone: the abort flag releases it at the first barrier
    result = K.train_steps(0, 2, 2, sync, *_kernel_args(2))
    assert result[1] == -1


def test_two_threads_match_one_on_the_raw_kernel():
    runs = []
    for n_threads in (1, 2):
        args = _kernel_args(2)
        result = _threads.run_train_steps(K, n_threads, 2, args)
        runs.append((result, args[11].copy()))
    assert runs[0][0] == runs[1][0]
    np.testing.assert_array_equal(runs[0][1], runs[1][1])


def test_thread_choice_follows_the_faster_option():
    choice = _threads.ThreadChoice()
    calls = 16  # steps a normal call
    assert choice.choose(1, calls) == (1, False)  # no budget: nothing to choose
    # each option is timed (a one-step call does not count) ...
    assert choice.choose(2, calls) == (2, False)
    choice.record(2, 1, 0.001)
    assert choice.choose(2, calls) == (2, False)
    choice.record(2, 10, 0.010)
    # ... one thread only once the fit has trained a while (a short fit
    # pays no trial), in short calls ...
    assert choice.choose(2, calls) == (2, False)
    choice.record(2, 500, choice.FIRST_TRIAL_AFTER)  # 1 ms a step, as before
    assert choice.choose(2, calls) == (1, True)
    assert choice.trial_steps(800) == 800 // choice.TRIAL_FRACTION
    assert choice.trial_steps(3) == 2
    choice.record(1, 10, 0.020)
    # ... then the faster is used, the other retried every RETRY calls
    picks = [choice.choose(2, calls) for _ in range(2 * choice.RETRY)]
    assert picks.count((1, True)) == 2
    assert picks.count((2, False)) == 2 * choice.RETRY - 2
    # the machine changes: two threads get slow, one thread takes over
    for _ in range(3):
        choice.record(2, 10, 0.050)
    assert choice.choose(2, calls) == (1, False)


def test_thread_choice_keeps_the_first_trial_a_small_share_of_the_fit():
    """Long steps: the first trial waits until its expected extra time (its
    steps at one thread's speed) is at most TRIAL_SHARE of the time trained,
    so a short fit of a large network pays none."""
    choice = _threads.ThreadChoice()
    calls = 13  # ~0.2 s of 15 ms steps: a trial of 2 steps, ~30 ms extra
    extra = choice.trial_steps(calls) * 0.015
    choice.record(2, 40, 0.6)  # past FIRST_TRIAL_AFTER, 15 ms a step
    assert choice.FIRST_TRIAL_AFTER < 0.6 < extra / choice.TRIAL_SHARE
    assert choice.choose(2, calls) == (2, False)
    choice.record(2, 70, 1.05)  # 1.65 s trained in all
    assert 1.65 > extra / choice.TRIAL_SHARE
    assert choice.choose(2, calls) == (1, True)


@pytest.mark.parametrize("shape", [1, 5, (2, 16), (3, 7, 1), (4, 10208), 0, (3, 0)])
@pytest.mark.parametrize("dtype", [np.float32, np.float64, np.int64])
def test_aligned_empty_starts_on_a_line_pair(shape, dtype):
    a = _threads.aligned_empty(shape, dtype)
    assert a.shape == (np.empty(shape).shape)
    assert a.dtype == dtype
    assert a.flags.c_contiguous and a.flags.writeable
    if a.size:
        assert a.ctypes.data % _threads.BUFFER_ALIGN == 0
        a[...] = 1  # the whole view is writable memory of its own
        assert a.sum() == a.size


def _buffer_arrays(buffers):
    return {name: value for name, value in vars(buffers).items()
            if isinstance(value, np.ndarray) and value.size
            and name not in ("plan", "blas", "act_off")}


@pytest.mark.parametrize("units, batch, sparse, kernel", [
    ((100, 100, 1), 16, False, "train_steps_units"),   # c1: cut by units
    ((784, 256, 256, 10), 256, False, "train_steps"),  # c3: by rows, first_t
    ((30, 17, 3), 13, False, "train_steps"),           # odd sizes
    ((50, 20, 2), 32, True, "train_steps"),            # sparse: partials
])
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_buffers_threads_write_start_on_their_own_lines(units, batch, sparse, kernel,
                                                        dtype):
    """Each thread's block in these buffers is padded to whole 128-byte
    units (pages, in the hidden-unit kernel's batch, activation and delta
    buffers), which keeps threads off each other's cache lines (pages) only
    if the buffer itself starts on one (NumPy aligns to 16 bytes)."""
    from skminibatch._layout import Layout
    from skminibatch._training import _EpochBuffers

    layout = Layout(np.asarray(units))
    buffers = _EpochBuffers(layout, batch, units[0], units[-1], dtype, 2, sparse,
                            kernel)
    arrays = _buffer_arrays(buffers)
    expected = {"grads", "Yb", "swb", "row_loss", "acts", "deltas", "l2_parts"}
    expected |= {"packed", "partials", "Xb"} if kernel == "train_steps_units" else set()
    expected |= {"partials"} if sparse else {"Xb"}
    if dtype == np.float64 and units[0] == 784:
        expected.add("first_t")
    assert expected <= set(arrays)
    misaligned = {name: a.ctypes.data % _threads.BUFFER_ALIGN
                  for name, a in arrays.items()
                  if a.ctypes.data % _threads.BUFFER_ALIGN}
    assert not misaligned


@pytest.mark.parametrize("units, batch", [
    ((100, 100, 1), 16),            # c1
    ((784, 256, 256, 10), 16),      # c3: two hidden layers, deltas passed back
    ((30, 17, 19, 13, 3), 13),      # odd sizes, three hidden layers
])
@pytest.mark.parametrize("n_parts", [2, 3])
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_units_kernel_thread_blocks_start_on_pages_of_their_own(units, batch,
                                                                 n_parts, dtype):
    """Every block of batch rows, activations, deltas, delta products and
    output shares that ``train_steps_units`` gives one thread starts on a
    4 KiB page boundary and ends before the next block's page; each part's
    packed weights (not page-aligned) end on an earlier page than the next
    part's start: a core's prefetchers, which stop at page boundaries, then
    never fetch lines of another thread's block. The blocks are where the
    kernel takes them (its offsets, recomputed here from the plan as the
    kernel does)."""
    from skminibatch._layout import Layout
    from skminibatch._training import _EpochBuffers

    page = 4096
    assert _threads.BUFFER_ALIGN % page == 0
    units = np.asarray(units)
    L = len(units) - 1
    buffers = _EpochBuffers(Layout(units), batch, units[0], units[-1], dtype,
                            n_parts, False, "train_steps_units")
    plan = buffers.plan
    H = K.PLAN_HEAD
    oblk = plan[3]
    ablk, hoff, doff, dpoff = plan[H:H + 4 * L].reshape(4, L)
    blocks = {"Xb": [], "acts": [], "deltas": [], "partials": []}
    xblk = K._padded.py_func(batch * units[0])
    blocks["Xb"] = [(q * xblk, batch * units[0]) for q in range(n_parts)]
    for h in range(1, L):
        for q in range(n_parts):
            j0, j1 = K.part_range.py_func(units[h], n_parts, q)
            size = batch * (j1 - j0)
            assert size <= ablk[h]
            blocks["acts"] += [(hoff[h] + (par * n_parts + q) * ablk[h], size)
                               for par in (0, 1)]
            blocks["deltas"].append((doff[h] + q * ablk[h], size))
            if h < L - 1:  # products passed back to layer h, by destination
                blocks["deltas"] += [(dpoff[h] + (p * n_parts + q) * ablk[h], size)
                                     for p in range(n_parts)]
    for q in range(n_parts):  # output shares; each thread's P and D at the end
        blocks["partials"] += [((par * n_parts + q) * oblk, batch * units[-1])
                               for par in (0, 1)]
        blocks["acts"].append((buffers.acts.shape[0] - (n_parts - q) * oblk,
                               batch * units[-1]))
        blocks["deltas"].append((buffers.deltas.shape[0] - (n_parts - q) * oblk,
                                 batch * units[-1]))
    # each part's packed weights, state and gradient (rows of ``packed``):
    # not page-aligned, but never on a page with another part's block
    psz = plan[2]
    blocks["packed"] = []
    for q in range(n_parts):
        offsets = np.zeros(2 * L + 2, np.int64)
        K._units_part_offsets(units, n_parts, q, offsets)
        blocks["packed"] += [(r * n_parts * psz + q * psz, offsets[-1])
                             for r in range(4)]
    itemsize = np.dtype(dtype).itemsize
    for name, found in blocks.items():
        buf = getattr(buffers, name)
        address = buf.ctypes.data
        found.sort()
        for (start, size), (following, _) in zip(found, found[1:] + [(None, 0)]):
            if name != "packed":
                assert (address + start * itemsize) % page == 0, (name, start)
            end = start + size
            assert end <= buf.size, (name, start)
            if following is not None:  # the next block starts on a later page
                last_page = (address + end * itemsize - 1) // page
                assert (address + following * itemsize) // page > last_page, (
                    name, start, following)


def test_barrier_counters_start_on_their_own_lines():
    seen = []

    def train_steps(tid, n_threads, n_parts, sync, *args):
        seen.append((sync.ctypes.data % _threads.BUFFER_ALIGN, sync.copy()))
        return (0.0, 0, 0, 0)

    fake = types.SimpleNamespace(train_steps=train_steps, SYNC_STRIDE=K.SYNC_STRIDE,
                                 SYNC_ABORT=K.SYNC_ABORT)
    _threads.run_train_steps(fake, 2, 2, ())
    assert [offset for offset, _ in seen] == [0, 0]
    for _, sync in seen:
        assert sync.shape == (3 * K.SYNC_STRIDE,) and not sync.any()


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
@pytest.mark.parametrize("n_threads", [1, 2])
def test_all_finite(monkeypatch, dtype, n_threads):
    """``all_finite`` (the fit's check of X): False for a NaN or an infinity
    in either half of the values (large arrays are summed in two halves on
    two threads) and when the squares overflow, True otherwise; BLAS runs
    limited to one thread (a multi-threaded call leaves OpenBLAS's idle
    workers spinning into the fit)."""
    from threadpoolctl import threadpool_info

    monkeypatch.setenv("SKMINIBATCH_NUM_THREADS", str(n_threads))
    seen_threads, real_dot = [], np.dot

    def dot(a, b):
        seen_threads.append(max(lib["num_threads"] for lib in threadpool_info()
                                if lib["user_api"] == "blas"))
        return real_dot(a, b)

    monkeypatch.setattr(_threads.np, "dot", dot)
    n = _threads.FINITE_SPLIT_VALUES + 11
    values = np.random.default_rng(0).standard_normal(n).astype(dtype)
    assert _threads.all_finite(values)
    assert seen_threads == [1] * (2 if n_threads == 2 else 1)
    for where in (3, n // 2 - 1, n // 2, n - 1):
        for bad in (np.nan, np.inf, -np.inf):
            v = values.copy()
            v[where] = bad
            assert not _threads.all_finite(v)
    big = np.full(10, np.finfo(dtype).max / 2, dtype=dtype)
    assert not _threads.all_finite(big)  # finite, but the squares overflow
    assert _threads.all_finite(np.ones(5, dtype))
    small = np.ones(5, dtype)
    small[2] = np.nan
    assert not _threads.all_finite(small)


@pytest.mark.parametrize("sparse", [False, True])
@pytest.mark.parametrize("est_cls", [MiniBatchMLPClassifier, MiniBatchMLPRegressor])
def test_predict_same_on_any_threads(monkeypatch, est_cls, sparse):
    """Prediction cuts the rows into chunks fixed by their number and the
    layer widths, shared by the threads: every thread count gives the same
    bits (here 300 rows in chunks of 64, 5 chunks), with BLAS limited to one
    thread meanwhile."""
    from skminibatch import _layout

    X, y = _data()
    if est_cls is MiniBatchMLPRegressor:
        y = X[:, 0] - X[:, 1]
    if sparse:
        X = sp.csr_matrix(np.where(np.abs(X) > 0.8, X, 0.0))
    est = est_cls(hidden_layer_sizes=(20, 12), max_iter=3, random_state=0).fit(X, y)
    monkeypatch.setattr(_layout, "PREDICT_CHUNK_VALUES", 64)
    limits = []
    real_limit = _layout.single_threaded_blas

    def recording_limit():
        limits.append(1)
        return real_limit()

    monkeypatch.setattr(_layout, "single_threaded_blas", recording_limit)
    out = {}
    for n_threads in (1, 2, 3):
        monkeypatch.setenv("SKMINIBATCH_NUM_THREADS", str(n_threads))
        out[n_threads] = (est.predict_proba(X) if est_cls is MiniBatchMLPClassifier
                          else est.predict(X))
    assert np.array_equal(out[1], out[2]) and np.array_equal(out[1], out[3])
    assert limits == [1, 1, 1]
    monkeypatch.setattr(_layout, "PREDICT_CHUNK_VALUES", 1 << 17)  # one chunk
    one = (est.predict_proba(X) if est_cls is MiniBatchMLPClassifier
           else est.predict(X))
    np.testing.assert_allclose(one, out[1], rtol=1e-12, atol=1e-15)


def _other_threads_cpu_ticks():
    """CPU clock ticks used so far by this process's threads other than the
    main one (Linux)."""
    import os

    ticks = 0
    for tid in os.listdir("/proc/self/task"):
        if int(tid) == os.getpid():
            continue
        try:
            with open(f"/proc/self/task/{tid}/stat") as f:
                fields = f.read().rsplit(")", 1)[1].split()
        except OSError:  # the thread ended
            continue
        ticks += int(fields[11]) + int(fields[12])  # utime + stime
    return ticks


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="reads /proc")
def test_no_blas_worker_left_spinning():
    """Fit and predict leave no BLAS worker thread busy afterwards. OpenBLAS's
    idle workers spin for ~0.1 s after a call that used them: a predict on
    OpenBLAS's threads left ~0.1 s of a core's time to them, taken from a
    fit that followed (a grid search). Not a timing test: it counts the CPU
    ticks the other threads use in the 0.3 s after each call (spinning: 10
    or more; here 0)."""
    import time

    rng = np.random.RandomState(0)
    X = rng.standard_normal((6000, 300))  # products large enough for BLAS threads
    y = (X[:, 0] > 0).astype(int)
    est = MiniBatchMLPClassifier(hidden_layer_sizes=(256,), max_iter=1,
                                 batch_size=512, random_state=0)
    est.fit(X[:1000], y[:1000])
    time.sleep(0.3)  # any worker woken before this test goes back to sleep
    for action in (lambda: est.fit(X, y), lambda: est.predict(X),
                   lambda: est.predict_proba(X[:3000])):
        action()
        before = _other_threads_cpu_ticks()
        time.sleep(0.3)
        assert _other_threads_cpu_ticks() - before <= 3
