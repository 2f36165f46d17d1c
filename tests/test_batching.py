"""Behaviour of ``batch_size`` / ``steps_per_epoch`` and the batch stream
(DESIGN §3), and numerical parity with scikit-learn's MLPs (DESIGN §2).

Every dataset is tiny and built inside the test; fits run a handful of
epochs on one small hidden layer.
"""

import itertools
import math

import numpy as np
import pytest
from sklearn.neural_network import MLPClassifier, MLPRegressor
from _sklearn_versions import needs_sklearn_mlp_17, skip_without_sklearn_mlp_17

import skminibatch._training as training_module
from skminibatch import MiniBatchMLPClassifier, MiniBatchMLPRegressor

ignore_convergence = pytest.mark.filterwarnings(
    "ignore::sklearn.exceptions.ConvergenceWarning"
)

ESTIMATORS = {"classifier": MiniBatchMLPClassifier, "regressor": MiniBatchMLPRegressor}
SKLEARN = {MiniBatchMLPClassifier: MLPClassifier, MiniBatchMLPRegressor: MLPRegressor}


# ---------------------------------------------------------------------------
# data (built per test, never at import)
# ---------------------------------------------------------------------------
def make_data(kind, n=40, n_features=4, seed=0):
    """``(X, y)`` for a target kind: 'binary', 'multiclass', 'multilabel',
    'regression', 'multioutput' or 'poisson'."""
    rng = np.random.RandomState(seed)
    X = rng.standard_normal((n, n_features))
    score = X[:, 0] - 0.7 * X[:, 1] + 0.3 * rng.standard_normal(n)
    if kind == "binary":
        y = (score > 0).astype(int)
    elif kind == "multiclass":
        y = np.digitize(score, [-0.5, 0.5])
    elif kind == "multilabel":
        y = np.column_stack([score > 0, X[:, 2] > 0, X[:, 3] > 0.3]).astype(int)
    elif kind == "regression":
        y = score + 0.5 * X[:, 2]
    elif kind == "multioutput":
        y = np.column_stack([score, X[:, 2] - X[:, 3]])
    elif kind == "poisson":
        y = rng.poisson(np.exp(0.5 * score)).astype(float)
    else:
        raise ValueError(kind)
    return X, y


def data_for(est_cls, n=40, seed=0):
    kind = "multiclass" if est_cls is MiniBatchMLPClassifier else "regression"
    return make_data(kind, n=n, seed=seed)


def all_weights(est):
    return list(est.coefs_) + list(est.intercepts_)


def assert_weights_equal(a, b):
    for wa, wb in zip(all_weights(a), all_weights(b)):
        assert wa.dtype == wb.dtype
        assert np.array_equal(wa, wb)


def weights_equal(a, b):
    return all(np.array_equal(wa, wb) for wa, wb in zip(all_weights(a), all_weights(b)))


def stream_batch_lengths(n, batch_size, n_batches):
    """Lengths of the first ``n_batches`` batches of the stream: passes of
    ``ceil(n / batch_size)`` batches, the last holding the remainder."""
    per_pass = [batch_size] * (n // batch_size)
    if n % batch_size:
        per_pass.append(n % batch_size)
    return list(itertools.islice(itertools.cycle(per_pass), n_batches))


# ---------------------------------------------------------------------------
# the bit-identity property of the stream
# ---------------------------------------------------------------------------
def _stream_fit(est_cls, X, y, solver, shuffle, max_iter, steps_per_epoch):
    return est_cls(
        hidden_layer_sizes=(5,),
        solver=solver,
        shuffle=shuffle,
        batch_size=6,  # 37 samples: 7 batches per pass, the last holds 1
        learning_rate="constant",
        learning_rate_init=0.01,
        tol=0.0,
        n_iter_no_change=np.inf,  # no stopping rule can fire
        max_iter=max_iter,
        steps_per_epoch=steps_per_epoch,
        random_state=7,
    ).fit(X, y)


@ignore_convergence
@pytest.mark.parametrize("est_cls", list(ESTIMATORS.values()), ids=list(ESTIMATORS))
@pytest.mark.parametrize("shuffle", [True, False], ids=["shuffle", "no-shuffle"])
@pytest.mark.parametrize("solver", ["sgd", "adam"])
def test_equal_total_steps_give_bit_identical_weights(est_cls, shuffle, solver):
    X, y = data_for(est_cls, n=37)
    a = _stream_fit(est_cls, X, y, solver, shuffle, max_iter=4, steps_per_epoch=10)
    b = _stream_fit(est_cls, X, y, solver, shuffle, max_iter=8, steps_per_epoch=5)
    assert (a.n_iter_, b.n_iter_) == (4, 8)
    assert len(a.loss_curve_) == 4 and len(b.loss_curve_) == 8
    assert a.t_ == b.t_ == sum(stream_batch_lengths(37, 6, 40))
    assert_weights_equal(a, b)


@ignore_convergence
@pytest.mark.parametrize("solver", ["sgd", "adam"])
def test_different_total_steps_give_different_weights(solver):
    # the counterpart of the property above: it is not vacuous
    X, y = data_for(MiniBatchMLPRegressor, n=37)
    a = _stream_fit(MiniBatchMLPRegressor, X, y, solver, True, 4, 10)
    b = _stream_fit(MiniBatchMLPRegressor, X, y, solver, True, 8, 6)
    assert not weights_equal(a, b)


@ignore_convergence
def test_epoch_boundaries_do_not_restart_the_stream():
    # 5 epochs of 3 steps vs 1 epoch of 15 steps over 7-batch passes: the
    # epoch ends mid-pass, yet the batches drawn are the same ones.
    X, y = make_data("binary", n=37)
    a = _stream_fit(MiniBatchMLPClassifier, X, y, "adam", True, 5, 3)
    b = _stream_fit(MiniBatchMLPClassifier, X, y, "adam", True, 1, 15)
    assert_weights_equal(a, b)


# ---------------------------------------------------------------------------
# counts: n_iter_, t_, loss_curve_, resolved sizes
# ---------------------------------------------------------------------------
@ignore_convergence
@pytest.mark.parametrize("est_cls", list(ESTIMATORS.values()), ids=list(ESTIMATORS))
def test_counts_when_epochs_span_passes(est_cls):
    X, y = data_for(est_cls, n=50)
    est = est_cls(hidden_layer_sizes=(4,), batch_size=8, steps_per_epoch=10,
                  max_iter=3, tol=0.0, n_iter_no_change=np.inf, random_state=0)
    est.fit(X, y)
    # 50 samples in batches of 8: 7 batches per pass, the last holding 2
    lengths = stream_batch_lengths(50, 8, 30)
    assert lengths[:7] == [8, 8, 8, 8, 8, 8, 2]
    assert est.n_iter_ == 3
    assert len(est.loss_curve_) == 3
    assert est.t_ == sum(lengths) == 216
    assert est.batch_size_ == 8
    assert est.steps_per_epoch_ == 10
    assert est.loss_ == est.loss_curve_[-1]


@ignore_convergence
@pytest.mark.parametrize("est_cls", list(ESTIMATORS.values()), ids=list(ESTIMATORS))
def test_steps_per_epoch_none_means_one_pass(est_cls):
    X, y = data_for(est_cls, n=50)
    est = est_cls(hidden_layer_sizes=(4,), batch_size=8, max_iter=4, tol=0.0,
                  n_iter_no_change=np.inf, random_state=0).fit(X, y)
    assert est.steps_per_epoch_ == math.ceil(50 / 8) == 7
    assert est.n_iter_ == 4
    assert est.t_ == 50 * est.n_iter_


@ignore_convergence
@pytest.mark.parametrize("n, expected_batch, expected_steps",
                         [(50, 50, 1), (230, 200, 2)])
def test_batch_size_auto(n, expected_batch, expected_steps):
    X, y = make_data("regression", n=n)
    est = MiniBatchMLPRegressor(hidden_layer_sizes=(3,), max_iter=2,
                                random_state=0).fit(X, y)
    assert est.batch_size_ == expected_batch
    assert est.steps_per_epoch_ == expected_steps
    assert est.t_ == 2 * n


@ignore_convergence
@pytest.mark.parametrize("est_cls", list(ESTIMATORS.values()), ids=list(ESTIMATORS))
def test_batch_size_larger_than_n_is_clipped_with_a_warning(est_cls):
    X, y = data_for(est_cls, n=20)
    est = est_cls(hidden_layer_sizes=(3,), batch_size=500, max_iter=2, random_state=0)
    with pytest.warns(UserWarning, match="batch_size"):
        est.fit(X, y)
    assert est.batch_size_ == 20
    assert est.steps_per_epoch_ == 1
    assert est.t_ == 40


def test_batch_size_clip_warning_in_partial_fit():
    X, y = make_data("regression", n=20)
    est = MiniBatchMLPRegressor(hidden_layer_sizes=(3,), batch_size=21, random_state=0)
    with pytest.warns(UserWarning, match="batch_size"):
        est.partial_fit(X, y)
    assert est.batch_size_ == 20


def test_batch_size_equal_to_n_does_not_warn():
    X, y = make_data("regression", n=20)
    # warnings are errors in this test suite: any warning fails the test
    est = MiniBatchMLPRegressor(hidden_layer_sizes=(3,), batch_size=20, random_state=0)
    est.partial_fit(X, y)
    assert est.batch_size_ == 20


# ---------------------------------------------------------------------------
# loss_curve_: the batch-size weighted mean of the per-batch losses
# ---------------------------------------------------------------------------
def _np_forward(coefs, intercepts, X, activation, out_activation):
    hidden = {
        "identity": lambda z: z,
        "tanh": np.tanh,
        "relu": lambda z: np.maximum(z, 0.0),
        "logistic": lambda z: 1.0 / (1.0 + np.exp(-z)),
    }[activation]
    a = X
    for layer, (W, b) in enumerate(zip(coefs, intercepts)):
        z = a @ W + b
        if layer < len(coefs) - 1:
            a = hidden(z)
        elif out_activation == "identity":
            a = z
        elif out_activation == "softmax":
            e = np.exp(z - z.max(axis=1, keepdims=True))
            a = e / e.sum(axis=1, keepdims=True)
        else:
            raise ValueError(out_activation)
    return a


def _np_per_sample_loss(out_activation, Y, P):
    if out_activation == "identity":
        return 0.5 * ((Y - P) ** 2).mean(axis=1)
    eps = np.finfo(np.float64).eps
    return -(Y * np.log(np.clip(P, eps, 1 - eps))).sum(axis=1)


@ignore_convergence
@pytest.mark.parametrize("est_cls", list(ESTIMATORS.values()), ids=list(ESTIMATORS))
def test_loss_curve_is_batch_weighted_mean_of_batch_losses(est_cls):
    n, batch_size, steps, alpha = 23, 5, 7, 0.3
    X, y = data_for(est_cls, n=n, seed=3)
    sw = np.random.RandomState(1).uniform(0.5, 2.0, n)
    # sgd with a learning rate so small that no step moves a weight: every
    # batch is evaluated at the weights we assign, which we know exactly.
    est = est_cls(hidden_layer_sizes=(4,), activation="tanh", solver="sgd",
                  momentum=0.0, learning_rate_init=1e-300, alpha=alpha,
                  batch_size=batch_size, steps_per_epoch=steps, shuffle=False,
                  max_iter=1, warm_start=True, random_state=0)
    est.fit(X, y, sample_weight=sw)
    rng = np.random.RandomState(5)
    coefs = [rng.uniform(-1, 1, c.shape) for c in est.coefs_]
    intercepts = [rng.uniform(-1, 1, b.shape) for b in est.intercepts_]
    est.coefs_ = [c.copy() for c in coefs]
    est.intercepts_ = [b.copy() for b in intercepts]
    est.fit(X, y, sample_weight=sw)
    for got, want in zip(all_weights(est), coefs + intercepts):
        assert np.array_equal(got, want)  # precondition: nothing moved

    if est_cls is MiniBatchMLPClassifier:
        Y = (y[:, None] == est.classes_[None, :]).astype(float)
    else:
        Y = y[:, None]
    P = _np_forward(coefs, intercepts, X, "tanh", est.out_activation_)
    per_sample = _np_per_sample_loss(est.out_activation_, Y, P)
    l2 = sum((c ** 2).sum() for c in coefs)
    # shuffle=False: natural order; 5 batches per pass (the last holds 3);
    # the 7 steps of the epoch are the whole pass and 2 batches of the next.
    starts = [0, 5, 10, 15, 20, 0, 5]
    lengths, losses = [], []
    for start in starts:
        idx = np.arange(start, min(start + batch_size, n))
        w = sw[idx]
        losses.append((w * per_sample[idx]).sum() / w.sum()
                      + 0.5 * alpha * l2 / w.sum())
        lengths.append(len(idx))
    assert lengths == [5, 5, 5, 5, 3, 5, 5]
    expected = np.dot(lengths, losses) / sum(lengths)
    assert len(est.loss_curve_) == 2  # the warm start continues the curve
    np.testing.assert_allclose(est.loss_curve_[-1], expected, rtol=1e-12)
    assert est.loss_ == est.loss_curve_[-1]
    # the plain (unweighted) mean of batch losses differs: the test can fail
    assert not np.isclose(np.mean(losses), expected, rtol=1e-6)


@ignore_convergence
@pytest.mark.parametrize("steps_per_call", [1, 2, 3, 5])
def test_loss_curve_does_not_depend_on_kernel_call_grouping(monkeypatch,
                                                            steps_per_call):
    """How many steps one compiled call runs is chosen from wall-clock timing
    (about 0.2 s per call), so it varies between runs and machines (the first
    call of a process also loads the kernels). The reported losses must not:
    a fit is bit-reproducible for a fixed random_state (and ``tol`` decisions
    are taken on these values)."""
    X, y = make_data("binary", n=300, n_features=5)
    params = dict(hidden_layer_sizes=(8,), batch_size=7, max_iter=3, random_state=0)
    reference = MiniBatchMLPClassifier(**params).fit(X, y)
    monkeypatch.setattr(training_module, "steps_for_seconds",
                        lambda *a, **k: steps_per_call)
    regrouped = MiniBatchMLPClassifier(**params).fit(X, y)
    assert_weights_equal(reference, regrouped)
    assert regrouped.loss_curve_ == reference.loss_curve_


def test_call_length():
    from skminibatch._batching import call_length

    assert call_length(12, 40) == 12
    assert call_length(12, 19) == 12  # the tail, 7 steps, is over half a call
    assert call_length(12, 18) == 18  # the tail would be 6 steps: half a call
    assert call_length(12, 5) == 5
    assert call_length(1, 1) == 1 and call_length(1, 2) == 1
    assert call_length(2, 3) == 3


@ignore_convergence
@pytest.mark.parametrize("per_call, expected", [
    (14, [20, 20]),  # 20 <= 14 + 7: no 6-step tail call
    (12, [12, 8, 12, 8]),  # the tail of 8 is two thirds of a call
    (30, [20, 20]),  # a call never crosses a pass
])
def test_no_short_tail_calls(monkeypatch, per_call, expected):
    """A compiled call runs to the end of the pass (epoch) rather than leave
    a tail of less than half a call: each call has a fixed cost."""
    calls = []
    real = training_module.run_train_steps

    def logged(K, n_threads, n_parts, args, kernel):
        calls.append(args[9] if kernel == "train_steps" else args[5])
        return real(K, n_threads, n_parts, args, kernel)

    monkeypatch.setattr(training_module, "run_train_steps", logged)
    monkeypatch.setattr(training_module, "steps_for_seconds",
                        lambda *a, **k: per_call)
    X, y = make_data("binary", n=200)
    params = dict(hidden_layer_sizes=(8,), batch_size=10, max_iter=2,
                  random_state=0)
    est = MiniBatchMLPClassifier(**params).fit(X, y)
    assert calls == expected
    monkeypatch.setattr(training_module, "steps_for_seconds", lambda *a, **k: 1)
    calls.clear()
    reference = MiniBatchMLPClassifier(**params).fit(X, y)
    assert calls == [1] * 40
    assert_weights_equal(est, reference)
    assert est.loss_curve_ == reference.loss_curve_


# ---------------------------------------------------------------------------
# parity with scikit-learn (steps_per_epoch=None)
# ---------------------------------------------------------------------------
def _assert_match_sklearn(ours, theirs, rtol=1e-9):
    assert ours.n_iter_ == theirs.n_iter_
    assert ours.t_ == theirs.t_
    for a, b in zip(all_weights(ours), all_weights(theirs)):
        np.testing.assert_allclose(a, b, rtol=rtol)
    if hasattr(theirs, "loss_curve_"):
        np.testing.assert_allclose(ours.loss_curve_, theirs.loss_curve_, rtol=rtol)
    np.testing.assert_allclose(ours.loss_, theirs.loss_, rtol=rtol)


PARITY_CASES = {
    "adam": dict(solver="adam"),
    "sgd": dict(solver="sgd"),
    "sgd-no-nesterov": dict(solver="sgd", nesterovs_momentum=False, momentum=0.5),
    "sgd-invscaling": dict(solver="sgd", learning_rate="invscaling", power_t=0.3,
                           learning_rate_init=0.1),
    # tol=10 never improves: constant stops, adaptive divides the rate
    "sgd-adaptive": dict(solver="sgd", learning_rate="adaptive", tol=10.0,
                         n_iter_no_change=1),
    "adam-tol-stop": dict(solver="adam", tol=10.0, n_iter_no_change=1),
    "adam-early-stopping": dict(solver="adam", early_stopping=True,
                                validation_fraction=0.2, n_iter_no_change=2),
}


# scikit-learn does not stratify its multiclass validation split (we do,
# DESIGN §2), so multiclass early stopping is not compared.
PARITY_PAIRS = [
    (case, kind)
    for case in PARITY_CASES
    for kind in ("multiclass", "binary", "regression")
    if not (kind == "multiclass" and PARITY_CASES[case].get("early_stopping"))
]


@ignore_convergence
@pytest.mark.parametrize("case, kind", PARITY_PAIRS,
                         ids=[f"{c}-{k}" for c, k in PARITY_PAIRS])
def test_matches_sklearn_after_a_few_epochs(case, kind):
    X, y = make_data(kind, n=45)
    params = dict(hidden_layer_sizes=(6, 5), activation="tanh", batch_size=10,
                  learning_rate_init=0.01, max_iter=6, shuffle=True, random_state=3)
    params.update(PARITY_CASES[case])
    est_cls = MiniBatchMLPRegressor if kind == "regression" else MiniBatchMLPClassifier
    ours = est_cls(**params).fit(X, y)
    theirs = SKLEARN[est_cls](**params).fit(X, y)
    n_train = 45 - math.ceil(0.2 * 45) if params.get("early_stopping") else 45
    assert ours.steps_per_epoch_ == math.ceil(n_train / 10)
    _assert_match_sklearn(ours, theirs)
    if params.get("early_stopping"):
        np.testing.assert_allclose(ours.validation_scores_, theirs.validation_scores_,
                                   rtol=1e-9)
        assert ours.best_validation_score_ == pytest.approx(
            theirs.best_validation_score_, rel=1e-12)
    else:
        assert ours.best_loss_ == pytest.approx(theirs.best_loss_, rel=1e-9)


@ignore_convergence
@pytest.mark.parametrize("kind", ["multiclass", "regression"])
@pytest.mark.parametrize("solver", ["adam", "sgd"])
def test_wide_input_large_batch_matches_sklearn(kind, solver):
    """Input 3x wider than the hidden layers at batch 512: the steps run
    in two parts by batch rows (``step_plan``), with the same numbers as
    scikit-learn's one-piece step."""
    from skminibatch._layout import Layout
    from skminibatch._threads import step_plan

    X, y = make_data(kind, n=1200, n_features=96)
    n_out = 3 if kind == "multiclass" else 1
    assert step_plan(512, Layout([96, 32, 32, n_out]), False) == (2, "train_steps")
    params = dict(hidden_layer_sizes=(32, 32), batch_size=512, max_iter=3,
                  solver=solver, learning_rate_init=0.01, random_state=1)
    est_cls = MiniBatchMLPRegressor if kind == "regression" else MiniBatchMLPClassifier
    ours = est_cls(**params).fit(X, y)
    theirs = SKLEARN[est_cls](**params).fit(X, y)
    _assert_match_sklearn(ours, theirs)


@needs_sklearn_mlp_17
@ignore_convergence
@pytest.mark.parametrize("est_cls", list(ESTIMATORS.values()), ids=list(ESTIMATORS))
@pytest.mark.parametrize("solver", ["sgd", "adam"])
def test_weighted_minibatch_fit_matches_sklearn(est_cls, solver):
    X, y = data_for(est_cls, n=37)
    sw = np.random.RandomState(2).uniform(0.2, 3.0, 37)
    params = dict(hidden_layer_sizes=(5,), activation="relu", solver=solver,
                  batch_size=8, alpha=0.05, learning_rate_init=0.02, max_iter=4,
                  random_state=1)
    ours = est_cls(**params).fit(X, y, sample_weight=sw)
    theirs = SKLEARN[est_cls](**params).fit(X, y, sample_weight=sw)
    _assert_match_sklearn(ours, theirs)


FULL_BATCH_CASES = [
    ("multiclass", "relu", (5,)),
    ("binary", "logistic", (4, 3)),
    ("multilabel", "tanh", (5,)),
    ("regression", "identity", (5,)),
    ("multioutput", "relu", (3, 4)),
    ("poisson", "tanh", (4,)),
    ("regression", "tanh", ()),  # no hidden layer: a linear model
]


@ignore_convergence
@pytest.mark.parametrize("solver", ["sgd", "adam"])
@pytest.mark.parametrize("kind, activation, hidden", FULL_BATCH_CASES,
                         ids=[c[0] + "-" + c[1] for c in FULL_BATCH_CASES])
def test_one_full_batch_step_matches_sklearn(solver, kind, activation, hidden):
    if kind == "poisson":
        skip_without_sklearn_mlp_17("loss='poisson'")
    X, y = make_data(kind, n=30, seed=1)
    params = dict(hidden_layer_sizes=hidden, activation=activation, solver=solver,
                  batch_size=30, max_iter=1, alpha=0.01, learning_rate_init=0.05,
                  random_state=11)
    if kind in ("regression", "multioutput", "poisson"):
        est_cls = MiniBatchMLPRegressor
        if kind == "poisson":
            params["loss"] = "poisson"
    else:
        est_cls = MiniBatchMLPClassifier
    ours = est_cls(**params).fit(X, y)
    theirs = SKLEARN[est_cls](**params).fit(X, y)
    assert ours.out_activation_ == theirs.out_activation_
    assert ours.n_layers_ == theirs.n_layers_
    assert ours.n_outputs_ == theirs.n_outputs_
    _assert_match_sklearn(ours, theirs, rtol=1e-12)


# ---------------------------------------------------------------------------
# partial_fit: one epoch of a stream built on the given data
# ---------------------------------------------------------------------------
def test_partial_fit_runs_steps_per_epoch_steps():
    X, y = make_data("multiclass", n=50)
    est = MiniBatchMLPClassifier(hidden_layer_sizes=(4,), batch_size=8,
                                 steps_per_epoch=10, random_state=0)
    # one epoch = 10 batches: a whole pass (50 samples) and 3 batches of 8
    per_call = sum(stream_batch_lengths(50, 8, 10))
    assert per_call == 74
    est.partial_fit(X, y, classes=[0, 1, 2])
    assert est.steps_per_epoch_ == 10 and est.batch_size_ == 8
    assert (est.t_, est.n_iter_, len(est.loss_curve_)) == (74, 1, 1)
    est.partial_fit(X, y)
    assert (est.t_, est.n_iter_, len(est.loss_curve_)) == (148, 1, 2)
    est.partial_fit(X[:20], y[:20])  # 3 batches per pass: 10 steps = 76 samples
    assert est.t_ == 148 + sum(stream_batch_lengths(20, 8, 10))
    assert len(est.loss_curve_) == 3


@pytest.mark.parametrize("est_cls", list(ESTIMATORS.values()), ids=list(ESTIMATORS))
@pytest.mark.parametrize("solver", ["sgd", "adam"])
def test_partial_fit_counts_and_weights_match_sklearn(est_cls, solver):
    X, y = data_for(est_cls, n=33)
    params = dict(hidden_layer_sizes=(5,), activation="tanh", solver=solver,
                  batch_size=7, learning_rate_init=0.02, random_state=4)
    ours, theirs = est_cls(**params), SKLEARN[est_cls](**params)
    extra = {"classes": np.unique(y)} if est_cls is MiniBatchMLPClassifier else {}
    for call in range(3):
        ours.partial_fit(X, y, **(extra if call == 0 else {}))
        theirs.partial_fit(X, y, **(extra if call == 0 else {}))
        # scikit-learn: n_iter_ counts the epochs of the last call, t_ all samples
        assert ours.n_iter_ == theirs.n_iter_ == 1
        assert ours.t_ == theirs.t_ == 33 * (call + 1)
        assert len(ours.loss_curve_) == len(theirs.loss_curve_) == call + 1
    _assert_match_sklearn(ours, theirs)
