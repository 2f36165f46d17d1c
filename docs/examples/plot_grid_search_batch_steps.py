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
import numpy as np
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
# One row per ``batch_size``, one column per ``steps_per_epoch``.
def grid_values(search, key):
    """``cv_results_[key]`` arranged as (batch_size, steps_per_epoch)."""
    values = np.empty((len(batch_sizes), len(steps_options)))
    for params, value in zip(search.cv_results_["params"], search.cv_results_[key]):
        i = batch_sizes.index(params["mlp__batch_size"])
        j = steps_options.index(params["mlp__steps_per_epoch"])
        values[i, j] = value
    return values


fig, axes = plt.subplots(1, 2, figsize=(10, 4))
panels = [("mean_test_score", "mean CV accuracy", "{:.3f}", "viridis"),
          ("mean_fit_time", "mean fit time (s)", "{:.2f}", "magma")]
for ax, (key, title, fmt, cmap) in zip(axes, panels):
    values = grid_values(search, key)
    image = ax.imshow(values, cmap=cmap, aspect="auto")
    for i in range(values.shape[0]):
        for j in range(values.shape[1]):
            # dark text on the light end of the colour map, light text elsewhere
            light = image.norm(values[i, j]) > 0.6
            ax.text(j, i, fmt.format(values[i, j]), ha="center", va="center",
                    color="black" if light else "white")
    ax.set_xticks(range(len(steps_options)),
                  labels=["None (1 pass)" if s is None else str(s)
                          for s in steps_options])
    ax.set_yticks(range(len(batch_sizes)), labels=[str(b) for b in batch_sizes])
    ax.set_xlabel("steps_per_epoch")
    ax.set_ylabel("batch_size")
    ax.set_title(title)
    fig.colorbar(image, ax=ax)
fig.tight_layout()

# %%
# Reading the heatmaps
# --------------------
# Down the ``None`` column, larger batches mean fewer steps for the same
# number of epochs: each epoch is cheaper, but the model also learns less in
# 20 epochs. Across a row, ``steps_per_epoch`` sets the amount of training
# directly, so the cost of a fit is roughly ``max_iter x steps_per_epoch x
# batch_size`` sample visits. The best cell is the one that gets enough
# gradient steps within the budget, not simply the smallest or the largest
# batch. The :ref:`user guide <tradeoffs>` discusses these trade-offs.
