"""scikit-learn's callback API (``sklearn.callback``, scikit-learn >= 1.9):
one task per fit call, one subtask per epoch, stop requests honoured,
ProgressBar alone and under GridSearchCV, ScoringMonitor per epoch.

Skipped as a whole on scikit-learn < 1.9; the ProgressBar tests also need
rich.
"""

import re
import warnings

import numpy as np
import pytest
from sklearn.base import clone
from sklearn.datasets import load_iris, make_regression
from sklearn.exceptions import ConvergenceWarning
from sklearn.model_selection import GridSearchCV

from skminibatch import MiniBatchMLPClassifier, MiniBatchMLPRegressor

sklearn_callback = pytest.importorskip(
    "sklearn.callback", reason="scikit-learn >= 1.9 has the callback API"
)

ignore_convergence = pytest.mark.filterwarnings(
    "ignore::sklearn.exceptions.ConvergenceWarning"
)


class Recorder:
    """A FitCallback that records every hook call, and optionally asks to
    stop after ``stop_after`` epochs."""

    def __init__(self, stop_after=None):
        self.stop_after = stop_after
        self.events = []

    def setup(self, estimator, context):
        self.events.append(("setup", context.task_name, None))

    def on_fit_task_begin(self, estimator, context, *, fitted_estimator=None):
        self.events.append(("begin", context.task_name, fitted_estimator))

    def on_fit_task_end(self, estimator, context, *, X=None, y=None,
                        fitted_estimator=None):
        self.events.append(("end", context.task_name, fitted_estimator))
        n_epochs = self.count("end", "epoch")
        return (
            context.task_name == "epoch"
            and self.stop_after is not None
            and n_epochs >= self.stop_after
        )

    def teardown(self, estimator, context):
        self.events.append(("teardown", context.task_name, None))

    def count(self, hook, task_name):
        return sum(1 for h, t, _ in self.events if h == hook and t == task_name)

    def fitted(self, hook, task_name):
        return [e for h, t, e in self.events if h == hook and t == task_name]


@pytest.fixture(scope="module")
def iris():
    X, y = load_iris(return_X_y=True)
    return (X - X.mean(0)) / X.std(0), y


@pytest.fixture(scope="module")
def regression():
    X, y = make_regression(n_samples=120, n_features=5, noise=0.1, random_state=0)
    return X, y / y.std()


@pytest.fixture
def wide_console(monkeypatch):
    """rich, writing to a captured stream, draws 80 columns unless told
    otherwise; the nested bars' names need more to keep their percentages."""
    pytest.importorskip("rich")
    monkeypatch.setenv("COLUMNS", "200")


def _data(estimator, iris, regression):
    return iris if isinstance(estimator, MiniBatchMLPClassifier) else regression


ESTIMATORS = [
    MiniBatchMLPClassifier(hidden_layer_sizes=(8,), batch_size=32,
                           learning_rate_init=0.01, random_state=0),
    MiniBatchMLPRegressor(hidden_layer_sizes=(8,), batch_size=32,
                          learning_rate_init=0.01, random_state=0),
]
ids = ["classifier", "regressor"]


def test_set_callbacks_exists():
    for est in ESTIMATORS:
        assert hasattr(est, "set_callbacks")


@pytest.mark.parametrize("estimator", ESTIMATORS, ids=ids)
@pytest.mark.parametrize("early_stopping", [False, True])
@pytest.mark.parametrize("steps_per_epoch", [None, 3])
def test_one_epoch_task_per_epoch(estimator, early_stopping, steps_per_epoch, iris,
                                  regression):
    X, y = _data(estimator, iris, regression)
    rec = Recorder()
    # a coarse tol: a stopping rule (training loss or validation score) ends
    # the fit, in an epoch after which the loop calls no hook
    est = clone(estimator).set_params(
        max_iter=60, early_stopping=early_stopping, n_iter_no_change=2, tol=0.05,
        steps_per_epoch=steps_per_epoch,
    ).set_callbacks(rec)
    est.fit(X, y)

    assert rec.count("setup", "fit") == rec.count("teardown", "fit") == 1
    assert rec.count("begin", "fit") == rec.count("end", "fit") == 1
    assert rec.count("begin", "epoch") == rec.count("end", "epoch") == est.n_iter_
    assert est.n_iter_ < 60  # the epoch where the rule fired is counted too
    hooks = [h for h, _, _ in rec.events]
    assert hooks[:2] == ["setup", "begin"] and hooks[-2:] == ["end", "teardown"]
    # nothing of the callback machinery stays on the estimator
    assert not {"_callback_fit_ctx", "_callback_tasks",
                "_skl_callbacks_to_teardown"} & set(vars(est))


@ignore_convergence
@pytest.mark.parametrize("estimator", ESTIMATORS, ids=ids)
def test_fitted_estimator_per_epoch(estimator, iris, regression):
    """The copy a callback gets at the end of epoch k predicts with the
    weights after k epochs."""
    X, y = _data(estimator, iris, regression)
    rec = Recorder()
    est = clone(estimator).set_params(max_iter=6).set_callbacks(rec).fit(X, y)
    copies = rec.fitted("end", "epoch")
    assert [c.n_iter_ for c in copies] == list(range(1, 7))
    assert [len(c.loss_curve_) for c in copies] == list(range(1, 7))
    assert copies[-1].loss_curve_ == est.loss_curve_
    np.testing.assert_array_equal(copies[-1].predict(X), est.predict(X))
    for a, b in zip(copies[-1].coefs_, est.coefs_):
        np.testing.assert_array_equal(a, b)
    # earlier copies hold earlier weights: a fit of max_iter=2 is the same model
    est2 = clone(estimator).set_params(max_iter=2).fit(X, y)
    np.testing.assert_array_equal(copies[1].coefs_[0], est2.coefs_[0])
    # begin of epoch 1 sees the initial weights, not trained ones
    first = rec.fitted("begin", "epoch")[0]
    assert first.n_iter_ == 0 and first.loss_curve_ == []


@pytest.mark.parametrize("estimator", ESTIMATORS, ids=ids)
def test_stop_request_ends_training(estimator, iris, regression):
    X, y = _data(estimator, iris, regression)
    rec = Recorder(stop_after=3)
    est = clone(estimator).set_params(max_iter=50).set_callbacks(rec)
    with warnings.catch_warnings():
        warnings.simplefilter("error", ConvergenceWarning)  # stopped, not run out
        est.fit(X, y)
    assert est.n_iter_ == 3
    assert len(est.loss_curve_) == 3
    assert rec.count("end", "epoch") == 3


@pytest.mark.parametrize("estimator", ESTIMATORS, ids=ids)
def test_partial_fit_one_epoch_per_call(estimator, iris, regression):
    X, y = _data(estimator, iris, regression)
    rec = Recorder()
    est = clone(estimator).set_callbacks(rec)
    kwargs = {"classes": np.unique(y)} if isinstance(est, MiniBatchMLPClassifier) \
        else {}
    for _ in range(3):
        est.partial_fit(X, y, **kwargs)
    assert rec.count("begin", "fit") == rec.count("end", "fit") == 3
    assert rec.count("begin", "epoch") == rec.count("end", "epoch") == 3
    assert rec.count("teardown", "fit") == 3


@pytest.mark.parametrize("estimator", ESTIMATORS, ids=ids)
def test_lbfgs_reports_the_fit_task(estimator, iris, regression):
    X, y = _data(estimator, iris, regression)
    rec = Recorder()
    est = clone(estimator).set_params(solver="lbfgs", max_iter=500).set_callbacks(rec)
    est.fit(X, y)
    assert rec.count("begin", "fit") == rec.count("end", "fit") == 1
    assert rec.count("begin", "epoch") == 0
    assert rec.fitted("end", "fit")[0].n_iter_ == est.n_iter_


def test_failed_fit_tears_callbacks_down(iris):
    X, y = iris
    rec = Recorder()
    est = clone(ESTIMATORS[0]).set_params(max_iter=3).set_callbacks(rec)
    X_bad = X.copy()
    X_bad[0, 0] = np.nan
    with pytest.raises(ValueError, match="NaN"):
        est.fit(X_bad, y)
    assert rec.count("teardown", "fit") == 1
    assert not hasattr(est, "coefs_")
    assert not {"_callback_fit_ctx", "_callback_tasks"} & set(vars(est))


@ignore_convergence
def test_scoring_monitor_scores_every_epoch(iris):
    X, y = iris
    monitor = sklearn_callback.ScoringMonitor(scoring="accuracy")
    est = clone(ESTIMATORS[0]).set_params(max_iter=5).set_callbacks(monitor)
    est.fit(X, y)
    rows = monitor.get_logs().data
    epochs = [r for r in rows if r["task_name"] == "epoch"]
    assert len(epochs) == 5
    assert epochs[-1]["accuracy"] == pytest.approx(est.score(X, y))


@ignore_convergence
@pytest.mark.parametrize("estimator", ESTIMATORS, ids=ids)
def test_progressbar_on_fit(estimator, iris, regression, capsys, wide_console):
    X, y = _data(estimator, iris, regression)
    est = clone(estimator).set_params(max_iter=5)
    est.set_callbacks(sklearn_callback.ProgressBar()).fit(X, y)
    out = capsys.readouterr().out
    assert re.search(rf"{type(est).__name__} - fit", out)
    assert "100%" in out


@ignore_convergence
def test_progressbar_under_grid_search(iris, capsys, wide_console):
    X, y = iris
    search = GridSearchCV(
        clone(ESTIMATORS[0]).set_params(max_iter=4),
        {"batch_size": [16, 32], "steps_per_epoch": [None, 2]}, cv=2, n_jobs=1,
    )
    search.set_callbacks(sklearn_callback.ProgressBar()).fit(X, y)
    out = capsys.readouterr().out
    assert "GridSearchCV - fit" in out
    # the bars of the nested fits: the callback was propagated to our estimator
    nested = re.findall(r"candidate-split-evaluation \| MiniBatchMLPClassifier", out)
    assert len(nested) == 8
    assert "refit-with-best-params | MiniBatchMLPClassifier" in out
    assert not re.search(r"\b[0-9]{1,2}%", out)  # every bar ended at 100%
