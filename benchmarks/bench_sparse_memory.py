"""Peak memory of training on a large sparse matrix: proportional to the
nonzeros and the parameters, not to the dense size.

Generates a 100,000 x 50,000 CSR matrix with 0.1% density (exactly 50
nonzeros per row, sorted distinct columns, values uniform in [0, 1); seeded)
and a binary target from a random linear score, in float32 and in float64
(``--dtypes``). For each dtype, fresh subprocesses report their peak RSS
(``resource.getrusage(RUSAGE_SELF).ru_maxrss``) after:

* ``imports``: importing numpy, scipy, scikit-learn and skminibatch only;
* ``kernels``: that plus a tiny sparse fit + predict (compiled kernels loaded
  from the Numba cache, which a warm-up process fills first, so compilation
  is not measured);
* ``build``: imports + building the matrix and target;
* ``fit``: build + ``MiniBatchMLPClassifier(hidden_layer_sizes=(64,),
  max_iter=1, steps_per_epoch=50, batch_size=256).fit(X, y)`` +
  ``predict`` on 1,000 rows.

It prints, and writes to ``benchmarks/results/sparse_memory.{json,md}``, the
matrix's size (data + indices + indptr bytes), the size the dense matrix
would have, the peak RSS of each stage, the difference fit - build, and the
model's parameter memory (weights, gradients and Adam's two moments; the
fitted ``coefs_``/``intercepts_`` are one more copy of the weights).

Run: ``python benchmarks/bench_sparse_memory.py`` (about a minute).
"""

import argparse
import json
import os
import pathlib
import resource
import subprocess
import sys
import time

ROOT = pathlib.Path(__file__).resolve().parents[1]
RESULTS = ROOT / "benchmarks" / "results"

N_ROWS, N_FEATURES, DENSITY = 100_000, 50_000, 0.001
HIDDEN, BATCH, STEPS, N_PREDICT = 64, 256, 50, 1000


# ---------------------------------------------------------------------------
# child side: one stage in a fresh process, prints one JSON line
# ---------------------------------------------------------------------------
def _peak_rss_bytes():
    # Linux reports ru_maxrss in KiB (macOS in bytes)
    scale = 1 if sys.platform == "darwin" else 1024
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * scale


def build_problem(n_rows, n_features, density, dtype, seed):
    """CSR ``X`` with ``round(density * n_features)`` nonzeros in every row
    and a binary ``y``. Columns of a row: ``k`` sorted draws from
    ``[0, n_features - k]`` plus ``0..k-1``, which makes them strictly
    increasing (distinct, sorted) without a per-row loop."""
    import numpy as np
    import scipy.sparse as sp

    rng = np.random.default_rng(seed)
    k = max(1, round(density * n_features))
    cols = np.sort(rng.integers(0, n_features - k + 1, (n_rows, k), dtype=np.int32),
                   axis=1)
    cols += np.arange(k, dtype=np.int32)
    indptr = np.arange(0, n_rows * k + 1, k, dtype=np.int32)
    data = rng.random(n_rows * k, dtype=dtype)
    X = sp.csr_matrix((data, cols.ravel(), indptr), shape=(n_rows, n_features))
    w = rng.standard_normal(n_features).astype(dtype)
    score = X @ w
    y = (score > np.median(score)).astype(np.int64)
    return X, y


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


def child(stage, dtype_name, seed):
    import warnings

    import numpy as np
    import scipy.sparse as sp  # noqa: F401
    import sklearn  # noqa: F401

    try:
        from skminibatch import MiniBatchMLPClassifier
    except ImportError:
        sys.path.insert(0, str(ROOT))
        from skminibatch import MiniBatchMLPClassifier

    dtype = np.dtype(dtype_name)
    out = {"stage": stage, "dtype": dtype_name}
    warnings.simplefilter("ignore")  # ConvergenceWarning: max_iter=1 on purpose

    def model():
        return MiniBatchMLPClassifier(hidden_layer_sizes=(HIDDEN,), max_iter=1,
                                      steps_per_epoch=STEPS, batch_size=BATCH,
                                      random_state=0)

    if stage in ("kernels", "warmup"):
        X, y = build_problem(2000, 500, 0.01, dtype, seed)
        model().fit(X, y).predict(X[:100])
    if stage in ("build", "fit"):
        t0 = time.perf_counter()
        X, y = build_problem(N_ROWS, N_FEATURES, DENSITY, dtype, seed)
        out["build_seconds"] = time.perf_counter() - t0
        out["nnz"] = int(X.nnz)
        out["sparse_bytes"] = int(X.data.nbytes + X.indices.nbytes + X.indptr.nbytes)
        out["has_sorted_indices"] = bool(X.has_sorted_indices)
        out["rss_after_build"] = _peak_rss_bytes()
    if stage == "fit":
        est = model()
        t0 = time.perf_counter()
        est.fit(X, y)
        out["fit_seconds"] = time.perf_counter() - t0
        t0 = time.perf_counter()
        pred = est.predict(X[:N_PREDICT])
        out["predict_seconds"] = time.perf_counter() - t0
        out["train_accuracy_first_1000"] = float(np.mean(pred == y[:N_PREDICT]))
        out["coef_dtype"] = str(est.coefs_[0].dtype)
        out["n_params"] = int(sum(c.size for c in est.coefs_ + est.intercepts_))
        out["t_"] = int(est.t_)
        out["blas"] = _blas_description()
    out["peak_rss"] = _peak_rss_bytes()
    print(json.dumps(out))


# ---------------------------------------------------------------------------
# parent side
# ---------------------------------------------------------------------------
def run_child(stage, dtype_name, seed):
    cmd = [sys.executable, str(pathlib.Path(__file__).resolve()), "--child", stage,
           "--dtypes", dtype_name, "--seed", str(seed)]
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(
        [str(ROOT)] + ([env["PYTHONPATH"]] if env.get("PYTHONPATH") else []))
    proc = subprocess.run(cmd, capture_output=True, text=True, env=env, check=False)
    if proc.returncode != 0:
        raise RuntimeError(f"stage {stage} ({dtype_name}) failed:\n{proc.stderr}")
    return json.loads(proc.stdout.strip().splitlines()[-1])


def mb(n_bytes):
    return n_bytes / 2**20


def measure(dtype_name, seed):
    import numpy as np

    itemsize = np.dtype(dtype_name).itemsize
    run_child("warmup", dtype_name, seed)  # fills the Numba cache if needed
    stages = {s: run_child(s, dtype_name, seed)
              for s in ("imports", "kernels", "build", "fit")}
    fit = stages["fit"]
    n_params = fit["n_params"]
    param_bytes = n_params * itemsize
    return {
        "dtype": dtype_name,
        "shape": [N_ROWS, N_FEATURES],
        "density": DENSITY,
        "nnz": fit["nnz"],
        "sparse_bytes": fit["sparse_bytes"],
        "dense_bytes": N_ROWS * N_FEATURES * itemsize,
        "dense_batch_bytes": BATCH * N_FEATURES * itemsize,
        "peak_rss_imports": stages["imports"]["peak_rss"],
        "peak_rss_kernels": stages["kernels"]["peak_rss"],
        "peak_rss_build": stages["build"]["peak_rss"],
        "peak_rss_fit": fit["peak_rss"],
        "fit_minus_build": fit["peak_rss"] - stages["build"]["peak_rss"],
        "kernels_minus_imports": (stages["kernels"]["peak_rss"]
                                  - stages["imports"]["peak_rss"]),
        "n_params": n_params,
        "param_bytes_one_copy": param_bytes,
        # weights + gradients + Adam first and second moments
        "param_bytes_optimizer": 4 * param_bytes,
        "fit_seconds": fit["fit_seconds"],
        "predict_seconds": fit["predict_seconds"],
        "build_seconds": fit["build_seconds"],
        "coef_dtype": fit["coef_dtype"],
        "t_": fit["t_"],
        "has_sorted_indices": fit["has_sorted_indices"],
        "blas": fit["blas"],
        "model": (f"MiniBatchMLPClassifier(hidden_layer_sizes=({HIDDEN},), "
                  f"max_iter=1, steps_per_epoch={STEPS}, batch_size={BATCH}); "
                  f"predict on {N_PREDICT} rows"),
    }


def markdown(results):
    lines = [
        f"# Sparse training memory: {N_ROWS:,} x {N_FEATURES:,} CSR, "
        f"density {DENSITY:.1%}",
        "",
        f"Model: `{results[0]['model']}`. Peak RSS (`ru_maxrss`) of fresh "
        "processes; MiB = 2^20 bytes, GB = 10^9 bytes. BLAS: "
        f"{results[0]['blas']}.",
        "",
        "| | " + " | ".join(r["dtype"] for r in results) + " |",
        "|---|" + "---:|" * len(results),
    ]
    def mib(key, digits=0, bold=False):
        mark = "**" if bold else ""
        return lambda r: f"{mark}{mb(r[key]):.{digits}f} MiB{mark}"

    rows = [
        ("nonzeros", lambda r: f"{r['nnz']:,}"),
        ("CSR size (data + indices + indptr)", mib("sparse_bytes", 1)),
        ("dense size it would have", lambda r: f"{r['dense_bytes'] / 1e9:.0f} GB"),
        (f"one dense batch of {BATCH} rows", mib("dense_batch_bytes", 1)),
        ("parameters", lambda r: f"{r['n_params']:,}"),
        ("weights, one copy", mib("param_bytes_one_copy", 1)),
        ("weights + gradients + Adam moments (4 copies)",
         mib("param_bytes_optimizer", 1)),
        ("peak RSS: imports only", mib("peak_rss_imports")),
        ("peak RSS: imports + kernels loaded (tiny fit)", mib("peak_rss_kernels")),
        ("peak RSS: build matrix", mib("peak_rss_build")),
        ("peak RSS: build + fit + predict", mib("peak_rss_fit")),
        ("**fit + predict - build**", mib("fit_minus_build", bold=True)),
        ("loading the kernels alone (kernels - imports; part of the line above)",
         mib("kernels_minus_imports")),
        ("fit + predict - build - kernel loading",
         lambda r: f"{mb(r['fit_minus_build'] - r['kernels_minus_imports']):.0f} MiB"),
        (f"fit time ({STEPS} steps of {BATCH})", lambda r: f"{r['fit_seconds']:.2f} s"),
        (f"predict time ({N_PREDICT:,} rows)",
         lambda r: f"{r['predict_seconds'] * 1e3:.1f} ms"),
    ]
    for name, fmt in rows:
        lines.append(f"| {name} | " + " | ".join(fmt(r) for r in results) + " |")
    lines += [
        "",
        "The build stage's peak includes its temporaries (column draws and "
        "their sort), freed before fitting, so the difference slightly "
        "understates what fit + predict allocate. Times are wall-clock on a "
        "shared machine.",
        "",
    ]
    return "\n".join(lines)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--dtypes", nargs="+", default=["float32", "float64"],
                        choices=["float32", "float64"])
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--child", choices=["warmup", "imports", "kernels", "build",
                                            "fit"], help=argparse.SUPPRESS)
    parser.add_argument("--out", type=pathlib.Path, default=RESULTS)
    args = parser.parse_args(argv)
    if args.child:
        child(args.child, args.dtypes[0], args.seed)
        return
    t0 = time.perf_counter()
    results = [measure(d, args.seed) for d in args.dtypes]
    table = markdown(results)
    print(table)
    for r in results:
        print(f"{r['dtype']}: fit + predict added {mb(r['fit_minus_build']):.0f} MiB "
              f"of peak RSS over building the matrix; the dense matrix would be "
              f"{r['dense_bytes'] / 1e9:.0f} GB "
              f"({r['dense_bytes'] / max(r['fit_minus_build'], 1):,.0f}x more).")
    print(f"total benchmark time {time.perf_counter() - t0:.0f} s")
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "sparse_memory.json").write_text(json.dumps(results, indent=2) + "\n")
    (args.out / "sparse_memory.md").write_text(table)


if __name__ == "__main__":
    main()
