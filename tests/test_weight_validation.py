"""Per-sample weights built from ``class_weight`` (and zero-weight
mini-batches) get the same clear errors as bad ``sample_weight`` does
(DESIGN §5: a clear exception naming the problem, never a silent wrong
answer or a misleading message).

These tests reproduce bugs found while testing issue 3 (they fail on the
code they were written against; see the issue 3 report).
"""

import re

import numpy as np
import pytest

from skminibatch import MiniBatchMLPClassifier


def data():
    rng = np.random.RandomState(0)
    X = rng.standard_normal((40, 3))
    return X, (X[:, 0] > 0).astype(int)


def small(**params):
    return MiniBatchMLPClassifier(hidden_layer_sizes=(3,), max_iter=3,
                                  random_state=0, **params)


def test_negative_sample_weight_is_rejected():  # the reference behaviour
    X, y = data()
    with pytest.raises(ValueError, match="Negative values"):
        small().fit(X, y, sample_weight=np.where(y == 0, -1.0, 1.0))


@pytest.mark.filterwarnings("ignore::sklearn.exceptions.ConvergenceWarning")
def test_negative_class_weight_is_rejected():
    """class_weight={0: -1.0} trains with negative loss weights (sklearn's
    MLP loss is then unbounded below) where the same weights passed as
    sample_weight are rejected."""
    X, y = data()
    with pytest.raises(ValueError, match="class_weight"):
        small(class_weight={0: -1.0, 1: 1.0}).fit(X, y)


@pytest.mark.parametrize("bad", [np.nan, np.inf])
def test_non_finite_class_weight_is_rejected(bad):
    """Today: 'Solver produced non-finite parameter weights ... a smaller
    learning_rate_init may help' -- the wrong diagnosis."""
    X, y = data()
    with pytest.raises(ValueError, match="class_weight"):
        small(class_weight={0: bad, 1: 1.0}).fit(X, y)


def test_all_zero_class_weights_are_rejected():
    """sample_weight of all zeros is rejected ('must have a positive sum');
    class weights making every sample weight zero end in the misleading
    non-finite-weights error."""
    X, y = data()
    with pytest.raises(ValueError, match="class_weight"):
        small(class_weight={0: 0.0, 1: 0.0}).fit(X, y)


@pytest.mark.filterwarnings("ignore::sklearn.exceptions.ConvergenceWarning")
@pytest.mark.parametrize("how", ["sample_weight", "class_weight"])
def test_minibatch_with_zero_total_weight(how):
    """With shuffle=False and batch_size=10, the first two batches hold only
    zero-weight samples. The batch gradient is divided by the batch's weight
    sum (0), the weights become NaN, and fit raises 'the input data may
    contain large values ... a smaller learning_rate_init may help'. Either
    such a batch makes no update (its loss and gradient are zero), or the
    error says that a mini-batch had zero total sample weight."""
    X, y = data()
    order = np.argsort(y, kind="stable")  # all class-0 samples first
    X, y = X[order], y[order]
    kwargs = dict(batch_size=10, shuffle=False)
    if how == "sample_weight":
        est = small(**kwargs)
        fit_kwargs = {"sample_weight": (y == 1).astype(float)}
    else:
        est = small(class_weight={0: 0.0, 1: 1.0}, **kwargs)
        fit_kwargs = {}
    try:
        est.fit(X, y, **fit_kwargs)
    except ValueError as exc:
        message = str(exc)
        assert re.search("weight sum|total (sample )?weight|zero weight",
                         message), message
        assert "learning_rate_init" not in message, message
    else:
        assert all(np.isfinite(w).all() for w in est.coefs_ + est.intercepts_)
        assert np.all(np.isfinite(est.loss_curve_))
