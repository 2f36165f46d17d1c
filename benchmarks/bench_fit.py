"""Seconds per epoch of skminibatch vs scikit-learn's MLP, warm, per batch size.

Measures, in one process and alternating between the two libraries, the
median over ``--repeats`` fits of ``fit`` time divided by epochs run, on
generated data (``make_classification``, fixed seed), adam, no early
stopping, ``tol=0`` so every fit runs ``--epochs`` epochs. Compilation is
excluded by one warm-up fit per configuration. Prints a table with the
sklearn/ours ratio and which BLAS kernel ran (threadpoolctl).

Run: ``python benchmarks/bench_fit.py [--samples 20000] [--epochs 3]``.
The full suite against PyTorch lives in a later issue.
"""

import argparse
import time
import warnings

import numpy as np
from sklearn.datasets import make_classification
from sklearn.exceptions import ConvergenceWarning
from sklearn.neural_network import MLPClassifier

from skminibatch import MiniBatchMLPClassifier


def _blas_description():
    try:
        from threadpoolctl import threadpool_info
    except ImportError:
        return "unknown (threadpoolctl not installed)"
    parts = [
        f"{i.get('internal_api')} {i.get('version')} {i.get('architecture')} "
        f"threads={i.get('num_threads')}"
        for i in threadpool_info()
        if i.get("user_api") == "blas"
    ]
    return "; ".join(parts) or "none found"


def _time_fit(make, X, y, repeats):
    times = []
    for _ in range(repeats):
        est = make()
        t0 = time.perf_counter()
        est.fit(X, y)
        times.append((time.perf_counter() - t0) / est.n_iter_)
    return times


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--samples", type=int, default=20000)
    parser.add_argument("--features", type=int, default=100)
    parser.add_argument("--hidden", type=int, nargs="+", default=[100])
    parser.add_argument("--epochs", type=int, default=3)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--batch-sizes", type=int, nargs="+",
                        default=[16, 64, 256, 1024])
    parser.add_argument("--dtype", choices=["float64", "float32"], default="float64")
    args = parser.parse_args(argv)

    X, y = make_classification(n_samples=args.samples, n_features=args.features,
                               n_informative=args.features // 2, random_state=0)
    X = X.astype(args.dtype)
    print(f"BLAS: {_blas_description()}")
    print(f"data: {X.shape} {X.dtype}, hidden={tuple(args.hidden)}, "
          f"epochs={args.epochs}, repeats={args.repeats}")
    print(f"{'batch':>6} {'ours s/epoch':>13} {'sklearn s/epoch':>16} {'ratio':>7}")
    common = dict(hidden_layer_sizes=tuple(args.hidden), max_iter=args.epochs,
                  tol=0.0, n_iter_no_change=args.epochs + 1, random_state=0)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        for bs in args.batch_sizes:
            ours = lambda: MiniBatchMLPClassifier(batch_size=bs, **common)  # noqa: E731
            theirs = lambda: MLPClassifier(batch_size=bs, **common)  # noqa: E731
            _time_fit(ours, X[:2048], y[:2048], 1)  # compile / load cache
            t_ours, t_sk = [], []
            for _ in range(args.repeats):  # alternate: shared noisy machine
                t_ours += _time_fit(ours, X, y, 1)
                t_sk += _time_fit(theirs, X, y, 1)
            a, b = np.median(t_ours), np.median(t_sk)
            print(f"{bs:>6} {a:>13.4f} {b:>16.4f} {b / a:>6.1f}x")


if __name__ == "__main__":
    main()
