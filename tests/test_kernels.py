"""Tests of the compiled kernels in ``skminibatch._kernels._network`` against
the plain-NumPy float64 reference in ``tests/naive.py``.

Shapes are tiny and shared between tests so that each kernel compiles once
per dtype; the whole file (Numba compilation included) runs in well under a
minute.
"""

import ast
import math
import pathlib

import numpy as np
import scipy.sparse
import pytest
from scipy.special import expit

from skminibatch._kernels import _network as K
from skminibatch._layout import KernelInput, Layout
from skminibatch._threads import aligned_empty, run_train_steps
from skminibatch._training import _EpochBuffers

try:  # tests/ importable as a package (rootdir on sys.path) ...
    from tests import naive
except ImportError:  # ... or only tests/ itself on sys.path (rootdir-less run)
    import naive


HIDDEN = {
    "identity": K.IDENTITY,
    "logistic": K.LOGISTIC,
    "tanh": K.TANH,
    "relu": K.RELU,
}
OUTPUT = {
    "squared": K.OUT_SQUARED,
    "poisson": K.OUT_POISSON,
    "binary_log": K.OUT_BINARY_LOG,
    "softmax_log": K.OUT_SOFTMAX_LOG,
}
DTYPES = [np.float32, np.float64]
DTYPE_IDS = ["float32", "float64"]

#: relative tolerance of kernel-vs-reference comparisons, per dtype
RTOL = {np.float32: 1e-4, np.float64: 1e-10}

UNITS = (5, 4, 3, 3)  # n_features, two hidden layers, n_outputs
MAX_ROWS = 9  # rows the batch buffers hold
NB = 7  # rows actually used (< MAX_ROWS)
ALPHA = 0.03


def clip_eps(dtype):
    """The probability clip scikit-learn uses for this dtype."""
    return float(np.finfo(dtype).eps)


def assert_close(actual, desired, dtype, rtol=None, err_msg=""):
    """``rtol`` relative to each entry, with an absolute floor of ``rtol``
    times the largest reference entry (entries that cancel to ~0 cannot be
    compared relatively in float32)."""
    rtol = RTOL[dtype] if rtol is None else rtol
    desired = np.asarray(desired, dtype=np.float64)
    actual = np.asarray(actual, dtype=np.float64)
    scale = float(np.max(np.abs(desired))) if desired.size else 0.0
    np.testing.assert_allclose(actual, desired, rtol=rtol,
                               atol=rtol * max(scale, 1e-300), err_msg=err_msg)


def make_targets(rng, out, n, n_out):
    """Targets valid for the loss ``out``."""
    if out == "squared":
        Y = rng.standard_normal((n, n_out))
    elif out == "poisson":  # non-negative counts and rates, some zeros
        Y = rng.poisson(1.3, size=(n, n_out)).astype(np.float64)
        Y[0, 0] = 0.0
        Y[1, 1] = 2.5
    elif out == "binary_log":  # 0/1, both present
        Y = rng.integers(0, 2, size=(n, n_out)).astype(np.float64)
        if n_out == 1:
            Y[0, 0], Y[1, 0] = 0.0, 1.0
        else:
            Y[0, 0], Y[0, 1] = 0.0, 1.0
    elif out == "softmax_log":  # one-hot rows
        Y = np.eye(n_out)[rng.integers(0, n_out, size=n)]
    else:
        raise ValueError(out)
    return Y


class Problem:
    """A random network and data set, already rounded to ``dtype``; the
    float64 list form holds exactly the values the kernels see."""

    def __init__(self, seed, hidden, out, dtype, n=MAX_ROWS, units=UNITS):
        rng = np.random.default_rng(seed)
        self.units_tuple = tuple(units)
        self.hidden, self.out, self.dtype = hidden, out, dtype
        coefs, intercepts = naive.random_network(rng, units)
        self.params = naive.pack(coefs, intercepts, dtype)
        self.coefs, self.intercepts = naive.unpack(self.params, units)
        self.X = np.ascontiguousarray(rng.standard_normal((n, units[0])), dtype=dtype)
        self.Y = np.ascontiguousarray(make_targets(rng, out, n, units[-1]), dtype=dtype)
        # non-uniform sample weights
        self.sw = np.ascontiguousarray(rng.uniform(0.2, 3.0, size=n), dtype=dtype)
        self.rng = rng
        (self.units, self.coef_off, self.icpt_off, self.act_off,
         self.buf_size) = naive.layout(units, n)
        self.n_params = naive.n_params(units)

    @property
    def codes(self):
        return HIDDEN[self.hidden], OUTPUT[self.out]

    def naive_loss_grad(self, rows, params=None, alpha=ALPHA, eps=None):
        eps = clip_eps(self.dtype) if eps is None else eps
        if params is None:
            coefs, intercepts = self.coefs, self.intercepts
        else:
            coefs, intercepts = naive.unpack(params, self.units_tuple)
        loss, cg, ig = naive.loss_and_grad(
            coefs, intercepts, self.X[rows], self.Y[rows], self.sw[rows],
            self.hidden, self.out, alpha, eps)
        return loss, naive.pack(cg, ig)

    def kernel_loss_grad(self, params, nb, max_rows=None, alpha=ALPHA, eps=None):
        """``batch_loss_grad`` on the first ``nb`` rows, with buffers for
        ``max_rows`` rows pre-filled with NaN."""
        max_rows = self.X.shape[0] if max_rows is None else max_rows
        eps = clip_eps(self.dtype) if eps is None else eps
        units, coef_off, icpt_off, act_off, _ = naive.layout(self.units_tuple, max_rows)
        acts, deltas = naive.buffers(self.units_tuple, max_rows, self.dtype)
        grads = np.full(self.n_params, np.nan, dtype=self.dtype)
        hidden, out = self.codes
        loss = K.batch_loss_grad(params, grads, self.X[:max_rows], self.Y[:max_rows],
                                 self.sw[:max_rows], nb, units, coef_off, icpt_off,
                                 acts, deltas, act_off, hidden, out, float(alpha),
                                 float(eps))
        return loss, grads


def problem_seed(*labels):
    """A fixed seed per parameter combination (stable across runs)."""
    return sum((i + 1) * 7919 * sum(map(ord, str(x))) for i, x in enumerate(labels))


dtype_param = pytest.mark.parametrize("dtype", DTYPES, ids=DTYPE_IDS)
sparse_param = pytest.mark.parametrize("sparse", [False, True],
                                      ids=["dense", "csr"])


def kernel_input(X, sparse):
    """``(X, sp_data, sp_indices, sp_indptr, sparse)`` as the estimators pass
    them; the CSR copy has explicit zeros removed so only nonzeros are read."""
    from skminibatch._layout import KernelInput

    return KernelInput(scipy.sparse.csr_matrix(X) if sparse else X).args()
hidden_param = pytest.mark.parametrize("hidden", list(HIDDEN))
out_param = pytest.mark.parametrize("out", list(OUTPUT))


# ---------------------------------------------------------------------------
# forward, output loss/delta, batch loss and gradient
# ---------------------------------------------------------------------------
@dtype_param
@out_param
@hidden_param
def test_forward_loss_grad_match_reference(hidden, out, dtype):
    prob = Problem(problem_seed("fwd", hidden, out, dtype), hidden, out, dtype)
    hc, oc = prob.codes
    rows = np.arange(NB)
    # Poison the rows past nb: they must never be read.
    prob.X[NB:] = np.nan
    prob.Y[NB:] = np.nan
    prob.sw[NB:] = np.nan
    eps = clip_eps(dtype)

    # forward: every layer's activations
    acts, _ = naive.buffers(prob.units_tuple, MAX_ROWS, dtype)
    K.forward(prob.params, prob.X, NB, prob.units, prob.coef_off, prob.icpt_off,
              acts, prob.act_off, hc, oc)
    ref_acts, _ = naive.forward(prob.coefs, prob.intercepts, prob.X[:NB], hidden, out)
    for l in range(1, len(UNITS)):
        got = naive.layer_block(acts, prob.act_off, prob.units, l, NB)
        assert_close(got, ref_acts[l], dtype, err_msg=f"layer {l}")
    if out == "softmax_log":
        P = naive.layer_block(acts, prob.act_off, prob.units, len(UNITS) - 1, NB)
        assert_close(P.sum(axis=1), np.ones(NB), dtype)

    # output_loss_and_delta on the reference output activations
    P = np.ascontiguousarray(ref_acts[-1], dtype=dtype)
    P64 = P.astype(np.float64)
    D = np.full_like(P, np.nan)
    total = K.output_loss_and_delta(oc, P, prob.Y[:NB], prob.sw[:NB], D, eps)
    Y64 = prob.Y[:NB].astype(np.float64)
    sw64 = prob.sw[:NB].astype(np.float64)
    ref_total = np.sum(sw64 * naive.per_sample_loss(out, Y64, P64, eps))
    assert_close(total, ref_total, dtype)
    assert_close(D, (P64 - Y64) * sw64[:, None], dtype)

    # batch_loss_grad: loss with L2 and the normalised gradient
    loss, grads = prob.kernel_loss_grad(prob.params, NB, max_rows=MAX_ROWS)
    ref_loss, ref_grads = prob.naive_loss_grad(rows)
    assert np.all(np.isfinite(grads))
    assert_close(loss, ref_loss, dtype)
    assert_close(grads, ref_grads, dtype)
    # params are not modified
    np.testing.assert_array_equal(prob.params, naive.pack(prob.coefs, prob.intercepts, dtype))


@dtype_param
def test_output_loss_clips_probabilities(dtype):
    eps = 1e-3
    P = np.array([[0.0, 1.0, 0.5],
                  [1.0, 0.0, 0.0]], dtype=dtype)
    Y = np.array([[1.0, 0.0, 1.0],
                  [0.0, 1.0, 0.0]], dtype=dtype)
    sw = np.array([2.0, 0.5], dtype=dtype)
    # hand-computed: every 0/1 mismatch costs -log(eps)
    expected = {
        K.OUT_BINARY_LOG: 2.0 * (-2 * math.log(eps) - math.log(0.5))
        + 0.5 * (-2 * math.log(eps) - math.log(1 - eps)),
        K.OUT_SOFTMAX_LOG: 2.0 * (-math.log(eps) - math.log(0.5))
        + 0.5 * (-math.log(eps)),
    }
    for code, name in [(K.OUT_BINARY_LOG, "binary_log"),
                       (K.OUT_SOFTMAX_LOG, "softmax_log")]:
        D = np.full_like(P, np.nan)
        total = K.output_loss_and_delta(code, P, Y, sw, D, eps)
        ref = np.sum(sw.astype(np.float64) * naive.per_sample_loss(name, Y, P, eps))
        assert ref == pytest.approx(expected[code], rel=1e-12)
        assert total == pytest.approx(expected[code], rel=RTOL[dtype])
        np.testing.assert_allclose(D, (P - Y) * sw[:, None], rtol=RTOL[dtype])


# ---------------------------------------------------------------------------
# finite differences
# ---------------------------------------------------------------------------
def fd_problem(hidden, out, units):
    """A float64 problem whose hidden pre-activations all stay clear of 0
    (the ReLU kink) by far more than a finite-difference step moves them."""
    for attempt in range(50):
        prob = Problem(problem_seed("fd", hidden, out, attempt), hidden, out,
                       np.float64, units=units)
        _, pre = naive.forward(prob.coefs, prob.intercepts, prob.X[:NB], hidden, out)
        if min(np.abs(z).min() for z in pre[:-1]) > 1e-3:
            return prob
    pytest.fail("no problem with pre-activations away from 0")


def fd_gradient(prob, params, coords, h=1e-5, **kw):
    """Central differences of ``batch_loss_grad``'s loss at ``coords``."""
    fd = np.empty(len(coords))
    for i, k in enumerate(coords):
        plus, minus = params.copy(), params.copy()
        plus[k] += h
        minus[k] -= h
        lp, _ = prob.kernel_loss_grad(plus, NB, max_rows=MAX_ROWS, **kw)
        lm, _ = prob.kernel_loss_grad(minus, NB, max_rows=MAX_ROWS, **kw)
        fd[i] = (lp - lm) / (2 * h)
    return fd


def fd_coords(prob, seed, n_coefs=20, n_intercepts=6):
    rng = np.random.default_rng(seed)
    n_coef = int(prob.icpt_off[0])
    return np.concatenate([
        rng.choice(n_coef, n_coefs, replace=False),
        rng.choice(np.arange(n_coef, prob.n_params), n_intercepts, replace=False)])


@out_param
@hidden_param
def test_gradient_matches_finite_differences(hidden, out):
    # The squared error is averaged over the outputs while its delta is
    # P - Y (scikit-learn's convention), so loss and gradient agree only for
    # one output; see test_squared_error_gradient_scale_with_several_outputs.
    units = UNITS[:-1] + (1,) if out == "squared" else UNITS
    prob = fd_problem(hidden, out, units)
    eps = 1e-12
    if out in ("binary_log", "softmax_log"):  # no clipping in play
        P = naive.predict(prob.coefs, prob.intercepts, prob.X[:NB], hidden, out)
        assert P.min() > 1e-6 and P.max() < 1 - 1e-6

    params = prob.params.copy()
    loss, grads = prob.kernel_loss_grad(params, NB, max_rows=MAX_ROWS, eps=eps)
    grads = grads.copy()
    coords = fd_coords(prob, problem_seed("fd-coords", hidden, out))
    fd = fd_gradient(prob, params, coords, eps=eps)
    floor = 1e-3 * np.max(np.abs(grads))
    for k, fd_k in zip(coords, fd):
        rel = abs(fd_k - grads[k]) / max(abs(fd_k), abs(grads[k]), floor)
        assert rel < 1e-6, (k, fd_k, grads[k], rel)
    # the evaluation must be a pure function of params
    loss2, grads2 = prob.kernel_loss_grad(params, NB, max_rows=MAX_ROWS, eps=eps)
    assert loss2 == loss
    np.testing.assert_array_equal(grads2, grads)


@hidden_param
def test_squared_error_gradient_scale_with_several_outputs(hidden):
    """Pins scikit-learn's convention (scikit-learn issue #8349): with
    ``n_outputs`` outputs the squared-error data gradient is ``n_outputs``
    times the derivative of the returned (output-averaged) loss."""
    prob = fd_problem(hidden, "squared", UNITS)
    n_out = UNITS[-1]
    params = prob.params.copy()
    _, grads = prob.kernel_loss_grad(params, NB, max_rows=MAX_ROWS, alpha=0.0)
    grads = grads.copy()
    coords = fd_coords(prob, problem_seed("fd-sq", hidden))
    fd = fd_gradient(prob, params, coords, alpha=0.0)
    floor = 1e-3 * np.max(np.abs(grads))
    for k, fd_k in zip(coords, fd):
        rel = abs(n_out * fd_k - grads[k]) / max(abs(n_out * fd_k), abs(grads[k]), floor)
        assert rel < 1e-6, (k, n_out * fd_k, grads[k], rel)


# ---------------------------------------------------------------------------
# full batch in chunks, chunked prediction
# ---------------------------------------------------------------------------
N_FULL = 23
CHUNK = 5  # does not divide N_FULL


@dtype_param
@out_param
@hidden_param
@sparse_param
def test_full_loss_grad_chunked_equals_single_batch(hidden, out, dtype, sparse):
    prob = Problem(problem_seed("full", hidden, out, dtype), hidden, out, dtype, n=N_FULL)
    hc, oc = prob.codes
    eps = clip_eps(dtype)
    units, coef_off, icpt_off, act_off, _ = naive.layout(prob.units_tuple, CHUNK)
    acts, deltas = naive.buffers(prob.units_tuple, CHUNK, dtype)
    grads = np.full(prob.n_params, np.nan, dtype=dtype)
    chunk_grads = np.full(prob.n_params, np.nan, dtype=dtype)
    loss = K.full_loss_grad(*kernel_input(prob.X, sparse), prob.Y, prob.sw,
                            prob.params, grads, chunk_grads,
                            units, coef_off, icpt_off, acts, deltas, act_off, hc, oc,
                            ALPHA, eps, CHUNK)

    one_loss, one_grads = prob.kernel_loss_grad(prob.params, N_FULL)
    # same sums, different grouping: agreement to rounding
    tight = 1e-12 if dtype == np.float64 else 2e-5
    assert_close(loss, one_loss, dtype, rtol=tight)
    assert_close(grads, one_grads, dtype, rtol=tight)

    ref_loss, ref_grads = prob.naive_loss_grad(np.arange(N_FULL))
    assert_close(loss, ref_loss, dtype)
    assert_close(grads, ref_grads, dtype)


@dtype_param
@out_param
@hidden_param
@sparse_param
def test_predict_chunked_matches_reference(hidden, out, dtype, sparse):
    prob = Problem(problem_seed("pred", hidden, out, dtype), hidden, out, dtype, n=N_FULL)
    hc, oc = prob.codes
    units, coef_off, icpt_off, act_off, _ = naive.layout(prob.units_tuple, CHUNK)
    acts, _ = naive.buffers(prob.units_tuple, CHUNK, dtype)
    result = np.full((N_FULL, UNITS[-1]), np.nan, dtype=dtype)
    K.predict_chunked(*kernel_input(prob.X, sparse), N_FULL, prob.params, units,
                      coef_off, icpt_off, acts, act_off, hc, oc, result, CHUNK)
    ref = naive.predict(prob.coefs, prob.intercepts, prob.X, hidden, out)
    assert_close(result, ref, dtype)


# ---------------------------------------------------------------------------
# train_steps: optimizer steps in closed form
# ---------------------------------------------------------------------------
N_TRAIN = 20
BATCH = 6  # batches of 6, 6, 6 and a remainder of 2


def batch_rows(order, k, batch_size=BATCH):
    """Rows of batch ``k`` of a pass, by definition."""
    return order[k * batch_size:(k + 1) * batch_size]


class Trainer:
    """Everything ``train_steps`` takes, for one problem and solver."""

    # hyper = [lr, momentum, beta_1, beta_2, epsilon, alpha, eps_clip, lr_init]
    SGD_HYPER = [0.1, 0.9, 0.5, 0.5, 0.5, ALPHA, None, 77.0]  # lr_init unused
    ADAM_HYPER = [99.0, 0.5, 0.9, 0.999, 1e-8, ALPHA, None, 0.01]  # lr unused

    def __init__(self, prob, solver, known_state=True, sparse=False, n_parts=1,
                 n_threads=1, first_t=None):
        self.prob = prob
        self.sparse = sparse
        self.n_parts = n_parts
        self.n_threads = n_threads
        dtype = prob.dtype
        self.solver = solver
        hyper = self.ADAM_HYPER if solver == "adam" else self.SGD_HYPER
        hyper = [clip_eps(dtype) if v is None else v for v in hyper]
        # float64, as the estimators pass it; the kernel casts to dtype
        self.hyper = np.array(hyper, dtype=np.float64)
        self.h64 = self.hyper
        rng = prob.rng
        self.order = rng.permutation(prob.X.shape[0]).astype(np.int64)
        n = prob.n_params
        if solver == "adam":
            if known_state:
                self.state1 = (0.1 * rng.standard_normal(n)).astype(dtype)
                self.state2 = rng.uniform(1e-3, 5e-2, n).astype(dtype)
            else:  # fresh Adam state
                self.state1 = np.zeros(n, dtype)
                self.state2 = np.zeros(n, dtype)
        else:
            self.state1 = (0.05 * rng.standard_normal(n) if known_state
                           else np.zeros(n)).astype(dtype)
            self.state2 = np.full(n, np.nan, dtype)  # unused by SGD
        self.params = prob.params.copy()
        # dense: one block of gradient sums per part
        self.grads = np.full(n * (1 if sparse else n_parts), np.nan, dtype)
        nf, no = prob.units_tuple[0], prob.units_tuple[-1]
        self.Xb = np.full(0 if sparse else BATCH * nf, np.nan, dtype)
        self.Yb = np.full((BATCH, no), np.nan, dtype)
        self.swb = np.full(BATCH, np.nan, dtype)
        (self.units, self.coef_off, self.icpt_off, self.act_off,
         _) = naive.layout(prob.units_tuple, BATCH)
        self.acts, self.deltas = naive.buffers(prob.units_tuple, BATCH, dtype)
        self.row_loss = np.full(BATCH, np.nan)
        units = prob.units_tuple
        shared = n_parts > 1
        self.partials = np.full(n_parts * BATCH * units[1] if shared else 0, np.nan,
                                dtype)
        self.l2_parts = np.full(8 * n_parts, np.nan)
        # the first layer kept transposed during a call: as the estimators
        # choose (None), or forced on or off
        fi, fo = units[0], units[1]
        self.first_t = (K.first_layer_buffer(units, dtype, sparse, BATCH, n_parts)
                        if first_t is None
                        else np.full((3, fi * fo if first_t else 0), np.nan, dtype))

    def args(self, first_batch, n_steps, adam_t=0):
        prob = self.prob
        hc, oc = prob.codes
        solver = K.ADAM if self.solver == "adam" else K.SGD
        nesterov = self.solver == "nesterov"
        return (*kernel_input(prob.X, self.sparse), prob.Y, prob.sw, self.order,
                first_batch, n_steps, BATCH, self.params, self.grads, self.state1,
                self.state2, self.hyper, self.units, self.coef_off, self.icpt_off,
                self.Xb, self.Yb, self.swb, self.row_loss, self.acts, self.deltas,
                self.partials, self.l2_parts, self.act_off, self.first_t, hc, oc,
                solver, nesterov, adam_t, 0.0, K.blas_functions())

    def run(self, first_batch, n_steps, adam_t=0, sync=None):
        args = self.args(first_batch, n_steps, adam_t)
        if sync is not None:  # one thread of n_parts, on a given sync array
            return K.train_steps(0, self.n_parts, self.n_parts, sync, *args)
        loss_acc, seen, loss_rows, updates = run_train_steps(
            K, self.n_threads, self.n_parts, args)
        # every weight is non-zero here: every step updates and counts
        assert loss_rows == seen and updates == n_steps
        return loss_acc, seen

    def run_checked(self, first_batch, n_steps, adam_t=0):
        """:meth:`run`, then check loss, weights and optimizer state against
        :meth:`reference` from the same start; returns ``(seen, reference
        seen)``."""
        p0, s10, s20 = self.params.copy(), self.state1.copy(), self.state2.copy()
        loss_sum, seen = self.run(first_batch, n_steps, adam_t)
        ref_p, ref_s1, ref_s2, ref_loss_sum, ref_seen = self.reference(
            p0, s10, s20, first_batch, n_steps, adam_t)
        assert_trained_like(self, p0, loss_sum, (ref_p, ref_s1, ref_s2, ref_loss_sum),
                            self.solver, self.prob.dtype)
        return seen, ref_seen

    def reference(self, params, state1, state2, first_batch, n_steps, adam_t=0):
        """Naive gradient + naive update, batch after batch (float64)."""
        lr, momentum, beta_1, beta_2, epsilon, alpha, eps_clip, lr_init = self.h64
        params = params.astype(np.float64)
        s1, s2 = state1.astype(np.float64), state2.astype(np.float64)
        loss_sum, seen = 0.0, 0
        for s in range(n_steps):
            rows = batch_rows(self.order, first_batch + s)
            loss, g = self.prob.naive_loss_grad(rows, params=params, alpha=alpha,
                                                eps=eps_clip)
            loss_sum += loss * rows.size
            seen += rows.size
            if self.solver == "adam":
                params, s1, s2 = naive.adam_step(params, g, s1, s2, adam_t + s + 1,
                                                 lr_init, beta_1, beta_2, epsilon)
            else:
                params, s1 = naive.sgd_step(params, g, s1, lr, momentum,
                                            self.solver == "nesterov")
        return params, s1, s2, loss_sum, seen


def assert_trained_like(tr, p0, loss_sum, ref, solver, dtype):
    """A trainer's loss, weights and optimizer state match the reference's
    ``(params, state1, state2, loss_sum)``; ``p0`` = weights before."""
    ref_p, ref_s1, ref_s2, ref_loss_sum = ref
    assert_close(loss_sum, ref_loss_sum, dtype)
    # the step itself (not swamped by the parameters' size) and the result
    step_rtol = 1e-9 if dtype == np.float64 else 2e-3
    assert_close(tr.params.astype(np.float64) - p0, ref_p - p0, dtype, rtol=step_rtol)
    assert_close(tr.params, ref_p, dtype)
    assert_close(tr.state1, ref_s1, dtype)
    if solver == "adam":
        assert_close(tr.state2, ref_s2, dtype)
    else:  # SGD leaves the second state alone
        assert np.all(np.isnan(tr.state2))


TRAIN_MODELS = [("tanh", "softmax_log"), ("relu", "binary_log"),
                ("logistic", "poisson"), ("identity", "squared")]


@dtype_param
@pytest.mark.parametrize("hidden,out", TRAIN_MODELS)
@pytest.mark.parametrize("solver", ["sgd", "nesterov", "adam"])
@pytest.mark.parametrize("first_batch,n_steps,sparse",
                         [(0, 1, False), (1, 1, False), (3, 1, False),
                          (1, 3, False), (1, 3, True)],
                         ids=["first", "second", "remainder", "three-to-end",
                              "three-to-end-csr"])
def test_train_steps_closed_form(first_batch, n_steps, sparse, solver, hidden, out,
                                 dtype):
    prob = Problem(problem_seed("train", hidden, out, dtype), hidden, out, dtype,
                   n=N_TRAIN)
    tr = Trainer(prob, solver, sparse=sparse)
    seen, ref_seen = tr.run_checked(first_batch, n_steps,
                                    adam_t=4 if solver == "adam" else 0)
    expected_seen = sum(batch_rows(tr.order, first_batch + s).size
                        for s in range(n_steps))
    assert seen == ref_seen == expected_seen
    if first_batch + n_steps == 4:  # the pass's last batch holds the remainder
        assert batch_rows(tr.order, 3).size == N_TRAIN - 3 * BATCH


@dtype_param
def test_train_steps_two_consecutive_adam_steps(dtype):
    hidden, out = "tanh", "softmax_log"
    prob = Problem(problem_seed("adam2", dtype), hidden, out, dtype, n=N_TRAIN)
    tr = Trainer(prob, "adam", known_state=False)
    p0 = tr.params.copy()
    zeros = np.zeros(prob.n_params)
    l1, n1 = tr.run(first_batch=0, n_steps=1, adam_t=0)
    l2, n2 = tr.run(first_batch=1, n_steps=1, adam_t=1)

    ref_p, ref_m, ref_v, ref_loss_sum, ref_seen = tr.reference(p0, zeros, zeros, 0, 2)
    assert (n1, n2) == (BATCH, BATCH) and n1 + n2 == ref_seen
    assert_close(l1 + l2, ref_loss_sum, dtype)
    assert_close(tr.params.astype(np.float64) - p0, ref_p - p0, dtype,
                 rtol=1e-9 if dtype == np.float64 else 2e-3)
    assert_close(tr.params, ref_p, dtype)
    assert_close(tr.state1, ref_m, dtype)
    assert_close(tr.state2, ref_v, dtype)

    # one call of two steps is the same computation
    tr2 = Trainer(Problem(problem_seed("adam2", dtype), hidden, out, dtype, n=N_TRAIN),
                  "adam", known_state=False)
    np.testing.assert_array_equal(tr2.order, tr.order)
    l12, n12 = tr2.run(first_batch=0, n_steps=2, adam_t=0)
    assert n12 == n1 + n2
    assert l12 == pytest.approx(l1 + l2, rel=1e-12)
    np.testing.assert_array_equal(tr2.params, tr.params)
    np.testing.assert_array_equal(tr2.state1, tr.state1)
    np.testing.assert_array_equal(tr2.state2, tr.state2)


@dtype_param
@pytest.mark.parametrize("sparse", [False, True], ids=["dense", "csr"])
@pytest.mark.parametrize("solver", ["nesterov", "adam"])
@pytest.mark.parametrize("n_parts", [2, 3])
def test_train_steps_same_numbers_with_any_thread_count(n_parts, solver, sparse,
                                                         dtype):
    """A step cut into parts gives bit-identical weights, optimizer state and
    loss whether one thread runs every part or one thread per part (the
    remainder batch of 2 rows leaves a third part without rows)."""
    hidden, out = "relu", "binary_log"  # one output unit: parts without columns
    assert_any_thread_count_same(lambda n_threads: Trainer(
        Problem(problem_seed("threads", dtype), hidden, out, dtype, n=N_TRAIN),
        solver, sparse=sparse, n_parts=n_parts, n_threads=n_threads), n_parts)


@dtype_param
@pytest.mark.parametrize("hidden,out", TRAIN_MODELS)
@pytest.mark.parametrize("solver", ["sgd", "adam"])
@pytest.mark.parametrize("units", [UNITS, (5, 17, 2, 3)], ids=["narrow", "17-2"])
@pytest.mark.parametrize("n_parts", [2, 3])
def test_train_steps_dense_parts_closed_form(n_parts, units, solver, hidden, out,
                                             dtype):
    """Dense input cut into parts: each part's gradient sums over its batch
    rows, added in part order before the update, give the naive reference's
    steps -- up to the remainder batch of 2 rows, where a third part has no
    rows. Layers of 3 and 4 outputs take the transposed weight-gradient
    product, of 17 and 2 the direct one."""
    prob = Problem(problem_seed("parts", hidden, out, n_parts, len(units), dtype),
                   hidden, out, dtype, n=N_TRAIN, units=units)
    tr = Trainer(prob, solver, n_parts=n_parts, n_threads=n_parts)
    seen, ref_seen = tr.run_checked(1, 3, adam_t=4 if solver == "adam" else 0)
    assert seen == ref_seen == N_TRAIN - BATCH


def test_train_steps_dense_parts_need_a_gradient_block_each():
    prob = Problem(problem_seed("parts-grads"), "relu", "binary_log", np.float64,
                   n=N_TRAIN)
    tr = Trainer(prob, "adam", n_parts=2)
    tr.grads = np.zeros(prob.n_params)
    with pytest.raises(ValueError, match="n_parts gradient blocks"):
        tr.run(0, 1)


# ---------------------------------------------------------------------------
# train_steps: the first layer kept transposed during a call (first_t)
# ---------------------------------------------------------------------------
@dtype_param
@pytest.mark.parametrize("hidden,out", [("tanh", "softmax_log"),
                                        ("relu", "binary_log")])
@pytest.mark.parametrize("solver", ["sgd", "adam"])
@pytest.mark.parametrize("units", [UNITS, (5, 17, 2, 3), (9, 4, 1)],
                         ids=["narrow", "17-2", "9-4"])
@pytest.mark.parametrize("n_parts", [1, 2, 3])
def test_train_steps_first_layer_transposed_closed_form(n_parts, units, solver,
                                                        hidden, out, dtype):
    """With ``first_t`` the first layer's weights and optimizer state are
    read and updated transposed (its gradient ``D^T X``): the naive
    reference's steps, and the weights back in ``params``' own order at the
    end of the call. The estimators choose it for large float64 products
    only; here it is forced, in both dtypes and at any width."""
    prob = Problem(problem_seed("first-t", hidden, out, n_parts, len(units), dtype),
                   hidden, out, dtype, n=N_TRAIN, units=units)
    tr = Trainer(prob, solver, n_parts=n_parts, n_threads=n_parts, first_t=True)
    assert tr.first_t.shape == (3, units[0] * units[1])
    seen, ref_seen = tr.run_checked(1, 3, adam_t=4 if solver == "adam" else 0)
    assert seen == ref_seen == N_TRAIN - BATCH


@dtype_param
@pytest.mark.parametrize("n_parts", [2, 3])
def test_train_steps_first_layer_transposed_any_thread_count(n_parts, dtype):
    assert_any_thread_count_same(lambda n_threads: Trainer(
        Problem(problem_seed("first-t-threads", dtype), "relu", "binary_log", dtype,
                n=N_TRAIN), "adam", n_parts=n_parts, n_threads=n_threads,
        first_t=True), n_parts)


@pytest.mark.parametrize("solver", ["sgd", "adam"])
def test_train_steps_first_layer_transposed_abort_puts_the_weights_back(solver):
    """Told to abort at the barrier after moving its weights in, a thread
    moves them back: ``params`` and the optimizer state as they were (SGD's
    unused second state untouched)."""
    prob = Problem(problem_seed("first-t-abort"), "tanh", "softmax_log",
                   np.float64, n=N_TRAIN, units=UNITS)
    assert_abort_leaves_the_weights(
        Trainer(prob, solver, n_parts=2, first_t=True))  # SGD's NaN state2 too


def assert_abort_leaves_the_weights(tr):
    """``tr.run`` as thread 0 of 2, told to abort at its first barrier:
    ``seen = -1``, and the weights and optimizer state as they were."""
    p0, s10, s20 = tr.params.copy(), tr.state1.copy(), tr.state2.copy()
    sync = np.zeros(3 * K.SYNC_STRIDE, np.int64)
    sync[K.SYNC_ABORT] = 1
    result = tr.run(0, 2, sync=sync)
    assert result[1] == -1
    np.testing.assert_array_equal(tr.params, p0)
    np.testing.assert_array_equal(tr.state1, s10)
    np.testing.assert_array_equal(tr.state2, s20)


@pytest.mark.parametrize("shape,sparse", [((3, 19), False), ((2, 20), False),
                                          ((3, 20), True)],
                         ids=["other-width", "two-rows", "sparse"])
def test_train_steps_rejects_a_first_t_that_does_not_fit(shape, sparse):
    prob = Problem(problem_seed("first-t-shape"), "tanh", "softmax_log",
                   np.float64, n=N_TRAIN, units=UNITS)  # 5 x 4 = 20 weights
    tr = Trainer(prob, "adam", sparse=sparse)
    tr.first_t = np.zeros(shape)
    p0 = tr.params.copy()
    with pytest.raises(ValueError, match="first_t must be"):
        tr.run(0, 1)
    np.testing.assert_array_equal(tr.params, p0)


@pytest.mark.parametrize("n_parts", [1, 2, 3, 7])
@pytest.mark.parametrize("adam", [True, False])
def test_move_first_layer_by_ranges(n_parts, adam):
    """Each part's range of ``first_t`` (the first layer's coefficients
    transposed, flat) moved in from ``params``, ``state1`` and ``state2``
    and back out again; a range touches only its own values."""
    fi, fo, n_params = 13, 5, 13 * 5 + 40
    rng = np.random.default_rng(3)
    arrays = [rng.standard_normal(n_params) for _ in range(3)]
    first_t = np.full((3, fi * fo), np.nan)
    for q in range(n_parts):
        k0, k1 = K.part_range(n_params, n_parts, q)
        K._move_first_layer(*arrays, adam, first_t, k0, min(k1, fi * fo), fo, False)
    for r in range(3 if adam else 2):
        np.testing.assert_array_equal(first_t[r].reshape(fo, fi),
                                      arrays[r][:fi * fo].reshape(fi, fo).T)
    if not adam:
        assert np.all(np.isnan(first_t[2]))
    # back: only the range given, into params' own order
    first_t = rng.standard_normal((3, fi * fo))
    before = [a.copy() for a in arrays]
    a, b = 7, 41
    K._move_first_layer(*arrays, adam, first_t, a, b, fo, True)
    for r in range(3):
        expect = before[r].copy()
        if r < 2 or adam:
            flat = expect[:fi * fo].reshape(fi, fo).T.reshape(-1)  # (fo, fi) order
            flat[a:b] = first_t[r, a:b]
            expect[:fi * fo] = flat.reshape(fo, fi).T.reshape(-1)
        np.testing.assert_array_equal(arrays[r], expect)


@pytest.mark.parametrize("units,dtype,sparse,batch,kept", [
    ((784, 256, 256, 10), np.float64, False, 1024, True),
    ((784, 256, 256, 10), np.float64, False, 256, True),
    ((784, 256, 256, 10), np.float32, False, 1024, False),
    ((784, 256, 256, 10), np.float64, True, 1024, False),
    ((100, 256, 256, 2), np.float64, False, 1024, False),  # fewer inputs
    ((199, 100, 256, 2), np.float64, False, 1024, False),  # < twice the units
    ((200, 100, 256, 2), np.float64, False, 1024, True),
    ((1000, 8, 8, 1), np.float64, False, 1024, False),  # few units
    ((100, 50, 50, 1), np.float64, False, 256, False),  # a small product
    ((100, 50, 50, 1), np.float64, False, 512, True),
], ids=["c3-1024", "c3-256", "float32", "sparse", "narrow", "199-100", "200-100",
        "8-units", "small-product", "100-50-512"])
def test_first_layer_buffer_chooses_large_float64_products(units, dtype, sparse,
                                                           batch, kept):
    """The estimators keep the first layer transposed (two parts) for dense
    float64 input with at least twice as many inputs as units (at least
    SMALL_FAN_OUT) in products larger than BLAS's small-product kernel
    takes."""
    first_t = K.first_layer_buffer(units, dtype, sparse, batch, 2)
    assert first_t.shape == (3, units[0] * units[1] if kept else 0)
    assert first_t.dtype == dtype


def assert_any_thread_count_same(make_trainer, n_parts):
    """Four steps give bit-identical loss, weights and optimizer state on 1 to
    ``n_parts`` threads (``make_trainer(n_threads)``, a fresh trainer)."""
    results = []
    for n_threads in range(1, n_parts + 1):
        tr = make_trainer(n_threads)
        loss_sum, seen = tr.run(first_batch=0, n_steps=4, adam_t=3)
        results.append((loss_sum, seen, tr.params, tr.state1, tr.state2))
    for loss_sum, seen, params, state1, state2 in results[1:]:
        assert (loss_sum, seen) == results[0][:2]
        np.testing.assert_array_equal(params, results[0][2])
        np.testing.assert_array_equal(state1, results[0][3])
        np.testing.assert_array_equal(state2, results[0][4])


# ---------------------------------------------------------------------------
# train_steps_units: steps cut by hidden units
# ---------------------------------------------------------------------------
UNITS_ONE_HIDDEN = (5, 7, 3)  # several outputs: the output products in BLAS
UNITS_ONE_OUTPUT = (5, 7, 1)  # one output: the outer-product loop
UNITS_TWO_HIDDEN = (5, 7, 6, 3)  # deltas passed back between parts once
UNITS_THREE_HIDDEN = (4, 6, 7, 5, 1)  # ... twice, uneven widths


class UnitsTrainer(Trainer):
    """:class:`Trainer` for ``train_steps_units``, with the estimators'
    own buffers (``_EpochBuffers``), every float buffer filled with NaN."""

    def __init__(self, prob, solver, n_parts=2, n_threads=1, known_state=True):
        super().__init__(prob, solver, known_state=known_state)
        self.n_parts, self.n_threads = n_parts, n_threads
        units = prob.units_tuple
        self.layout = Layout(units)
        self.buffers = _EpochBuffers(self.layout, BATCH, units[0], units[-1],
                                     prob.dtype, n_parts, False, "train_steps_units")
        for value in vars(self.buffers).values():
            if isinstance(value, np.ndarray) and value.dtype.kind == "f":
                value.fill(np.nan)

    def args(self, first_batch, n_steps, adam_t=0):
        prob = self.prob
        hc, oc = prob.codes
        solver = K.ADAM if self.solver == "adam" else K.SGD
        optimizer = {"state1": self.state1, "state2": self.state2, "adam_t": adam_t}
        return self.buffers.kernel_args(
            KernelInput(prob.X), prob.Y, prob.sw, self.order, first_batch, n_steps,
            BATCH, self.params, optimizer, self.hyper, self.layout, hc, oc, solver,
            self.solver == "nesterov", 0.0)

    def run(self, first_batch, n_steps, adam_t=0, sync=None):
        args = self.args(first_batch, n_steps, adam_t)
        if sync is not None:  # one thread of n_parts, on a given sync array
            return K.train_steps_units(0, self.n_parts, self.n_parts, sync, *args)
        loss_acc, seen, loss_rows, updates = run_train_steps(
            K, self.n_threads, self.n_parts, args, "train_steps_units")
        assert loss_rows == seen and updates == n_steps
        return loss_acc, seen


UNITS_MODELS = [("tanh", "softmax_log", UNITS_ONE_HIDDEN),
                ("relu", "binary_log", UNITS_ONE_OUTPUT),
                ("relu", "binary_log", UNITS_ONE_HIDDEN),
                ("logistic", "poisson", UNITS_ONE_HIDDEN),
                ("identity", "squared", UNITS_ONE_OUTPUT),
                ("tanh", "softmax_log", UNITS_TWO_HIDDEN),
                ("relu", "binary_log", UNITS_THREE_HIDDEN),
                ("logistic", "squared", UNITS_THREE_HIDDEN)]


@dtype_param
@pytest.mark.parametrize("hidden,out,units", UNITS_MODELS,
                         ids=["-".join(map(str, m[:2]))
                              + f"-{len(m[2]) - 2}h{m[2][-1]}out"
                              for m in UNITS_MODELS])
@pytest.mark.parametrize("solver", ["sgd", "nesterov", "adam"])
@pytest.mark.parametrize("first_batch,n_steps,n_parts",
                         [(0, 1, 2), (3, 1, 2), (1, 3, 2), (0, 4, 3)],
                         ids=["first", "remainder", "three-to-end", "all-3-parts"])
def test_train_steps_units_closed_form(first_batch, n_steps, n_parts, solver,
                                       hidden, out, units, dtype):
    """The hidden-unit cut computes the same steps as the naive reference
    (3 parts of 7 units: blocks of 3, 2, 2; of 5: 2, 2, 1)."""
    prob = Problem(problem_seed("units", hidden, out, units[-1], dtype), hidden,
                   out, dtype, n=N_TRAIN, units=units)
    tr = UnitsTrainer(prob, solver, n_parts=n_parts)
    seen, ref_seen = tr.run_checked(first_batch, n_steps,
                                    adam_t=4 if solver == "adam" else 0)
    assert seen == ref_seen


@dtype_param
@pytest.mark.parametrize("units", [UNITS_ONE_HIDDEN, UNITS_ONE_OUTPUT,
                                   UNITS_THREE_HIDDEN],
                         ids=["3out", "1out", "3hidden"])
@pytest.mark.parametrize("solver", ["nesterov", "adam"])
@pytest.mark.parametrize("n_parts", [2, 3])
def test_train_steps_units_same_numbers_with_any_thread_count(n_parts, solver,
                                                               units, dtype):
    assert_any_thread_count_same(lambda n_threads: UnitsTrainer(
        Problem(problem_seed("units-threads", dtype), "relu", "binary_log", dtype,
                n=N_TRAIN, units=units),
        solver, n_parts=n_parts, n_threads=n_threads), n_parts)


@dtype_param
@pytest.mark.parametrize("solver", ["sgd", "adam"])
def test_train_steps_units_transposed_first_layer(solver, dtype):
    """Wide inputs keep the first layer's blocks transposed (a faster weight
    gradient in BLAS): the same steps as the naive reference."""
    units = (700, 96, 3)
    assert K._first_layer_transposed(np.array(units), 2)
    assert not K._first_layer_transposed(np.array(UNITS_ONE_HIDDEN), 2)
    prob = Problem(problem_seed("units-wide", dtype), "tanh", "softmax_log", dtype,
                   n=N_TRAIN, units=units)
    tr = UnitsTrainer(prob, solver, n_parts=2, n_threads=2)
    tr.run_checked(1, 3, adam_t=2)


def _units_vs_general(units, batch, dtype, seed):
    """Four steps of ``train_steps_units`` (2 parts) on one and on two
    threads, and of ``train_steps`` (1 part), on random data: returns
    ``(params0, units kernel runs [(result, params, state2)] by thread
    count, general kernel's (result, params))``."""
    nf, n_out = units[0], units[-1]
    rng = np.random.default_rng(seed)
    n = 3 * batch + 5
    X = rng.standard_normal((n, nf)).astype(dtype)
    Y = np.eye(n_out)[rng.integers(0, n_out, n)].astype(dtype)
    sw = rng.uniform(0.5, 2.0, n).astype(dtype)
    layout = Layout(units)
    params0 = (0.1 * rng.standard_normal(layout.n_params)).astype(dtype)
    order = rng.permutation(n).astype(np.int64)
    hyper = np.array(Trainer.ADAM_HYPER[:6] + [clip_eps(dtype), 0.01])

    def run(kernel, n_parts, n_threads):
        buffers = _EpochBuffers(layout, batch, nf, n_out, dtype, n_parts, False,
                                kernel)
        params = params0.copy()
        opt = {"state1": np.zeros_like(params), "state2": np.zeros_like(params),
               "adam_t": 0}
        args = buffers.kernel_args(KernelInput(X), Y, sw, order, 0, 4, batch,
                                   params, opt, hyper, layout, K.TANH,
                                   K.OUT_SOFTMAX_LOG, K.ADAM, False, 0.0)
        result = run_train_steps(K, n_threads, n_parts, args, kernel)
        assert result[1] == n
        return result, params, opt["state2"]

    runs = [run("train_steps_units", 2, t) for t in (1, 2)]
    return params0, runs, run("train_steps", 1, 1)[:2]


@pytest.mark.parametrize("units,batch,what", [
    ((700, 96, 16, 3), -(-K.SHARED_GATHER_VALUES // 700), "gather"),
    ((20, 300, 200, 3), 8, "chunks"),
    ((20, 600, 200, 3), 2 * K.UPDATE_CHUNK_ROWS, "chunks"),
    ((700, 100, 3), 32, "tn-chunks"),
    ((700, 100, 3), 40, "tn-chunks"),
], ids=["shared-gather-transposed", "update-chunks-across-parts",
        "update-chunks-grown-with-batch", "tn-unit-chunks-few-rows",
        "tn-unit-chunks"])
def test_train_steps_units_large_shapes_match_the_general_kernel(units, batch,
                                                                 what):
    """Shapes the closed-form tests are too small for: a batch of at least
    ``SHARED_GATHER_VALUES`` values (gathered by both threads together, rows
    split between them; also the transposed first layer's many-row path),
    and weight blocks updated in several chunks (``UPDATE_CHUNK_BYTES``), a
    chunk spanning two parts' rows (chunks grow with the batch:
    ``UPDATE_CHUNK_ROWS``; batches of at most ``TN_FEW_ROWS`` rows, 8 and
    the 5-row remainder of 32, also pass the delta back to layer 1 in
    chunks of units, 64 + 64 + 22 and 4 x 64 + 44), and a transposed first
    layer's forward product in chunks of units with a shorter last chunk
    (``SMALL_TN_OUTPUTS``; at most ``FEW_ROWS`` rows through ``W X^T``, more
    through ``X W^T``). The same numbers on one and two threads, and to
    rounding those of ``train_steps``."""
    dtype = np.float64
    if what == "gather":
        assert batch > K.FEW_ROWS and K._first_layer_transposed(np.array(units), 2)
    elif what == "tn-chunks":  # 50 units a part: chunks of 32 + 18, 16 x 3 + 2
        assert K._first_layer_transposed(np.array(units), 2)
        chunk = K._tn_units_chunk(50, batch, 700)
        assert chunk < 50 and 50 % chunk != 0
    else:  # layer 1's block: 300 (600) rows x 100 units, chunks of 163 (327)
        chunk_bytes = K.UPDATE_CHUNK_BYTES * max(1, batch // K.UPDATE_CHUNK_ROWS)
        assert units[1] * 100 * 8 > chunk_bytes > 100 * 8 * units[1] // 2
        half = units[1] // 2  # layer 1's units in a part
        # batch 8, or the 5-row remainder batch of 32
        assert K._tn_delta_chunk(half, batch if batch <= 16 else 5) == 64 < half
    params0, runs, general = _units_vs_general(units, batch, dtype, seed=7)
    assert runs[0][0] == runs[1][0]
    np.testing.assert_array_equal(runs[0][1], runs[1][1])
    np.testing.assert_array_equal(runs[0][2], runs[1][2])
    assert not np.array_equal(runs[0][1], params0)
    assert general[0][0] == pytest.approx(runs[0][0][0], rel=1e-12)
    assert_close(general[1] - params0, runs[0][1] - params0, dtype, rtol=1e-9)


def test_train_steps_units_zero_weight_batch_makes_no_update():
    """A batch whose samples all weigh 0 leaves weights and state alone and
    adds nothing to the loss, as in ``train_steps``."""
    prob = Problem(problem_seed("units-zero"), "relu", "binary_log", np.float64,
                   n=N_TRAIN, units=UNITS_ONE_OUTPUT)
    tr = UnitsTrainer(prob, "adam", n_parts=2, n_threads=2)
    prob.sw[batch_rows(tr.order, 1)] = 0.0
    p0, s10 = tr.params.copy(), tr.state1.copy()
    loss_acc, seen, loss_rows, updates = run_train_steps(
        K, 2, 2, tr.args(first_batch=1, n_steps=1), "train_steps_units")
    assert (loss_acc, seen, loss_rows, updates) == (0.0, BATCH, 0, 0)
    np.testing.assert_array_equal(tr.params, p0)
    np.testing.assert_array_equal(tr.state1, s10)


def test_train_steps_units_zero_weight_batch_then_a_step_same_as_that_step():
    """A zero-weight batch, then a normal one, in one call: the same loss
    and weights as the normal batch alone (the L2 term of the second step
    comes from sums of squares carried over the step without update)."""
    prob = Problem(problem_seed("units-zero-then"), "relu", "binary_log", np.float64,
                   n=N_TRAIN, units=UNITS_TWO_HIDDEN)
    prob.sw[:BATCH] = 0.0  # batch 0 of the natural order below
    both = UnitsTrainer(prob, "adam", n_parts=2, n_threads=2)
    alone = UnitsTrainer(prob, "adam", n_parts=2, n_threads=2)
    for tr in (both, alone):
        tr.order = np.arange(prob.X.shape[0])
    alone.state1[:], alone.state2[:] = both.state1, both.state2  # drawn per trainer
    np.testing.assert_array_equal(both.params, alone.params)
    r_both = run_train_steps(K, 2, 2, both.args(first_batch=0, n_steps=2),
                             "train_steps_units")
    r_alone = run_train_steps(K, 2, 2, alone.args(first_batch=1, n_steps=1),
                              "train_steps_units")
    assert r_both[0] == r_alone[0] and r_both[2:] == r_alone[2:] == (BATCH, 1)
    np.testing.assert_array_equal(both.params, alone.params)
    np.testing.assert_array_equal(both.state2, alone.state2)


def test_train_steps_units_abort_puts_the_weights_back():
    """Told to abort at its first barrier, a thread returns ``seen = -1``
    and copies its parts' (unchanged) weights back into ``params``."""
    prob = Problem(problem_seed("units-abort"), "tanh", "softmax_log", np.float64,
                   n=N_TRAIN, units=UNITS_TWO_HIDDEN)
    assert_abort_leaves_the_weights(UnitsTrainer(prob, "adam", n_parts=2))


@pytest.mark.parametrize("units,n_parts,batch_size",
                         [(UNITS_TWO_HIDDEN, 3, BATCH), (UNITS_TWO_HIDDEN, 2, BATCH + 1),
                          ((5, 9, 6, 3), 2, BATCH), ((5, 7, 3), 2, BATCH)],
                         ids=["other-n_parts", "other-batch_size", "other-widths",
                              "other-depth"])
def test_train_steps_units_rejects_a_plan_for_another_cut(units, n_parts,
                                                          batch_size):
    """A ``plan`` (the buffers' layout, computed once a fit) made for
    another number of parts, batch size or network is refused before
    anything is read or written by it."""
    prob = Problem(problem_seed("units-plan"), "tanh", "softmax_log", np.float64,
                   n=N_TRAIN, units=UNITS_TWO_HIDDEN)
    tr = UnitsTrainer(prob, "adam", n_parts=2)
    tr.buffers.plan = K.units_plan(units, n_parts, batch_size)
    p0 = tr.params.copy()
    sync = np.zeros(3 * K.SYNC_STRIDE, np.int64)
    sync[K.SYNC_ABORT] = 1  # a kernel that took the plan stops at its first barrier
    with pytest.raises(ValueError, match="plan is not for these units"):
        tr.run(0, 2, sync=sync)
    np.testing.assert_array_equal(tr.params, p0)


def test_train_steps_units_refuses_an_xb_without_a_page_block_per_thread():
    """A batch buffer of ``n_parts * batch_size * n_features`` values (the
    size before each thread's block was padded to whole pages) is refused
    before any step, not read or written past its end; the weights are
    unchanged."""
    prob = Problem(problem_seed("units-xb"), "relu", "squared", np.float64,
                   n=N_TRAIN, units=UNITS_ONE_HIDDEN)
    tr = UnitsTrainer(prob, "adam", n_parts=2)
    values = 2 * BATCH * UNITS_ONE_HIDDEN[0]
    assert values < 2 * K._padded.py_func(BATCH * UNITS_ONE_HIDDEN[0])
    tr.buffers.Xb = aligned_empty(values, np.float64)
    p0 = tr.params.copy()
    with pytest.raises(ValueError, match="Xb needs n_parts blocks"):
        tr.run(0, 2)
    np.testing.assert_array_equal(tr.params, p0)


def test_train_steps_units_threads_gather_into_their_own_page_blocks():
    """On two threads each gathers the batch into its own block of ``Xb``,
    block ``q`` starting ``q * _padded(batch_size * n_features)`` values in
    (on a page of its own; the test of the buffers' pages checks the
    alignment of these offsets)."""
    prob = Problem(problem_seed("units-xb-blocks"), "relu", "squared", np.float64,
                   n=N_TRAIN, units=UNITS_ONE_HIDDEN)
    tr = UnitsTrainer(prob, "adam", n_parts=2, n_threads=2)
    tr.run(0, 1)
    nf = UNITS_ONE_HIDDEN[0]
    xblk = K._padded.py_func(BATCH * nf)
    assert xblk > BATCH * nf
    Xb = tr.buffers.Xb
    for q in range(2):
        np.testing.assert_array_equal(
            Xb[q * xblk:q * xblk + BATCH * nf].reshape(BATCH, nf),
            prob.X[tr.order[:BATCH]])
        assert np.isnan(Xb[q * xblk + BATCH * nf:(q + 1) * xblk]).all()


def test_units_plan_sections():
    """The plan holds the cut and batch size, then the layout of
    ``_units_layout``, every part's offsets and the layer widths, where the
    kernel reads them."""
    units = np.array(UNITS_THREE_HIDDEN, np.int64)
    L = len(units) - 1
    plan = K.units_plan(units, 3, BATCH)
    psz, ablk, hoff, doff, dpoff, oblk, *_ = K._units_layout(units, 3, BATCH)
    assert plan.dtype == np.int64
    assert list(plan[:K.PLAN_HEAD]) == [3, BATCH, psz, oblk]
    sections = plan[K.PLAN_HEAD:K.PLAN_HEAD + 4 * L].reshape(4, L)
    for got, want in zip(sections, (ablk, hoff, doff, dpoff)):
        np.testing.assert_array_equal(got, want)
    offsets = plan[K.PLAN_HEAD + 4 * L:-(L + 1)].reshape(3, 2 * L + 2)
    np.testing.assert_array_equal(plan[-(L + 1):], units)
    for q in range(3):
        want = np.zeros(2 * L + 2, np.int64)
        K._units_part_offsets(units, 3, q, want)
        np.testing.assert_array_equal(offsets[q], want)


# ---------------------------------------------------------------------------
# gemm with leading dimensions (the BLAS call of train_steps_units)
# ---------------------------------------------------------------------------
def test_flat_is_a_view_of_c_contiguous_arrays_only():
    """``_flat`` (what the kernels pass to BLAS instead of ``reshape(-1)``)
    is a 1-D view of a C-contiguous array, owned like it; other layouts do
    not compile."""
    import numba

    flat = numba.njit(lambda a: K._flat(a))
    buf = np.arange(30.0)
    view = buf[6:18].reshape(3, 4)
    got = flat(view)
    assert got.shape == (12,) and got.base is not None
    np.testing.assert_array_equal(got, np.arange(6.0, 18.0))
    got[0] = -1.0
    assert buf[6] == -1.0
    np.testing.assert_array_equal(flat(np.ones((2, 0, 3), np.float32)),
                                  np.ones(0, np.float32))
    with pytest.raises(numba.TypingError):
        flat(buf.reshape(5, 6)[:, :2])


@dtype_param
@pytest.mark.parametrize("ta", [K.NOTRANS, K.TRANS], ids=["A", "At"])
@pytest.mark.parametrize("tb", [K.NOTRANS, K.TRANS], ids=["B", "Bt"])
def test_gemm_on_blocks_of_larger_matrices(ta, tb, dtype):
    """``C[:, 2:6] = op(A) op(B) + beta C`` on column blocks of wider
    matrices (leading dimension > width); the rest of C is untouched."""
    rng = np.random.default_rng(3)
    m, n, k = 5, 4, 3
    A_full = rng.standard_normal((k, m + 2) if ta == K.TRANS else (m, k + 2)).astype(dtype)
    B_full = rng.standard_normal((n, k + 1) if tb == K.TRANS else (k, n + 1)).astype(dtype)
    C_full = rng.standard_normal((m, 9)).astype(dtype)
    C0 = C_full.copy()
    A = A_full[:, 1:1 + m] if ta == K.TRANS else A_full[:, 1:1 + k]
    B = B_full[:, :k] if tb == K.TRANS else B_full[:, :n]
    opA = A.T if ta == K.TRANS else A
    opB = B.T if tb == K.TRANS else B
    flat_A = A_full.reshape(-1)[1:]
    K.gemm(K.blas_functions(), ta, tb, m, n, k, flat_A, A_full.shape[1],
           B_full.reshape(-1), B_full.shape[1], 0.5, C_full.reshape(-1)[2:], 9)
    expected = C0.astype(np.float64)
    expected[:, 2:6] = opA.astype(np.float64) @ opB + 0.5 * C0[:, 2:6]
    assert_close(C_full, expected, dtype)
    np.testing.assert_array_equal(C_full[:, :2], C0[:, :2])
    np.testing.assert_array_equal(C_full[:, 6:], C0[:, 6:])


def test_gemm_refuses_operands_outside_their_arrays():
    A = np.ones(12)
    C = np.zeros(12)
    blas = K.blas_functions()
    K.gemm(blas, K.NOTRANS, K.NOTRANS, 3, 4, 3, A, 3, A, 4, 0.0, C, 4)
    assert np.all(C == 3.0)
    with pytest.raises(ValueError, match="does not fit"):  # C needs 16 values
        K.gemm(blas, K.NOTRANS, K.NOTRANS, 4, 4, 3, A, 3, A, 4, 0.0, C, 4)
    with pytest.raises(ValueError, match="does not fit"):  # lda < width
        K.gemm(blas, K.NOTRANS, K.NOTRANS, 3, 4, 3, A, 2, A, 4, 0.0, C, 4)


@dtype_param
@pytest.mark.parametrize("rows", [1, 40, 300])
def test_gemm_in_row_chunks_matches_one_product(rows, dtype):
    """Row chunks (for BLAS's small-product kernel) give the product and
    the batch-summed gradient of one call, to rounding."""
    rng = np.random.default_rng(4)
    k, n = 100, 60  # 300 x 100 x 60 = 1.8M multiply-adds: chunks of 160 rows
    assert K._small_gemm_rows(300, n, k) == 160
    X = rng.standard_normal((rows, k)).astype(dtype)
    W = rng.standard_normal((k, n)).astype(dtype)
    D = rng.standard_normal((rows, n)).astype(dtype)
    A = np.full((rows, n), np.nan, dtype)
    G = np.full((k, n), np.nan, dtype)
    blas = K.blas_functions()
    K.gemm_by_rows(blas, K.NOTRANS, rows, n, k, X.reshape(-1), k, W.reshape(-1), n,
                   A.reshape(-1), n)
    K.gemm_tn_by_rows(blas, k, n, rows, X.reshape(-1), k, D.reshape(-1), n,
                      G.reshape(-1), n)
    assert_close(A, X.astype(np.float64) @ W, dtype, rtol=RTOL[dtype] * 10)
    assert_close(G, X.T.astype(np.float64) @ D, dtype, rtol=RTOL[dtype] * 10)


def test_part_range_covers_everything_once():
    for n in [0, 1, 2, 5, 16, 784]:
        for n_parts in [1, 2, 3, 4]:
            pieces = [K.part_range(n, n_parts, p) for p in range(n_parts)]
            assert pieces[0][0] == 0 and pieces[-1][1] == n
            assert all(a[1] == b[0] for a, b in zip(pieces, pieces[1:]))
            sizes = [hi - lo for lo, hi in pieces]
            assert max(sizes) - min(sizes) <= 1


# ---------------------------------------------------------------------------
# scalar functions
# ---------------------------------------------------------------------------
def _tanh_inputs():
    tiny = [5e-324, 1e-320, 1e-310, np.finfo(np.float64).tiny, 1e-300, 1e-200,
            1e-100, 1e-30, 1e-17, 1.1e-16, 1e-10, 1e-8, 1e-5]
    large = [18.0, 19.0, 20.0, 22.0, 30.0, 100.0, 709.0, 711.0, 1e10, 1e300,
             np.finfo(np.float64).max, np.inf]
    pos = np.concatenate([tiny, large, np.logspace(-300, 2.5, 1201),
                          np.linspace(0, 25, 2001)[1:],
                          np.random.default_rng(0).uniform(0.0, 1.5, 1000)])
    return np.concatenate([[0.0, -0.0], pos, -pos])


def test_tanh_accuracy():
    x = _tanh_inputs()
    got = np.array([K._tanh(float(v)) for v in x])
    ref = np.tanh(x)
    abs_err = np.abs(got - ref)
    assert abs_err.max() < 4e-16, x[np.argmax(abs_err)]
    big = np.abs(x) > 1e-300
    rel_err = abs_err[big] / np.abs(ref[big])
    assert rel_err.max() < 1e-14, x[big][np.argmax(rel_err)]
    # odd function, saturates exactly, keeps NaN
    n_pos = (x.size - 2) // 2
    np.testing.assert_array_equal(got[2:2 + n_pos], -got[2 + n_pos:])
    assert K._tanh(np.inf) == 1.0 and K._tanh(-np.inf) == -1.0
    assert math.isnan(K._tanh(np.nan))


def test_sigmoid_matches_expit():
    x = np.concatenate([np.linspace(-800, 800, 3201),
                        np.logspace(-300, 3, 601), -np.logspace(-300, 3, 601),
                        np.random.default_rng(1).uniform(-40, 40, 1000),
                        [0.0, -0.0, 5e-324, -5e-324]])
    got = np.array([K._sigmoid(float(v)) for v in x])
    ref = expit(x)
    assert np.abs(got - ref).max() < 2.3e-16
    big = ref > 1e-300
    rel_err = np.abs(got[big] - ref[big]) / ref[big]
    assert rel_err.max() < 1e-14, x[big][np.argmax(rel_err)]
    assert K._sigmoid(np.inf) == 1.0 and K._sigmoid(-np.inf) == 0.0


# ---------------------------------------------------------------------------
# compilation options live in one place
# ---------------------------------------------------------------------------
_JIT_NAMES = {"njit", "jit", "generated_jit", "vectorize", "guvectorize", "cfunc"}


def _direct_jit_uses(tree):
    """Line numbers where a Numba compiling decorator/function is named:
    ``njit(...)``, ``@njit``, ``numba.jit``, ``from numba import njit``..."""
    lines = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Name) and node.id in _JIT_NAMES:
            lines.append(node.lineno)
        elif isinstance(node, ast.Attribute) and node.attr in _JIT_NAMES:
            lines.append(node.lineno)
        elif isinstance(node, ast.ImportFrom) and (node.module or "").startswith("numba"):
            lines += [node.lineno for a in node.names if a.name in _JIT_NAMES]
    return sorted(set(lines))


def test_every_kernel_is_compiled_through_config_kernel():
    import skminibatch._kernels as pkg

    root = pathlib.Path(pkg.__file__).parent
    files = sorted(root.rglob("*.py"))
    assert any(f.name == "_network.py" for f in files)
    problems = []
    for path in files:
        rel = path.relative_to(root).as_posix()
        tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
        uses = _direct_jit_uses(tree)
        if rel == "_config.py":
            assert uses, "_config.py should be where numba.njit is called"
            continue
        problems += [f"{rel}:{line} compiles with Numba directly" for line in uses]
        # whatever decorates a function there is the project's ``kernel``, or
        # Numba's ``intrinsic`` (LLVM code inlined into the kernels that
        # call it: no compile options of its own)
        for node in ast.walk(tree):
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
                problems += [
                    f"{rel}:{node.lineno} {node.name} is decorated with "
                    f"{ast.unparse(dec)}, not _config.kernel"
                    for dec in node.decorator_list
                    if not (isinstance(dec, ast.Name)
                            and dec.id in ("kernel", "intrinsic"))]
    assert not problems, "\n".join(problems)
