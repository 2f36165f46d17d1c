"""What the installed scikit-learn's own MLP can be compared with.

The package supports scikit-learn 1.6 to 1.9 (CI runs the suite on 1.9 and
on 1.6). scikit-learn's MLP gained ``sample_weight`` and
``MLPRegressor(loss='poisson')`` in 1.7, so parity tests on those features
have nothing to compare with on 1.6.
"""

import pytest
import sklearn
from sklearn.utils.fixes import parse_version

SKLEARN_MLP_17 = parse_version(sklearn.__version__) >= parse_version("1.7")

needs_sklearn_mlp_17 = pytest.mark.skipif(
    not SKLEARN_MLP_17,
    reason="scikit-learn < 1.7's MLP has no sample_weight / loss parameter to "
    "compare with",
)

# scikit-learn < 1.7 passes `iprint` to SciPy's L-BFGS-B, which SciPy >= 1.15
# deprecates; that warning comes from the reference model, not from us
ignore_old_sklearn_lbfgs_warning = pytest.mark.filterwarnings(
    "ignore:scipy.optimize. The `disp` and `iprint`:DeprecationWarning"
)


def skip_without_sklearn_mlp_17(what):
    if not SKLEARN_MLP_17:
        pytest.skip(f"scikit-learn < 1.7's MLP has no {what} to compare with")
