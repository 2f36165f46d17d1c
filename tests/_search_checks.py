"""Assertions shared by the search tests (tests/test_search.py,
tests/test_dask.py)."""

import numpy as np


def assert_same_search(reference, other):
    """Two fitted searches over a Pipeline with an ``mlp`` step agree: best
    parameters, candidates, mean test scores and the refitted weights."""
    assert other.best_params_ == reference.best_params_
    assert other.cv_results_["params"] == reference.cv_results_["params"]
    np.testing.assert_allclose(other.cv_results_["mean_test_score"],
                               reference.cv_results_["mean_test_score"],
                               rtol=1e-12, atol=0)
    # the refitted best model, too: same random_state, same weights
    for a, b in zip(reference.best_estimator_["mlp"].coefs_,
                    other.best_estimator_["mlp"].coefs_):
        np.testing.assert_array_equal(a, b)
