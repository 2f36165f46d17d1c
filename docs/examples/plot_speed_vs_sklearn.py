"""
==========================================================
Training speed against scikit-learn's ``MLPClassifier``
==========================================================

:class:`~skminibatch.MiniBatchMLPClassifier` fits the same model as
:class:`sklearn.neural_network.MLPClassifier` with the same formulas, but runs
many mini-batch steps per compiled call instead of one Python round trip per
batch. That removes a fixed cost per step, which matters most for small
batches. This example times both estimators for several batch sizes and
plots the ratio.

The measurement is deliberately small so it runs during the documentation
build: the numbers below are from the build machine. The ``benchmarks/``
folder of the repository has fuller scripts.
"""

# %%
# Setup
# -----
# Both estimators get identical hyperparameters and train for exactly
# ``max_iter`` epochs of one pass each (``n_iter_no_change`` cannot fire within
# so few epochs), so both do the same number of gradient steps. Our estimator
# is fitted once before timing: the first use in a process loads the compiled
# kernels from Numba's disk cache (or compiles them on a machine's very first
# run), and that one-time cost is not what this example measures. Each time
# is the median of three fits.
#
# skminibatch limits BLAS to one thread while it trains, and shares each step
# of at least a million multiply-adds (here batch 256: 256 x 7,510 weights)
# between up to two threads of its own (see :ref:`threads-in-fit`);
# scikit-learn uses all the threads BLAS is allowed. To separate the cost of
# the Python loop from the effect of threading, scikit-learn is timed twice:
# as it runs by default, and with BLAS limited to one thread.
import statistics
import time
import warnings

import matplotlib.pyplot as plt
import numpy as np
from sklearn.base import clone
from sklearn.datasets import load_digits
from sklearn.exceptions import ConvergenceWarning
from sklearn.neural_network import MLPClassifier
from sklearn.preprocessing import StandardScaler
from threadpoolctl import threadpool_info, threadpool_limits

from skminibatch import MiniBatchMLPClassifier

X, y = load_digits(return_X_y=True)
X = StandardScaler().fit_transform(X)

params = dict(hidden_layer_sizes=(100,), max_iter=5, random_state=0)
batch_sizes = [16, 64, 256]
repeats = 3


def median_fit_seconds(estimator, X):
    times = []
    for _ in range(repeats):
        model = clone(estimator)
        start = time.perf_counter()
        model.fit(X, y)
        times.append(time.perf_counter() - start)
    return statistics.median(times)


ours, theirs, theirs_1thread = {}, {}, {}
with warnings.catch_warnings():
    # 5 epochs do not converge; both estimators would say so every fit
    warnings.simplefilter("ignore", ConvergenceWarning)
    MiniBatchMLPClassifier(**params).fit(X, y)  # warm-up, not timed
    for bs in batch_sizes:
        ours[bs] = median_fit_seconds(
            MiniBatchMLPClassifier(batch_size=bs, **params), X)
        theirs[bs] = median_fit_seconds(MLPClassifier(batch_size=bs, **params), X)
        with threadpool_limits(limits=1, user_api="blas"):
            theirs_1thread[bs] = median_fit_seconds(
                MLPClassifier(batch_size=bs, **params), X)

print(f"{'batch_size':>10} {'skminibatch s':>14} {'scikit-learn s':>15} "
      f"{'(1 BLAS thread) s':>18}")
for bs in batch_sizes:
    print(f"{bs:>10} {ours[bs]:>14.3f} {theirs[bs]:>15.3f} "
          f"{theirs_1thread[bs]:>18.3f}")

# %%
# The BLAS libraries loaded in this process, and the threads they may use by
# default:
for info in threadpool_info():
    if info.get("user_api") == "blas":
        print(info.get("internal_api"), info.get("version"),
              info.get("architecture"), f"{info.get('num_threads')} threads")

# %%
# The ratio
# ---------
# How many times longer scikit-learn's fit takes than ours, for each batch
# size.
x = np.arange(len(batch_sizes))
width = 0.38
fig, ax = plt.subplots(figsize=(7, 4))
for offset, times, label in [(-width / 2, theirs, "scikit-learn, default BLAS threads"),
                             (width / 2, theirs_1thread,
                              "scikit-learn, 1 BLAS thread")]:
    ratios = [times[bs] / ours[bs] for bs in batch_sizes]
    bars = ax.bar(x + offset, ratios, width, label=label)
    ax.bar_label(bars, labels=[f"{r:.1f}x" for r in ratios], fontsize=9)
ax.axhline(1, color="black", linewidth=1)
ax.set_xticks(x, labels=[str(bs) for bs in batch_sizes])
ax.set_xlabel("batch_size")
ax.set_ylabel("fit time / skminibatch fit time")
ax.set_title(f"digits, hidden_layer_sizes=(100,), {params['max_iter']} epochs")
ax.margins(y=0.15)
ax.legend()
fig.tight_layout()

# %%
# float32
# -------
# float32 input makes the estimator train in float32 (see :ref:`float32`):
# half the memory traffic, and twice as many values per vector instruction.
# The same fits with float32 data:
X32 = X.astype(np.float32)
with warnings.catch_warnings():
    warnings.simplefilter("ignore", ConvergenceWarning)
    MiniBatchMLPClassifier(**params).fit(X32, y)  # compiles the float32 kernels
    print(f"{'batch_size':>10} {'float64 s':>10} {'float32 s':>10}")
    for bs in batch_sizes:
        times = []
        for _ in range(repeats):
            start = time.perf_counter()
            MiniBatchMLPClassifier(batch_size=bs, **params).fit(X32, y)
            times.append(time.perf_counter() - start)
        print(f"{bs:>10} {ours[bs]:>10.3f} {statistics.median(times):>10.3f}")

# %%
# Reading the ratio
# -----------------
# Two costs set it. At small batch sizes scikit-learn spends most of its time
# on per-step overhead, a round of Python and NumPy calls for every batch,
# which the compiled loop does away with; this part of the gap shows in both
# bars. At large batch sizes most of the time goes into matrix products.
# There a multi-threaded BLAS can help scikit-learn on an idle multi-core
# machine, or slow it down a great deal on a busy one, where its threads
# compete for the same cores; the difference between the two bars shows
# which happened on the build machine. skminibatch keeps BLAS to one thread
# during a fit; its own step threads (at most two) give the same weights
# however many run, and a search runs fits in parallel through ``n_jobs``.
