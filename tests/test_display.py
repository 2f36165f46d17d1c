"""LossCurveDisplay and BatchStepsDisplay, drawn with the Agg backend: the
artists must hold the estimator's / the search's numbers, labels and
annotations, not merely draw without error."""

import os
import subprocess
import sys

import numpy as np
import pytest
from sklearn.datasets import load_iris, make_regression
from sklearn.exceptions import NotFittedError
from sklearn.model_selection import GridSearchCV
from sklearn.neural_network import MLPClassifier
from sklearn.pipeline import Pipeline, make_pipeline
from sklearn.preprocessing import StandardScaler

from skminibatch import (
    BatchStepsDisplay,
    LossCurveDisplay,
    MiniBatchMLPClassifier,
    MiniBatchMLPRegressor,
)

matplotlib = pytest.importorskip("matplotlib")
matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402  (after choosing the backend)

ignore_convergence = pytest.mark.filterwarnings(
    "ignore::sklearn.exceptions.ConvergenceWarning"
)


@pytest.fixture(autouse=True)
def close_figures():
    yield
    plt.close("all")


@pytest.fixture(scope="module")
def iris():
    X, y = load_iris(return_X_y=True)
    return (X - X.mean(0)) / X.std(0), y


def _mlp(**params):
    return MiniBatchMLPClassifier(
        hidden_layer_sizes=(8,), batch_size=16, learning_rate_init=0.01,
        random_state=0, **params,
    )


def _legend_texts(ax):
    return [t.get_text() for t in ax.get_legend().get_texts()]


def _ticks(labels):
    return [t.get_text() for t in labels]


# --------------------------------------------------------------- loss curve
@ignore_convergence
def test_loss_curve_without_early_stopping(iris):
    X, y = iris
    clf = _mlp(max_iter=12).fit(X, y)
    display = LossCurveDisplay.from_estimator(clf)
    np.testing.assert_array_equal(display.line_.get_ydata(), clf.loss_curve_)
    np.testing.assert_array_equal(display.line_.get_xdata(), np.arange(1, 13))
    assert display.validation_loss_line_ is None
    assert display.validation_score_line_ is None
    assert display.score_ax_ is None
    assert display.ax_.get_xlabel() == "epoch"
    assert display.ax_.get_ylabel() == "loss"
    assert display.ax_.get_title() == "MiniBatchMLPClassifier"
    assert _legend_texts(display.ax_) == ["training loss"]
    assert display.figure_ is display.ax_.figure
    assert display.line_.axes is display.ax_


def test_loss_curve_with_early_stopping(iris):
    X, y = iris
    clf = _mlp(early_stopping=True, n_iter_no_change=3).fit(X, y)
    display = LossCurveDisplay.from_estimator(clf)
    n = clf.n_iter_
    np.testing.assert_array_equal(display.line_.get_ydata(), clf.loss_curve_)
    np.testing.assert_array_equal(display.validation_loss_line_.get_ydata(),
                                  clf.validation_loss_curve_)
    np.testing.assert_array_equal(display.validation_score_line_.get_ydata(),
                                  clf.validation_scores_)
    np.testing.assert_array_equal(display.validation_score_line_.get_xdata(),
                                  np.arange(1, n + 1))
    # losses share the left axes; the score has its own, on the right
    assert display.validation_loss_line_.axes is display.ax_
    assert display.validation_score_line_.axes is display.score_ax_
    assert display.score_ax_.get_ylabel() == "validation score"
    assert _legend_texts(display.score_ax_) == [
        "training loss", "validation loss", "validation score"]


@ignore_convergence
def test_loss_curve_regressor_in_pipeline_on_given_axes():
    X, y = make_regression(n_samples=80, n_features=4, random_state=0)
    pipe = make_pipeline(StandardScaler(), MiniBatchMLPRegressor(
        hidden_layer_sizes=(8,), max_iter=5, random_state=0))
    pipe.fit(X, y / y.std())
    fig, ax = plt.subplots()
    display = LossCurveDisplay.from_estimator(
        pipe, ax=ax, name="my model", loss_kwargs={"color": "red"})
    assert display.ax_ is ax and display.figure_ is fig
    assert ax.get_title() == "my model"
    assert display.line_.get_color() == "red"
    np.testing.assert_array_equal(display.line_.get_ydata(), pipe[-1].loss_curve_)


def test_loss_curve_of_scikit_learns_mlp(iris):
    """scikit-learn's MLP has validation scores but no validation loss."""
    X, y = iris
    clf = MLPClassifier(hidden_layer_sizes=(8,), early_stopping=True,
                        learning_rate_init=0.01, n_iter_no_change=3,
                        random_state=0).fit(X, y)
    display = LossCurveDisplay.from_estimator(clf)
    assert display.validation_loss_line_ is None
    np.testing.assert_array_equal(display.validation_score_line_.get_ydata(),
                                  clf.validation_scores_)
    assert display.ax_.get_title() == "MLPClassifier"


def test_loss_curve_errors(iris):
    X, y = iris
    with pytest.raises(NotFittedError):
        LossCurveDisplay.from_estimator(_mlp())
    lbfgs = _mlp(solver="lbfgs", max_iter=300).fit(X, y)
    with pytest.raises(ValueError, match="lbfgs"):
        LossCurveDisplay.from_estimator(lbfgs)
    with pytest.raises(ValueError, match="only 2 epochs"):
        LossCurveDisplay([1.0, 0.5], validation_scores=[0.1, 0.2, 0.3]).plot()
    with pytest.raises(ValueError, match="non-empty"):
        LossCurveDisplay([]).plot()


def test_loss_curve_validation_aligned_with_last_epochs():
    """A warm start that switched early stopping on records validation
    values for the last epochs only."""
    display = LossCurveDisplay([4.0, 3.0, 2.0, 1.5, 1.2],
                               validation_scores=[0.7, 0.8],
                               validation_loss_curve=[1.6, 1.4]).plot()
    np.testing.assert_array_equal(display.validation_score_line_.get_xdata(),
                                  [4, 5])
    np.testing.assert_array_equal(display.validation_loss_line_.get_xdata(),
                                  [4, 5])
    assert display.ax_.get_title() == ""  # no estimator name, no title


# ------------------------------------------------------------ batch x steps
def _cv_results(batch_sizes, steps, scores, prefix="", **other):
    """A cv_results_-like dict, one candidate per entry."""
    def column(values):
        return np.ma.MaskedArray(list(values), mask=False, dtype=object)

    results = {
        f"param_{prefix}batch_size": column(batch_sizes),
        f"param_{prefix}steps_per_epoch": column(steps),
        "mean_test_score": np.asarray(scores, dtype=float),
        "mean_fit_time": np.asarray(scores, dtype=float) * 10,
    }
    for key, values in other.items():
        results[f"param_{key}"] = column(values)
    return results


def test_heatmap_arrangement_labels_and_annotations():
    results = _cv_results(
        batch_sizes=[64, 16, 64, 16, 64, 16],
        steps=[5, None, None, 5, 2, 2],
        scores=[0.61, 0.52, 0.63, 0.54, 0.65, 0.56],
        prefix="mlp__",
    )
    display = BatchStepsDisplay.from_cv_results(results)
    assert display.batch_sizes_ == [16, 64]
    assert display.steps_per_epoch_values_ == [None, 2, 5]
    expected = np.array([[0.52, 0.56, 0.54],
                         [0.63, 0.65, 0.61]])
    np.testing.assert_array_equal(display.values_, expected)
    np.testing.assert_array_equal(display.image_.get_array(), expected)
    ax = display.ax_
    assert _ticks(ax.get_xticklabels()) == ["None (one pass)", "2", "5"]
    assert _ticks(ax.get_yticklabels()) == ["16", "64"]
    assert ax.get_xlabel() == "steps_per_epoch"
    assert ax.get_ylabel() == "batch_size"
    assert ax.get_title() == "mean_test_score"
    assert display.text_.shape == (2, 3)
    texts = [[t.get_text() for t in row] for row in display.text_]
    assert texts == [["0.52", "0.56", "0.54"], ["0.63", "0.65", "0.61"]]
    # each annotation sits in its cell
    assert display.text_[1, 2].get_position() == (2, 1)
    assert display.colorbar_.ax.get_ylabel() == "mean_test_score"


def test_heatmap_other_metric_format_and_missing_cells():
    results = _cv_results(batch_sizes=[8, 32, 8], steps=[None, None, 4],
                          scores=[0.1234, 0.2, 0.3])
    display = BatchStepsDisplay.from_cv_results(
        results, metric="mean_fit_time", values_format=".2f", colorbar=False)
    np.testing.assert_array_equal(display.values_,
                                  [[1.234, 3.0], [2.0, np.nan]])
    assert [[t.get_text() for t in row] for row in display.text_] == [
        ["1.23", "3.00"], ["2.00", "n/a"]]
    assert display.colorbar_ is None
    assert display.ax_.get_title() == "mean_fit_time"

    display = BatchStepsDisplay.from_cv_results(results, values_format=False)
    assert display.text_ is None
    assert len(display.ax_.texts) == 0


def test_heatmap_errors():
    good = _cv_results([16, 32], [None, None], [0.5, 0.6])
    with pytest.raises(ValueError, match="no batch_size parameter"):
        BatchStepsDisplay.from_cv_results(
            {k.replace("batch_size", "alpha"): v for k, v in good.items()})
    with pytest.raises(ValueError, match="no steps_per_epoch parameter"):
        BatchStepsDisplay.from_cv_results(
            {k.replace("steps_per_epoch", "alpha"): v for k, v in good.items()})
    with pytest.raises(ValueError, match="metric='mean_test_f1'.*mean_fit_time"):
        BatchStepsDisplay.from_cv_results(good, metric="mean_test_f1")
    with pytest.raises(NotFittedError):
        BatchStepsDisplay.from_cv_results(
            GridSearchCV(_mlp(), {"batch_size": [16], "steps_per_epoch": [None]}))
    two = {**_cv_results([8, 8], [None, None], [0.5, 0.6], prefix="a__"),
           **_cv_results([16, 32], [None, None], [0.5, 0.6], prefix="b__")}
    with pytest.raises(ValueError, match="several batch_size parameters"):
        BatchStepsDisplay.from_cv_results(two)
    display = BatchStepsDisplay.from_cv_results(two, prefix="b__")
    assert display.batch_sizes_ == [16, 32]


def test_heatmap_other_varied_parameters_need_fixed_params():
    results = _cv_results(
        batch_sizes=[16, 32, 16, 32], steps=[None, None, None, None],
        scores=[0.1, 0.2, 0.3, 0.4], prefix="mlp__",
        mlp__alpha=[1e-4, 1e-4, 1e-3, 1e-3],
        mlp__hidden_layer_sizes=[(8,)] * 4,  # the same everywhere: not varied
    )
    with pytest.raises(ValueError, match=r"mlp__alpha in \[0.0001, 0.001\].*"
                                         r"fixed_params=\{'mlp__alpha': 0.0001\}"):
        BatchStepsDisplay.from_cv_results(results)
    display = BatchStepsDisplay.from_cv_results(results,
                                                fixed_params={"alpha": 1e-3})
    np.testing.assert_array_equal(display.values_, [[0.3], [0.4]])
    display = BatchStepsDisplay.from_cv_results(
        results, fixed_params={"mlp__alpha": 1e-4, "hidden_layer_sizes": (8,)})
    np.testing.assert_array_equal(display.values_, [[0.1], [0.2]])
    with pytest.raises(ValueError, match="selects no candidate"):
        BatchStepsDisplay.from_cv_results(results, fixed_params={"alpha": 0.5})
    with pytest.raises(ValueError, match="not one of the search's parameters"):
        BatchStepsDisplay.from_cv_results(results, fixed_params={"beta": 0.5})
    with pytest.raises(ValueError, match="axis of the heatmap"):
        BatchStepsDisplay.from_cv_results(
            results, fixed_params={"alpha": 1e-3, "batch_size": 16})


@ignore_convergence
@pytest.mark.parametrize("kind", ["bare", "named_step", "make_pipeline"])
def test_heatmap_from_fitted_search(kind, iris):
    X, y = iris
    mlp = _mlp(max_iter=3)
    if kind == "bare":
        estimator, prefix = mlp, ""
    elif kind == "named_step":
        estimator, prefix = Pipeline([("scale", StandardScaler()), ("mlp", mlp)]), \
            "mlp__"
    else:
        estimator, prefix = make_pipeline(StandardScaler(), mlp), \
            "minibatchmlpclassifier__"
    grid = {prefix + "batch_size": [32, 8], prefix + "steps_per_epoch": [3, None]}
    search = GridSearchCV(estimator, grid, cv=2).fit(X, y)
    display = BatchStepsDisplay.from_cv_results(search)

    results = search.cv_results_
    assert display.batch_sizes_ == [8, 32]
    assert display.steps_per_epoch_values_ == [None, 3]
    for params, score in zip(results["params"], results["mean_test_score"]):
        row = display.batch_sizes_.index(params[prefix + "batch_size"])
        col = display.steps_per_epoch_values_.index(
            params[prefix + "steps_per_epoch"])
        assert display.values_[row, col] == score
        assert display.text_[row, col].get_text() == format(score, ".3g")
    assert display.ax_.get_title() == "MiniBatchMLPClassifier: mean_test_score"


@ignore_convergence
def test_heatmap_list_of_grids_fills_unset_values_from_the_estimator(iris):
    X, y = iris
    grid = [{"batch_size": [16, 32], "steps_per_epoch": [2]},
            {"batch_size": [16]}]  # steps_per_epoch: the estimator's None
    search = GridSearchCV(_mlp(max_iter=2), grid, cv=2).fit(X, y)
    display = BatchStepsDisplay.from_cv_results(search)
    assert display.steps_per_epoch_values_ == [None, 2]
    assert np.isnan(display.values_[1, 0])  # batch 32 with None: not searched
    assert display.values_[0, 0] == search.cv_results_["mean_test_score"][2]
    with pytest.raises(ValueError, match="do not set steps_per_epoch"):
        BatchStepsDisplay.from_cv_results(search.cv_results_)


# ------------------------------------------------------------ optional deps
def test_importing_skminibatch_does_not_import_matplotlib():
    code = ("import sys, skminibatch; "
            "assert 'matplotlib' not in sys.modules, 'matplotlib imported'")
    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    env = {**os.environ,
           "PYTHONPATH": os.pathsep.join([root, os.environ.get("PYTHONPATH", "")])}
    subprocess.run([sys.executable, "-c", code], check=True, env=env)


def test_clear_error_without_matplotlib(monkeypatch):
    monkeypatch.setitem(sys.modules, "matplotlib.pyplot", None)
    with pytest.raises(ImportError, match="LossCurveDisplay requires matplotlib"):
        LossCurveDisplay([1.0, 0.5]).plot()
    with pytest.raises(ImportError, match="BatchStepsDisplay requires matplotlib"):
        BatchStepsDisplay([[0.5]], [16], [None]).plot()
