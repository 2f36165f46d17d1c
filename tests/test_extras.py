"""What scikit-learn's MLP lacks (issue 3 part 3): ``class_weight`` on the
classifier, ``validation_loss_curve_``, ``partial_fit`` only for the solvers
that have it, and persistence with ``skops.io`` with no untrusted type but
our estimator class.
"""

import warnings

import numpy as np
import pytest
import skops.io as sio
from sklearn.base import clone
from sklearn.datasets import make_classification
from sklearn.metrics import recall_score
from sklearn.model_selection import train_test_split
from sklearn.neural_network import MLPClassifier, MLPRegressor
from sklearn.preprocessing import LabelBinarizer
from sklearn.utils.class_weight import compute_class_weight

from skminibatch import MiniBatchMLPClassifier, MiniBatchMLPRegressor

ignore_convergence = pytest.mark.filterwarnings(
    "ignore::sklearn.exceptions.ConvergenceWarning"
)
ESTIMATORS = {"classifier": MiniBatchMLPClassifier, "regressor": MiniBatchMLPRegressor}
EST_PARAMS = pytest.mark.parametrize("kind", list(ESTIMATORS))


def make_data(kind, n=90, n_features=4, seed=0):
    rng = np.random.RandomState(seed)
    X = rng.standard_normal((n, n_features))
    score = X[:, 0] - 0.7 * X[:, 1] + 0.3 * rng.standard_normal(n)
    if kind == "binary":
        return X, (score > 0.3).astype(int)
    if kind == "multiclass":
        return X, np.digitize(score, [-0.6, 0.4])
    if kind == "strings":
        return X, np.array(["cat", "dog", "emu"])[np.digitize(score, [-0.6, 0.4])]
    if kind == "multilabel":
        return X, np.column_stack([score > 0, X[:, 2] > 0, X[:, 3] > 0.3]).astype(int)
    if kind == "regression":
        return X, score + 0.5 * X[:, 2]
    if kind == "multioutput":
        return X, np.column_stack([score, X[:, 2] - X[:, 3]])
    raise ValueError(kind)


def small(cls, **params):
    base = dict(hidden_layer_sizes=(6,), max_iter=15, learning_rate_init=0.01,
                random_state=0)
    base.update(params)
    return cls(**base)


def weights(est):
    return list(est.coefs_) + list(est.intercepts_)


def assert_bit_identical(a, b):
    assert len(weights(a)) == len(weights(b))
    for u, v in zip(weights(a), weights(b)):
        np.testing.assert_array_equal(u, v)


# ---------------------------------------------------------------------------
# class_weight
# ---------------------------------------------------------------------------
# full batch (one step per epoch over all 90 rows), mini-batch with the
# default epoch, mini-batch with steps_per_epoch, and lbfgs
FIT_SETTINGS = pytest.mark.parametrize("settings", [
    dict(solver="sgd", batch_size=90),
    dict(solver="adam", batch_size=16),
    dict(solver="adam", batch_size=8, steps_per_epoch=3),
    dict(solver="lbfgs"),
], ids=["sgd-full-batch", "adam-minibatch", "adam-steps", "lbfgs"])


@ignore_convergence
@FIT_SETTINGS
@pytest.mark.parametrize("target", ["binary", "multiclass", "strings"])
def test_class_weight_dict_equals_sample_weight(settings, target):
    X, y = make_data(target)
    classes = np.unique(y)
    class_weight = {classes[0]: 0.5, classes[-1]: 3.0}  # a middle class: 1
    per_sample = np.array([class_weight.get(c, 1.0) for c in y])
    a = small(MiniBatchMLPClassifier, class_weight=class_weight, **settings).fit(X, y)
    b = small(MiniBatchMLPClassifier, **settings).fit(X, y, sample_weight=per_sample)
    assert_bit_identical(a, b)
    assert a.loss_ == b.loss_
    # and the weighting does something
    c = small(MiniBatchMLPClassifier, **settings).fit(X, y)
    assert not np.array_equal(a.coefs_[0], c.coefs_[0])


@ignore_convergence
@FIT_SETTINGS
@pytest.mark.parametrize("target", ["binary", "multiclass"])
def test_class_weight_balanced_formula(settings, target):
    X, y = make_data(target)
    classes, y_idx = np.unique(y, return_inverse=True)
    counts = np.bincount(y_idx)
    assert len(set(counts)) > 1  # the classes are unbalanced
    balanced = X.shape[0] / (len(classes) * counts)
    a = small(MiniBatchMLPClassifier, class_weight="balanced", **settings).fit(X, y)
    b = small(MiniBatchMLPClassifier, **settings).fit(X, y,
                                                      sample_weight=balanced[y_idx])
    assert_bit_identical(a, b)


@ignore_convergence
@FIT_SETTINGS
@pytest.mark.parametrize("class_weight", ["balanced", {0: 2.0, 2: 0.25}],
                         ids=["balanced", "dict"])
def test_class_weight_multiplies_sample_weight(settings, class_weight):
    X, y = make_data("multiclass")
    rng = np.random.RandomState(1)
    sw = rng.uniform(0.2, 2.0, X.shape[0])
    per_class = compute_class_weight(class_weight, classes=np.unique(y), y=y)
    a = small(MiniBatchMLPClassifier, class_weight=class_weight,
              **settings).fit(X, y, sample_weight=sw)
    b = small(MiniBatchMLPClassifier, **settings).fit(X, y,
                                                      sample_weight=sw * per_class[y])
    assert_bit_identical(a, b)


@ignore_convergence
def test_class_weight_balanced_uses_the_whole_training_set_with_early_stopping():
    """'balanced' counts the classes of every sample passed to fit (before
    the validation split), as sample_weight would be given."""
    X, y = make_data("multiclass", n=120)
    classes, y_idx = np.unique(y, return_inverse=True)
    balanced = X.shape[0] / (len(classes) * np.bincount(y_idx))
    a = small(MiniBatchMLPClassifier, class_weight="balanced", early_stopping=True,
              validation_fraction=0.2).fit(X, y)
    b = small(MiniBatchMLPClassifier, early_stopping=True,
              validation_fraction=0.2).fit(X, y, sample_weight=balanced[y_idx])
    assert_bit_identical(a, b)
    assert a.validation_scores_ == b.validation_scores_
    assert a.validation_loss_curve_ == b.validation_loss_curve_


def test_class_weight_unknown_class_raises():
    X, y = make_data("binary")
    with pytest.raises(ValueError, match="not in class"):
        small(MiniBatchMLPClassifier, class_weight={0: 1.0, 7: 2.0}).fit(X, y)
    with pytest.raises(ValueError, match="not in class"):
        small(MiniBatchMLPClassifier, class_weight={0: 1.0, 7: 2.0}).partial_fit(
            X, y, classes=[0, 1])


def test_class_weight_invalid_value_raises():
    X, y = make_data("binary")
    with pytest.raises(ValueError, match="class_weight"):
        small(MiniBatchMLPClassifier, class_weight="auto").fit(X, y)
    with pytest.raises(ValueError, match="class_weight"):
        small(MiniBatchMLPClassifier, class_weight=[1.0, 2.0]).fit(X, y)


@pytest.mark.parametrize("class_weight", ["balanced", {0: 1.0, 1: 2.0}])
def test_class_weight_multilabel_raises(class_weight):
    X, Y = make_data("multilabel")
    est = small(MiniBatchMLPClassifier, class_weight=class_weight)
    with pytest.raises(ValueError, match="multilabel"):
        est.fit(X, Y)
    assert not hasattr(est, "coefs_")
    with pytest.raises(ValueError, match="multilabel"):
        small(MiniBatchMLPClassifier, class_weight=class_weight).partial_fit(
            X, Y, classes=[0, 1, 2])


def test_partial_fit_balanced_raises_and_leaves_the_model():
    X, y = make_data("binary")
    est = small(MiniBatchMLPClassifier, class_weight="balanced")
    with pytest.raises(ValueError, match="balanced"):
        est.partial_fit(X, y, classes=[0, 1])
    assert not hasattr(est, "coefs_")
    # a model fitted before: the failing call changes nothing
    est = small(MiniBatchMLPClassifier).partial_fit(X, y, classes=[0, 1])
    before = [w.copy() for w in weights(est)]
    est.set_params(class_weight="balanced")
    with pytest.raises(ValueError, match="balanced"):
        est.partial_fit(X, y)
    for u, v in zip(weights(est), before):
        np.testing.assert_array_equal(u, v)


@pytest.mark.parametrize("solver", ["sgd", "adam"])
def test_partial_fit_with_dict_class_weight(solver):
    X, y = make_data("multiclass")
    class_weight = {0: 3.0, 1: 1.0, 2: 0.5}
    per_sample = np.array([class_weight[c] for c in y])
    a = small(MiniBatchMLPClassifier, solver=solver, class_weight=class_weight)
    b = small(MiniBatchMLPClassifier, solver=solver)
    for rows in np.array_split(np.arange(X.shape[0]), 3):
        a.partial_fit(X[rows], y[rows], classes=[0, 1, 2])
        b.partial_fit(X[rows], y[rows], classes=[0, 1, 2],
                      sample_weight=per_sample[rows])
    assert_bit_identical(a, b)
    assert a.loss_curve_ == b.loss_curve_


@ignore_convergence
@pytest.mark.parametrize("seed", [0, 1, 2])
def test_balanced_class_weight_improves_minority_recall(seed):
    """7% minority class: unweighted, the network mostly predicts the
    majority; 'balanced' raises held-out minority recall a lot (measured over
    8 seeds: +0.25 to +0.69; these seeds +0.46 to +0.69)."""
    X, y = make_classification(n_samples=1500, n_features=6, n_informative=3,
                               weights=[0.93], class_sep=0.6, flip_y=0,
                               random_state=seed)
    X_tr, X_te, y_tr, y_te = train_test_split(X, y, test_size=0.5,
                                              random_state=seed, stratify=y)
    recall = {}
    for cw in (None, "balanced"):
        est = MiniBatchMLPClassifier(hidden_layer_sizes=(16,), max_iter=40,
                                     learning_rate_init=0.01, random_state=seed,
                                     class_weight=cw).fit(X_tr, y_tr)
        recall[cw] = recall_score(y_te, est.predict(X_te))
    assert recall["balanced"] > recall[None] + 0.3, recall
    assert recall["balanced"] > 0.4, recall


def test_class_weight_in_params_and_clone():
    est = MiniBatchMLPClassifier(class_weight={0: 1.0, 1: 5.0})
    assert MiniBatchMLPClassifier().get_params()["class_weight"] is None
    assert est.get_params()["class_weight"] == {0: 1.0, 1: 5.0}
    cloned = clone(est)
    assert cloned.get_params()["class_weight"] == {0: 1.0, 1: 5.0}
    assert cloned.set_params(class_weight="balanced").class_weight == "balanced"
    assert est.class_weight == {0: 1.0, 1: 5.0}
    assert "class_weight" not in MiniBatchMLPRegressor().get_params()
    assert "class_weight=" in repr(est)


# ---------------------------------------------------------------------------
# validation_loss_curve_
# ---------------------------------------------------------------------------
def _numpy_outputs(est, X):
    """Output activations of ``est`` on ``X``, in NumPy (float64)."""
    a = np.asarray(X, dtype=np.float64)
    n_layers = len(est.coefs_)
    for i, (W, b) in enumerate(zip(est.coefs_, est.intercepts_)):
        a = a @ W.astype(np.float64) + b.astype(np.float64)
        if i < n_layers - 1:
            a = {
                "identity": lambda z: z,
                "relu": lambda z: np.maximum(z, 0),
                "tanh": np.tanh,
                "logistic": lambda z: 1 / (1 + np.exp(-z)),
            }[est.activation](a)
    if est.out_activation_ == "identity":
        return a
    if est.out_activation_ == "exp":
        return np.exp(a)
    if est.out_activation_ == "logistic":
        return 1 / (1 + np.exp(-a))
    e = np.exp(a - a.max(axis=1, keepdims=True))
    return e / e.sum(axis=1, keepdims=True)


def numpy_validation_loss(est, X_val, Y_val, sw_val, with_l2=True):
    """scikit-learn's MLP loss of ``est`` on a validation set, written out:
    the weighted mean of the per-sample loss plus ``alpha/2 * sum(W**2)``
    divided by the validation weight sum."""
    P = _numpy_outputs(est, X_val)
    Y = np.asarray(Y_val, dtype=np.float64).reshape(P.shape)
    eps = np.finfo(est.coefs_[0].dtype).eps
    if est.out_activation_ == "identity":
        per_sample = 0.5 * ((Y - P) ** 2).mean(axis=1)
    elif est.out_activation_ == "logistic":
        Pc = np.clip(P, eps, 1 - eps)
        per_sample = -(Y * np.log(Pc) + (1 - Y) * np.log(1 - Pc)).sum(axis=1)
    elif est.out_activation_ == "softmax":
        Pc = np.clip(P, eps, 1 - eps)
        per_sample = -(Y * np.log(Pc)).sum(axis=1)
    else:
        raise NotImplementedError(est.out_activation_)
    sw_sum = sw_val.sum()
    loss = (sw_val * per_sample).sum() / sw_sum
    if with_l2:
        l2 = sum(float((W.astype(np.float64) ** 2).sum()) for W in est.coefs_)
        loss += 0.5 * est.alpha * l2 / sw_sum
    return loss


def rebuild_validation_rows(est, X, y):
    """The rows the fit held out, rebuilt the way the estimator draws them:
    a RandomState from ``random_state``, the Glorot-uniform draws of every
    layer's coefficients then intercepts (scikit-learn's order), then
    ``train_test_split`` of the row indices with that RandomState, stratified
    on the binarised column for binary targets, on the labels for multiclass
    and not at all for regression."""
    rs = np.random.RandomState(est.random_state)
    for W in est.coefs_:
        rs.uniform(size=W.shape)
        rs.uniform(size=W.shape[1])
    if isinstance(est, MiniBatchMLPRegressor):
        stratify = None
    elif len(est.classes_) == 2:
        stratify = LabelBinarizer().fit_transform(y).astype(bool)
    else:
        stratify = y
    _, val = train_test_split(np.arange(X.shape[0]), random_state=rs,
                              test_size=est.validation_fraction, stratify=stratify)
    return val


def encoded_targets(est, y):
    if isinstance(est, MiniBatchMLPRegressor):
        return np.asarray(y, dtype=np.float64)
    return LabelBinarizer().fit(est.classes_).transform(y)


@ignore_convergence
@pytest.mark.parametrize("weighted", [False, True], ids=["unweighted", "weighted"])
def test_validation_loss_curve_every_epoch_regressor(weighted):
    """Regressor with a small learning rate, where the validation R^2 rises
    every epoch for the first 8 epochs: the weights kept by a fit of k
    epochs are then the weights after epoch k, and the NumPy loss of those
    weights on the rebuilt validation rows must be the k-th value of the
    curve -- for every k."""
    X, y = make_data("regression", n=200)
    sw = np.random.RandomState(5).uniform(0.1, 3.0, X.shape[0]) if weighted \
        else np.ones(X.shape[0])
    params = dict(hidden_layer_sizes=(5,), solver="sgd", learning_rate_init=0.002,
                  alpha=0.05, batch_size=20, early_stopping=True,
                  validation_fraction=0.25, n_iter_no_change=50, tol=0,
                  random_state=3)
    K = 8
    full = MiniBatchMLPRegressor(max_iter=K, **params).fit(
        X, y, sample_weight=sw if weighted else None)
    assert full.n_iter_ == K
    assert np.all(np.diff(full.validation_scores_) > 0)  # the precondition
    assert len(full.validation_loss_curve_) == full.n_iter_ == len(
        full.validation_scores_)
    assert all(isinstance(v, float) for v in full.validation_loss_curve_)

    val = rebuild_validation_rows(full, X, y)
    assert len(val) == 50
    for k in range(1, K + 1):
        est = MiniBatchMLPRegressor(max_iter=k, **params).fit(
            X, y, sample_weight=sw if weighted else None)
        assert est.validation_loss_curve_ == full.validation_loss_curve_[:k]
        expected = numpy_validation_loss(est, X[val], y[val], sw[val])
        np.testing.assert_allclose(full.validation_loss_curve_[k - 1], expected,
                                   rtol=1e-12)
        # the validation R^2 on the same rows agrees too: the split is right
        np.testing.assert_allclose(
            est.validation_scores_[-1],
            est.score(X[val], y[val], sample_weight=sw[val] if weighted else None),
            rtol=1e-12)
    # the L2 term is in (and it is large enough for this test to notice)
    without = numpy_validation_loss(est, X[val], y[val], sw[val], with_l2=False)
    assert abs(full.validation_loss_curve_[-1] - without) > 1e-6


@ignore_convergence
@pytest.mark.parametrize("target", ["binary", "multiclass", "strings"])
@pytest.mark.parametrize("solver", ["sgd", "adam"])
def test_validation_loss_at_the_best_epoch_classifier(target, solver):
    """The classifier ends with the weights of its best validation epoch
    (first maximum of validation_scores_); the curve's value at that epoch
    is the NumPy loss of the final weights on the rebuilt validation rows."""
    X, y = make_data(target, n=150)
    est = MiniBatchMLPClassifier(hidden_layer_sizes=(6,), solver=solver,
                                 learning_rate_init=0.02, alpha=0.01, batch_size=16,
                                 early_stopping=True, validation_fraction=0.2,
                                 n_iter_no_change=4, max_iter=30,
                                 random_state=7).fit(X, y)
    curve = est.validation_loss_curve_
    assert len(curve) == est.n_iter_ == len(est.validation_scores_)
    assert np.all(np.isfinite(curve))
    best = int(np.argmax(est.validation_scores_))
    val = rebuild_validation_rows(est, X, y)
    Y_val = encoded_targets(est, y[val])
    expected = numpy_validation_loss(est, X[val], Y_val, np.ones(len(val)))
    np.testing.assert_allclose(curve[best], expected, rtol=1e-12)
    np.testing.assert_allclose(est.best_validation_score_, est.score(X[val], y[val]),
                               rtol=1e-12)


@ignore_convergence
def test_validation_loss_curve_float32():
    X, y = make_data("multiclass", n=150)
    est = MiniBatchMLPClassifier(hidden_layer_sizes=(6,), learning_rate_init=0.02,
                                 early_stopping=True, validation_fraction=0.2,
                                 max_iter=10, random_state=7).fit(
        X.astype(np.float32), y)
    assert est.coefs_[0].dtype == np.float32
    assert len(est.validation_loss_curve_) == est.n_iter_
    best = int(np.argmax(est.validation_scores_))
    val = rebuild_validation_rows(est, X, y)
    expected = numpy_validation_loss(est, X[val].astype(np.float32),
                                     encoded_targets(est, y[val]), np.ones(len(val)))
    np.testing.assert_allclose(est.validation_loss_curve_[best], expected,
                               rtol=1e-5)


@ignore_convergence
@EST_PARAMS
@pytest.mark.parametrize("solver", ["sgd", "adam"])
def test_no_validation_loss_curve_without_early_stopping(kind, solver):
    X, y = make_data("multiclass" if kind == "classifier" else "regression")
    est = small(ESTIMATORS[kind], solver=solver).fit(X, y)
    assert est.validation_loss_curve_ is None
    assert est.validation_scores_ is None
    if solver == "adam":
        est.partial_fit(X, y)
        assert est.validation_loss_curve_ is None


@ignore_convergence
@EST_PARAMS
def test_lbfgs_has_no_validation_loss_curve(kind):
    X, y = make_data("multiclass" if kind == "classifier" else "regression")
    est = small(ESTIMATORS[kind], solver="lbfgs").fit(X, y)
    assert not hasattr(est, "validation_loss_curve_")
    assert not hasattr(est, "validation_scores_")
    # refitting a model that had one with lbfgs drops it
    est = small(ESTIMATORS[kind], early_stopping=True).fit(X, y)
    assert len(est.validation_loss_curve_) == est.n_iter_
    est.set_params(solver="lbfgs").fit(X, y)
    assert not hasattr(est, "validation_loss_curve_")


@ignore_convergence
def test_validation_loss_curve_continues_on_warm_start():
    """A warm-started fit continues validation_scores_ (as scikit-learn
    does) and validation_loss_curve_ beside it."""
    X, y = make_data("binary", n=120)
    est = small(MiniBatchMLPClassifier, early_stopping=True, warm_start=True,
                max_iter=5, tol=0, n_iter_no_change=100)
    est.fit(X, y)
    first = list(est.validation_loss_curve_)
    est.fit(X, y)
    assert est.validation_loss_curve_[:len(first)] == first
    assert len(est.validation_loss_curve_) == len(est.validation_scores_) == 10


# ---------------------------------------------------------------------------
# partial_fit availability
# ---------------------------------------------------------------------------
@EST_PARAMS
@pytest.mark.parametrize("solver", ["sgd", "adam", "lbfgs"])
def test_partial_fit_is_available_only_for_stochastic_solvers(kind, solver):
    cls = ESTIMATORS[kind]
    est = cls(solver=solver, hidden_layer_sizes=(4,), random_state=0)
    X, y = make_data("binary" if kind == "classifier" else "regression")
    if solver == "lbfgs":
        assert not hasattr(est, "partial_fit")
        with pytest.raises(AttributeError, match="partial_fit") as exc:
            est.partial_fit(X, y)
        # scikit-learn's available_if raises its own message, from ours
        assert "lbfgs" in str(exc.value.__cause__)
        assert not hasattr(cls(solver=solver), "partial_fit")
        return
    assert hasattr(est, "partial_fit")
    kwargs = {"classes": [0, 1]} if kind == "classifier" else {}
    assert est.partial_fit(X, y, **kwargs) is est
    est.partial_fit(X, y)
    assert est.t_ == 2 * X.shape[0]
    assert len(est.loss_curve_) == 2
    # switching the solver switches availability
    est.set_params(solver="lbfgs")
    assert not hasattr(est, "partial_fit")
    est.set_params(solver=solver)
    assert hasattr(est, "partial_fit")


def test_sklearn_regressor_exposes_partial_fit_for_lbfgs():
    """The difference we fix, documented: scikit-learn's MLPRegressor has
    partial_fit for lbfgs (its classifier does not); ours has it for
    neither."""
    assert hasattr(MLPRegressor(solver="lbfgs"), "partial_fit")
    assert not hasattr(MLPClassifier(solver="lbfgs"), "partial_fit")
    assert not hasattr(MiniBatchMLPRegressor(solver="lbfgs"), "partial_fit")
    assert not hasattr(MiniBatchMLPClassifier(solver="lbfgs"), "partial_fit")


# ---------------------------------------------------------------------------
# skops persistence
# ---------------------------------------------------------------------------
def _fitted(kind, config):
    """A fitted model for one persistence configuration."""
    cls = ESTIMATORS[kind]
    target = {"classifier": "multiclass", "regressor": "regression"}[kind]
    params, fit = {}, "fit"
    if config in ("sgd", "adam", "lbfgs"):
        params["solver"] = config
    elif config == "early_stopping":
        params["early_stopping"] = True
    elif config == "strings":
        target = "strings"
    elif config == "multilabel":
        target = "multilabel"
    elif config == "multioutput":
        target = "multioutput"
    elif config in ("partial_fit_sgd", "partial_fit_adam"):
        params["solver"] = config.rsplit("_", 1)[1]
        fit = "partial_fit"
    elif config == "class_weight_dict":
        params["class_weight"] = {0: 1.0, 1: 2.5, 2: 0.5}
    elif config == "class_weight_balanced":
        params["class_weight"] = "balanced"
    elif config == "float32":
        pass
    X, y = make_data(target, n=120)
    if config == "float32":
        X = X.astype(np.float32)
    est = small(cls, **params)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        if fit == "partial_fit":
            kwargs = {"classes": np.unique(y)} if kind == "classifier" else {}
            est.partial_fit(X, y, **kwargs)
            est.partial_fit(X, y)
        else:
            est.fit(X, y)
    return est, X


def assert_same_state(a, b, path="est"):
    """Recursive equality of fitted state: arrays bit for bit (and dtype),
    containers element by element, estimators attribute by attribute."""
    if isinstance(a, np.ndarray):
        assert isinstance(b, np.ndarray), path
        assert a.dtype == b.dtype and a.shape == b.shape, path
        np.testing.assert_array_equal(a, b, err_msg=path)
    elif isinstance(a, (list, tuple)):
        assert type(a) is type(b) and len(a) == len(b), path
        for i, (u, v) in enumerate(zip(a, b)):
            assert_same_state(u, v, f"{path}[{i}]")
    elif isinstance(a, dict):
        assert type(b) is dict and a.keys() == b.keys(), path
        for k in a:
            assert_same_state(a[k], b[k], f"{path}[{k!r}]")
    elif hasattr(a, "__dict__") and not isinstance(a, type):
        assert type(a) is type(b), path
        assert_same_state(vars(a), vars(b), path)
    elif isinstance(a, float) and np.isnan(a):
        assert np.isnan(b), path
    else:
        assert type(a) is type(b) and a == b, (path, a, b)


CLASSIFIER_CONFIGS = ["adam", "sgd", "lbfgs", "early_stopping", "strings",
                      "multilabel", "partial_fit_sgd", "partial_fit_adam",
                      "class_weight_dict", "class_weight_balanced", "float32"]
REGRESSOR_CONFIGS = ["adam", "sgd", "lbfgs", "early_stopping", "multioutput",
                     "partial_fit_sgd", "partial_fit_adam", "float32"]


@pytest.mark.parametrize(
    "kind,config",
    [("classifier", c) for c in CLASSIFIER_CONFIGS]
    + [("regressor", c) for c in REGRESSOR_CONFIGS],
)
def test_skops_lists_only_our_class_and_round_trips(kind, config):
    est, X = _fitted(kind, config)
    name = f"skminibatch._mlp.{type(est).__name__}"
    data = sio.dumps(est)
    assert sio.get_untrusted_types(data=data) == [name]
    with pytest.raises(sio.exceptions.UntrustedTypesFoundException):
        sio.loads(data)
    loaded = sio.loads(data, trusted=[name])
    assert type(loaded) is type(est)
    assert_same_state(vars(est), vars(loaded))
    np.testing.assert_array_equal(loaded.predict(X), est.predict(X))
    if kind == "classifier":
        np.testing.assert_array_equal(loaded.predict_proba(X), est.predict_proba(X))
    # the loaded model keeps training exactly as the original does
    if config.startswith("partial_fit"):
        y = est.predict(X)
        est.partial_fit(X, y)
        loaded.partial_fit(X, y)
        assert_bit_identical(est, loaded)


def test_skops_file_round_trip(tmp_path):
    est, X = _fitted("classifier", "early_stopping")
    path = tmp_path / "model.skops"
    sio.dump(est, path)
    name = "skminibatch._mlp.MiniBatchMLPClassifier"
    assert sio.get_untrusted_types(file=path) == [name]
    loaded = sio.load(path, trusted=[name])
    np.testing.assert_array_equal(loaded.predict_proba(X), est.predict_proba(X))
    assert loaded.validation_loss_curve_ == est.validation_loss_curve_


@pytest.mark.parametrize("solver", ["adam", "sgd"])
def test_sklearn_mlp_needs_its_optimizer_trusted(solver):
    """The difference, documented: a fitted scikit-learn MLP (stochastic
    solver) keeps its optimizer object, which skops does not trust by
    default; ours stores the optimizer state as plain arrays."""
    X, y = make_data("binary")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        sk = MLPClassifier(hidden_layer_sizes=(4,), solver=solver, max_iter=5,
                           random_state=0).fit(X, y)
    untrusted = sio.get_untrusted_types(data=sio.dumps(sk))
    optimizer = {"adam": "AdamOptimizer", "sgd": "SGDOptimizer"}[solver]
    assert untrusted == [f"sklearn.neural_network._stochastic_optimizers.{optimizer}"]
    with pytest.raises(sio.exceptions.UntrustedTypesFoundException):
        sio.loads(sio.dumps(sk))
    # ours: only the estimator class itself
    ours = MiniBatchMLPClassifier(**{k: v for k, v in sk.get_params().items()})
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        ours.fit(X, y)
    assert sio.get_untrusted_types(data=sio.dumps(ours)) == [
        "skminibatch._mlp.MiniBatchMLPClassifier"]
