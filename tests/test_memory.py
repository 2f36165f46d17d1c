"""A fit never copies X: no float64 copy of float32 input, no per-epoch copy
(numpy allocations are visible to tracemalloc)."""

import tracemalloc

import numpy as np
import pytest

from skminibatch import MiniBatchMLPClassifier


@pytest.mark.filterwarnings("ignore::sklearn.exceptions.ConvergenceWarning")
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_fit_allocates_far_less_than_a_copy_of_X(dtype):
    rng = np.random.RandomState(0)
    X = rng.standard_normal((20000, 200)).astype(dtype)
    y = (X[:, 0] > 0).astype(int)
    kw = dict(hidden_layer_sizes=(8,), batch_size=64, max_iter=3, random_state=0)
    MiniBatchMLPClassifier(**kw).fit(X[:500], y[:500])  # compile / load first
    tracemalloc.start()
    try:
        MiniBatchMLPClassifier(**kw).fit(X, y)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    # a copy of X (or a float64 copy of float32 X) would be >= X.nbytes
    assert peak < 0.25 * X.nbytes, (peak, X.nbytes)
