"""skminibatch: scikit-learn MLPs with Numba-compiled mini-batch training.

Importing the package compiles nothing; kernels compile (and cache to disk)
on first use.
"""

from ._display import BatchStepsDisplay, LossCurveDisplay
from ._mlp import MiniBatchMLPClassifier, MiniBatchMLPRegressor

__version__ = "0.1.0"
__all__ = [
    "BatchStepsDisplay",
    "LossCurveDisplay",
    "MiniBatchMLPClassifier",
    "MiniBatchMLPRegressor",
    "__version__",
]
