"""Both estimators inside Pipelines tuned by scikit-learn's searches, run
serially, in loky worker processes and in threads: with a fixed
``random_state`` every way of running must pick the same cell with the same
scores. Also runs the demo's core on a reduced grid.

The searches use a small ``max_iter``, so most fits stop there with a
ConvergenceWarning; those tests ignore that warning (and only that one).
"""

import io

import joblib
import numpy as np
import pytest
from sklearn.datasets import load_digits
from sklearn.model_selection import GridSearchCV, RandomizedSearchCV
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import StandardScaler

from skminibatch import MiniBatchMLPClassifier, MiniBatchMLPRegressor
from skminibatch import _demo
from _search_checks import assert_same_search

ignore_convergence = pytest.mark.filterwarnings(
    "ignore::sklearn.exceptions.ConvergenceWarning"
)

BATCH_GRID = {"mlp__batch_size": [16, 64], "mlp__steps_per_epoch": [None, 5]}


@pytest.fixture(scope="module")
def digits_slice():
    """300 digits, pixel values as float64."""
    X, y = load_digits(return_X_y=True)
    return X[:300], y[:300]


@pytest.fixture(scope="module")
def regression_data():
    """200 samples, 8 features, a smooth nonlinear target (standardised)."""
    rng = np.random.RandomState(0)
    X = rng.normal(size=(200, 8))
    y = np.sin(X[:, 0]) + X[:, 1] * X[:, 2] + 0.1 * rng.normal(size=200)
    return X, (y - y.mean()) / y.std()


def _classifier_search(n_jobs):
    pipe = Pipeline([
        ("scale", StandardScaler()),
        ("mlp", MiniBatchMLPClassifier(hidden_layer_sizes=(16,), max_iter=5,
                                       learning_rate_init=0.01, random_state=0)),
    ])
    return GridSearchCV(pipe, BATCH_GRID, cv=2, n_jobs=n_jobs)


def _regressor_search(n_jobs):
    pipe = Pipeline([
        ("scale", StandardScaler()),
        ("mlp", MiniBatchMLPRegressor(hidden_layer_sizes=(16,), max_iter=5,
                                      learning_rate_init=0.01, random_state=0)),
    ])
    return RandomizedSearchCV(pipe, BATCH_GRID, n_iter=3, cv=2, n_jobs=n_jobs,
                              random_state=0)


def _fit_three_ways(make_search, X, y):
    """Fit serially, with loky processes and with threads; return all three."""
    serial = make_search(n_jobs=1).fit(X, y)
    processes = make_search(n_jobs=2).fit(X, y)  # loky is joblib's default
    with joblib.parallel_backend("threading"):
        threads = make_search(n_jobs=2).fit(X, y)
    return serial, processes, threads


@ignore_convergence
def test_grid_search_classifier_same_in_processes_and_threads(digits_slice):
    X, y = digits_slice
    serial, processes, threads = _fit_three_ways(_classifier_search, X, y)
    assert len(serial.cv_results_["params"]) == 4
    assert np.isfinite(serial.cv_results_["mean_test_score"]).all()
    assert_same_search(serial, processes)
    assert_same_search(serial, threads)
    # the tuned values reached the refitted estimator through set_params
    best_mlp = serial.best_estimator_["mlp"]
    assert best_mlp.batch_size_ == serial.best_params_["mlp__batch_size"]
    expected_steps = serial.best_params_["mlp__steps_per_epoch"]
    if expected_steps is None:  # one pass over the 300 samples
        expected_steps = -(-300 // best_mlp.batch_size_)
    assert best_mlp.steps_per_epoch_ == expected_steps


@ignore_convergence
def test_randomized_search_regressor_same_in_processes_and_threads(
        regression_data):
    X, y = regression_data
    serial, processes, threads = _fit_three_ways(_regressor_search, X, y)
    assert len(serial.cv_results_["params"]) == 3
    assert np.isfinite(serial.cv_results_["mean_test_score"]).all()
    assert_same_search(serial, processes)
    assert_same_search(serial, threads)


@ignore_convergence
def test_demo_core_on_reduced_grid(digits_slice):
    X, y = digits_slice
    out = io.StringIO()
    search = _demo.run_search(
        X, y, {"mlp__batch_size": [32], "mlp__steps_per_epoch": [None, 4]},
        mlp_params={"hidden_layer_sizes": (8,), "max_iter": 3,
                    "random_state": 0},
        cv=2, out=out,
    )
    text = out.getvalue()
    for header in _demo.TABLE_HEADERS:
        assert header in text
    assert text.count("<- best") == 1
    assert search.best_params_["mlp__batch_size"] == 32


@ignore_convergence
def test_demo_comparison_prints_both_estimators(digits_slice):
    X, y = digits_slice
    pipe = _demo.make_pipeline({"hidden_layer_sizes": (8,), "max_iter": 2,
                                "random_state": 0, "steps_per_epoch": 3})
    twin = _demo.sklearn_twin(pipe)
    assert "steps_per_epoch" not in twin["mlp"].get_params()
    out = io.StringIO()
    times = _demo.compare_with_sklearn(pipe, X, y, repeats=1, out=out)
    text = out.getvalue()
    assert set(times) == {"skminibatch", "sklearn"}
    assert "MiniBatchMLPClassifier" in text and "MLPClassifier" in text
    assert "ratio scikit-learn / skminibatch" in text
    # 3 steps per epoch of 'auto' (200-sample) batches is not one pass over
    # 300 samples, so the two fits see different numbers of samples
    assert "time per sample seen" in text


def test_demo_command_line_help(capsys):
    with pytest.raises(SystemExit) as exc:
        _demo.main(["demo", "--help"])
    assert exc.value.code == 0
    assert "--n-jobs" in capsys.readouterr().out
    with pytest.raises(SystemExit) as exc:
        _demo.main([])
    assert exc.value.code == 2


def test_environment_line_names_versions():
    line = _demo.environment_line()
    for name in ("numpy", "scikit-learn", "numba"):
        assert name in line
