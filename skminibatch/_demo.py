"""The ``python -m skminibatch demo`` command: tune ``batch_size`` and
``steps_per_epoch`` with a grid search, then time the winner against
scikit-learn's own MLP.

Everything runs on scikit-learn's bundled digits data (1797 8x8 images, ten
classes), so nothing is downloaded. The pieces are small functions so tests
can run them on a reduced grid: :func:`run_search` (the grid search and its
table), :func:`compare_with_sklearn` (the timing) and :func:`run_demo`
(the whole story, as the command prints it).
"""

import argparse
import os
import platform
import statistics
import sys
import time
import warnings

import numpy as np
import scipy
import sklearn
from sklearn.base import clone
from sklearn.datasets import load_digits
from sklearn.exceptions import ConvergenceWarning
from sklearn.model_selection import GridSearchCV, train_test_split
from sklearn.neural_network import MLPClassifier
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import StandardScaler

from ._mlp import MiniBatchMLPClassifier

#: The grid the command searches: 3 batch sizes x 3 epoch lengths.
DEFAULT_GRID = {
    "mlp__batch_size": (16, 64, 256),
    "mlp__steps_per_epoch": (None, 10, 40),
}

#: Hyperparameters shared by every cell of the grid (and by the scikit-learn
#: MLP it is timed against). ``max_iter`` is small so the whole demo stays
#: well under a minute on two cores; most cells stop at it, which is why the
#: demo silences ConvergenceWarning.
DEFAULT_MLP_PARAMS = {"hidden_layer_sizes": (100,), "max_iter": 30, "random_state": 0}

TABLE_HEADERS = ("batch_size", "steps_per_epoch", "mean CV accuracy",
                 "mean fit time (s)")


def _print(out, *lines):
    for line in lines:
        print(line, file=out)


def blas_description():
    """Describe the BLAS libraries loaded in this process.

    Returns
    -------
    description : str or None
        One entry per distinct BLAS library (implementation, version, CPU
        kernel, threads, and the package that ships it), or None when
        threadpoolctl is not installed. ``OPENBLAS_CORETYPE`` is appended
        when set, because it overrides the CPU kernel OpenBLAS picks.
    """
    try:
        from threadpoolctl import threadpool_info
    except ImportError:
        return None
    entries = []
    for info in threadpool_info():
        if info.get("user_api") != "blas":
            continue
        # ".../site-packages/numpy.libs/libscipy_openblas64_...so" -> "numpy"
        shipped_by = os.path.basename(os.path.dirname(info.get("filepath", "")))
        shipped_by = shipped_by.removesuffix(".libs")
        entry = (
            f"{info.get('internal_api')} {info.get('version')} "
            f"{info.get('architecture')} x{info.get('num_threads')} ({shipped_by})"
        )
        if entry not in entries:
            entries.append(entry)
    # threadpoolctl's order varies between runs; sort for a stable header
    text = ", ".join(sorted(entries)) if entries else "none found"
    coretype = os.environ.get("OPENBLAS_CORETYPE")
    if coretype:
        text += f"; OPENBLAS_CORETYPE={coretype}"
    return text


def environment_line():
    """One header line: Python, library versions and BLAS.

    Returns
    -------
    line : str
        ``"skminibatch X | Python X | numpy X | ... | BLAS: ..."``; the BLAS
        part is left out when threadpoolctl is not installed.
    """
    import numba

    from . import __version__

    parts = [
        f"skminibatch {__version__}",
        f"Python {platform.python_version()}",
        f"numpy {np.__version__}",
        f"scipy {scipy.__version__}",
        f"scikit-learn {sklearn.__version__}",
        f"numba {numba.__version__}",
    ]
    blas = blas_description()
    if blas is not None:
        parts.append(f"BLAS: {blas}")
    return " | ".join(parts)


def format_table(headers, rows):
    """Render rows as a plain-text table with right-aligned columns.

    Parameters
    ----------
    headers : sequence of str
        Column titles.
    rows : sequence of sequence
        One sequence per row, as many cells as ``headers``; each cell is
        rendered with ``str``.

    Returns
    -------
    table : str
        Header line, a rule of dashes, then one line per row.

    Examples
    --------
    >>> print(format_table(["a", "bb"], [[1, "x"], [22, "yyy"]]))
     a   bb
    --  ---
     1    x
    22  yyy
    """
    cells = [[str(c) for c in row] for row in rows]
    widths = [len(h) for h in headers]
    for row in cells:
        widths = [max(w, len(c)) for w, c in zip(widths, row)]
    lines = [
        "  ".join(h.rjust(w) for h, w in zip(headers, widths)),
        "  ".join("-" * w for w in widths),
    ]
    lines += ["  ".join(c.rjust(w) for c, w in zip(row, widths)) for row in cells]
    return "\n".join(lines)


def make_pipeline(mlp_params=None):
    """A scaler followed by a :class:`MiniBatchMLPClassifier` named ``"mlp"``.

    Parameters
    ----------
    mlp_params : dict, default=None
        Keyword arguments for the classifier; None uses
        :data:`DEFAULT_MLP_PARAMS`.

    Returns
    -------
    pipeline : sklearn.pipeline.Pipeline
        Unfitted ``Pipeline([("scale", StandardScaler()), ("mlp", ...)])``.
    """
    params = DEFAULT_MLP_PARAMS if mlp_params is None else mlp_params
    return Pipeline([
        ("scale", StandardScaler()),
        ("mlp", MiniBatchMLPClassifier(**params)),
    ])


def run_search(X, y, param_grid, *, mlp_params=None, cv=3, n_jobs=1, out=None):
    """Grid-search the pipeline and print one table row per grid cell.

    ConvergenceWarning is silenced for the duration of the search (in the
    joblib workers too on scikit-learn >= 1.7, which passes warning filters
    on to them): with a small ``max_iter`` most cells stop at it, and the
    table, not the warnings, is the point.

    Parameters
    ----------
    X : array-like of shape (n_samples, n_features)
        Training data.
    y : array-like of shape (n_samples,)
        Class labels.
    param_grid : dict
        Grid over ``mlp__batch_size`` and ``mlp__steps_per_epoch`` (other
        ``mlp__`` or ``scale__`` keys are passed through, but the table only
        shows those two).
    mlp_params : dict, default=None
        Fixed classifier hyperparameters; None uses
        :data:`DEFAULT_MLP_PARAMS`.
    cv : int or cross-validation generator, default=3
        As :class:`~sklearn.model_selection.GridSearchCV`'s ``cv`` (an int
        means stratified folds for a classifier).
    n_jobs : int, default=1
        Parallel fits (joblib; processes by default).
    out : file-like, default=None
        Where to print; None means ``sys.stdout``.

    Returns
    -------
    search : sklearn.model_selection.GridSearchCV
        The fitted search, refitted on all of ``X``.
    """
    out = sys.stdout if out is None else out
    search = GridSearchCV(make_pipeline(mlp_params), param_grid, cv=cv,
                          n_jobs=n_jobs, scoring="accuracy")
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", category=ConvergenceWarning)
        search.fit(X, y)

    res = search.cv_results_
    best = search.best_index_
    rows = []
    for i, params in enumerate(res["params"]):
        rows.append([
            params.get("mlp__batch_size", "-"),
            params.get("mlp__steps_per_epoch", "-"),
            f"{res['mean_test_score'][i]:.4f}",
            f"{res['mean_fit_time'][i]:.3f}",
            "<- best" if i == best else "",
        ])
    _print(out, format_table((*TABLE_HEADERS, ""), rows))
    return search


def time_fit(estimator, X, y, repeats=3):
    """Median wall-clock time of fitting a fresh clone of ``estimator``.

    ConvergenceWarning is silenced during the fits.

    Parameters
    ----------
    estimator : estimator
        Cloned before every fit, so each timing starts from scratch.
    X, y : array-like
        Training data.
    repeats : int, default=3
        Number of timed fits.

    Returns
    -------
    seconds : float
        Median of the ``repeats`` fit times.
    fitted : estimator
        The last fitted clone.
    """
    times = []
    for _ in range(repeats):
        fitted = clone(estimator)
        with warnings.catch_warnings():
            warnings.filterwarnings("ignore", category=ConvergenceWarning)
            start = time.perf_counter()
            fitted.fit(X, y)
            times.append(time.perf_counter() - start)
    return statistics.median(times), fitted


def sklearn_twin(pipeline):
    """The same pipeline with scikit-learn's :class:`MLPClassifier`.

    Parameters
    ----------
    pipeline : sklearn.pipeline.Pipeline
        A pipeline from :func:`make_pipeline` (step ``"mlp"``).

    Returns
    -------
    twin : sklearn.pipeline.Pipeline
        Unfitted; every classifier hyperparameter copied except those
        scikit-learn's MLP does not have, such as ``steps_per_epoch`` (its
        epochs are always one pass).

    Raises
    ------
    ValueError
        If a hyperparameter scikit-learn's MLP lacks, other than
        ``steps_per_epoch``, is set away from its default: the twin would
        not train the same model.
    """
    params = pipeline.named_steps["mlp"].get_params()
    theirs = MLPClassifier().get_params()
    defaults = MiniBatchMLPClassifier().get_params()
    for name in sorted(set(params) - set(theirs)):
        value = params.pop(name)
        if name != "steps_per_epoch" and value != defaults[name]:
            raise ValueError(
                f"{name}={value!r} has no counterpart in scikit-learn's "
                "MLPClassifier; leave it at its default to compare."
            )
    return Pipeline([
        ("scale", clone(pipeline.named_steps["scale"])),
        ("mlp", MLPClassifier(**params)),
    ])


def compare_with_sklearn(pipeline, X, y, repeats=3, out=None):
    """Time ``pipeline`` and its scikit-learn twin and print both.

    Parameters
    ----------
    pipeline : sklearn.pipeline.Pipeline
        A pipeline from :func:`make_pipeline`, fitted or not (it is cloned).
    X, y : array-like
        Training data.
    repeats : int, default=3
        Fits per estimator; the median time is reported.
    out : file-like, default=None
        Where to print; None means ``sys.stdout``.

    Returns
    -------
    times : dict
        ``{"skminibatch": seconds, "sklearn": seconds}``.
    """
    out = sys.stdout if out is None else out
    ours_s, ours = time_fit(pipeline, X, y, repeats)
    theirs_s, theirs = time_fit(sklearn_twin(pipeline), X, y, repeats)
    ours_mlp, their_mlp = ours.named_steps["mlp"], theirs.named_steps["mlp"]
    rows = [
        ["skminibatch MiniBatchMLPClassifier", f"{ours_s:.3f}", ours_mlp.n_iter_,
         ours_mlp.t_],
        ["scikit-learn MLPClassifier", f"{theirs_s:.3f}", their_mlp.n_iter_,
         their_mlp.t_],
    ]
    _print(
        out,
        f"Fit time of the best pipeline on {len(y)} samples, median of {repeats}:",
        format_table(("estimator", "fit time (s)", "n_iter_", "samples seen (t_)"),
                     rows),
        f"ratio scikit-learn / skminibatch: {theirs_s / ours_s:.1f}x",
    )
    if ours_mlp.t_ != their_mlp.t_:
        # steps_per_epoch (or a stopping rule) made the two fits do different
        # amounts of work; the per-sample ratio is the like-for-like number.
        per_sample = (theirs_s / their_mlp.t_) / (ours_s / ours_mlp.t_)
        _print(out, "the fits saw different numbers of samples; time per sample "
                    f"seen, scikit-learn / skminibatch: {per_sample:.1f}x")
    return {"skminibatch": ours_s, "sklearn": theirs_s}


def warm_up_kernels(X, y, mlp_params=None):
    """Fit and score a one-epoch pipeline on a few samples.

    The first fit in a process loads the compiled kernels from Numba's cache
    (or compiles them into it); doing that here keeps it out of the first
    grid cell's fit time.

    Parameters
    ----------
    X, y : array-like
        Data; only the first 100 samples are used.
    mlp_params : dict, default=None
        As in :func:`make_pipeline`; ``max_iter`` is replaced by 1.

    Returns
    -------
    seconds : float
        How long the warm-up took.
    """
    params = dict(DEFAULT_MLP_PARAMS if mlp_params is None else mlp_params,
                  max_iter=1)
    start = time.perf_counter()
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", category=ConvergenceWarning)
        make_pipeline(params).fit(X[:100], y[:100]).score(X[:100], y[:100])
    return time.perf_counter() - start


def run_demo(n_jobs=1, param_grid=None, mlp_params=None, repeats=3, out=None):
    """The whole demo, as ``python -m skminibatch demo`` prints it.

    Parameters
    ----------
    n_jobs : int, default=1
        Parallel fits in the grid search.
    param_grid : dict, default=None
        None uses :data:`DEFAULT_GRID`.
    mlp_params : dict, default=None
        None uses :data:`DEFAULT_MLP_PARAMS`.
    repeats : int, default=3
        Timed fits per estimator in the comparison.
    out : file-like, default=None
        Where to print; None means ``sys.stdout``.

    Returns
    -------
    search : sklearn.model_selection.GridSearchCV
        The fitted search.
    """
    out = sys.stdout if out is None else out
    start = time.perf_counter()
    grid = DEFAULT_GRID if param_grid is None else param_grid
    params = DEFAULT_MLP_PARAMS if mlp_params is None else mlp_params
    cache = os.environ.get("NUMBA_CACHE_DIR") or "Numba's default (__pycache__)"
    _print(
        out,
        environment_line(),
        f"Numba cache: {cache}. A cold cache compiles the kernels first "
        "(tens of seconds); later runs load them.",
        "",
    )

    X, y = load_digits(return_X_y=True)
    X_train, X_test, y_train, y_test = train_test_split(
        X, y, test_size=0.25, stratify=y, random_state=0)
    warm_up = warm_up_kernels(X_train, y_train, params)
    _print(out, f"Warm-up fit (loads or compiles the kernels): {warm_up:.1f} s",
           "")
    fixed = ", ".join(f"{k}={v!r}" for k, v in params.items())
    _print(
        out,
        f"Digits: {len(y_train)} training / {len(y_test)} test samples "
        "(stratified 75/25 split).",
        f"GridSearchCV(cv=3, n_jobs={n_jobs}) over Pipeline(StandardScaler, "
        f"MiniBatchMLPClassifier({fixed}))",
        "ConvergenceWarning is silenced during the grid search and the timing: "
        f"with max_iter={params.get('max_iter', 200)} most fits stop there.",
        "",
    )
    search = run_search(X_train, y_train, grid, mlp_params=params, cv=3,
                        n_jobs=n_jobs, out=out)
    best = search.best_params_
    _print(
        out,
        "",
        f"Best cell: batch_size={best.get('mlp__batch_size')}, "
        f"steps_per_epoch={best.get('mlp__steps_per_epoch')} "
        f"(mean CV accuracy {search.best_score_:.4f})",
        f"Held-out test accuracy of the refitted best pipeline: "
        f"{search.score(X_test, y_test):.4f}",
        "",
    )
    compare_with_sklearn(search.best_estimator_, X_train, y_train, repeats, out)
    _print(out, "", f"Demo finished in {time.perf_counter() - start:.1f} s.")
    return search


def build_parser():
    """The command-line parser: ``python -m skminibatch demo [--n-jobs N]``.

    Returns
    -------
    parser : argparse.ArgumentParser
    """
    parser = argparse.ArgumentParser(
        prog="python -m skminibatch",
        description="skminibatch command-line tools.",
    )
    commands = parser.add_subparsers(dest="command", metavar="COMMAND")
    commands.required = True
    demo = commands.add_parser(
        "demo",
        help="tune batch_size x steps_per_epoch on the digits data and time "
             "the best pipeline against scikit-learn's MLPClassifier",
        description="Grid-search batch_size in (16, 64, 256) x steps_per_epoch "
                    "in (None, 10, 40) for a StandardScaler + "
                    "MiniBatchMLPClassifier pipeline on scikit-learn's bundled "
                    "digits data (3-fold CV on a stratified 75/25 split), "
                    "report the held-out accuracy of the best cell, and time it "
                    "against scikit-learn's MLPClassifier with the same "
                    "hyperparameters.",
    )
    demo.add_argument("--n-jobs", type=int, default=1, metavar="N",
                      help="parallel fits in the grid search (joblib; default: 1)")
    return parser


def main(argv=None):
    """Run the command line.

    Parameters
    ----------
    argv : list of str, default=None
        Arguments without the program name; None reads ``sys.argv``.

    Returns
    -------
    status : int
        Process exit status (0 on success).
    """
    args = build_parser().parse_args(argv)
    if args.command == "demo":
        run_demo(n_jobs=args.n_jobs)
    return 0
