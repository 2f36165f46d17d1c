"""scikit-learn's estimator checks on both estimators, with no expected
failures.

The checks fit with default hyperparameters on tiny data, where 200 epochs
often end without meeting ``tol``; that ConvergenceWarning is not what these
checks test, so it is ignored here (and only here).
"""

import pytest
from sklearn.utils.estimator_checks import parametrize_with_checks

from skminibatch import MiniBatchMLPClassifier, MiniBatchMLPRegressor


@pytest.mark.filterwarnings("ignore::sklearn.exceptions.ConvergenceWarning")
@parametrize_with_checks([MiniBatchMLPClassifier(), MiniBatchMLPRegressor()])
def test_sklearn_compatible_estimator(estimator, check):
    check(estimator)
