"""Behaviour of the two estimators as a scikit-learn user meets them:
persistence, parameters, determinism, dtypes, sample weights, warm starts,
targets, early stopping, verbose output, divergence, lbfgs, learning-rate
schedules and Ctrl-C (DESIGN §2, §3, §5).

Every dataset is tiny and built inside the test; fits run a handful of
epochs on small hidden layers.
"""

import copy
import os
import pathlib
import pickle
import subprocess
import sys
import textwrap
import warnings

import numpy as np
import pytest
from sklearn.base import clone
from sklearn.exceptions import ConvergenceWarning
from sklearn.model_selection import train_test_split
from sklearn.neural_network import MLPClassifier, MLPRegressor
from _sklearn_versions import (
    ignore_old_sklearn_lbfgs_warning,
    skip_without_sklearn_mlp_17,
)

from skminibatch import MiniBatchMLPClassifier, MiniBatchMLPRegressor
from skminibatch._kernels import _network as kernels

ignore_convergence = pytest.mark.filterwarnings(
    "ignore::sklearn.exceptions.ConvergenceWarning"
)

ESTIMATORS = {"classifier": MiniBatchMLPClassifier, "regressor": MiniBatchMLPRegressor}
EST_PARAMS = pytest.mark.parametrize(
    "est_cls", list(ESTIMATORS.values()), ids=list(ESTIMATORS)
)
ROOT = pathlib.Path(__file__).resolve().parents[1]


# ---------------------------------------------------------------------------
# data and small helpers
# ---------------------------------------------------------------------------
def make_data(kind, n=40, n_features=4, seed=0):
    """``(X, y)``: 'binary', 'multiclass', 'multilabel', 'regression',
    'multioutput' or 'poisson' targets on standard-normal features."""
    rng = np.random.RandomState(seed)
    X = rng.standard_normal((n, n_features))
    score = X[:, 0] - 0.7 * X[:, 1] + 0.2 * rng.standard_normal(n)
    if kind == "binary":
        return X, (score > 0).astype(int)
    if kind == "multiclass":
        return X, np.digitize(score, [-0.5, 0.5])
    if kind == "multilabel":
        return X, np.column_stack([score > 0, X[:, 2] > 0, X[:, 3] > 0.3]).astype(int)
    if kind == "regression":
        return X, score + 0.5 * X[:, 2]
    if kind == "multioutput":
        return X, np.column_stack([score, X[:, 2] - X[:, 3]])
    if kind == "poisson":
        return X, rng.poisson(np.exp(0.5 * score)).astype(float)
    raise ValueError(kind)


def data_for(est_cls, n=40, seed=0):
    return make_data("multiclass" if est_cls is MiniBatchMLPClassifier
                     else "regression", n=n, seed=seed)


def all_weights(est):
    return list(est.coefs_) + list(est.intercepts_)


def assert_same_weights(a, b):
    wa, wb = all_weights(a), all_weights(b)
    assert len(wa) == len(wb)
    for x, y in zip(wa, wb):
        assert x.dtype == y.dtype
        assert np.array_equal(x, y)


def weights_equal(a, b):
    return all(np.array_equal(x, y) for x, y in zip(all_weights(a), all_weights(b)))


def random_weights_like(est, seed, scale=0.5):
    rng = np.random.RandomState(seed)
    coefs = [scale * rng.standard_normal(c.shape) for c in est.coefs_]
    intercepts = [scale * rng.standard_normal(b.shape) for b in est.intercepts_]
    return coefs, intercepts


def assign_weights(est, coefs, intercepts):
    est.coefs_ = [np.array(c) for c in coefs]
    est.intercepts_ = [np.array(b) for b in intercepts]


def fitted_state(est):
    """The fitted attributes a failed call must leave alone (deep copies)."""
    names = ["coefs_", "intercepts_", "t_", "n_iter_", "loss_", "loss_curve_",
             "best_loss_", "batch_size_", "steps_per_epoch_", "n_features_in_"]
    return {name: copy.deepcopy(getattr(est, name)) for name in names}


def assert_state_equal(before, after):
    for name, value in before.items():
        new = after[name]
        if name in ("coefs_", "intercepts_"):
            assert len(new) == len(value)
            for x, y in zip(new, value):
                assert np.array_equal(x, y), name
        elif name == "loss_curve_":
            assert np.array_equal(new, value), name
        else:
            assert new == value, name


# ---------------------------------------------------------------------------
# a plain NumPy reference for loss and gradient (float64)
# ---------------------------------------------------------------------------
_HIDDEN = {
    "identity": (lambda z: z, lambda a: np.ones_like(a)),
    "tanh": (np.tanh, lambda a: 1.0 - a ** 2),
    "relu": (lambda z: np.maximum(z, 0.0), lambda a: (a > 0).astype(float)),
    "logistic": (lambda z: 1.0 / (1.0 + np.exp(-z)), lambda a: a * (1.0 - a)),
}


def np_forward(coefs, intercepts, X, activation, out_activation):
    act = _HIDDEN[activation][0]
    layers = [np.asarray(X, dtype=float)]
    for i, (W, b) in enumerate(zip(coefs, intercepts)):
        z = layers[-1] @ W + b
        if i < len(coefs) - 1:
            layers.append(act(z))
        elif out_activation == "identity":
            layers.append(z)
        elif out_activation == "logistic":
            layers.append(1.0 / (1.0 + np.exp(-z)))
        elif out_activation == "softmax":
            e = np.exp(z - z.max(axis=1, keepdims=True))
            layers.append(e / e.sum(axis=1, keepdims=True))
        else:
            raise ValueError(out_activation)
    return layers


def np_loss_grad(coefs, intercepts, X, Y, sw, activation, out_activation, alpha):
    """scikit-learn's MLP loss (L2 term included) and its gradient."""
    layers = np_forward(coefs, intercepts, X, activation, out_activation)
    P = layers[-1]
    eps = np.finfo(float).eps
    if out_activation == "identity":
        per_sample = 0.5 * ((Y - P) ** 2).mean(axis=1)
    elif out_activation == "softmax":
        per_sample = -(Y * np.log(np.clip(P, eps, 1 - eps))).sum(axis=1)
    else:  # logistic
        Q = np.clip(P, eps, 1 - eps)
        per_sample = -(Y * np.log(Q) + (1 - Y) * np.log(1 - Q)).sum(axis=1)
    sw_sum = sw.sum()
    loss = (sw * per_sample).sum() / sw_sum + 0.5 * alpha * sum(
        (W ** 2).sum() for W in coefs) / sw_sum
    delta = (P - Y) * sw[:, None]
    coef_grads, icpt_grads = [None] * len(coefs), [None] * len(coefs)
    for i in range(len(coefs) - 1, -1, -1):
        coef_grads[i] = (layers[i].T @ delta + alpha * coefs[i]) / sw_sum
        icpt_grads[i] = delta.sum(axis=0) / sw_sum
        if i > 0:
            delta = (delta @ coefs[i].T) * _HIDDEN[activation][1](layers[i])
    return loss, coef_grads, icpt_grads


def targets_matrix(est, y):
    if isinstance(est, MiniBatchMLPClassifier):
        if est.n_outputs_ == 1:  # binary: one logistic output for classes_[1]
            return (y == est.classes_[1]).astype(float)[:, None]
        return (y[:, None] == est.classes_[None, :]).astype(float)
    return np.asarray(y, dtype=float).reshape(len(y), -1)


def test_numpy_reference_gradient_matches_finite_differences():
    # the reference the warm-start tests rely on is itself checked here
    X, y = make_data("multiclass", n=9)
    rng = np.random.RandomState(0)
    coefs = [rng.standard_normal((4, 3)), rng.standard_normal((3, 3))]
    intercepts = [rng.standard_normal(3), rng.standard_normal(3)]
    Y = (y[:, None] == np.arange(3)).astype(float)
    sw = rng.uniform(0.5, 2, 9)
    _, g, _ = np_loss_grad(coefs, intercepts, X, Y, sw, "tanh", "softmax", 0.1)
    h = 1e-6
    for (i, j) in [(0, 0), (2, 1), (3, 2)]:
        plus = [c.copy() for c in coefs]
        minus = [c.copy() for c in coefs]
        plus[0][i, j] += h
        minus[0][i, j] -= h
        lp = np_loss_grad(plus, intercepts, X, Y, sw, "tanh", "softmax", 0.1)[0]
        lm = np_loss_grad(minus, intercepts, X, Y, sw, "tanh", "softmax", 0.1)[0]
        assert g[0][i, j] == pytest.approx((lp - lm) / (2 * h), rel=1e-6)


# ---------------------------------------------------------------------------
# persistence and parameters
# ---------------------------------------------------------------------------
@EST_PARAMS
def test_pickle_round_trip(est_cls):
    X, y = data_for(est_cls)
    est = est_cls(hidden_layer_sizes=(5,), max_iter=3, random_state=0,
                  steps_per_epoch=2, batch_size=8)
    with pytest.warns(ConvergenceWarning):
        est.fit(X, y)
    restored = pickle.loads(pickle.dumps(est))
    assert np.array_equal(restored.predict(X), est.predict(X))
    if est_cls is MiniBatchMLPClassifier:
        assert np.array_equal(restored.predict_proba(X), est.predict_proba(X))
    assert restored.get_params() == est.get_params()
    assert restored.steps_per_epoch_ == 2
    # training continues identically (optimizer state included)
    est.partial_fit(X, y)
    restored.partial_fit(X, y)
    assert_same_weights(est, restored)


@EST_PARAMS
def test_clone_and_params(est_cls):
    est = est_cls(hidden_layer_sizes=(7, 3), steps_per_epoch=4, batch_size=5,
                  random_state=2)
    params = est.get_params()
    assert params["steps_per_epoch"] == 4
    assert params["batch_size"] == 5
    X, y = data_for(est_cls)
    with pytest.warns(ConvergenceWarning):
        est.set_params(max_iter=2).fit(X, y)
    twin = clone(est)
    assert twin.get_params() == est.get_params()
    assert not hasattr(twin, "coefs_")
    assert twin.set_params(steps_per_epoch=3) is twin
    assert twin.get_params()["steps_per_epoch"] == 3
    with pytest.warns(ConvergenceWarning):
        twin.fit(X, y)
    assert twin.steps_per_epoch_ == 3
    assert twin.t_ == 2 * 3 * 5
    twin.set_params(steps_per_epoch=None)
    assert twin.get_params()["steps_per_epoch"] is None


@pytest.mark.parametrize("ours, theirs", [(MiniBatchMLPClassifier, MLPClassifier),
                                          (MiniBatchMLPRegressor, MLPRegressor)])
def test_defaults_are_sklearn_defaults_plus_steps_per_epoch(ours, theirs):
    if theirs is MLPRegressor:
        skip_without_sklearn_mlp_17("MLPRegressor(loss=...)")
    assert_sklearn_params(ours().get_params(), theirs().get_params())


def assert_sklearn_params(ours, theirs):
    """Every scikit-learn parameter with its value; beyond them
    ``steps_per_epoch`` and only extensions that default to None (off)."""
    for name, value in theirs.items():
        assert ours[name] == value, name
    extra = set(ours) - set(theirs)
    assert "steps_per_epoch" in extra
    assert all(ours[name] is None for name in extra), extra


SKLEARN_CONFIGS = [
    dict(hidden_layer_sizes=(7, 3), activation="tanh", solver="sgd", momentum=0.5,
         nesterovs_momentum=False, batch_size=9, learning_rate="invscaling",
         power_t=0.25, max_iter=5, random_state=1),
    dict(hidden_layer_sizes=(4,), solver="lbfgs", alpha=1e-2, max_fun=300,
         max_iter=20, random_state=0),
    dict(hidden_layer_sizes=6, activation="logistic", early_stopping=True,
         validation_fraction=0.25, n_iter_no_change=3, beta_1=0.8, beta_2=0.99,
         epsilon=1e-7, max_iter=6, tol=1e-3, random_state=0),
    dict(hidden_layer_sizes=(5,), activation="identity", solver="sgd",
         learning_rate="adaptive", learning_rate_init=0.05, warm_start=True,
         shuffle=False, max_iter=4, random_state=3),
]


@ignore_old_sklearn_lbfgs_warning
@ignore_convergence
@pytest.mark.parametrize("config", SKLEARN_CONFIGS,
                         ids=["sgd-invscaling", "lbfgs", "early-stop", "adaptive"])
@pytest.mark.parametrize("ours, theirs", [(MiniBatchMLPClassifier, MLPClassifier),
                                          (MiniBatchMLPRegressor, MLPRegressor)])
def test_constructible_from_sklearn_get_params(ours, theirs, config):
    if theirs is MLPRegressor:
        skip_without_sklearn_mlp_17("MLPRegressor(loss=...)")
    sk = theirs(**config)
    est = ours(**sk.get_params())
    assert_sklearn_params(est.get_params(), sk.get_params())
    # binary, not multiclass: the multiclass early-stopping split differs
    # from scikit-learn's on purpose (DESIGN §2)
    X, y = make_data("binary" if ours is MiniBatchMLPClassifier else "regression")
    est.fit(X, y)
    sk.fit(X, y)
    assert est.n_iter_ == sk.n_iter_
    for a, b in zip(all_weights(est), all_weights(sk)):
        np.testing.assert_allclose(a, b, rtol=1e-7, atol=1e-12)


# ---------------------------------------------------------------------------
# determinism
# ---------------------------------------------------------------------------
DETERMINISM_PARAMS = dict(hidden_layer_sizes=(6,), batch_size=7, max_iter=4,
                          steps_per_epoch=5, random_state=42)


@ignore_convergence
@pytest.mark.parametrize("solver", ["sgd", "adam"])
def test_same_random_state_is_bit_identical_in_process(solver):
    X, y = make_data("multiclass", n=45)
    a = MiniBatchMLPClassifier(solver=solver, **DETERMINISM_PARAMS).fit(X, y)
    b = MiniBatchMLPClassifier(solver=solver, **DETERMINISM_PARAMS).fit(X, y)
    assert_same_weights(a, b)
    assert (a.n_iter_, a.t_) == (b.n_iter_, b.t_)
    c = MiniBatchMLPClassifier(solver=solver, **dict(DETERMINISM_PARAMS,
                                                      random_state=43)).fit(X, y)
    assert not weights_equal(a, c)


@ignore_convergence
def test_same_random_state_is_bit_identical_in_a_subprocess(tmp_path):
    X, y = make_data("multiclass", n=45)
    np.save(tmp_path / "X.npy", X)
    np.save(tmp_path / "y.npy", y)
    script = textwrap.dedent(f"""
        import warnings
        import numpy as np
        from skminibatch import MiniBatchMLPClassifier
        warnings.simplefilter("ignore")
        X = np.load({str(tmp_path / "X.npy")!r})
        y = np.load({str(tmp_path / "y.npy")!r})
        est = MiniBatchMLPClassifier(**{DETERMINISM_PARAMS!r}).fit(X, y)
        for i, w in enumerate(est.coefs_ + est.intercepts_):
            np.save({str(tmp_path)!r} + "/w%d.npy" % i, w)
        np.save({str(tmp_path / "counts.npy")!r}, [est.n_iter_, est.t_])
    """)
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(
        [str(ROOT)] + ([env["PYTHONPATH"]] if env.get("PYTHONPATH") else []))
    subprocess.run([sys.executable, "-c", script], check=True, env=env,
                   cwd=tmp_path, timeout=120)
    est = MiniBatchMLPClassifier(**DETERMINISM_PARAMS).fit(X, y)
    weights = all_weights(est)
    for i, w in enumerate(weights):
        other = np.load(tmp_path / f"w{i}.npy")
        assert other.dtype == w.dtype
        assert np.array_equal(other, w)
    assert list(np.load(tmp_path / "counts.npy")) == [est.n_iter_, est.t_]


# ---------------------------------------------------------------------------
# dtypes
# ---------------------------------------------------------------------------
@ignore_convergence
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("solver", ["adam", "sgd", "lbfgs"])
def test_dtype_is_kept(dtype, solver):
    X, y = make_data("binary", n=30)
    X = X.astype(dtype)
    clf = MiniBatchMLPClassifier(hidden_layer_sizes=(5,), solver=solver, max_iter=3,
                                 random_state=0).fit(X, y)
    assert all(w.dtype == dtype for w in all_weights(clf))
    assert clf.predict_proba(X).dtype == dtype
    assert clf.predict_log_proba(X).dtype == dtype
    Xr, yr = make_data("regression", n=30)
    reg = MiniBatchMLPRegressor(hidden_layer_sizes=(5,), solver=solver, max_iter=3,
                                random_state=0).fit(Xr.astype(dtype), yr)
    assert all(w.dtype == dtype for w in all_weights(reg))
    assert reg.predict(Xr.astype(dtype)).dtype == dtype


@ignore_convergence
def test_integer_input_trains_in_float64():
    X, y = make_data("binary", n=30)
    X = np.round(3 * X).astype(np.int64)
    clf = MiniBatchMLPClassifier(hidden_layer_sizes=(5,), max_iter=2,
                                 random_state=0).fit(X, y)
    assert all(w.dtype == np.float64 for w in all_weights(clf))


@ignore_convergence
def test_float32_training_is_close_to_float64():
    X, y = make_data("regression", n=40)
    params = dict(hidden_layer_sizes=(5,), max_iter=5, batch_size=10, random_state=0)
    r64 = MiniBatchMLPRegressor(**params).fit(X, y)
    r32 = MiniBatchMLPRegressor(**params).fit(X.astype(np.float32), y)
    for a, b in zip(all_weights(r32), all_weights(r64)):
        np.testing.assert_allclose(a, b, rtol=1e-3, atol=1e-4)


# ---------------------------------------------------------------------------
# sample_weight
# ---------------------------------------------------------------------------
def _weight_params(solver):
    return dict(hidden_layer_sizes=(5,), solver=solver, shuffle=False, max_iter=5,
                learning_rate_init=0.05, alpha=0.01, random_state=0)


@ignore_convergence
@EST_PARAMS
@pytest.mark.parametrize("solver", ["sgd", "adam"])
def test_integer_weights_equal_repeated_samples(est_cls, solver):
    X, y = data_for(est_cls, n=12, seed=2)
    w = np.random.RandomState(0).randint(1, 4, 12)
    # batch_size='auto' = the whole training set in both fits (full batch)
    weighted = est_cls(**_weight_params(solver)).fit(X, y, sample_weight=w)
    repeated = est_cls(**_weight_params(solver)).fit(np.repeat(X, w, axis=0),
                                                      np.repeat(y, w, axis=0))
    assert weighted.batch_size_ == 12 and repeated.batch_size_ == w.sum()
    for a, b in zip(all_weights(weighted), all_weights(repeated)):
        np.testing.assert_allclose(a, b, rtol=1e-10, atol=1e-13)
    np.testing.assert_allclose(weighted.loss_curve_, repeated.loss_curve_, rtol=1e-10)
    unweighted = est_cls(**_weight_params(solver)).fit(X, y)
    assert not np.allclose(unweighted.coefs_[0], weighted.coefs_[0], rtol=1e-6)


@ignore_convergence
@EST_PARAMS
@pytest.mark.parametrize("solver", ["sgd", "adam"])
def test_zero_weight_equals_removing_the_sample(est_cls, solver):
    X, y = data_for(est_cls, n=12, seed=2)
    w = np.ones(12)
    w[[3, 8]] = 0
    keep = w > 0
    zeroed = est_cls(**_weight_params(solver)).fit(X, y, sample_weight=w)
    removed = est_cls(**_weight_params(solver)).fit(X[keep], y[keep])
    for a, b in zip(all_weights(zeroed), all_weights(removed)):
        np.testing.assert_allclose(a, b, rtol=1e-10, atol=1e-13)


@ignore_convergence
def test_sample_weight_changes_the_minibatch_fit():
    X, y = make_data("binary", n=30)
    # alpha=0: the L2 term is divided by the batch's weight sum, so with
    # alpha > 0 a constant weight does change the fit (as in scikit-learn)
    params = dict(hidden_layer_sizes=(4,), batch_size=6, max_iter=3, alpha=0.0,
                  random_state=0)
    w = np.where(y == 1, 3.0, 1.0)
    a = MiniBatchMLPClassifier(**params).fit(X, y)
    b = MiniBatchMLPClassifier(**params).fit(X, y, sample_weight=w)
    c = MiniBatchMLPClassifier(**params).fit(X, y, sample_weight=np.full(30, 2.0))
    assert not weights_equal(a, b)
    # a constant weight rescales nothing (loss and gradient are weighted means)
    for x, z in zip(all_weights(a), all_weights(c)):
        np.testing.assert_allclose(x, z, rtol=1e-10, atol=1e-13)


# ---------------------------------------------------------------------------
# warm_start, partial_fit and the optimizer state
# ---------------------------------------------------------------------------
ONE_STEP_CASES = [
    (MiniBatchMLPRegressor, "regression", "tanh", (5, 3)),
    (MiniBatchMLPRegressor, "multioutput", "relu", (4,)),
    (MiniBatchMLPClassifier, "multiclass", "logistic", (5,)),
    (MiniBatchMLPClassifier, "binary", "tanh", (4,)),
]
ONE_STEP_IDS = ["regression", "multioutput", "multiclass", "binary"]


def _assert_one_sgd_step_from(est, coefs, intercepts, X, y, activation):
    """``est``'s weights are one plain SGD step (lr 0.1, alpha 0.02, unit
    sample weights) from ``coefs``/``intercepts`` on all of ``X``; returns
    the loss at the starting weights."""
    Y = targets_matrix(est, y)
    loss, gc, gi = np_loss_grad(coefs, intercepts, X, Y, np.ones(len(X)), activation,
                                est.out_activation_, 0.02)
    expected = [c - 0.1 * g for c, g in zip(coefs, gc)] + \
               [b - 0.1 * g for b, g in zip(intercepts, gi)]
    for got, want in zip(all_weights(est), expected):
        np.testing.assert_allclose(got, want, rtol=1e-10, atol=1e-14)
    return loss


def _sgd_step_params(hidden, activation):
    return dict(hidden_layer_sizes=hidden, activation=activation, solver="sgd",
                momentum=0.0, learning_rate_init=0.1, alpha=0.02, shuffle=False,
                max_iter=1, random_state=0)


@ignore_convergence
@pytest.mark.parametrize("est_cls, kind, activation, hidden", ONE_STEP_CASES,
                         ids=ONE_STEP_IDS)
def test_warm_start_continues_from_assigned_weights(est_cls, kind, activation, hidden):
    X, y = make_data(kind, n=20, seed=1)
    est = est_cls(**_sgd_step_params(hidden, activation)).fit(X, y)
    coefs, intercepts = random_weights_like(est, seed=9)
    assign_weights(est, coefs, intercepts)
    est.set_params(warm_start=True).fit(X, y)  # one full-batch step
    loss = _assert_one_sgd_step_from(est, coefs, intercepts, X, y, activation)
    assert est.loss_curve_[-1] == pytest.approx(loss, rel=1e-12)
    assert len(est.loss_curve_) == 2  # the curve continues across warm starts
    assert est.n_iter_ == 1


@pytest.mark.parametrize("est_cls, kind, activation, hidden", ONE_STEP_CASES,
                         ids=ONE_STEP_IDS)
def test_partial_fit_continues_from_assigned_weights(est_cls, kind, activation, hidden):
    X, y = make_data(kind, n=20, seed=1)
    est = est_cls(**_sgd_step_params(hidden, activation))
    extra = {"classes": np.unique(y)} if kind in ("multiclass", "binary") else {}
    est.partial_fit(X, y, **extra)
    coefs, intercepts = random_weights_like(est, seed=4)
    assign_weights(est, coefs, intercepts)
    est.partial_fit(X, y)
    _assert_one_sgd_step_from(est, coefs, intercepts, X, y, activation)


def _np_adam(params, grads, m, v, t, lr=0.05, beta_1=0.9, beta_2=0.999, eps=1e-8):
    m = [beta_1 * a + (1 - beta_1) * g for a, g in zip(m, grads)]
    v = [beta_2 * a + (1 - beta_2) * g ** 2 for a, g in zip(v, grads)]
    lr_t = lr * np.sqrt(1 - beta_2 ** t) / (1 - beta_1 ** t)
    new = [p - lr_t * a / (np.sqrt(b) + eps) for p, a, b in zip(params, m, v)]
    return new, m, v


@ignore_convergence
def test_fit_restarts_optimizer_state_partial_fit_keeps_it():
    X, y = make_data("regression", n=16, seed=3)
    est = MiniBatchMLPRegressor(hidden_layer_sizes=(4,), activation="tanh",
                                solver="adam", learning_rate_init=0.05, alpha=0.0,
                                shuffle=False, max_iter=1, warm_start=True,
                                random_state=0).fit(X, y)
    coefs, intercepts = random_weights_like(est, seed=1)
    assign_weights(est, coefs, intercepts)
    Y = y[:, None]
    ones = np.ones(len(y))

    def grads(params):
        n = len(params) // 2
        _, gc, gi = np_loss_grad(params[:n], params[n:], X, Y, ones, "tanh",
                                 "identity", 0.0)
        return gc + gi

    zeros = [np.zeros_like(p) for p in coefs + intercepts]
    w0 = coefs + intercepts
    w1, m1, v1 = _np_adam(w0, grads(w0), zeros, zeros, t=1)
    est.fit(X, y)  # warm start: fresh Adam state, one full-batch step
    for got, want in zip(all_weights(est), w1):
        np.testing.assert_allclose(got, want, rtol=1e-10, atol=1e-14)

    continued = copy.deepcopy(est)
    continued.partial_fit(X, y)  # keeps the moments: Adam step 2
    w2, m2, v2 = _np_adam(w1, grads(w1), m1, v1, t=2)
    for got, want in zip(all_weights(continued), w2):
        np.testing.assert_allclose(got, want, rtol=1e-10, atol=1e-14)
    continued.partial_fit(X, y)  # and again: Adam step 3
    w3, _, _ = _np_adam(w2, grads(w2), m2, v2, t=3)
    for got, want in zip(all_weights(continued), w3):
        np.testing.assert_allclose(got, want, rtol=1e-10, atol=1e-14)

    restarted = copy.deepcopy(est)
    restarted.fit(X, y)  # warm start again: fresh moments, step 1 from w1
    w2_fresh, _, _ = _np_adam(w1, grads(w1), zeros, zeros, t=1)
    for got, want in zip(all_weights(restarted), w2_fresh):
        np.testing.assert_allclose(got, want, rtol=1e-10, atol=1e-14)

    twice = copy.deepcopy(est)
    twice.partial_fit(X, y)
    assert not weights_equal(twice, restarted)


@ignore_convergence
def test_warm_start_false_starts_over():
    X, y = make_data("regression", n=20)
    params = dict(hidden_layer_sizes=(4,), max_iter=3, random_state=0)
    est = MiniBatchMLPRegressor(**params).fit(X, y)
    first = copy.deepcopy(est)
    est.fit(X, y)
    assert_same_weights(first, est)
    assert len(est.loss_curve_) == 3 and est.t_ == 60
    est.set_params(warm_start=True).fit(X, y)
    assert not weights_equal(first, est)
    assert len(est.loss_curve_) == 6 and est.t_ == 120


@ignore_convergence
def test_warm_start_rejects_weights_of_the_wrong_shape():
    X, y = make_data("regression", n=20)
    est = MiniBatchMLPRegressor(hidden_layer_sizes=(4,), max_iter=2,
                                random_state=0).fit(X, y)
    est.coefs_ = [np.zeros((4, 3)), np.zeros((3, 1))]
    with pytest.raises(ValueError, match="coefs_"):
        est.set_params(warm_start=True).fit(X, y)


# ---------------------------------------------------------------------------
# targets
# ---------------------------------------------------------------------------
@ignore_convergence
def test_string_labels_multiclass():
    X, y = make_data("multiclass", n=60)
    names = np.array(["low", "mid", "high"])[y]
    clf = MiniBatchMLPClassifier(hidden_layer_sizes=(10,), learning_rate_init=0.05,
                                 max_iter=60, random_state=0).fit(X, names)
    assert list(clf.classes_) == ["high", "low", "mid"]
    assert clf.out_activation_ == "softmax"
    pred = clf.predict(X)
    assert set(pred) <= set(names)
    assert clf.score(X, names) > 0.85
    proba = clf.predict_proba(X)
    assert proba.shape == (60, 3)
    np.testing.assert_allclose(proba.sum(axis=1), 1.0, rtol=1e-12)
    assert np.array_equal(clf.classes_[proba.argmax(axis=1)], pred)
    assert np.array_equal(clf.predict_log_proba(X), np.log(proba))


@ignore_convergence
def test_binary_target():
    X, y = make_data("binary", n=60)
    labels = np.where(y == 1, "yes", "no")
    clf = MiniBatchMLPClassifier(hidden_layer_sizes=(8,), learning_rate_init=0.05,
                                 max_iter=40, random_state=0).fit(X, labels)
    assert clf.n_outputs_ == 1 and clf.out_activation_ == "logistic"
    proba = clf.predict_proba(X)
    assert proba.shape == (60, 2)
    np.testing.assert_allclose(proba.sum(axis=1), 1.0, rtol=1e-12)
    assert np.array_equal(clf.predict(X), clf.classes_[proba.argmax(axis=1)])
    assert clf.score(X, labels) > 0.9
    assert np.array_equal(clf.predict_log_proba(X), np.log(proba))


@ignore_convergence
@pytest.mark.parametrize("labels", [
    np.array([0, 1]), np.array([3, -1, 7]), np.array([-2, 5], dtype=np.int8),
    np.array([1.0, 2.0, 4.0]), np.array([False, True]),
    np.array([2**40, 9], dtype=np.uint64),
], ids=["int-binary", "int-multiclass", "int8", "float", "bool", "uint64"])
def test_numeric_labels_binarizer_as_fitted_on_y(labels):
    """Numeric labels: the binarizer is fitted on their distinct values,
    and ends up as one fitted on y (classes_ with y's dtype, y_type_)."""
    from sklearn.preprocessing import LabelBinarizer

    X, y = make_data("multiclass", n=60)
    y = labels[y % len(labels)]
    clf = MiniBatchMLPClassifier(hidden_layer_sizes=(5,), max_iter=3,
                                 random_state=0).fit(X, y)
    ref = LabelBinarizer().fit(y)
    ours = clf._label_binarizer
    assert ours.y_type_ == ref.y_type_
    assert ours.sparse_input_ == ref.sparse_input_
    assert ours.classes_.dtype == ref.classes_.dtype == y.dtype
    assert np.array_equal(ours.classes_, ref.classes_)
    assert np.array_equal(clf.classes_, np.unique(y))
    assert set(clf.predict(X)) <= set(y)


@ignore_convergence
def test_multilabel_indicator_target():
    X, Y = make_data("multilabel", n=60)
    clf = MiniBatchMLPClassifier(hidden_layer_sizes=(10,), learning_rate_init=0.05,
                                 max_iter=60, random_state=0).fit(X, Y)
    assert clf.n_outputs_ == 3 and clf.out_activation_ == "logistic"
    pred = clf.predict(X)
    assert pred.shape == (60, 3)
    assert set(np.unique(pred)) <= {0, 1}
    proba = clf.predict_proba(X)
    assert proba.shape == (60, 3)
    assert np.array_equal(pred, (proba > 0.5).astype(pred.dtype))
    assert (pred == Y).mean() > 0.85


@ignore_convergence
def test_multioutput_regression():
    X, Y = make_data("multioutput", n=60)
    reg = MiniBatchMLPRegressor(hidden_layer_sizes=(10,), learning_rate_init=0.05,
                                max_iter=80, random_state=0).fit(X, Y)
    assert reg.n_outputs_ == 2
    assert reg.predict(X).shape == (60, 2)
    assert reg.score(X, Y) > 0.8
    single = MiniBatchMLPRegressor(hidden_layer_sizes=(10,), max_iter=2,
                                   random_state=0).fit(X, Y[:, 0])
    assert single.predict(X).shape == (60,)


@ignore_convergence
def test_poisson_regression_predicts_positive_values():
    X, y = make_data("poisson", n=60)
    assert (y >= 0).all() and (y == 0).any()
    reg = MiniBatchMLPRegressor(loss="poisson", hidden_layer_sizes=(6,),
                                learning_rate_init=0.02, max_iter=30,
                                random_state=0).fit(X, y)
    assert reg.out_activation_ == "exp"
    pred = reg.predict(X)
    assert np.all(pred > 0) and np.all(np.isfinite(pred))
    # better than predicting the mean (Poisson deviance)
    from sklearn.metrics import mean_poisson_deviance
    assert mean_poisson_deviance(y, pred) < mean_poisson_deviance(
        y, np.full_like(y, y.mean()))


# ---------------------------------------------------------------------------
# pandas
# ---------------------------------------------------------------------------
@ignore_convergence
@EST_PARAMS
def test_dataframe_feature_names(est_cls):
    pd = pytest.importorskip("pandas")
    X, y = data_for(est_cls, n=30)
    df = pd.DataFrame(X, columns=["a", "b", "c", "d"])
    est = est_cls(hidden_layer_sizes=(4,), max_iter=2, random_state=0).fit(df, y)
    assert list(est.feature_names_in_) == ["a", "b", "c", "d"]
    assert est.n_features_in_ == 4
    # same weights as a fit on the bare array
    plain = est_cls(hidden_layer_sizes=(4,), max_iter=2, random_state=0).fit(X, y)
    assert np.array_equal(est.predict(df), plain.predict(X))
    with pytest.raises(ValueError, match="feature names"):
        est.predict(df.rename(columns={"d": "e"}))
    with pytest.raises(ValueError, match="feature names"):
        est.predict(df[["b", "a", "c", "d"]])


# ---------------------------------------------------------------------------
# early stopping
# ---------------------------------------------------------------------------
def _split_like_fit(n, units, seed, validation_fraction, stratify=None):
    """The (train, validation) indices a fit draws: the initial weights take
    the first uniform draws of ``RandomState(seed)`` (as in scikit-learn), the
    split comes next from the same generator."""
    rng = np.random.RandomState(seed)
    for fan_in, fan_out in zip(units[:-1], units[1:]):
        rng.uniform(size=(fan_in, fan_out))
        rng.uniform(size=fan_out)
    return train_test_split(np.arange(n), random_state=rng,
                            test_size=validation_fraction, stratify=stratify)


@ignore_convergence
def test_early_stopping_keeps_the_best_epoch():
    X, y = make_data("regression", n=60, seed=4)
    y = y + 0.8 * np.random.RandomState(0).standard_normal(60)  # noisy: overfits
    params = dict(hidden_layer_sizes=(12,), learning_rate_init=0.05, batch_size=8,
                  early_stopping=True, validation_fraction=0.25, n_iter_no_change=4,
                  max_iter=80, random_state=5)
    est = MiniBatchMLPRegressor(**params).fit(X, y)
    assert len(est.validation_scores_) == est.n_iter_ == len(est.loss_curve_)
    assert est.best_validation_score_ == max(est.validation_scores_)
    assert est.n_iter_ < 80  # stopped by the rule, not by max_iter
    best = int(np.argmax(est.validation_scores_))
    assert best < est.n_iter_ - 1  # the last epoch is not the best one
    train_idx, val_idx = _split_like_fit(60, [4, 12, 1], 5, 0.25)
    assert est.t_ == est.n_iter_ * len(train_idx)
    # the final weights are the best epoch's: they score best_validation_score_
    score = est.score(X[val_idx], y[val_idx])
    assert score == pytest.approx(est.best_validation_score_, rel=1e-12)
    assert abs(score - est.validation_scores_[-1]) > 1e-9


@ignore_convergence
def test_early_stopping_warm_start_continues_the_records_like_sklearn():
    X, y = make_data("regression", n=60)
    params = dict(hidden_layer_sizes=(5,), early_stopping=True, warm_start=True,
                  max_iter=4, tol=0.0, n_iter_no_change=np.inf, random_state=0)
    est = MiniBatchMLPRegressor(**params).fit(X, y)
    est.fit(X, y)
    sk = MLPRegressor(**params).fit(X, y)
    sk.fit(X, y)
    assert len(est.loss_curve_) == len(sk.loss_curve_) == 8
    # one validation score per recorded epoch, as scikit-learn keeps them
    assert len(est.validation_scores_) == len(est.loss_curve_)
    assert len(est.validation_scores_) == len(sk.validation_scores_)


@ignore_convergence
def test_early_stopping_split_is_stratified_for_multiclass():
    rng = np.random.RandomState(0)
    y = np.repeat([0, 1, 2], [24, 8, 8])
    X = rng.standard_normal((40, 3)) + y[:, None]
    params = dict(hidden_layer_sizes=(5,), solver="sgd", learning_rate_init=0.1,
                  shuffle=False, max_iter=1, random_state=3)
    train_idx, val_idx = _split_like_fit(40, [3, 5, 3], 3, 0.25, stratify=y)
    assert np.bincount(y[val_idx]).tolist() == [6, 2, 2]
    plain_train, _ = _split_like_fit(40, [3, 5, 3], 3, 0.25)
    assert set(plain_train) != set(train_idx)  # precondition: stratifying matters

    es = MiniBatchMLPClassifier(early_stopping=True, validation_fraction=0.25,
                                **params).fit(X, y)
    # the same first epoch, run by hand on the stratified training part from the
    # same initial weights (sgd at a negligible rate leaves them as drawn)
    init = MiniBatchMLPClassifier(**dict(params, learning_rate_init=1e-300)).fit(X, y)
    manual = MiniBatchMLPClassifier(**params).fit(X, y)
    assign_weights(manual, init.coefs_, init.intercepts_)
    manual.set_params(warm_start=True).fit(X[train_idx], y[train_idx])
    for a, b in zip(all_weights(es), all_weights(manual)):
        np.testing.assert_allclose(a, b, rtol=1e-12, atol=1e-15)
    assert es.validation_scores_[0] == pytest.approx(
        manual.score(X[val_idx], y[val_idx]))


def test_early_stopping_class_with_one_member_cannot_be_stratified():
    X, y = make_data("binary", n=30)
    y = y.copy()
    y[0] = 2  # a third class with a single sample
    clf = MiniBatchMLPClassifier(hidden_layer_sizes=(3,), early_stopping=True,
                                 random_state=0)
    with pytest.raises(ValueError, match="validation"):
        clf.fit(X, y)


@EST_PARAMS
def test_early_stopping_validation_set_too_small(est_cls):
    X, y = data_for(est_cls, n=10)
    est = est_cls(hidden_layer_sizes=(3,), early_stopping=True,
                  validation_fraction=0.1, random_state=0)
    with pytest.raises(ValueError, match="validation"):
        est.fit(X, y)


@EST_PARAMS
def test_partial_fit_with_early_stopping_raises(est_cls):
    X, y = data_for(est_cls, n=20)
    est = est_cls(hidden_layer_sizes=(3,), early_stopping=True)
    extra = {"classes": np.unique(y)} if est_cls is MiniBatchMLPClassifier else {}
    with pytest.raises(ValueError, match="early_stopping"):
        est.partial_fit(X, y, **extra)
    assert not hasattr(est, "coefs_")


# ---------------------------------------------------------------------------
# verbose
# ---------------------------------------------------------------------------
@ignore_convergence
def test_verbose_prints_epoch_losses(capsys):
    X, y = make_data("multiclass", n=30)
    clf = MiniBatchMLPClassifier(hidden_layer_sizes=(3,), max_iter=3, verbose=True,
                                 random_state=0).fit(X, y)
    out = capsys.readouterr().out
    lines = [ln for ln in out.splitlines() if ln.startswith("Iteration ")]
    assert len(lines) == clf.n_iter_ == 3
    assert lines[0].startswith("Iteration 1, loss = ")
    assert float(lines[-1].split("=")[1]) == pytest.approx(clf.loss_curve_[-1],
                                                          abs=1e-8)
    assert "Validation score" not in out


@ignore_convergence
def test_verbose_prints_validation_scores(capsys):
    X, y = make_data("regression", n=40)
    reg = MiniBatchMLPRegressor(hidden_layer_sizes=(3,), max_iter=3, verbose=True,
                                early_stopping=True, random_state=0).fit(X, y)
    out = capsys.readouterr().out
    assert out.count("Validation score") == reg.n_iter_
    assert "Iteration 1, loss = " in out


def test_not_verbose_prints_nothing(capsys):
    X, y = make_data("regression", n=40)
    MiniBatchMLPRegressor(hidden_layer_sizes=(3,), max_iter=50, tol=10.0,
                          n_iter_no_change=1, random_state=0).fit(X, y)
    assert capsys.readouterr().out == ""


# ---------------------------------------------------------------------------
# divergence
# ---------------------------------------------------------------------------
@pytest.mark.parametrize("solver", ["sgd", "adam"])
def test_diverging_fit_raises_naming_the_epoch(solver):
    X, y = make_data("regression", n=30)
    reg = MiniBatchMLPRegressor(hidden_layer_sizes=(4,), solver=solver, max_iter=5,
                                random_state=0)
    with pytest.raises(ValueError, match=r"epoch \d+"):
        reg.fit(X * 1e200, y)
    assert not hasattr(reg, "coefs_")


def test_diverging_fit_with_huge_learning_rate_raises():
    X, y = make_data("regression", n=30)
    reg = MiniBatchMLPRegressor(hidden_layer_sizes=(4,), solver="sgd",
                                learning_rate_init=1e6, max_iter=20, random_state=0)
    with pytest.raises(ValueError, match=r"non-finite.*epoch \d+"):
        reg.fit(X, 1e6 * y)


@ignore_convergence
@EST_PARAMS
def test_failing_fit_leaves_a_fitted_model_unchanged(est_cls):
    X, y = data_for(est_cls, n=30)
    est = est_cls(hidden_layer_sizes=(4,), solver="sgd", max_iter=3,
                  random_state=0).fit(X, y)
    before = fitted_state(est)
    with pytest.raises(ValueError, match="epoch"):
        est.fit(X * 1e200, y)
    assert_state_equal(before, fitted_state(est))
    assert np.all(np.isfinite(est.predict(X).astype(float)))


@EST_PARAMS
def test_diverging_partial_fit_changes_nothing(est_cls):
    X, y = data_for(est_cls, n=30)
    est = est_cls(hidden_layer_sizes=(4,), solver="sgd", batch_size=8,
                  random_state=0)
    extra = {"classes": np.unique(y)} if est_cls is MiniBatchMLPClassifier else {}
    est.partial_fit(X, y, **extra)
    est.partial_fit(X, y)
    before = fitted_state(est)
    untouched = copy.deepcopy(est)
    with pytest.raises(ValueError, match="epoch"):
        est.partial_fit(X * 1e200, y)
    assert_state_equal(before, fitted_state(est))
    # the optimizer state is kept too: the next call continues as if the
    # failed one never happened
    est.partial_fit(X, y)
    untouched.partial_fit(X, y)
    assert_same_weights(est, untouched)
    assert est.t_ == untouched.t_


# ---------------------------------------------------------------------------
# lbfgs
# ---------------------------------------------------------------------------
@EST_PARAMS
def test_lbfgs_iteration_limit(est_cls):
    X, y = data_for(est_cls, n=30)
    est = est_cls(hidden_layer_sizes=(5,), solver="lbfgs", max_iter=3, random_state=0)
    with pytest.warns(ConvergenceWarning):
        est.fit(X, y)
    assert 1 <= est.n_iter_ <= 3
    assert np.isfinite(est.loss_)
    assert est.batch_size_ is None and est.steps_per_epoch_ is None
    longer = est_cls(hidden_layer_sizes=(5,), solver="lbfgs", max_iter=50,
                     random_state=0)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        longer.fit(X, y)
    assert 3 < longer.n_iter_ <= 50
    assert longer.loss_ < est.loss_


@ignore_convergence
def test_lbfgs_respects_max_fun(monkeypatch):
    X, y = make_data("regression", n=30)
    calls = []
    original = kernels.full_loss_grad

    def counting(*args):
        calls.append(1)
        return original(*args)

    monkeypatch.setattr(kernels, "full_loss_grad", counting)
    reg = MiniBatchMLPRegressor(hidden_layer_sizes=(4,), solver="lbfgs", max_fun=7,
                                random_state=0)
    with pytest.warns(ConvergenceWarning):
        reg.fit(X, y)
    # L-BFGS-B stops once the evaluation budget is spent (it may finish the
    # evaluation under way)
    assert len(calls) <= 7 + 1
    assert reg.n_iter_ < 7
    calls.clear()
    MiniBatchMLPRegressor(hidden_layer_sizes=(4,), solver="lbfgs", max_fun=40,
                          random_state=0).fit(X, y)
    assert 8 < len(calls) <= 41


@ignore_old_sklearn_lbfgs_warning
@ignore_convergence
def test_lbfgs_matches_sklearn():
    X, y = make_data("binary", n=30)
    params = dict(hidden_layer_sizes=(4,), solver="lbfgs", max_iter=10, alpha=1e-3,
                  random_state=0)
    ours = MiniBatchMLPClassifier(**params).fit(X, y)
    theirs = MLPClassifier(**params).fit(X, y)
    assert ours.n_iter_ == theirs.n_iter_
    assert ours.loss_ == pytest.approx(theirs.loss_, rel=1e-8)
    for a, b in zip(all_weights(ours), all_weights(theirs)):
        np.testing.assert_allclose(a, b, rtol=1e-6, atol=1e-10)


# ---------------------------------------------------------------------------
# learning-rate schedules
# ---------------------------------------------------------------------------
def test_adaptive_learning_rate_trains_longer_than_constant():
    X, y = make_data("regression", n=30)
    params = dict(hidden_layer_sizes=(4,), solver="sgd", tol=10.0, n_iter_no_change=2,
                  max_iter=100, random_state=0)
    constant = MiniBatchMLPRegressor(learning_rate="constant", **params).fit(X, y)
    adaptive = MiniBatchMLPRegressor(learning_rate="adaptive", **params).fit(X, y)
    # tol=10 is never met. constant: epoch 1 sets the best loss, epochs 2-4
    # fail to improve, and the count 3 > n_iter_no_change stops it.
    # adaptive: instead divides the rate by 5 (count reset) at epochs 4, 7, 10,
    # 13, 16 (1e-3 -> 2e-4 -> 4e-5 -> 8e-6 -> 1.6e-6 -> 3.2e-7) and stops at
    # epoch 19, when the rate is <= 1e-6 (scikit-learn's numbers too).
    assert constant.n_iter_ == 4
    assert adaptive.n_iter_ == 19


@ignore_convergence
def test_invscaling_runs_and_decays():
    X, y = make_data("regression", n=30)
    params = dict(hidden_layer_sizes=(4,), solver="sgd", learning_rate_init=0.05,
                  batch_size=10, max_iter=5, random_state=0)
    constant = MiniBatchMLPRegressor(learning_rate="constant", **params).fit(X, y)
    inv = MiniBatchMLPRegressor(learning_rate="invscaling", **params).fit(X, y)
    assert all(np.isfinite(w).all() for w in all_weights(inv))
    # the first epoch runs at learning_rate_init, later ones at smaller rates
    assert inv.loss_curve_[0] == pytest.approx(constant.loss_curve_[0], rel=1e-12)
    assert not weights_equal(inv, constant)
    start = MiniBatchMLPRegressor(**dict(params, max_iter=1)).fit(X, y)
    moved_inv = sum(np.abs(a - b).sum() for a, b in zip(all_weights(inv),
                                                          all_weights(start)))
    moved_const = sum(np.abs(a - b).sum() for a, b in zip(all_weights(constant),
                                                            all_weights(start)))
    assert moved_inv < moved_const


# ---------------------------------------------------------------------------
# Ctrl-C
# ---------------------------------------------------------------------------
@EST_PARAMS
def test_keyboard_interrupt_stops_cleanly(est_cls, monkeypatch):
    X, y = data_for(est_cls, n=40)
    original = kernels.train_steps
    calls = []

    def interrupt_on_third_call(*args):
        calls.append(1)
        if len(calls) == 3:
            raise KeyboardInterrupt
        return original(*args)

    monkeypatch.setattr(kernels, "train_steps", interrupt_on_third_call)
    est = est_cls(hidden_layer_sizes=(4,), batch_size=5, max_iter=50, random_state=0)
    with pytest.warns(UserWarning, match="interrupted"):
        est.fit(X, y)
    assert len(calls) == 3  # nothing ran after the interrupt
    assert est.n_iter_ < 50
    assert len(est.loss_curve_) == est.n_iter_
    assert all(np.isfinite(w).all() for w in all_weights(est))
    pred = est.predict(X)
    assert pred.shape[0] == 40
    monkeypatch.undo()
    # and the model trains on afterwards
    n_epochs = len(est.loss_curve_)
    est.partial_fit(X, y)
    assert len(est.loss_curve_) == n_epochs + 1
