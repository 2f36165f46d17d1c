"""
=========================================================
Grid search over ``batch_size`` and ``steps_per_epoch``
=========================================================

Both training hyperparameters are ordinary constructor parameters, so a
:class:`~sklearn.model_selection.GridSearchCV` can tune them like
``alpha`` or ``hidden_layer_sizes``. This example searches a 3 x 3 grid on
the digits data (1797 8x8 images, bundled with scikit-learn) and draws two
heatmaps: cross-validated accuracy and mean fit time.
"""

# %%
# The search
# ----------
# The classifier sits behind a :class:`~sklearn.preprocessing.StandardScaler`
# in a pipeline, so its parameters are addressed with the step name,
# ``mlp__``. Every cell trains for the same ``max_iter=20`` epochs; what an
# epoch is differs from cell to cell, which is the point of the comparison.
# The budget is small, so most fits stop at ``max_iter`` and would warn about
# it; the warnings are silenced to keep the output short.
import warnings

import matplotlib.pyplot as plt
from sklearn.datasets import load_digits
from sklearn.exceptions import ConvergenceWarning
from sklearn.model_selection import GridSearchCV
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import StandardScaler

from skminibatch import MiniBatchMLPClassifier

X, y = load_digits(return_X_y=True)

pipe = Pipeline([
    ("scale", StandardScaler()),
    ("mlp", MiniBatchMLPClassifier(hidden_layer_sizes=(64,), max_iter=20,
                                   random_state=0)),
])
batch_sizes = [16, 64, 256]
steps_options = [None, 10, 40]
param_grid = {"mlp__batch_size": batch_sizes, "mlp__steps_per_epoch": steps_options}

# n_jobs=1: fits run one at a time, so the fit times below are not inflated
# by fits competing for the same cores.
search = GridSearchCV(pipe, param_grid, cv=3, n_jobs=1)
with warnings.catch_warnings():
    warnings.simplefilter("ignore", ConvergenceWarning)
    search.fit(X, y)

print("best:", search.best_params_, f"accuracy {search.best_score_:.3f}")

# %%
# How much training each cell got
# -------------------------------
# With ``steps_per_epoch=None`` an epoch is one pass, so a small batch means
# many steps per epoch: 20 epochs are 1500 gradient steps at ``batch_size=16``
# but only 100 at ``batch_size=256`` (each training fold holds 1198 samples).
# A fixed ``steps_per_epoch`` fixes the number of steps instead, and the
# number of samples seen then grows with the batch size. The refitted best
# model reports the values it resolved in ``batch_size_`` and
# ``steps_per_epoch_``.
n_train_fold = len(X) * 2 // 3  # 3-fold CV trains on two thirds


def samples_seen(n_train, batch_size, n_steps):
    """Samples drawn by ``n_steps`` steps of the stream (only the last batch
    of a pass is short, and a partial pass ends before reaching it)."""
    per_pass = -(-n_train // batch_size)
    full_passes, rest = divmod(n_steps, per_pass)
    return full_passes * n_train + rest * batch_size


print(f"{'batch_size':>10} {'steps/epoch':>12} {'steps':>6} {'passes':>7} "
      f"{'accuracy':>9} {'fit s':>6}")
res = search.cv_results_
for i, params in enumerate(res["params"]):
    bs = params["mlp__batch_size"]
    spe = params["mlp__steps_per_epoch"]
    steps = 20 * (-(-n_train_fold // bs) if spe is None else spe)
    passes = samples_seen(n_train_fold, bs, steps) / n_train_fold
    print(f"{bs:>10} {str(spe):>12} {steps:>6} {passes:>7.1f} "
          f"{res['mean_test_score'][i]:>9.3f} {res['mean_fit_time'][i]:>6.3f}")

best = search.best_estimator_[-1]
print("refitted best model:", best.batch_size_, "samples per step,",
      best.steps_per_epoch_, "steps per epoch")


# %%
# Heatmaps
# --------
# :class:`~skminibatch.BatchStepsDisplay` reads the search's ``cv_results_``,
# finds the two parameters whatever their pipeline prefix, and draws one
# metric as a heatmap: a row per ``batch_size``, a column per
# ``steps_per_epoch``.
from skminibatch import BatchStepsDisplay

fig, (ax_score, ax_time) = plt.subplots(1, 2, figsize=(11, 4))
BatchStepsDisplay.from_cv_results(search, metric="mean_test_score", ax=ax_score)
BatchStepsDisplay.from_cv_results(search, metric="mean_fit_time", ax=ax_time,
                                  cmap="magma", values_format=".2f")
ax_score.set_title("mean CV accuracy")
ax_time.set_title("mean fit time (s)")
fig.tight_layout()

# %%
# Reading the heatmaps
# --------------------
# In the ``None`` column every epoch is one pass, so every cell there
# processes the same 20 passes of samples and, with the per-step overhead
# compiled away, takes about the same time; but larger batches turn those
# passes into far fewer steps, and the model learns less. In the fixed
# columns ``steps_per_epoch`` sets the number of steps directly, and the
# cost of a fit grows with ``max_iter x steps_per_epoch x batch_size``, the
# number of samples processed. No single batch size wins everywhere: what
# matters is enough gradient steps, each seeing enough samples, within the
# budget. The :ref:`user guide <tradeoffs>` discusses these trade-offs.
