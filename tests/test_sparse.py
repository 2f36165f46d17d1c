"""Sparse input (DESIGN §2, §4; issue 3 part 1): SciPy CSR/CSC matrices and
arrays, float32 and float64, through fit, partial_fit and predict* for every
solver, without ever densifying X.

Tolerances (measured; "relative" below means
``max|sparse - dense| / max|dense|`` per coefficient or intercept array):

* float64, every solver: 1e-9. Over 30 seeds of this test's configuration
  the worst case was 2e-14 (sgd/adam, 20 epochs; lbfgs, 10 iterations); the
  sparse kernels only add the first layer's products in another order than
  BLAS does.
* float32, sgd/adam (20 epochs): 1e-4. Worst over 30 seeds below 1e-5
  (4e-6 to 9e-6 depending on the kernel version), median 1.5e-7 -- float32
  rounding (eps 1.2e-7) carried through 20 epochs; the float32-vs-float64
  difference of the same fits is of the same size or larger.
* float32, lbfgs: 2e-4 after 10 iterations. L-BFGS amplifies a rounding
  difference in the gradient from one iteration to the next (through the
  line search and the curvature pairs): over 30 seeds the worst case was
  1e-6 after 5 iterations, 1.3e-5 after 10, 2.8e-4 after 20 and up to 0.2
  at convergence (~150 iterations), where dense float32 and dense float64
  differ by as much. So the lbfgs comparisons run 10 iterations. (float64
  lbfgs run to convergence on an ill-conditioned regression drifts too:
  worst 4e-2 after ~150 iterations, 3e-9 after 50, 3e-14 after 10; the
  issue's "1e-6 relative" holds for a bounded number of lbfgs iterations,
  not for any run to convergence.)
"""

import functools
import tracemalloc
import warnings

import numpy as np
import pytest
import scipy.sparse as sp
from sklearn.base import clone
from sklearn.feature_extraction.text import CountVectorizer, TfidfVectorizer
from sklearn.model_selection import GridSearchCV, train_test_split
from sklearn.pipeline import Pipeline
from sklearn.utils import get_tags
from sklearn.utils.estimator_checks import (
    check_estimator_sparse_array,
    check_estimator_sparse_matrix,
)

from skminibatch import MiniBatchMLPClassifier, MiniBatchMLPRegressor

ignore_convergence = pytest.mark.filterwarnings(
    "ignore::sklearn.exceptions.ConvergenceWarning"
)

CONTAINERS = [sp.csr_matrix, sp.csr_array, sp.csc_matrix, sp.csc_array]
CONTAINER_PARAMS = pytest.mark.parametrize(
    "container", CONTAINERS, ids=[c.__name__ for c in CONTAINERS]
)
ESTIMATORS = {"classifier": MiniBatchMLPClassifier, "regressor": MiniBatchMLPRegressor}
EST_PARAMS = pytest.mark.parametrize("kind", list(ESTIMATORS))
DTYPES = pytest.mark.parametrize("dtype", [np.float64, np.float32],
                                 ids=["float64", "float32"])

# relative tolerance on coefs_/intercepts_, by (dtype, solver family)
COEF_RTOL = {
    ("float64", "stochastic"): 1e-9,
    ("float64", "lbfgs"): 1e-9,
    ("float32", "stochastic"): 1e-4,
    ("float32", "lbfgs"): 2e-4,
}


def _family(solver):
    return "lbfgs" if solver == "lbfgs" else "stochastic"


# ---------------------------------------------------------------------------
# data
# ---------------------------------------------------------------------------
def make_sparse_problem(seed=0, n=120, n_features=30, density=0.25):
    """Dense ``X`` with ~75% zeros, one all-zero row and one all-zero column,
    and classification (3 classes) and regression targets."""
    rng = np.random.RandomState(seed)
    X = rng.standard_normal((n, n_features))
    X[rng.rand(n, n_features) > density] = 0.0
    X[7] = 0.0  # a row with no nonzeros
    X[:, 3] = 0.0  # a feature never seen
    w = rng.standard_normal(n_features)
    score = X @ w
    return X, {"classifier": np.digitize(score, [-0.5, 0.5]), "regressor": score}


X_BASE, Y_BASE = make_sparse_problem()


def params_for(solver, **extra):
    params = dict(hidden_layer_sizes=(8,), solver=solver, batch_size=32,
                  learning_rate_init=0.01, random_state=0,
                  max_iter=10 if solver == "lbfgs" else 20)
    params.update(extra)
    return params


def fit_quietly(est, X, y, **kw):
    with warnings.catch_warnings():
        # max_iter reached is expected for these short fits
        warnings.simplefilter("ignore", category=Warning)
        return est.fit(X, y, **kw)


@functools.lru_cache(maxsize=None)
def dense_fit(kind, solver, dtype_name, early_stopping=False):
    """The dense reference fit (shared; tests must not change it)."""
    est = ESTIMATORS[kind](**params_for(solver, early_stopping=early_stopping))
    return fit_quietly(est, X_BASE.astype(dtype_name), Y_BASE[kind])


def weights(est):
    return list(est.coefs_) + list(est.intercepts_)


def assert_weights_close(got, expected, rtol):
    """``max|got - expected| <= rtol * max|expected|`` for every array."""
    assert len(got) == len(expected)
    for a, b in zip(got, expected):
        assert a.shape == b.shape and a.dtype == b.dtype
        scale = float(np.max(np.abs(b)))
        err = float(np.max(np.abs(a.astype(np.float64) - b)))
        assert err <= rtol * scale, f"relative difference {err / scale:.3g} > {rtol}"


def outputs(est, X):
    """predict_proba for classifiers, predict for regressors."""
    if hasattr(est, "predict_proba"):
        return est.predict_proba(X)
    return est.predict(X)


def assert_same_predictions(est_a, X_a, est_b, X_b, rtol):
    """Same outputs to ``rtol`` (relative to their largest magnitude) and,
    for classifiers, the same labels wherever the reference is not within
    1e-3 of a tie."""
    out_a, out_b = outputs(est_a, X_a), outputs(est_b, X_b)
    scale = max(float(np.max(np.abs(out_b))), 1.0)
    np.testing.assert_allclose(out_a, out_b, rtol=0, atol=rtol * scale)
    if hasattr(est_b, "predict_proba"):
        top2 = np.sort(out_b, axis=1)[:, -2:]
        clear = (top2[:, 1] - top2[:, 0]) > 1e-3
        assert clear.mean() > 0.9
        np.testing.assert_array_equal(est_a.predict(X_a)[clear],
                                      est_b.predict(X_b)[clear])
        with np.errstate(divide="ignore"):
            np.testing.assert_array_equal(est_a.predict_log_proba(X_a),
                                          np.log(out_a))


# ---------------------------------------------------------------------------
# fit on sparse == fit on dense
# ---------------------------------------------------------------------------
@EST_PARAMS
@pytest.mark.parametrize("solver", ["sgd", "adam", "lbfgs"])
@DTYPES
@CONTAINER_PARAMS
def test_sparse_fit_equals_dense_fit(kind, solver, dtype, container):
    dtype_name = np.dtype(dtype).name
    rtol = COEF_RTOL[dtype_name, _family(solver)]
    Xd = X_BASE.astype(dtype)
    Xs = container(Xd)
    dense = dense_fit(kind, solver, dtype_name)
    est = fit_quietly(ESTIMATORS[kind](**params_for(solver)), Xs, Y_BASE[kind])

    assert all(w.dtype == dtype for w in weights(est))
    assert_weights_close(weights(est), weights(dense), rtol)
    assert est.n_iter_ == dense.n_iter_
    assert est.n_features_in_ == dense.n_features_in_ == X_BASE.shape[1]
    if solver != "lbfgs":
        assert est.t_ == dense.t_
        np.testing.assert_allclose(est.loss_curve_, dense.loss_curve_, rtol=rtol)
    else:
        np.testing.assert_allclose(est.loss_, dense.loss_, rtol=rtol)
    # predictions: sparse X on the sparse fit vs dense X on the dense fit
    assert_same_predictions(est, Xs, dense, Xd, rtol=10 * rtol)
    if kind == "classifier":
        np.testing.assert_array_equal(est.classes_, dense.classes_)


@ignore_convergence
@pytest.mark.parametrize("container", [sp.csr_matrix, sp.csc_array],
                         ids=["csr_matrix", "csc_array"])
def test_sparse_fit_with_early_stopping_equals_dense(container):
    """The early-stopping split takes the same rows out of a sparse X as out
    of a dense one; scores, validation losses and the kept weights agree."""
    dense = dense_fit("classifier", "adam", "float64", early_stopping=True)
    est = fit_quietly(
        MiniBatchMLPClassifier(**params_for("adam", early_stopping=True)),
        container(X_BASE), Y_BASE["classifier"],
    )
    assert est.n_iter_ == dense.n_iter_
    assert_weights_close(weights(est), weights(dense), 1e-9)
    np.testing.assert_allclose(est.validation_scores_, dense.validation_scores_,
                               rtol=1e-12)
    np.testing.assert_allclose(est.validation_loss_curve_,
                               dense.validation_loss_curve_, rtol=1e-9)
    assert est.best_validation_score_ == dense.best_validation_score_
    assert_same_predictions(est, container(X_BASE), dense, X_BASE, rtol=1e-9)


@ignore_convergence
@EST_PARAMS
@pytest.mark.parametrize("solver", ["sgd", "adam"])
@DTYPES
def test_partial_fit_on_sparse_equals_dense(kind, solver, dtype):
    dtype_name = np.dtype(dtype).name
    rtol = COEF_RTOL[dtype_name, "stochastic"]
    X = X_BASE.astype(dtype)
    y = Y_BASE[kind]
    extra = {"classes": np.unique(y)} if kind == "classifier" else {}
    ests = [ESTIMATORS[kind](**params_for(solver)) for _ in range(2)]
    chunks = np.array_split(np.arange(X.shape[0]), 3)
    for step, rows in enumerate(chunks * 2):  # two passes over three chunks
        container = CONTAINERS[step % len(CONTAINERS)]
        ests[0].partial_fit(container(X[rows]), y[rows], **extra)
        ests[1].partial_fit(X[rows], y[rows], **extra)
    sparse_est, dense_est = ests
    # as scikit-learn: n_iter_ counts the last call's epochs, t_ and the
    # loss curve accumulate
    assert sparse_est.n_iter_ == dense_est.n_iter_ == 1
    assert len(sparse_est.loss_curve_) == len(dense_est.loss_curve_) == 6
    np.testing.assert_allclose(sparse_est.loss_curve_, dense_est.loss_curve_,
                               rtol=rtol)
    assert sparse_est.t_ == dense_est.t_ == 2 * X.shape[0]
    assert_weights_close(weights(sparse_est), weights(dense_est), rtol)
    assert_same_predictions(sparse_est, sp.csr_matrix(X), dense_est, X, 10 * rtol)


# ---------------------------------------------------------------------------
# predicting across kinds of input
# ---------------------------------------------------------------------------
PREDICT_RTOL = {"float64": 1e-12, "float32": 1e-5}


@EST_PARAMS
@DTYPES
@CONTAINER_PARAMS
def test_dense_fitted_model_predicts_sparse(kind, dtype, container):
    dtype_name = np.dtype(dtype).name
    est = dense_fit(kind, "adam", dtype_name)
    X = X_BASE.astype(dtype)
    assert_same_predictions(est, container(X), est, X, PREDICT_RTOL[dtype_name])
    assert outputs(est, container(X)).dtype == dtype


@ignore_convergence
@EST_PARAMS
@DTYPES
@pytest.mark.parametrize("container", [sp.csr_array, sp.csc_matrix],
                         ids=["csr_array", "csc_matrix"])
def test_sparse_fitted_model_predicts_dense(kind, dtype, container):
    dtype_name = np.dtype(dtype).name
    X = X_BASE.astype(dtype)
    est = ESTIMATORS[kind](**params_for("adam")).fit(container(X), Y_BASE[kind])
    assert_same_predictions(est, X, est, container(X), PREDICT_RTOL[dtype_name])


@ignore_convergence
def test_predict_in_many_chunks_on_sparse():
    """Prediction runs in row chunks; a sparse X longer than one chunk gives
    the rows' outputs in order (compared with the dense X)."""
    rng = np.random.RandomState(1)
    X = rng.standard_normal((5000, 30))
    X[rng.rand(*X.shape) > 0.1] = 0
    y = (X[:, 0] + X[:, 1] > 0).astype(int)
    est = MiniBatchMLPClassifier(hidden_layer_sizes=(600,), max_iter=2,
                                 random_state=0).fit(sp.csr_matrix(X), y)
    # 600 hidden + 1 output units: the buffer holds ~3500 rows per chunk
    np.testing.assert_allclose(est.predict_proba(sp.csr_matrix(X)),
                               est.predict_proba(X), rtol=0, atol=1e-12)


# ---------------------------------------------------------------------------
# unusual CSR structure
# ---------------------------------------------------------------------------
def _csr_unsorted_with_explicit_zeros(X, rng):
    """CSR of X whose rows list their columns in shuffled order, plus an
    explicit zero stored in every third row."""
    data, indices, indptr = [], [], [0]
    for i, row in enumerate(X):
        cols = np.flatnonzero(row)
        if i % 3 == 0:
            zero_cols = np.flatnonzero(row == 0)
            if zero_cols.size:
                cols = np.append(cols, zero_cols[0])
        cols = rng.permutation(cols)
        indices.extend(cols)
        data.extend(row[cols])
        indptr.append(len(indices))
    return sp.csr_matrix(
        (np.array(data, dtype=X.dtype), np.array(indices, dtype=np.int32),
         np.array(indptr, dtype=np.int32)), shape=X.shape,
    )


@pytest.mark.parametrize("solver", ["adam", "lbfgs"])
@EST_PARAMS
def test_unsorted_indices_and_explicit_zeros(kind, solver):
    rng = np.random.RandomState(3)
    Xs = _csr_unsorted_with_explicit_zeros(X_BASE, rng)
    assert not Xs.has_sorted_indices
    assert Xs.nnz > np.count_nonzero(X_BASE)  # explicit zeros are stored
    np.testing.assert_array_equal(Xs.toarray(), X_BASE)
    before = (Xs.data.copy(), Xs.indices.copy(), Xs.indptr.copy())

    est = fit_quietly(ESTIMATORS[kind](**params_for(solver)), Xs, Y_BASE[kind])
    dense = dense_fit(kind, solver, "float64")
    assert_weights_close(weights(est), weights(dense), 1e-9)
    assert_same_predictions(est, Xs, dense, X_BASE, 1e-9)
    # the user's matrix is left as it was (sorting happens on a copy)
    for a, b in zip((Xs.data, Xs.indices, Xs.indptr), before):
        np.testing.assert_array_equal(a, b)


@ignore_convergence
def test_duplicate_entries_are_summed_like_scipy():
    """A non-canonical CSR with duplicate (row, column) entries means their
    sum, as in SciPy; training sees the same X as its dense form."""
    X = X_BASE.copy()
    Xs = sp.csr_matrix(X)
    # split every stored value v into v/4 and 3v/4 stored at the same place
    counts = np.diff(Xs.indptr)
    indices = np.repeat(Xs.indices, 2)
    data = np.column_stack([Xs.data / 4, 3 * Xs.data / 4]).ravel()
    indptr = np.concatenate([[0], np.cumsum(2 * counts)])
    Xdup = sp.csr_matrix((data, indices, indptr), shape=X.shape)
    assert not Xdup.has_canonical_format
    X_equiv = Xdup.toarray()  # SciPy's meaning of the matrix (sums)
    np.testing.assert_allclose(X_equiv, X, rtol=1e-15, atol=0)

    est = MiniBatchMLPClassifier(**params_for("adam")).fit(Xdup, Y_BASE["classifier"])
    dense = MiniBatchMLPClassifier(**params_for("adam")).fit(X_equiv,
                                                             Y_BASE["classifier"])
    assert_weights_close(weights(est), weights(dense), 1e-9)


@ignore_convergence
def test_rows_without_nonzeros():
    """Empty rows train (the first layer's output is its intercept) and
    predict the output of the zero vector."""
    X = X_BASE.copy()
    X[::4] = 0.0  # a quarter of the rows are empty
    y = Y_BASE["classifier"]
    Xs = sp.csr_matrix(X)
    assert (np.diff(Xs.indptr) == 0).sum() >= X.shape[0] // 4
    est = MiniBatchMLPClassifier(**params_for("adam")).fit(Xs, y)
    dense = MiniBatchMLPClassifier(**params_for("adam")).fit(X, y)
    assert_weights_close(weights(est), weights(dense), 1e-9)
    empty = sp.csr_matrix((3, X.shape[1]))
    assert empty.nnz == 0
    proba = est.predict_proba(empty)
    np.testing.assert_allclose(proba, dense.predict_proba(np.zeros((3, X.shape[1]))),
                               rtol=1e-12)
    np.testing.assert_allclose(proba, np.repeat(proba[:1], 3, axis=0), rtol=0)


@ignore_convergence
def test_all_zero_sparse_matrix_fits():
    """A training matrix with no stored value at all: only the intercepts and
    the L2 term move, exactly as for the dense zero matrix."""
    X = np.zeros((40, 6))
    y = np.arange(40) % 2
    est = MiniBatchMLPClassifier(**params_for("sgd")).fit(sp.csr_matrix(X), y)
    dense = MiniBatchMLPClassifier(**params_for("sgd")).fit(X, y)
    assert_weights_close(weights(est), weights(dense), 1e-12)


@ignore_convergence
def test_int64_index_arrays():
    """CSR with 64-bit indices/indptr (SciPy uses them for big matrices)."""
    Xs = sp.csr_matrix(X_BASE)
    Xs.indices = Xs.indices.astype(np.int64)
    Xs.indptr = Xs.indptr.astype(np.int64)
    est = MiniBatchMLPClassifier(**params_for("adam")).fit(Xs, Y_BASE["classifier"])
    dense = dense_fit("classifier", "adam", "float64")
    assert_weights_close(weights(est), weights(dense), 1e-9)
    assert_same_predictions(est, Xs, dense, X_BASE, 1e-9)


@ignore_convergence
def test_integer_sparse_data_trains_in_float64():
    X_int = np.rint(3 * X_BASE).astype(np.int64)
    est = MiniBatchMLPRegressor(**params_for("adam")).fit(sp.csr_matrix(X_int),
                                                          Y_BASE["regressor"])
    dense = MiniBatchMLPRegressor(**params_for("adam")).fit(X_int.astype(float),
                                                            Y_BASE["regressor"])
    assert est.coefs_[0].dtype == np.float64
    assert_weights_close(weights(est), weights(dense), 1e-9)


# ---------------------------------------------------------------------------
# X is never densified
# ---------------------------------------------------------------------------
class Densified(AssertionError):
    pass


#: sparse matrices at least this wide count as "an X" for :func:`no_densify`
X_MIN_WIDTH = 10


@pytest.fixture
def no_densify(monkeypatch):
    """Make every SciPy sparse container used here refuse to densify a matrix
    of X's width: ``toarray``/``todense``/``__array__`` wherever SciPy defines
    them in the containers' class hierarchies (COO too, in case of a
    conversion) raise for matrices with ``X_MIN_WIDTH`` columns or more.

    Narrower matrices may still densify: scikit-learn's ``LabelBinarizer``
    builds the (n_samples, n_classes) target matrix as CSR and densifies it
    -- that is y, not X (every X in these tests has 30 or more columns)."""
    classes = CONTAINERS + [sp.coo_matrix, sp.coo_array]
    for cls in classes:
        for klass in cls.__mro__:
            if not klass.__module__.startswith("scipy.sparse"):
                continue
            for name in ("toarray", "todense", "__array__"):
                if name in vars(klass):
                    original = getattr(klass, name)

                    def guarded(self, *args, _original=original, **kwargs):
                        if self.shape[-1] >= X_MIN_WIDTH:
                            raise Densified(
                                f"a sparse matrix of shape {self.shape} was densified")
                        return _original(self, *args, **kwargs)

                    monkeypatch.setattr(klass, name, guarded)
    wide = np.eye(X_MIN_WIDTH)
    for cls in classes:  # the patch holds
        with pytest.raises(Densified):
            cls(wide).toarray()
        with pytest.raises(Densified):
            cls(wide).todense()
        np.testing.assert_array_equal(cls(np.eye(3)).toarray(), np.eye(3))


class RefusesToDensify(sp.csr_matrix):
    """A CSR matrix whose densifying methods raise (an independent check of
    the monkeypatch: an ``__array__`` here also catches ``np.asarray``)."""

    def toarray(self, *args, **kwargs):
        raise Densified("toarray")

    def todense(self, *args, **kwargs):
        raise Densified("todense")

    def __array__(self, *args, **kwargs):
        raise Densified("__array__")


@ignore_convergence
@EST_PARAMS
@pytest.mark.parametrize("solver", ["sgd", "adam", "lbfgs"])
@CONTAINER_PARAMS
def test_fit_and_predict_never_densify(no_densify, kind, solver, container):
    Xs = container(X_BASE)
    y = Y_BASE[kind]
    est = ESTIMATORS[kind](**params_for(solver, max_iter=3))
    est.fit(Xs, y)
    if solver != "lbfgs":
        est.partial_fit(Xs, y)
        es = clone(est).set_params(early_stopping=True).fit(Xs, y)
        assert len(es.validation_loss_curve_) == es.n_iter_
    est.predict(Xs)
    est.score(Xs, y)
    if kind == "classifier":
        est.predict_proba(Xs)
        est.predict_log_proba(Xs)


@ignore_convergence
@pytest.mark.parametrize("solver", ["adam", "lbfgs"])
def test_subclass_refusing_to_densify(solver):
    Xs = RefusesToDensify(X_BASE)
    with pytest.raises(Densified):
        np.asarray(Xs)
    est = MiniBatchMLPClassifier(**params_for(solver, max_iter=3))
    est.fit(Xs, Y_BASE["classifier"])
    est.predict_proba(Xs)


@ignore_convergence
@pytest.mark.parametrize("solver", ["adam", "lbfgs"])
def test_fit_memory_is_proportional_to_parameters_not_dense_size(solver):
    """Peak NumPy memory (tracemalloc) of fit + predict_proba on a wide
    sparse X (2,000 x 100,000, 5 nonzeros a row): the dense X would be 1.6 GB
    and ONE densified batch of 128 rows 102 MB. What fit allocates is a small
    multiple of the parameter vector (100,000 x 2 first-layer weights, 1.6 MB
    in float64): measured ~4x for adam (weights, gradient, two moments, the
    fitted copies) and ~41x for lbfgs, whose scipy L-BFGS-B keeps 10
    correction pairs and its workspace as float64 parameter-sized vectors
    (scikit-learn's lbfgs does the same)."""
    rng = np.random.RandomState(0)
    n, n_features, per_row = 2000, 100_000, 5
    indices = np.sort(rng.randint(0, n_features, (n, per_row)), axis=1).ravel()
    Xs = sp.csr_matrix((rng.standard_normal(n * per_row), indices,
                        np.arange(0, n * per_row + 1, per_row)),
                       shape=(n, n_features))
    Xs.sum_duplicates()
    y = rng.randint(0, 2, n)
    est = MiniBatchMLPClassifier(hidden_layer_sizes=(2,), solver=solver,
                                 batch_size=128, max_iter=3, random_state=0)
    est.fit(Xs[:200], y[:200])  # compile outside the measurement
    tracemalloc.start()
    try:
        est.fit(Xs, y)
        est.predict_proba(Xs)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    param_bytes = sum(c.nbytes for c in est.coefs_ + est.intercepts_)
    dense_bytes = n * n_features * 8
    one_dense_batch = 128 * n_features * 8
    assert peak < dense_bytes / 10, (peak, dense_bytes)
    if solver == "lbfgs":
        assert peak < 60 * param_bytes, (peak, param_bytes)
    else:
        assert peak < 10 * param_bytes, (peak, param_bytes)
        assert peak < one_dense_batch / 4, (peak, one_dense_batch)


# ---------------------------------------------------------------------------
# tags and scikit-learn's sparse checks
# ---------------------------------------------------------------------------
@EST_PARAMS
def test_tags_say_sparse_input_is_supported(kind):
    assert get_tags(ESTIMATORS[kind]()).input_tags.sparse is True


@ignore_convergence
@EST_PARAMS
def test_sklearn_sparse_estimator_checks(kind):
    est = ESTIMATORS[kind](hidden_layer_sizes=(5,), max_iter=5)
    check_estimator_sparse_matrix(type(est).__name__, est)
    check_estimator_sparse_array(type(est).__name__, est)


# ---------------------------------------------------------------------------
# text: TfidfVectorizer -> MiniBatchMLPClassifier
# ---------------------------------------------------------------------------
TOPICS = {
    "sport": "goal match team player coach league season score referee stadium "
             "striker keeper tournament final championship injury transfer "
             "penalty derby fans",
    "cooking": "recipe oven flour butter sugar garlic onion simmer bake roast "
               "sauce pepper salt kitchen dough spice boil fry dinner dessert",
    "space": "orbit rocket planet galaxy telescope astronaut launch satellite "
             "comet nebula gravity lunar solar mission crater asteroid probe "
             "module station cosmos",
}
COMMON = ("the a of and to in is was for on that with as it by this from at "
          "have were are be or new year people time day good first last long "
          "great little own other old right big high different small large")


@pytest.fixture(scope="module")
def text_data():
    """360 generated documents, 120 per topic: 12-24 words each, a third
    drawn from the topic's vocabulary, the rest common words and a few words
    of the other topics (seeded; nothing downloaded)."""
    rng = np.random.RandomState(42)
    names = sorted(TOPICS)
    vocab = {t: TOPICS[t].split() for t in names}
    common = COMMON.split()
    docs, labels = [], []
    for i in range(360):
        topic = names[i % 3]
        words = []
        for _ in range(rng.randint(12, 25)):
            u = rng.rand()
            if u < 0.33:
                words.append(rng.choice(vocab[topic]))
            elif u < 0.43:
                other = names[(names.index(topic) + rng.randint(1, 3)) % 3]
                words.append(rng.choice(vocab[other]))
            else:
                words.append(rng.choice(common))
        docs.append(" ".join(words))
        labels.append(topic)
    return np.array(docs, dtype=object), np.array(labels)


def text_pipeline(**mlp_params):
    params = dict(hidden_layer_sizes=(16,), max_iter=30, learning_rate_init=0.01,
                  random_state=0)
    params.update(mlp_params)
    return Pipeline([("tfidf", TfidfVectorizer()),
                     ("mlp", MiniBatchMLPClassifier(**params))])


@ignore_convergence
def test_tfidf_pipeline_classifies_text(text_data, no_densify):
    docs, labels = text_data
    d_train, d_test, y_train, y_test = train_test_split(
        docs, labels, test_size=0.3, random_state=0, stratify=labels)
    pipe = text_pipeline().fit(d_train, y_train)
    assert sp.issparse(pipe[:-1].transform(d_train[:3]))
    accuracy = pipe.score(d_test, y_test)
    assert accuracy > 0.8, accuracy  # chance is 1/3; measured 0.91-0.97
    assert set(pipe.predict(d_test)) <= set(TOPICS)
    proba = pipe.predict_proba(d_test)
    np.testing.assert_allclose(proba.sum(axis=1), 1, rtol=1e-12)


@ignore_convergence
def test_count_vectorizer_integer_counts(text_data):
    """CountVectorizer gives int64 sparse counts; they train in float64."""
    docs, labels = text_data
    pipe = Pipeline([("counts", CountVectorizer()),
                     ("mlp", MiniBatchMLPClassifier(hidden_layer_sizes=(16,),
                                                    learning_rate_init=0.01,
                                                    max_iter=20, random_state=0))])
    pipe.fit(docs[:300], labels[:300])
    assert pipe[-1].coefs_[0].dtype == np.float64
    assert pipe.score(docs[300:], labels[300:]) > 0.75  # measured 0.87-0.92


@ignore_convergence
def test_tfidf_pipeline_grid_search_over_batch_size_and_steps(text_data):
    docs, labels = text_data
    grid = {"mlp__batch_size": [16, 64], "mlp__steps_per_epoch": [None, 4]}
    search = GridSearchCV(text_pipeline(max_iter=15), grid, cv=3)
    search.fit(docs, labels)
    results = search.cv_results_
    assert len(results["params"]) == 4
    assert np.all(results["mean_test_score"] > 0.8), results["mean_test_score"]
    best = search.best_estimator_[-1]
    assert best.batch_size_ == search.best_params_["mlp__batch_size"]
    steps = search.best_params_["mlp__steps_per_epoch"]
    n_train = docs.shape[0]  # refit on all documents
    assert best.steps_per_epoch_ == (steps or -(-n_train // best.batch_size_))
