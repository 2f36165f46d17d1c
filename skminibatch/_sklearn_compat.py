"""Every scikit-learn import of the package goes through this module, so the
private helpers we rely on are listed in one place. Supported and tested:
scikit-learn 1.6 to 1.9 (``validate_data`` and ``__sklearn_tags__`` appeared
in 1.6)."""

from sklearn.base import (  # noqa: F401
    BaseEstimator,
    ClassifierMixin,
    RegressorMixin,
    _fit_context,  # private: parameter validation + nested-validation skip
    is_classifier,
)
from sklearn.exceptions import ConvergenceWarning, NotFittedError  # noqa: F401
from sklearn.metrics import accuracy_score, r2_score  # noqa: F401
from sklearn.model_selection import train_test_split  # noqa: F401
from sklearn.preprocessing import LabelBinarizer  # noqa: F401
from sklearn.utils import check_random_state  # noqa: F401
from sklearn.utils.class_weight import compute_class_weight  # noqa: F401
from sklearn.utils._param_validation import (  # noqa: F401  private
    Interval,
    Options,
    StrOptions,
)
from sklearn.utils.metaestimators import available_if  # noqa: F401
from sklearn.utils.multiclass import (  # noqa: F401
    check_classification_targets,
    type_of_target,
    unique_labels,
)
from sklearn.utils.validation import (  # noqa: F401
    assert_all_finite,
    check_array,
    check_is_fitted,
    column_or_1d,
    validate_data,
)

try:  # scikit-learn >= 1.9: the callback API (set_callbacks, ProgressBar, ...)
    from sklearn.callback import CallbackSupportMixin, with_callbacks
except ImportError:  # older: the estimators simply have no set_callbacks

    class CallbackSupportMixin:
        """Stand-in for scikit-learn < 1.9 (no callback API)."""

    def with_callbacks(method):
        """Stand-in for scikit-learn < 1.9: the method unchanged."""
        return method
