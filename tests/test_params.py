"""Bad input and invalid hyperparameters (DESIGN §5): every case gets an
exception from scikit-learn's usual family (ValueError, TypeError,
NotFittedError) whose message names the parameter or the problem, raised by
validation before any kernel runs, never a Numba error.
"""

import contextlib
import copy
import re

import numpy as np
import pytest
import scipy.sparse as sp
from numba.core.errors import NumbaError
from sklearn.exceptions import NotFittedError

from skminibatch import MiniBatchMLPClassifier, MiniBatchMLPRegressor

ESTIMATORS = {"classifier": MiniBatchMLPClassifier, "regressor": MiniBatchMLPRegressor}
EST_PARAMS = pytest.mark.parametrize(
    "est_cls", list(ESTIMATORS.values()), ids=list(ESTIMATORS)
)
ignore_convergence = pytest.mark.filterwarnings(
    "ignore::sklearn.exceptions.ConvergenceWarning"
)


def make_xy(est_cls, n=20, n_features=3, seed=0):
    rng = np.random.RandomState(seed)
    X = rng.standard_normal((n, n_features))
    if est_cls is MiniBatchMLPClassifier:
        y = (X[:, 0] + 0.5 * X[:, 1] > 0).astype(int)
    else:
        y = X[:, 0] - 0.5 * X[:, 1]
    return X, y


def small(est_cls, **params):
    """A quick-to-fit estimator (few epochs, one tiny layer)."""
    defaults = dict(hidden_layer_sizes=(3,), max_iter=2, random_state=0)
    defaults.update(params)
    return est_cls(**defaults)


def _chain(exc):
    seen = []
    while exc is not None and exc not in seen:
        seen.append(exc)
        exc = exc.__cause__ or exc.__context__
    return seen


@contextlib.contextmanager
def raises_cleanly(expected, match):
    """``pytest.raises`` that also rejects a Numba error anywhere in the
    exception's chain (the error must come from validation)."""
    with pytest.raises(expected, match=match) as info:
        yield info
    for exc in _chain(info.value):
        assert not isinstance(exc, NumbaError), repr(exc)
    assert "numba" not in type(info.value).__module__


# ---------------------------------------------------------------------------
# hyperparameters
# ---------------------------------------------------------------------------
INVALID_PARAMS = [
    ("batch_size", 0),
    ("batch_size", -3),
    ("batch_size", "big"),
    ("batch_size", 2.5),
    ("steps_per_epoch", 0),
    ("steps_per_epoch", -1),
    ("steps_per_epoch", 2.5),
    ("steps_per_epoch", "3"),
    ("activation", "softmax"),
    ("activation", "gelu"),
    ("solver", "newton"),
    ("hidden_layer_sizes", (0,)),
    ("hidden_layer_sizes", (5, -1)),
    ("hidden_layer_sizes", (2.5,)),
    ("hidden_layer_sizes", 0),
    ("hidden_layer_sizes", "abc"),
    ("learning_rate_init", 0),
    ("learning_rate_init", -0.1),
    ("learning_rate", "fast"),
    ("momentum", 1.5),
    ("momentum", -0.1),
    ("validation_fraction", 1.0),
    ("n_iter_no_change", 0),
    ("n_iter_no_change", 2.5),
    ("max_iter", 0),
    ("max_iter", -5),
    ("max_fun", 0),
    ("alpha", -1.0),
    ("tol", -1e-3),
    ("beta_1", 1.0),
    ("beta_2", -0.5),
    ("epsilon", 0.0),
    ("power_t", -1.0),
    ("shuffle", "yes"),
    ("nesterovs_momentum", 3),
    ("early_stopping", "no"),
]


@EST_PARAMS
@pytest.mark.parametrize("name, value", INVALID_PARAMS,
                         ids=[f"{n}={v!r}" for n, v in INVALID_PARAMS])
def test_invalid_hyperparameter_is_named(est_cls, name, value):
    X, y = make_xy(est_cls)
    est = small(est_cls, **{name: value})
    with raises_cleanly((ValueError, TypeError), match=re.escape(name)):
        est.fit(X, y)
    assert not hasattr(est, "coefs_")


@EST_PARAMS
@pytest.mark.parametrize("name, value", [("batch_size", 0), ("steps_per_epoch", -1),
                                         ("hidden_layer_sizes", (2, 0)),
                                         ("activation", "softmax")])
def test_invalid_hyperparameter_in_partial_fit(est_cls, name, value):
    X, y = make_xy(est_cls)
    est = small(est_cls, **{name: value})
    extra = {"classes": [0, 1]} if est_cls is MiniBatchMLPClassifier else {}
    with raises_cleanly((ValueError, TypeError), match=re.escape(name)):
        est.partial_fit(X, y, **extra)


def test_invalid_loss_is_named():
    X, y = make_xy(MiniBatchMLPRegressor)
    with raises_cleanly((ValueError, TypeError), match="loss"):
        small(MiniBatchMLPRegressor, loss="absolute_error").fit(X, y)


@EST_PARAMS
def test_constructor_only_stores_parameters(est_cls):
    # validation happens in fit (scikit-learn rule), not in __init__
    est = est_cls(batch_size=0, steps_per_epoch=-1, activation="softmax",
                  hidden_layer_sizes=(0,))
    assert est.get_params()["steps_per_epoch"] == -1
    assert est.get_params()["hidden_layer_sizes"] == (0,)


@ignore_convergence
@EST_PARAMS
def test_invalid_hyperparameter_leaves_fitted_model_unchanged(est_cls):
    X, y = make_xy(est_cls)
    est = small(est_cls).fit(X, y)
    coefs = copy.deepcopy(est.coefs_)
    t, curve = est.t_, list(est.loss_curve_)
    est.set_params(steps_per_epoch=0)
    with raises_cleanly(ValueError, match="steps_per_epoch"):
        est.fit(X, y)
    est.set_params(steps_per_epoch=None, hidden_layer_sizes=(3, -2))
    with raises_cleanly(ValueError, match="hidden_layer_sizes"):
        est.fit(X, y)
    assert all(np.array_equal(a, b) for a, b in zip(est.coefs_, coefs))
    assert est.t_ == t and est.loss_curve_ == curve


# ---------------------------------------------------------------------------
# X and y
# ---------------------------------------------------------------------------
def _with(X, value, where=(2, 1)):
    X = np.array(X, dtype=float)
    X[where] = value
    return X


@EST_PARAMS
@pytest.mark.parametrize("value, word", [(np.nan, "NaN"), (np.inf, "infinity"),
                                         (-np.inf, "infinity")])
def test_non_finite_X(est_cls, value, word):
    X, y = make_xy(est_cls)
    with raises_cleanly(ValueError, match=word):
        small(est_cls).fit(_with(X, value), y)


_LAYOUTS = {
    "C": lambda X: X,
    "F": np.asfortranarray,
    "strided": lambda X: np.repeat(X, 2, axis=1)[:, ::2],  # no flat view
    "float32": lambda X: X.astype(np.float32),
    "csr": sp.csr_matrix,
    "csc": sp.csc_matrix,
    "list": lambda X: X.tolist(),
}


@ignore_convergence
@EST_PARAMS
@pytest.mark.parametrize("layout", list(_LAYOUTS))
@pytest.mark.parametrize("value, word", [(np.nan, "NaN"), (-np.inf, "infinity")])
def test_non_finite_X_any_layout(est_cls, layout, value, word):
    """The finiteness check (``_check_input_finite``: a BLAS sum of squares,
    then scikit-learn's check) gives scikit-learn's message however X is
    laid out, and at predict too."""
    X, y = make_xy(est_cls)
    bad = _LAYOUTS[layout](_with(X, value, where=(7, 2)))
    with raises_cleanly(ValueError, match=f"Input X contains {word}"):
        small(est_cls).fit(bad, y)
    est = small(est_cls).fit(_LAYOUTS[layout](X), y)
    with raises_cleanly(ValueError, match=f"Input X contains {word}"):
        est.predict(bad)


def test_finite_check_when_squares_overflow(monkeypatch):
    """Finite values whose squares overflow make the sum of squares inf: the
    value-by-value check then decides (no error); well-scaled values never
    reach it (it is the slow path)."""
    from skminibatch import _mlp

    est = MiniBatchMLPRegressor()
    big = np.full((4, 3), 1e200)
    for X in (big, np.full((4, 3), 1e30, dtype=np.float32)):
        _mlp._check_input_finite(est, X)  # no error
    for X in (big, sp.csr_matrix(big)):
        bad = X.copy()
        bad[1, 1] = np.nan
        with pytest.raises(ValueError, match="Input X contains NaN"):
            _mlp._check_input_finite(est, bad)
    calls = []
    monkeypatch.setattr(_mlp, "assert_all_finite",
                        lambda *a, **k: calls.append(a))
    _mlp._check_input_finite(est, np.ones((5, 2)))
    _mlp._check_input_finite(est, big)
    _mlp._check_input_finite(est, np.ones((5, 4))[:, ::2])
    assert len(calls) == 2  # the overflow and the strided view only


@ignore_convergence
@EST_PARAMS
@pytest.mark.parametrize("value, word", [(np.nan, "NaN"), (np.inf, "infinity")])
def test_non_finite_X_at_predict(est_cls, value, word):
    X, y = make_xy(est_cls)
    est = small(est_cls).fit(X, y)
    with raises_cleanly(ValueError, match=word):
        est.predict(_with(X, value))
    if est_cls is MiniBatchMLPClassifier:
        with raises_cleanly(ValueError, match=word):
            est.predict_proba(_with(X, value))


@EST_PARAMS
@pytest.mark.parametrize("value, word", [(np.nan, "NaN"), (np.inf, "infinity")])
def test_non_finite_y(est_cls, value, word):
    X, y = make_xy(est_cls)
    y = y.astype(float)
    y[4] = value
    with raises_cleanly(ValueError, match=word):
        small(est_cls).fit(X, y)


@EST_PARAMS
def test_non_finite_X_in_partial_fit(est_cls):
    X, y = make_xy(est_cls)
    extra = {"classes": [0, 1]} if est_cls is MiniBatchMLPClassifier else {}
    with raises_cleanly(ValueError, match="NaN"):
        small(est_cls).partial_fit(_with(X, np.nan), y, **extra)


@ignore_convergence
@EST_PARAMS
def test_wrong_number_of_features_at_predict(est_cls):
    X, y = make_xy(est_cls)
    est = small(est_cls).fit(X, y)
    with raises_cleanly(ValueError, match="features"):
        est.predict(X[:, :2])
    with raises_cleanly(ValueError, match="features"):
        est.predict(np.hstack([X, X]))
    with raises_cleanly(ValueError, match="features"):
        est.score(X[:, :2], y)


@ignore_convergence
@EST_PARAMS
def test_wrong_number_of_features_in_partial_fit_and_warm_start(est_cls):
    X, y = make_xy(est_cls)
    est = small(est_cls, solver="sgd").fit(X, y)
    with raises_cleanly(ValueError, match="features"):
        est.partial_fit(X[:, :2], y)
    est.set_params(warm_start=True)
    with raises_cleanly(ValueError, match="features"):
        est.fit(np.hstack([X, X]), y)


@EST_PARAMS
def test_empty_X(est_cls):
    X, y = make_xy(est_cls)
    with raises_cleanly(ValueError, match="0 sample"):
        small(est_cls).fit(X[:0], y[:0])
    with raises_cleanly(ValueError, match="0 feature"):
        small(est_cls).fit(X[:, :0], y)


@EST_PARAMS
def test_X_and_y_of_different_lengths(est_cls):
    X, y = make_xy(est_cls)
    with raises_cleanly(ValueError, match="inconsistent numbers of samples"):
        small(est_cls).fit(X, y[:7])


@EST_PARAMS
def test_three_dimensional_X(est_cls):
    X, y = make_xy(est_cls)
    with raises_cleanly(ValueError, match="dim 3"):
        small(est_cls).fit(X.reshape(20, 3, 1), y)


@EST_PARAMS
def test_one_dimensional_X(est_cls):
    X, y = make_xy(est_cls)
    with raises_cleanly(ValueError, match="2D array"):
        small(est_cls).fit(X[:, 0], y)


@EST_PARAMS
def test_complex_X(est_cls):
    X, y = make_xy(est_cls)
    with raises_cleanly(ValueError, match="[Cc]omplex"):
        small(est_cls).fit(X + 1j, y)


@EST_PARAMS
def test_non_numeric_X(est_cls):
    X, y = make_xy(est_cls)
    with raises_cleanly(ValueError, match="convert string to float"):
        small(est_cls).fit(np.full(X.shape, "a"), y)


@ignore_convergence
@EST_PARAMS
@pytest.mark.parametrize("container", [sp.csr_matrix, sp.csc_matrix, sp.csr_array,
                                       sp.coo_matrix])
def test_sparse_X_is_handled_cleanly(est_cls, container):
    """Sparse X either raises a clear TypeError/ValueError saying so, or
    (once supported, DESIGN §2) trains as the dense array does."""
    X, y = make_xy(est_cls)
    X[np.abs(X) < 0.5] = 0.0
    Xs = container(X)
    est = small(est_cls)
    try:
        est.fit(Xs, y)
    except (TypeError, ValueError) as exc:
        assert re.search("[Ss]parse", str(exc)), str(exc)
        assert not any(isinstance(e, NumbaError) for e in _chain(exc))
        return
    dense = small(est_cls).fit(X, y)
    for a, b in zip(est.coefs_ + est.intercepts_, dense.coefs_ + dense.intercepts_):
        np.testing.assert_allclose(a, b, rtol=1e-10, atol=1e-13)
    np.testing.assert_allclose(est.predict(Xs).astype(float),
                               dense.predict(X).astype(float), rtol=1e-10)


# ---------------------------------------------------------------------------
# classification targets
# ---------------------------------------------------------------------------
def test_one_class_only():
    X, _ = make_xy(MiniBatchMLPClassifier)
    with raises_cleanly(ValueError, match="class"):
        small(MiniBatchMLPClassifier).fit(X, np.zeros(20, dtype=int))
    with raises_cleanly(ValueError, match="class"):
        small(MiniBatchMLPClassifier).fit(X, np.array(["only"] * 20))


def test_one_class_only_in_partial_fit_classes():
    X, _ = make_xy(MiniBatchMLPClassifier)
    with raises_cleanly(ValueError, match="class"):
        small(MiniBatchMLPClassifier).partial_fit(X, np.ones(20, dtype=int),
                                                  classes=[1])


def test_continuous_target_for_classifier():
    X, y = make_xy(MiniBatchMLPRegressor)
    with raises_cleanly(ValueError, match="[Uu]nknown label type"):
        small(MiniBatchMLPClassifier).fit(X, y)


def test_partial_fit_needs_classes_on_the_first_call():
    X, y = make_xy(MiniBatchMLPClassifier)
    est = small(MiniBatchMLPClassifier)
    with raises_cleanly(ValueError, match="classes"):
        est.partial_fit(X, y)
    assert not hasattr(est, "coefs_")
    est.partial_fit(X, y, classes=[0, 1])  # and works once given
    est.partial_fit(X, y)  # not needed afterwards
    assert list(est.classes_) == [0, 1]


def test_partial_fit_label_not_in_classes():
    X, y = make_xy(MiniBatchMLPClassifier)
    est = small(MiniBatchMLPClassifier)
    with raises_cleanly(ValueError, match="classes"):
        est.partial_fit(X, y, classes=[0, 2])
    est = small(MiniBatchMLPClassifier)
    est.partial_fit(X, y, classes=[0, 1])
    y_new = y.copy()
    y_new[0] = 5
    before = [c.copy() for c in est.coefs_]
    with raises_cleanly(ValueError, match="classes"):
        est.partial_fit(X, y_new)
    assert all(np.array_equal(a, b) for a, b in zip(est.coefs_, before))


def test_partial_fit_classes_changed_between_calls():
    X, y = make_xy(MiniBatchMLPClassifier)
    est = small(MiniBatchMLPClassifier)
    est.partial_fit(X, y, classes=[0, 1])
    with raises_cleanly(ValueError, match="classes"):
        est.partial_fit(X, y, classes=[0, 1, 2])


@ignore_convergence
def test_warm_start_with_different_classes():
    X, y = make_xy(MiniBatchMLPClassifier)
    est = small(MiniBatchMLPClassifier, warm_start=True).fit(X, y)
    y3 = y.copy()
    y3[:3] = 2
    with raises_cleanly(ValueError, match="classes"):
        est.fit(X, y3)


# ---------------------------------------------------------------------------
# regression targets
# ---------------------------------------------------------------------------
@pytest.mark.parametrize("method", ["fit", "partial_fit"])
def test_poisson_with_negative_y(method):
    X, y = make_xy(MiniBatchMLPRegressor)
    est = small(MiniBatchMLPRegressor, loss="poisson")
    with raises_cleanly(ValueError, match="(?i)non-negative|negative"):
        getattr(est, method)(X, y)  # y has negative values


@ignore_convergence
def test_partial_fit_with_a_different_number_of_outputs():
    X, y = make_xy(MiniBatchMLPRegressor)
    est = small(MiniBatchMLPRegressor).fit(X, y)
    with raises_cleanly(ValueError, match="output"):
        est.partial_fit(X, np.column_stack([y, y]))


# ---------------------------------------------------------------------------
# sample_weight
# ---------------------------------------------------------------------------
BAD_WEIGHTS = {
    "negative": (lambda n: np.r_[-1.0, np.ones(n - 1)], "sample_weight|[Nn]egative"),
    "nan": (lambda n: np.r_[np.nan, np.ones(n - 1)], "sample_weight"),
    "inf": (lambda n: np.r_[np.inf, np.ones(n - 1)], "sample_weight"),
    "short": (lambda n: np.ones(n - 3), "sample_weight"),
    "long": (lambda n: np.ones(n + 1), "sample_weight"),
    "2d": (lambda n: np.ones((n, 2)), "sample_weight"),
    "all-zero": (lambda n: np.zeros(n), "sample_weight"),
}


@EST_PARAMS
@pytest.mark.parametrize("case", list(BAD_WEIGHTS))
@pytest.mark.parametrize("method", ["fit", "partial_fit"])
def test_bad_sample_weight(est_cls, case, method):
    X, y = make_xy(est_cls)
    make, pattern = BAD_WEIGHTS[case]
    extra = ({"classes": [0, 1]}
             if est_cls is MiniBatchMLPClassifier and method == "partial_fit" else {})
    with raises_cleanly(ValueError, match=pattern):
        getattr(small(est_cls), method)(X, y, sample_weight=make(len(y)), **extra)


# ---------------------------------------------------------------------------
# not fitted; partial_fit availability
# ---------------------------------------------------------------------------
@pytest.mark.parametrize("method", ["predict", "predict_proba", "predict_log_proba",
                                    "score"])
def test_classifier_not_fitted(method):
    X, y = make_xy(MiniBatchMLPClassifier)
    args = (X, y) if method == "score" else (X,)
    with raises_cleanly(NotFittedError, match="not fitted"):
        getattr(MiniBatchMLPClassifier(), method)(*args)


@pytest.mark.parametrize("method", ["predict", "score"])
def test_regressor_not_fitted(method):
    X, y = make_xy(MiniBatchMLPRegressor)
    args = (X, y) if method == "score" else (X,)
    with raises_cleanly(NotFittedError, match="not fitted"):
        getattr(MiniBatchMLPRegressor(), method)(*args)


@EST_PARAMS
def test_partial_fit_is_not_available_for_lbfgs(est_cls):
    assert hasattr(est_cls(solver="lbfgs"), "partial_fit") is False
    assert hasattr(est_cls(solver="sgd"), "partial_fit")
    assert hasattr(est_cls(solver="adam"), "partial_fit")
    X, y = make_xy(est_cls)
    with pytest.raises(AttributeError, match="partial_fit"):
        est_cls(solver="lbfgs").partial_fit(X, y)
