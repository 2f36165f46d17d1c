"""
===========================================================
Loss and validation curves with early stopping
===========================================================

With ``early_stopping=True`` the estimators hold out ``validation_fraction``
of the training data and evaluate it after every epoch. Three fitted
attributes record the run, one entry per epoch:

* ``loss_curve_``: the training loss (L2 term included), averaged over the
  epoch's batches;
* ``validation_scores_``: accuracy (classifier) or R² (regressor) on the
  held-out part;
* ``validation_loss_curve_``: the training loss's formula evaluated on the
  held-out part (scikit-learn's MLP has no such attribute).

This example plots them, then shows how ``steps_per_epoch`` changes how often
the held-out part is checked and what that does to early stopping.
"""

# %%
# Data
# ----

import matplotlib.pyplot as plt
import numpy as np
from sklearn.datasets import load_digits
from sklearn.model_selection import train_test_split
from sklearn.preprocessing import StandardScaler

from skminibatch import MiniBatchMLPClassifier

X, y = load_digits(return_X_y=True)
X_train, X_test, y_train, y_test = train_test_split(X, y, stratify=y,
                                                    random_state=0)
scaler = StandardScaler().fit(X_train)
X_train, X_test = scaler.transform(X_train), scaler.transform(X_test)

# %%
# One pass per epoch
# ------------------
# The default ``steps_per_epoch=None`` makes every epoch one pass over the
# training part, as in scikit-learn. Training stops once the validation score
# has not improved by ``tol`` for ``n_iter_no_change`` epochs, and the model
# keeps the weights of its best epoch.
common = dict(hidden_layer_sizes=(64,), batch_size=32, early_stopping=True,
              max_iter=300, random_state=0)
per_pass = MiniBatchMLPClassifier(n_iter_no_change=5, **common)
per_pass.fit(X_train, y_train)

best_epoch = int(np.argmax(per_pass.validation_scores_)) + 1
print(f"{per_pass.steps_per_epoch_} steps per epoch, stopped after "
      f"{per_pass.n_iter_} epochs, best epoch {best_epoch}, "
      f"test accuracy {per_pass.score(X_test, y_test):.3f}")

# %%
# :class:`~skminibatch.LossCurveDisplay` draws the three records of a fit:
# the two losses on the left axis, the validation score on its own axis on
# the right.
from skminibatch import LossCurveDisplay

fig, ax = plt.subplots(figsize=(7, 4))
display = LossCurveDisplay.from_estimator(
    per_pass, ax=ax, name="steps_per_epoch=None (one pass per epoch)")
ax.set_yscale("log")
display.score_ax_.axvline(best_epoch, color="tab:green", linestyle=":")
fig.tight_layout()

# %%
# The dotted line marks the epoch whose weights the model kept. The
# validation loss may keep falling after the accuracy has levelled off:
# early stopping watches the score, not the loss.
#
# Shorter epochs
# --------------
# With ``steps_per_epoch=10`` an epoch is about a quarter of a pass, so the
# held-out part is checked four times as often. But ``n_iter_no_change``
# counts epochs, so the same value of 5 now means patience for only 50
# gradient steps instead of about 190, and training may give up early. Scaling
# the patience with the epoch length (19 epochs of 10 steps) restores it.
# Here the x axis is the number of gradient steps, which is comparable across
# the three runs because they share a batch size.
runs = {
    "None, n_iter_no_change=5": per_pass,
    "10, n_iter_no_change=5": MiniBatchMLPClassifier(
        steps_per_epoch=10, n_iter_no_change=5, **common).fit(X_train, y_train),
    "10, n_iter_no_change=19": MiniBatchMLPClassifier(
        steps_per_epoch=10, n_iter_no_change=19, **common).fit(X_train, y_train),
}

fig, ax = plt.subplots(figsize=(7, 4))
for (label, est), color in zip(runs.items(), ["tab:blue", "tab:red", "tab:purple"]):
    steps = est.steps_per_epoch_ * np.arange(1, est.n_iter_ + 1)
    best = int(np.argmax(est.validation_scores_))
    ax.plot(steps, est.validation_scores_, color=color, alpha=0.8,
            label=f"steps_per_epoch={label}")
    ax.plot(steps[best], est.validation_scores_[best], "*", color=color,
            markersize=14)
    print(f"steps_per_epoch={label}: {est.n_iter_} epochs, best after "
          f"{steps[best]} steps, test accuracy {est.score(X_test, y_test):.3f}")
ax.set_xlabel("gradient steps")
ax.set_ylabel("validation accuracy")
ax.set_ylim(0.8, 1.0)
ax.legend(loc="lower right")
ax.set_title("Validation checks per epoch (stars: the weights kept)")
fig.tight_layout()

# %%
# The two runs with 10-step epochs coincide until the impatient one stops:
# they draw the same batches and take the same steps, and only the stopping
# rule differs.
#
# Frequent checks pay off on large data, where one pass is long and a model
# may be at its best well before the pass ends. Keep the patience measured in
# data in mind: when you shorten epochs, raise ``n_iter_no_change`` (and keep
# in mind that ``tol`` is an improvement per epoch, so a shorter epoch has
# less time to improve by it).
