"""
===========================================
How epochs cut the stream of mini-batches
===========================================

``batch_size`` decides how many samples a gradient step sees;
``steps_per_epoch`` decides how many of those steps form an epoch. This
example draws the stream of batches a fit consumes and marks where the epochs
end for three values of ``steps_per_epoch``. It then checks the property that
makes ``steps_per_epoch`` safe to tune: it moves epoch boundaries, never the
batches themselves.
"""

# %%
# The stream
# ----------
# Take 100 training samples and ``batch_size=32``. A pass over the samples is
# cut into ``ceil(100 / 32) = 4`` batches: three of 32 samples and a last one
# holding the remaining 4. With ``shuffle=True`` every pass uses a new random
# order. Passes follow each other without a gap, and that sequence is the
# stream training draws from.
#
# An epoch is simply the next ``steps_per_epoch`` batches of the stream. With
# the default ``steps_per_epoch=None`` that is one whole pass (4 batches here),
# as in scikit-learn. Any other value can end an epoch in the middle of a pass;
# the next epoch then starts with the batch that comes next.
import math

import matplotlib.pyplot as plt
import numpy as np

n_train, batch_size, n_passes = 100, 32, 3
per_pass = math.ceil(n_train / batch_size)
lengths = [min(batch_size, n_train - k * batch_size) for k in range(per_pass)]
stream = [(p, k, length) for p in range(n_passes) for k, length in enumerate(lengths)]

settings = [None, 3, 6]
fig, axes = plt.subplots(len(settings), 1, figsize=(9, 4.6), sharex=True)
pass_colors = ["tab:blue", "tab:orange", "tab:green"]
for ax, steps in zip(axes, settings):
    steps_resolved = per_pass if steps is None else steps
    start = 0
    for i, (p, k, length) in enumerate(stream):
        ax.barh(0, length, left=start, height=0.6, color=pass_colors[p],
                edgecolor="white")
        ax.text(start + length / 2, 0, str(i + 1), ha="center", va="center",
                fontsize=8, color="white")
        start += length
        if (i + 1) % steps_resolved == 0:
            ax.axvline(start, color="black", linewidth=2)
            ax.text(start - 2, 0.42, f"end of epoch {(i + 1) // steps_resolved}",
                    ha="right", va="bottom", fontsize=8)
    ax.set_yticks([])
    ax.set_ylim(-0.5, 0.8)
    ax.set_title(f"steps_per_epoch={steps}", loc="left", fontsize=10)
axes[-1].set_xlabel("training samples drawn (colour: pass over the data; "
                    "number: gradient step)")
fig.suptitle(f"{n_train} samples, batch_size={batch_size}")
fig.tight_layout()

# %%
# Same batches, different epochs
# -------------------------------
# Because the stream never restarts at an epoch boundary, two fits that take
# the same total number of steps draw exactly the same batches. With a
# constant learning rate and no stopping rule firing, nothing else depends on
# where epochs end, so 4 epochs of 10 steps and 8 epochs of 5 steps must give
# bit-identical weights. Only the per-epoch records differ.
import warnings

from sklearn.datasets import make_classification
from sklearn.exceptions import ConvergenceWarning

from skminibatch import MiniBatchMLPClassifier

X, y = make_classification(n_samples=300, n_features=10, random_state=0)
common = dict(hidden_layer_sizes=(16,), batch_size=32, random_state=0)
with warnings.catch_warnings():
    # max_iter is far too small to converge; that is the point here
    warnings.simplefilter("ignore", ConvergenceWarning)
    four_by_ten = MiniBatchMLPClassifier(max_iter=4, steps_per_epoch=10,
                                         **common).fit(X, y)
    eight_by_five = MiniBatchMLPClassifier(max_iter=8, steps_per_epoch=5,
                                           **common).fit(X, y)

identical = all(
    np.array_equal(a, b)
    for a, b in zip(four_by_ten.coefs_ + four_by_ten.intercepts_,
                    eight_by_five.coefs_ + eight_by_five.intercepts_)
)
print("weights bit-identical:", identical)
print("samples seen:", four_by_ten.t_, "and", eight_by_five.t_)
print("epochs recorded:", len(four_by_ten.loss_curve_), "and",
      len(eight_by_five.loss_curve_))

# %%
# What does change is everything that happens at an epoch boundary: an entry
# of ``loss_curve_``, the ``tol`` / ``n_iter_no_change`` test, an
# early-stopping check, a step of the ``'adaptive'`` or ``'invscaling'``
# learning-rate schedule, and one unit of ``max_iter`` and ``n_iter_``. See
# :ref:`batch_stream` in the user guide.
