"""Benchmark suite: skminibatch against scikit-learn's MLP and PyTorch (issue 4).

One command, from the repository root, in a venv with the package installed::

    pip install -e ".[bench]"                    # adds torch==2.13.0 (optional)
    python benchmarks/bench_suite.py             # full run, ~20 min on 2 cores
    python benchmarks/bench_suite.py --quick     # smoke test, ~40 s (< 2 min)

Without PyTorch importable, its columns are skipped (``--no-torch`` skips it
on purpose). Results: a table per config on stdout, and
``benchmarks/results/bench_suite.json`` + ``bench_suite.md`` (``--out DIR``
to write elsewhere).

What is measured
----------------
Configs (``--configs``), each on ``--samples`` (20,000) generated samples,
fixed seed: c1 = classifier, 100 features, hidden (100,), 2 classes;
r1 = regressor, 100 features, hidden (100,) (``make_regression``, y
standardised); c2 = classifier, 100 features, hidden (256, 256), 2 classes;
c3 = classifier, 784 features, hidden (256, 256), 10 classes.
Every fit: relu, adam (lr 1e-3, betas 0.9/0.999, eps 1e-8), alpha 1e-4,
shuffle, no early stopping, ``tol=0`` and ``n_iter_no_change`` huge so it
runs exactly ``--epochs`` epochs (checked through ``n_iter_``).

For each config x dtype (``--dtypes``) x batch size (``--batch-sizes``):
seconds per epoch = wall time of one whole ``fit`` (or torch training
loop) / epochs, median of ``--repeats`` repetitions in the same process,
each timing every library in rotation (ours, sklearn, sklearn 1 thread,
torch 1 thread, torch default threads, numpy matmul reference), so a load
change on the shared machine hits all of them. Five by default
(``REPEATS``), and a cell's repetitions are spread over the whole run:
repetition 1 of every cell, then repetition 2 of every cell, and so on
(about 3.5 minutes apart in a full run). On this VM, for seconds to
minutes at a time, two threads sharing a step run no faster than one
(measured: a c1 float64 step at batch 16 on two threads 17-18 us in a
quiet spell, 29-31 us in a slow one, one thread 28-29 us throughout;
sklearn's c1/r1 fits, mostly Python on one thread, hardly notice; its
fits on two BLAS threads slow down in the same spells). With a cell's fits back to
back, one such spell covered four of its five fits of ours (c1 float64
at batch 16: 0.024 s an epoch quiet, 0.038-0.093 s in the spell) and
decided its median; spread out, a spell falls on one or two of them.
Warm: one warm-up fit per library per (config, dtype) before timing, and
of ours one per batch size too (the batch size picks the kernel a step
runs), so Numba compilation / cache loading is excluded.

* ours: ``MiniBatchMLP*(**sklearn_estimator.get_params())``. Its training
  loop runs BLAS single-threaded by design and shares each step of at least
  ``MIN_UNITS_WORK`` multiply-adds (batch x weights; every config here: dense
  input, hidden layers of >= ``MIN_UNITS_HIDDEN`` units, cut by hidden units,
  but c2 and c3 at batch >= ``ROWS_MIN_BATCH``: two hidden layers, cut by
  batch rows, then weights)
  or ``MIN_SHARED_WORK`` (the other networks) between up to
  ``min(MAX_PARTS, cpu_budget())`` threads of its own, results independent
  of the thread count (skminibatch/_threads.py; the header prints the
  numbers, ``SKMINIBATCH_NUM_THREADS=1`` runs one thread per fit).
* sklearn: ``MLPClassifier`` / ``MLPRegressor``, same parameters, default
  BLAS threads (as a user runs it; the targets use this one); float32 input
  trains in float32. Also with its BLAS limited to 1 thread (threadpoolctl),
  the one-core comparison: on a shared machine, when the other core is
  busy, each multi-threaded OpenBLAS call can wait a scheduler tick for its
  second thread, so the default-thread numbers jump (seen here: the same
  r1 epoch at 0.05 s or 0.48 s); the 1-thread ones do not.
* torch: an idiomatic eager loop: ``nn.Sequential`` of Linear/ReLU,
  ``torch.optim.Adam`` with sklearn's lr/betas/eps, one output + BCE-with-
  logits for 2 classes, softmax cross-entropy for 10, half MSE for the
  regressor; each epoch ``torch.randperm`` + indexing, ``loss.item()``
  accumulated as the epoch loss. sklearn's L2 term ``alpha/2 ||W||^2 / n_batch``
  has the gradient ``alpha/n_batch * W``, so it is Adam's ``weight_decay =
  alpha / batch_size`` on the weight matrices only (not the biases): the
  same gradient for every full batch (the last, short batch of an epoch
  gets the full-batch factor). Timed with ``torch.set_num_threads(1)``
  (one thread, like our BLAS; the targets use this one) and with
  torch's default.
  Initialisation scale differs (torch's default); it does not change the
  work done.
* achieved GFLOP/s = 6 x samples x weights (coefficients, no biases) per
  epoch / seconds per epoch. numpy rate = the same 6 x batch x weights
  flops / the time numpy ``@`` (single-threaded BLAS via threadpoolctl, as
  ours) takes for one step's products at that batch size: per layer
  ``A @ W``, ``A.T @ D`` and ``D @ W.T``. "% numpy" = achieved / numpy rate
  (issue 4's definition). ``mm share`` is stricter: numpy's time for only
  the products a step needs (no input gradient of the first layer) divided
  by our time per step - the fraction of our step that is matrix products
  at numpy's speed; ``1 - mm share`` is everything else (optimizer update,
  bias/activation/loss passes, gathering the batch, call overhead).
  The products floor of a row: those needed products at the single-thread
  numpy speed measured in the same row, split perfectly over two cores (or
  numpy's own two-thread time, if faster), times samples / batch. A fit
  whose products run at OpenBLAS speed cannot take less; where a target
  asks for less than the floor, the target line says so. The same row also
  shows numpy's two-thread scaling on those products: this VM's two vCPUs
  sometimes do not run SIMD code in parallel (scaling near 1x), which
  moves every two-thread number, ours and the libraries' alike.
  A per-step cost model ``t_step = fixed + per_sample * batch`` is fitted
  over the batch sizes of each (config, dtype) and printed under its table.

Each in fresh subprocesses (``--no-startup`` / ``--no-memory`` skip them):

* cold compile: a default ``MiniBatchMLPClassifier(random_state=0)`` fit +
  predict (float64, 500 x 20) in a process with an empty ``NUMBA_CACHE_DIR``,
  minus the same fit + predict repeated in that process; wall time (the
  target) and the process's CPU time (compilation is single-threaded, so
  this is what it costs on an idle core whatever the load);
* warm-cache first-fit overhead: the same in a new process with that (now
  warm) cache: first fit minus repeated fit (median of 3 processes);
* import: ``import sklearn`` time, then the extra time of ``import
  skminibatch`` after it (also after ``import sklearn.neural_network``, and
  how much of it is ``import numba``), median of 5 processes;
* peak RSS of a c3 fit at batch 1024 (each dtype): the peak RSS of a process
  that imports (numpy, sklearn.neural_network, skminibatch), loads X, y and
  fits, minus that of a process that only imports - the target compares it
  with size(X) + size(y) + 64 MiB. Also shown: minus a process that imports
  and loads X, y (the fit's own extra), how much of that is importing Numba
  and loading the compiled kernels (a 64-row fit), and how much is ``import
  numba`` alone (skminibatch may import it at import time or at first fit),
  and the Numba runtime floor: ``import numba`` plus one trivial
  ``njit(cache=True)`` function loaded from the cache and called (no
  skminibatch code) -- what any Numba-compiled library costs before its own
  code -- with how much of that floor is file-backed pages (``RssFile``:
  shared libraries, mostly LLVM's, shared with the page cache and with
  other processes) and how much ``import llvmlite.binding`` (Numba's LLVM)
  alone costs. X, y are generated once and read with
  ``np.load`` in the children, so ``make_classification``'s temporaries do
  not raise the baselines. Peak RSS is ``VmHWM`` from /proc/self/status, not
  ``ru_maxrss``: on Linux a child's ``ru_maxrss`` starts at the RSS peak of
  the (big) benchmark process it was forked from.

The header states the machine, the load average, which BLAS ran
(threadpoolctl: numpy's and SciPy's OpenBLAS, the latter is the one
skminibatch's kernels call), ``OPENBLAS_CORETYPE`` and every thread
setting; each row carries the 1-minute load average when it started. The
last section says, per target of issue 4 section 2, met / not met.

Options: --quick, --configs, --batch-sizes, --dtypes, --repeats, --epochs,
--samples, --no-torch, --torch-threads, --no-startup, --no-memory, --out, and
--render JSON (rewrite the markdown from a saved JSON, no measuring).
"""

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(HERE)

CONFIGS = {
    "c1": dict(kind="classifier", n_features=100, hidden=(100,), n_classes=2),
    "r1": dict(kind="regressor", n_features=100, hidden=(100,), n_classes=None),
    "c2": dict(kind="classifier", n_features=100, hidden=(256, 256), n_classes=2),
    "c3": dict(kind="classifier", n_features=784, hidden=(256, 256), n_classes=10),
}
BATCH_SIZES = (16, 64, 256, 1024)
#: Timed fits per library and cell (median taken), each in its own
#: round over all cells; see the module doc.
REPEATS = 5
DTYPES = ("float64", "float32")
ALPHA, LR, BETA_1, BETA_2, EPSILON = 1e-4, 1e-3, 0.9, 0.999, 1e-8
MIB = 1024 * 1024
CPU_LOG = []  # process CPU seconds per epoch of the last timed fit (all threads)

# issue 4, section 2 (torch ratios against torch with 1 thread)
SPEED_TARGETS = [
    (("c1", "r1"), "sklearn", {16: 9, 64: 6, 256: 3, 1024: 2}),
    (("c1", "r1"), "torch", {16: 10, 64: 5, 256: 2, 1024: 1.3}),
    (("c2", "c3"), "sklearn", {16: 5, 64: 2.5, 256: 1.5, 1024: 1.3}),
    (("c2", "c3"), "torch", {16: 2, 64: 1.3, 256: 1.2, 1024: 1.2}),
]
MATMUL_TARGET = (("c2", "c3"), 256, 0.75)
COLD_COMPILE_TARGET_S = 15.0
WARM_OVERHEAD_TARGET_S = 0.5
IMPORT_TARGET_S = 0.3
MEMORY_SLACK_MIB = 64


# ---------------------------------------------------------------------------
# data and models
# ---------------------------------------------------------------------------
def n_outputs(cfg):
    if cfg["kind"] == "regressor" or cfg["n_classes"] == 2:
        return 1
    return cfg["n_classes"]


def layer_units(cfg):
    return [cfg["n_features"], *cfg["hidden"], n_outputs(cfg)]


def n_weights(cfg):
    u = layer_units(cfg)
    return sum(u[i] * u[i + 1] for i in range(len(u) - 1))


def make_data(cfg, n_samples, dtype):
    import numpy as np
    from sklearn.datasets import make_classification, make_regression

    f = cfg["n_features"]
    if cfg["kind"] == "classifier":
        X, y = make_classification(n_samples=n_samples, n_features=f,
                                   n_informative=f // 2, n_redundant=0,
                                   n_classes=cfg["n_classes"], random_state=0)
    else:
        X, y = make_regression(n_samples=n_samples, n_features=f,
                               n_informative=f // 2, noise=1.0, random_state=0)
        y = ((y - y.mean()) / y.std()).astype(dtype)
    return np.ascontiguousarray(X, dtype=dtype), y


def estimator_pair(cfg, batch_size, epochs):
    """(ours, sklearn's) with identical hyperparameters."""
    from sklearn.neural_network import MLPClassifier, MLPRegressor

    from skminibatch import MiniBatchMLPClassifier, MiniBatchMLPRegressor

    theirs_cls, ours_cls = ((MLPClassifier, MiniBatchMLPClassifier)
                            if cfg["kind"] == "classifier"
                            else (MLPRegressor, MiniBatchMLPRegressor))
    theirs = theirs_cls(hidden_layer_sizes=cfg["hidden"], activation="relu",
                        solver="adam", alpha=ALPHA, batch_size=batch_size,
                        learning_rate_init=LR, max_iter=epochs, shuffle=True,
                        random_state=0, tol=0.0, n_iter_no_change=10**9,
                        early_stopping=False, beta_1=BETA_1, beta_2=BETA_2,
                        epsilon=EPSILON)
    ours = ours_cls(**theirs.get_params())
    return ours, theirs


def time_estimator(est, X, y, epochs, blas_threads=None):
    """Seconds per epoch of one fit; checks it ran ``epochs`` epochs in X's dtype.
    ``blas_threads``: run the fit under that BLAS thread limit (threadpoolctl)."""
    import contextlib
    import warnings

    from sklearn.exceptions import ConvergenceWarning
    from threadpoolctl import threadpool_limits

    limit = (threadpool_limits(limits=blas_threads, user_api="blas")
             if blas_threads else contextlib.nullcontext())
    with warnings.catch_warnings(), limit:
        warnings.simplefilter("ignore", ConvergenceWarning)
        c0, t0 = time.process_time(), time.perf_counter()
        est.fit(X, y)
        elapsed = time.perf_counter() - t0
        CPU_LOG.append((time.process_time() - c0) / epochs)
    if est.n_iter_ != epochs:
        raise RuntimeError(f"{type(est).__name__} ran {est.n_iter_} epochs, "
                           f"not {epochs}")
    if est.coefs_[0].dtype != X.dtype:
        raise RuntimeError(f"{type(est).__name__} trained in {est.coefs_[0].dtype} "
                           f"on {X.dtype} input")
    return elapsed / epochs


class TorchLoop:
    """The idiomatic PyTorch CPU eager training loop for one (config, dtype)."""

    def __init__(self, torch, cfg, X, y):
        import numpy as np

        self.torch, self.cfg = torch, cfg
        self.dtype = torch.float64 if X.dtype == np.float64 else torch.float32
        self.X = torch.from_numpy(X)
        if cfg["kind"] == "classifier" and cfg["n_classes"] > 2:
            self.y = torch.from_numpy(np.asarray(y, dtype=np.int64))
            self.loss_fn = torch.nn.functional.cross_entropy
        elif cfg["kind"] == "classifier":
            self.y = torch.from_numpy(np.asarray(y, dtype=X.dtype).reshape(-1, 1))
            self.loss_fn = torch.nn.functional.binary_cross_entropy_with_logits
        else:
            self.y = torch.from_numpy(np.asarray(y, dtype=X.dtype).reshape(-1, 1))
            mse = torch.nn.functional.mse_loss
            self.loss_fn = lambda out, target: 0.5 * mse(out, target)

    def fit(self, batch_size, epochs, n_samples=None):
        torch, nn = self.torch, self.torch.nn
        X, y = self.X, self.y
        if n_samples is not None:
            X, y = X[:n_samples], y[:n_samples]
        n = X.shape[0]
        units = layer_units(self.cfg)
        torch.manual_seed(0)
        layers = []
        for i in range(len(units) - 1):
            layers.append(nn.Linear(units[i], units[i + 1]))
            if i < len(units) - 2:
                layers.append(nn.ReLU())
        model = nn.Sequential(*layers).to(self.dtype)
        weights = [m.weight for m in model if isinstance(m, nn.Linear)]
        biases = [m.bias for m in model if isinstance(m, nn.Linear)]
        opt = torch.optim.Adam(
            [{"params": weights, "weight_decay": ALPHA / batch_size},
             {"params": biases, "weight_decay": 0.0}],
            lr=LR, betas=(BETA_1, BETA_2), eps=EPSILON)
        loss_fn = self.loss_fn
        for _ in range(epochs):
            perm = torch.randperm(n)
            running = 0.0
            for start in range(0, n, batch_size):
                idx = perm[start:start + batch_size]
                xb, yb = X[idx], y[idx]
                opt.zero_grad()
                loss = loss_fn(model(xb), yb)
                loss.backward()
                opt.step()
                running += loss.item() * xb.shape[0]
        return running / n


def time_torch(loop, threads, batch_size, epochs):
    loop.torch.set_num_threads(threads)
    c0, t0 = time.process_time(), time.perf_counter()
    loop.fit(batch_size, epochs)
    CPU_LOG.append((time.process_time() - c0) / epochs)
    return (time.perf_counter() - t0) / epochs


class MatmulReference:
    """numpy ``@`` on one training step's products at a batch size."""

    def __init__(self, cfg, batch_size, dtype):
        import numpy as np

        rng = np.random.default_rng(0)
        u = layer_units(cfg)
        L = len(u) - 1
        b = batch_size

        def r(*shape):
            return rng.standard_normal(shape).astype(dtype)

        self.A = [r(b, u[i]) for i in range(L + 1)]       # layer inputs / outputs
        self.W = [r(u[i], u[i + 1]) for i in range(L)]
        self.D = [r(b, u[i + 1]) for i in range(L)]       # deltas
        self.G = [np.empty((u[i], u[i + 1]), dtype) for i in range(L)]
        self.P = [np.empty((b, u[i]), dtype) for i in range(L)]  # back-propagated
        self.L = L

    def step(self, input_grad=True):
        import numpy as np

        A, W, D, G, P = self.A, self.W, self.D, self.G, self.P
        for i in range(self.L):
            np.matmul(A[i], W[i], out=A[i + 1])
        for i in range(self.L - 1, -1, -1):
            np.matmul(A[i].T, D[i], out=G[i])
            if i > 0 or input_grad:
                np.matmul(D[i], W[i].T, out=P[i])

    def seconds_per_step(self, input_grad, min_time=0.08, threads=1):
        from threadpoolctl import threadpool_limits

        with threadpool_limits(limits=threads, user_api="blas"):
            self.step(input_grad)  # touch
            best = float("inf")
            for _ in range(3):
                n, t0 = 0, time.perf_counter()
                while True:
                    self.step(input_grad)
                    n += 1
                    elapsed = time.perf_counter() - t0
                    if elapsed >= min_time / 3 and n >= 2:
                        break
                best = min(best, elapsed / n)
        return best


# ---------------------------------------------------------------------------
# environment description
# ---------------------------------------------------------------------------
def cpu_model():
    try:
        with open("/proc/cpuinfo") as f:
            text = f.read()
    except OSError:
        import platform

        return platform.processor() or "unknown", []
    model, flags = "unknown", []
    for line in text.splitlines():
        if line.startswith("model name") and model == "unknown":
            model = line.split(":", 1)[1].strip()
        if line.startswith("flags") and not flags:
            flags = line.split(":", 1)[1].split()
    simd = [f for f in ("avx2", "fma", "avx512f", "avx512vl", "avx512_bf16",
                        "avx512_fp16", "amx_tile") if f in flags]
    return model, simd


def source_digest():
    """Short hash of skminibatch's sources as imported (what was measured)."""
    import hashlib

    import skminibatch

    root = os.path.dirname(skminibatch.__file__)
    h = hashlib.sha256()
    for dirpath, dirnames, filenames in sorted(os.walk(root)):
        dirnames.sort()
        for name in sorted(filenames):
            if name.endswith(".py"):
                with open(os.path.join(dirpath, name), "rb") as f:
                    h.update(name.encode() + f.read())
    return root, h.hexdigest()[:12]


def git_state(where):
    """Commit of the checkout ``where`` is in, and whether its skminibatch/
    has uncommitted changes (empty commit: not a git checkout)."""
    def git(*args):
        try:
            return subprocess.run(["git", *args], cwd=where, capture_output=True,
                                  text=True, timeout=10).stdout.strip()
        except (OSError, subprocess.SubprocessError):
            return ""

    return {"commit": git("rev-parse", "--short", "HEAD"),
            "skminibatch_dirty": bool(git("status", "--porcelain", "--", "."))}


def blas_info():
    import scipy.linalg.cython_blas  # noqa: F401  the BLAS skminibatch's kernels call
    from threadpoolctl import threadpool_info

    rows = []
    for info in threadpool_info():
        if info.get("user_api") != "blas":
            continue
        path = os.path.basename(info.get("filepath", ""))
        owner = ("numpy (sklearn, numpy reference)" if "openblas64" in path
                 else "scipy (skminibatch kernels via Numba)" if "scipy_openblas" in path
                 else info.get("prefix", ""))
        rows.append({k: info.get(k) for k in ("user_api", "internal_api", "version",
                                              "architecture", "num_threads",
                                              "threading_layer", "prefix")}
                    | {"file": path, "used_by": owner})
    return rows


def describe_environment(torch):
    import numba
    import numpy as np
    import scipy
    import sklearn

    import skminibatch

    model, simd = cpu_model()
    env = {
        "cpu_model": model,
        "cpu_simd_flags": simd,
        "cpu_count": os.cpu_count(),
        "cores_available": len(os.sched_getaffinity(0)),
        "OPENBLAS_CORETYPE": os.environ.get("OPENBLAS_CORETYPE", "(unset)"),
        "NUMBA_CACHE_DIR": os.environ.get("NUMBA_CACHE_DIR", "(unset)"),
        "python": sys.version.split()[0],
        "numpy": np.__version__, "scipy": scipy.__version__,
        "scikit-learn": sklearn.__version__, "numba": numba.__version__,
        "skminibatch": skminibatch.__version__,
        "torch": torch.__version__ if torch is not None else None,
        "blas": blas_info(),
    }
    env["skminibatch_path"], env["skminibatch_source_sha256"] = source_digest()
    env["git"] = git_state(env["skminibatch_path"])
    if torch is not None:
        env["torch_default_threads"] = torch.get_num_threads()
        cfg = torch.__config__.show()
        env["torch_blas"] = next((part.split("=", 1)[1] for line in cfg.splitlines()
                                  for part in line.replace(",", " ").split()
                                  if part.startswith("BLAS_INFO=")), "unknown")
    return env


def provenance(env):
    g = env["git"]
    where = (f"git {g['commit']}" + (" with uncommitted changes in skminibatch/"
                                     if g["skminibatch_dirty"] else "")
             if g["commit"] else "not a git checkout")
    return (f"skminibatch {env['skminibatch']} from {env['skminibatch_path']} "
            f"({where}; sources sha256 {env['skminibatch_source_sha256']})")


def loadavg():
    try:
        return [round(x, 2) for x in os.getloadavg()]
    except OSError:
        return None


# ---------------------------------------------------------------------------
# subprocess measurements
# ---------------------------------------------------------------------------
def run_child(name, payload, env=None, timeout=900):
    cmd = [sys.executable, os.path.abspath(__file__), "--child", name,
           json.dumps(payload)]
    full_env = dict(os.environ)
    if env:
        full_env.update(env)
    proc = subprocess.run(cmd, capture_output=True, text=True, env=full_env,
                          timeout=timeout, cwd=REPO)
    if proc.returncode != 0:
        raise RuntimeError(f"child {name} failed:\n{proc.stderr[-3000:]}")
    return json.loads(proc.stdout.strip().splitlines()[-1])


def child_import(payload):
    t0 = time.perf_counter()
    if payload.get("nn"):
        import sklearn.neural_network  # noqa: F401
    else:
        import sklearn  # noqa: F401
    t1 = time.perf_counter()
    if payload.get("numba_first"):  # attribution: how much of it is numba
        import numba  # noqa: F401
    t2 = time.perf_counter()
    import skminibatch  # noqa: F401
    t3 = time.perf_counter()
    return {"sklearn_s": t1 - t0, "numba_s": t2 - t1, "skminibatch_extra_s": t3 - t1}


def child_first_fit(payload):
    import warnings

    from sklearn.datasets import make_classification

    X, y = make_classification(n_samples=500, n_features=20, random_state=0)
    t0 = time.perf_counter()
    from skminibatch import MiniBatchMLPClassifier
    t_import = time.perf_counter() - t0

    def once():
        est = MiniBatchMLPClassifier(random_state=0)  # defaults
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            c0, t0 = time.process_time(), time.perf_counter()
            est.fit(X, y)
            t1 = time.perf_counter()
            est.predict(X)
            c2, t2 = time.process_time(), time.perf_counter()
        return t1 - t0, t2 - t1, c2 - c0

    fit1, pred1, cpu1 = once()
    fit2, pred2, cpu2 = once()
    return {"import_s": t_import, "fit1_s": fit1, "predict1_s": pred1,
            "fit2_s": fit2, "predict2_s": pred2, "cpu1_s": cpu1, "cpu2_s": cpu2}


def proc_status_kib(field):
    """A ``kB`` field of /proc/self/status (``VmHWM``, ``RssFile``, ...),
    in KiB, or None where /proc does not tell."""
    try:
        with open("/proc/self/status") as f:
            for line in f:
                if line.startswith(field + ":"):
                    return int(line.split()[1])
    except OSError:
        pass
    return None


def peak_rss_kib():
    """This process's peak RSS (``VmHWM``), in KiB.

    Not ``ru_maxrss``: on Linux a child's ``ru_maxrss`` starts at the RSS
    high-water mark of the parent process it was forked from (exec copies
    it into the child), so a child of a big benchmark process reports the
    parent's peak. ``VmHWM`` belongs to the new address space only.
    """
    peak = proc_status_kib("VmHWM")
    if peak is not None:
        return peak
    import resource

    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss


def child_rss(payload):
    import numpy as np
    import sklearn.neural_network  # noqa: F401

    from skminibatch import MiniBatchMLPClassifier

    mode = payload["mode"]
    if mode == "llvmlite":  # Numba's LLVM binding (a shared library), no more
        import llvmlite.binding  # noqa: F401
    if mode in ("numba", "numba_call"):  # the compiler runtime a fit imports
        import numba
    if mode in ("data", "llvmlite", "numba", "numba_call", "fit", "tiny_fit"):
        X = np.load(payload["X"])
        y = np.load(payload["y"])
    if mode == "numba_call":
        # the floor of any Numba-compiled code: one trivial function loaded
        # from the on-disk cache (an earlier child compiled it) and called
        @numba.njit(cache=True)
        def _trivial_dot(a, b):
            s = 0.0
            for i in range(a.shape[0]):
                s += a[i] * b[i]
            return s

        _trivial_dot(np.ones(3), np.ones(3))
    if mode == "tiny_fit":  # loads the kernels, touches almost no data
        X, y = X[:64], y[:64]
    if mode in ("fit", "tiny_fit"):
        import warnings

        est = MiniBatchMLPClassifier(hidden_layer_sizes=tuple(payload["hidden"]),
                                     batch_size=payload["batch_size"],
                                     max_iter=payload["epochs"], tol=0.0,
                                     n_iter_no_change=10**9, random_state=0)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            est.fit(X, y)
        assert est.coefs_[0].dtype == X.dtype
    # RssFile: file-backed resident pages now (mapped files such as shared
    # libraries, shared with the page cache)
    return {"maxrss_kib": peak_rss_kib(), "rss_file_kib": proc_status_kib("RssFile")}


CHILDREN = {"import": child_import, "first_fit": child_first_fit, "rss": child_rss}


def measure_startup(quick, log):
    import shutil

    cache = tempfile.mkdtemp(prefix="bench_numba_cache_")
    try:
        return _measure_startup(quick, log, cache)
    finally:
        shutil.rmtree(cache, ignore_errors=True)


def _measure_startup(quick, log, cache):
    out = {}
    log("startup: cold compile (empty NUMBA_CACHE_DIR) ...")
    cold = run_child("first_fit", {}, env={"NUMBA_CACHE_DIR": cache})
    out["cold"] = cold
    out["cold_compile_s"] = (cold["fit1_s"] + cold["predict1_s"]
                             - cold["fit2_s"] - cold["predict2_s"])
    # CPU time of the process (compilation is single-threaded): what the
    # compile costs on an idle core, whatever the machine's load
    out["cold_compile_cpu_s"] = cold["cpu1_s"] - cold["cpu2_s"]
    out["cold_loadavg"] = loadavg()
    warm = []
    for _ in range(1 if quick else 3):
        warm.append(run_child("first_fit", {}, env={"NUMBA_CACHE_DIR": cache}))
    out["warm"] = warm
    out["warm_first_fit_overhead_s"] = statistics.median(
        w["fit1_s"] - w["fit2_s"] for w in warm)
    out["warm_first_fit_predict_overhead_s"] = statistics.median(
        w["fit1_s"] + w["predict1_s"] - w["fit2_s"] - w["predict2_s"] for w in warm)
    log("startup: import times ...")
    n = 1 if quick else 5
    if not quick:
        run_child("import", {})  # warm the OS file cache
    plain = [run_child("import", {}) for _ in range(n)]
    # quick: one process does both (numba's share is then not measured)
    nn = [run_child("import", {"nn": True}) for _ in range(n)] if not quick else plain
    nb = [run_child("import", {"numba_first": True}) for _ in range(n)
          ] if not quick else [{"numba_s": float("nan")}]
    out["import"] = {
        "numba_after_sklearn_s": statistics.median(r["numba_s"] for r in nb),
        "runs": n,
        "sklearn_s": statistics.median(r["sklearn_s"] for r in plain),
        "skminibatch_after_sklearn_s": statistics.median(
            r["skminibatch_extra_s"] for r in plain),
        "sklearn_neural_network_s": statistics.median(r["sklearn_s"] for r in nn),
        "skminibatch_after_sklearn_neural_network_s": statistics.median(
            r["skminibatch_extra_s"] for r in nn),
    }
    return out


def measure_memory(samples, epochs, dtypes, quick, log):
    import numpy as np

    cfg = CONFIGS["c3"]
    out = {"config": "c3", "batch_size": 1024, "epochs": epochs, "samples": samples,
           "rows": []}
    with tempfile.TemporaryDirectory(prefix="bench_rss_") as tmp:
        for dtype in dtypes:
            log(f"memory: c3 {dtype} batch 1024 ...")
            X, y = make_data(cfg, samples, dtype)
            xp, yp = os.path.join(tmp, f"X_{dtype}.npy"), os.path.join(tmp, "y.npy")
            np.save(xp, X)
            np.save(yp, y)
            payload = dict(X=xp, y=yp, hidden=list(cfg["hidden"]), batch_size=1024,
                           epochs=epochs)
            # the 64-row fit also makes sure this dtype's kernels are in the
            # cache (compiling would inflate the fit's RSS); --quick trusts
            # the timing run's warm-up for that and skips it
            tiny = (None if quick else
                    run_child("rss", dict(payload, mode="tiny_fit"))["maxrss_kib"])
            numba_kib = (None if quick else
                         run_child("rss", dict(payload, mode="numba"))["maxrss_kib"])
            floor_kib = floor_file_kib = llvm_kib = None
            if not quick:  # the first child compiles and caches the trivial function
                run_child("rss", dict(payload, mode="numba_call"))
                floor = run_child("rss", dict(payload, mode="numba_call"))
                floor_kib, floor_file_kib = floor["maxrss_kib"], floor["rss_file_kib"]
                llvm_kib = run_child("rss", dict(payload, mode="llvmlite"))["maxrss_kib"]
            base = run_child("rss", dict(payload, mode="base"))["maxrss_kib"]
            data_child = run_child("rss", dict(payload, mode="data"))
            data = data_child["maxrss_kib"]
            fit = run_child("rss", dict(payload, mode="fit"))["maxrss_kib"]
            size_xy = X.nbytes + y.nbytes
            above_base = fit * 1024 - base * 1024
            out["rows"].append({
                "dtype": dtype, "size_X_bytes": X.nbytes, "size_y_bytes": y.nbytes,
                "baseline_imports_kib": base, "baseline_imports_data_kib": data,
                "tiny_fit_kib": tiny, "fit_kib": fit,
                "baseline_imports_data_numba_kib": numba_kib,
                "numba_import_mib": (numba_kib - data) * 1024 / MIB if tiny else None,
                "baseline_imports_data_numba_call_kib": floor_kib,
                "numba_runtime_floor_mib": ((floor_kib - data) * 1024 / MIB
                                            if floor_kib else None),
                # of that floor: file-backed pages (shared libraries) the
                # Numba child has and the data child has not
                "numba_floor_file_mib": (
                    (floor_file_kib - data_child["rss_file_kib"]) * 1024 / MIB
                    if floor_file_kib is not None
                    and data_child["rss_file_kib"] is not None else None),
                "llvmlite_import_mib": (llvm_kib - data) * 1024 / MIB if llvm_kib else None,
                "fit_above_numba_floor_mib": ((fit - floor_kib) * 1024 / MIB
                                              if floor_kib else None),
                "kernel_loading_mib": (tiny - data) * 1024 / MIB if tiny else None,
                "fit_above_tiny_fit_mib": (fit - tiny) * 1024 / MIB if tiny else None,
                "fit_above_imports_mib": above_base / MIB,
                "fit_above_imports_data_mib": (fit - data) * 1024 / MIB,
                "limit_mib": (size_xy / MIB) + MEMORY_SLACK_MIB,
                "float64_copy_of_X_mib": X.size * 8 / MIB,
            })
    return out


# ---------------------------------------------------------------------------
# the timing run
# ---------------------------------------------------------------------------
def fit_step_model(rows, key):
    """Least squares ``t_step = fixed + per_sample * batch`` over batch sizes."""
    pts = [(r["batch_size"], r[key]["median"] / r["steps_per_epoch"]) for r in rows
           if r.get(key)]
    if len(pts) < 2:
        return None
    n = len(pts)
    mb = sum(b for b, _ in pts) / n
    mt = sum(t for _, t in pts) / n
    sbb = sum((b - mb) ** 2 for b, _ in pts)
    slope = sum((b - mb) * (t - mt) for b, t in pts) / sbb
    return {"fixed_us": (mt - slope * mb) * 1e6, "per_sample_us": slope * 1e6}


class CellTiming:
    """The timed fits of one cell (config x dtype x batch size), one
    repetition per :meth:`repeat` call; :meth:`row` sums them up. ``main``
    runs repetition 1 of every cell, then repetition 2 of every cell, and
    so on (see ``REPEATS``)."""

    def __init__(self, cfg, X, y, dtype, batch_size, args, torch_loop, torch_threads):
        self.cfg, self.X, self.y, self.dtype = cfg, X, y, dtype
        self.batch_size, self.args = batch_size, args
        self.torch_loop, self.torch_threads = torch_loop, torch_threads
        self.mm = MatmulReference(cfg, batch_size, dtype)
        self.times = {"ours": [], "sklearn": []}
        if args.sklearn_1thread:
            self.times["sklearn_1"] = []
        for t in torch_threads:
            self.times[f"torch_{t}"] = []
        self.cpu = {k: [] for k in self.times}
        self.mm_full, self.mm_needed, self.mm_needed_2 = [], [], []
        self.loads = []

    def repeat(self):
        """One fit of each library, in rotation, and the numpy references."""
        cfg, X, y, args = self.cfg, self.X, self.y, self.args
        batch_size, times, cpu, mm = self.batch_size, self.times, self.cpu, self.mm
        self.loads.append(loadavg())
        ours, theirs = estimator_pair(cfg, batch_size, args.epochs)
        times["ours"].append(time_estimator(ours, X, y, args.epochs))
        cpu["ours"].append(CPU_LOG[-1])
        times["sklearn"].append(time_estimator(theirs, X, y, args.epochs))
        cpu["sklearn"].append(CPU_LOG[-1])
        if args.sklearn_1thread:
            # scikit-learn's fit just ran on two BLAS threads: OpenBLAS's idle
            # worker spins ~0.1 s after (OPENBLAS_THREAD_TIMEOUT) and would
            # take a core from this one-thread fit's start
            time.sleep(0.3)
            theirs = estimator_pair(cfg, batch_size, args.epochs)[1]
            times["sklearn_1"].append(time_estimator(theirs, X, y, args.epochs,
                                                     blas_threads=1))
            cpu["sklearn_1"].append(CPU_LOG[-1])
        for t in self.torch_threads:
            times[f"torch_{t}"].append(time_torch(self.torch_loop, t, batch_size,
                                                  args.epochs))
            cpu[f"torch_{t}"].append(CPU_LOG[-1])
        # numpy on two BLAS threads first: OpenBLAS's idle workers keep
        # spinning for a while after a call, and took a core from the next
        # fit (ours) when this came last (c1 batch 256: 0.014 -> 0.037
        # s/epoch); the one-thread products come last, as they did before
        self.mm_needed_2.append(mm.seconds_per_step(False, threads=2))
        time.sleep(0.3)
        self.mm_full.append(mm.seconds_per_step(True))
        self.mm_needed.append(mm.seconds_per_step(False))

    def row(self):
        """The cell's results (medians over the repetitions so far)."""
        import math

        cfg, X, batch_size, times, cpu = (self.cfg, self.X, self.batch_size,
                                          self.times, self.cpu)
        n = X.shape[0]
        steps = math.ceil(n / batch_size)
        flops_epoch = 6.0 * n * n_weights(cfg)
        flops_step = 6.0 * batch_size * n_weights(cfg)
        row = {"batch_size": batch_size, "dtype": self.dtype.name,
               "steps_per_epoch": steps, "loadavg_start": self.loads[0],
               "loadavg_end": loadavg(), "loadavg_per_repeat": self.loads}
        for key, vals in times.items():
            row[key] = {"seconds_per_epoch": vals, "median": statistics.median(vals),
                        "cpu_seconds_per_epoch": cpu[key]}
        o = row["ours"]["median"]
        row["sklearn_over_ours"] = row["sklearn"]["median"] / o
        row["sklearn_cpu_over_ours_cpu"] = cpu_ratio(row, "sklearn")
        if "sklearn_1" in row:
            row["sklearn_1_over_ours"] = row["sklearn_1"]["median"] / o
        for t in self.torch_threads:
            row[f"torch_{t}_over_ours"] = row[f"torch_{t}"]["median"] / o
        row["ours_gflops"] = flops_epoch / o / 1e9
        row["sklearn_gflops"] = flops_epoch / row["sklearn"]["median"] / 1e9
        row["numpy_mm_step_s"] = statistics.median(self.mm_full)
        row["numpy_mm_needed_step_s"] = statistics.median(self.mm_needed)
        row["numpy_gflops"] = flops_step / row["numpy_mm_step_s"] / 1e9
        row["fraction_of_numpy"] = row["ours_gflops"] / row["numpy_gflops"]
        row["ours_step_s"] = o / steps
        row["mm_share"] = row["numpy_mm_needed_step_s"] / row["ours_step_s"]
        # the products floor: the step's products (those a step needs) at
        # this run's single-thread BLAS speed, split perfectly over two cores
        # -- or numpy's own two-thread BLAS if that was faster; times the
        # rows of an epoch (products scale with the rows, so n / batch steps)
        row["numpy_2_mm_needed_step_s"] = statistics.median(self.mm_needed_2)
        row["numpy_2_core_scaling"] = (row["numpy_mm_needed_step_s"]
                                       / row["numpy_2_mm_needed_step_s"])
        row["products_floor_epoch_s"] = (min(row["numpy_mm_needed_step_s"] / 2,
                                             row["numpy_2_mm_needed_step_s"])
                                         * n / batch_size)
        return row


def ours_over_floor(row):
    """Our epoch time over the row's products floor (see CellTiming.row)."""
    return row["ours"]["median"] / row["products_floor_epoch_s"]


def cpu_ratio(row, lib):
    """Median process CPU time per epoch of ``lib`` over ours: the work
    ratio per core (sklearn and torch default threads may use several)."""
    return (statistics.median(row[lib]["cpu_seconds_per_epoch"])
            / statistics.median(row["ours"]["cpu_seconds_per_epoch"]))


def format_cell_line(row, torch_threads):
    parts = [f"{row['dtype']:>7} {row['batch_size']:>5}",
             f"{row['ours']['median']:>9.4f}", f"{row['sklearn']['median']:>9.4f}"]
    if "sklearn_1" in row:
        parts.append(f"{row['sklearn_1']['median']:>9.4f}")
    for t in torch_threads:
        parts.append(f"{row[f'torch_{t}']['median']:>9.4f}")
    parts.append(f"{row['sklearn_over_ours']:>6.1f}x")
    if "sklearn_1" in row:
        parts.append(f"{row['sklearn_1_over_ours']:>6.1f}x")
    for t in torch_threads:
        parts.append(f"{row[f'torch_{t}_over_ours']:>6.2f}x")
    parts += [f"{row['ours_gflops']:>6.1f}", f"{row['numpy_gflops']:>6.1f}",
              f"{100 * row['fraction_of_numpy']:>5.0f}%",
              f"{100 * row['mm_share']:>5.0f}%",
              f"{ours_over_floor(row):>5.2f}",
              f"{row['ours_step_s'] * 1e6:>8.0f}",
              f"{row['loadavg_start'][0] if row['loadavg_start'] else float('nan'):>5.2f}"]
    return " ".join(parts)


def table_header(torch_threads, thread_names, sk1):
    cols = [f"{'dtype':>7} {'batch':>5}", f"{'ours':>9}", f"{'sklearn':>9}"]
    if sk1:
        cols.append(f"{'sklearnx1':>9}")
    for t in torch_threads:
        cols.append(f"{'torch' + thread_names[t]:>9}")
    cols.append(f"{'sk/ours':>7}")
    if sk1:
        cols.append(f"{'sk1/ours':>7}")
    for t in torch_threads:
        cols.append(f"{'t' + thread_names[t] + '/ours':>7}")
    cols += [f"{'GFLOP/s':>6}", f"{'numpy':>6}", f"{'%np':>6}", f"{'mm':>6}",
             f"{'/floor':>5}",
             f"{'us/step':>8}", f"{'load':>5}"]
    return " ".join(cols)


# ---------------------------------------------------------------------------
# targets
# ---------------------------------------------------------------------------
def floor_note(row, ratio, thr):
    """Why a speed line failed, against the step's products floor: the
    epoch time the target asks for, ours, and the floor (see CellTiming.row)."""
    ours = row["ours"]["median"]
    need = ours * ratio / thr  # their time / threshold
    floor = row.get("products_floor_epoch_s")
    if floor is None:
        return f"(needs <= {need:.4f} s/epoch, ours {ours:.4f})"
    where = ("below the floor: out of reach at BLAS speed in this run"
             if need < floor else f"{need / floor:.2f}x the floor")
    return (f"(needs <= {need:.4f} s/epoch, ours {ours:.4f} = "
            f"{ours_over_floor(row):.2f}x the products floor {floor:.4f}; the target is "
            f"{where})")


def evaluate_targets(results, startup, memory, torch_threads):
    lines = []
    cells = [(c, r) for c, rows in results.items() for r in rows]

    def verdict(name, checks):
        """checks: list of (label, value, ok, fmt)."""
        if not checks:
            return {"target": name, "status": "not measured", "detail": ""}
        bad = [c for c in checks if not c[2]]
        worst = min(checks, key=lambda c: c[1])
        if bad:
            detail = "failing: " + ", ".join(f"{c[0]} {c[3].format(c[1])}" for c in bad)
        else:
            detail = f"min {worst[3].format(worst[1])} ({worst[0]}), {len(checks)} cells"
        return {"target": name, "status": "not met" if bad else "met", "detail": detail}

    for configs, lib, thresholds in SPEED_TARGETS:
        for bs, thr in thresholds.items():
            name = f"{','.join(configs)}: {lib}/ours >= {thr}x at batch {bs}"
            checks = []
            for c, r in cells:
                if c not in configs or r["batch_size"] != bs:
                    continue
                if lib == "sklearn":
                    v = r["sklearn_over_ours"]
                else:
                    # ours may use two threads: compare with torch's fastest
                    # of the thread counts timed
                    ratios = [r[f"torch_{t}_over_ours"] for t in torch_threads
                              if f"torch_{t}_over_ours" in r]
                    if not ratios:
                        continue
                    v = min(ratios)
                label = f"{c} {r['dtype']}"
                if v < thr:
                    label = f"{label} {floor_note(r, v, thr)}"
                checks.append((label, v, v >= thr, "{:.2f}x"))
            if lib == "torch":
                timed = ", ".join(str(t) for t in torch_threads)
                name += f" (torch's fastest of {timed} threads)"
            line = verdict(name, checks)
            if lib == "sklearn":
                name += " (sklearn with its default BLAS threads)"
                line["target"] = name
                sk1 = [r["sklearn_1_over_ours"] for c, r in cells
                       if c in configs and r["batch_size"] == bs
                       and "sklearn_1_over_ours" in r]
                if sk1:
                    line["detail"] += (f"; against sklearn with 1 BLAS thread: min "
                                       f"{min(sk1):.2f}x ("
                                       f"{'met' if min(sk1) >= thr else 'not met'})")
            lines.append(line)
    configs, min_bs, frac = MATMUL_TARGET
    checks = [(f"{c} {r['dtype']} b{r['batch_size']}", r["fraction_of_numpy"],
               r["fraction_of_numpy"] >= frac, "{:.0%}")
              for c, r in cells if c in configs and r["batch_size"] >= min_bs]
    lines.append(verdict(f"{','.join(configs)}: >= {frac:.0%} of the same-run numpy "
                         f"matmul rate at batch >= {min_bs}", checks))
    if startup:
        v = startup["cold_compile_s"]
        lines.append(verdict(f"cold compile of a default dense fit + predict "
                             f"<= {COLD_COMPILE_TARGET_S:g} s",
                             [("float64", v, v <= COLD_COMPILE_TARGET_S, "{:.2f} s")]))
        v = startup["warm_first_fit_overhead_s"]
        lines.append(verdict(f"warm-cache first-fit overhead <= "
                             f"{WARM_OVERHEAD_TARGET_S:g} s",
                             [("fit", v, v <= WARM_OVERHEAD_TARGET_S, "{:.3f} s")]))
        v = startup["import"]["skminibatch_after_sklearn_s"]
        lines.append(verdict(f"import skminibatch adds <= {IMPORT_TARGET_S:g} s to "
                             f"import sklearn",
                             [("after import sklearn", v, v <= IMPORT_TARGET_S,
                               "{:.3f} s")]))
    else:
        for name in ("cold compile", "warm-cache first-fit overhead",
                     "import skminibatch"):
            lines.append({"target": name, "status": "not measured", "detail": ""})
    if memory:
        checks = []
        for row in memory["rows"]:
            ok = row["fit_above_imports_mib"] <= row["limit_mib"]
            parts = ""
            if row.get("kernel_loading_mib") is not None:
                parts = (f" = data {(row['size_X_bytes'] + row['size_y_bytes']) / MIB:.0f}"
                         f" + Numba and compiled kernels {row['kernel_loading_mib']:.0f}"
                         f" + the rest of the fit {row['fit_above_tiny_fit_mib']:.0f}")
            if not ok and row.get("numba_runtime_floor_mib") is not None:
                rest = row["fit_above_numba_floor_mib"]
                floor_parts = [
                    f"{v:.0f} MiB {what}" for v, what in (
                        (row.get("numba_floor_file_mib"),
                         "of it file-backed pages of shared libraries"),
                        (row.get("llvmlite_import_mib"),
                         "for import llvmlite.binding (Numba's LLVM) alone"))
                    if v is not None]
                parts += (f"; the Numba runtime alone (import numba + one trivial "
                          f"cached njit function called, no skminibatch code) takes "
                          f"{row['numba_runtime_floor_mib']:.0f} MiB"
                          + (f" ({'; '.join(floor_parts)})" if floor_parts else "")
                          + (" -- more than the 64 MiB allowance, so out of reach "
                             "for Numba-compiled kernels" if
                             row["numba_runtime_floor_mib"] > MEMORY_SLACK_MIB else "")
                          + f"; above X, y and that floor the fit takes {rest:.0f} "
                          f"MiB ({'within' if rest <= MEMORY_SLACK_MIB else 'over'}"
                          f" {MEMORY_SLACK_MIB} MiB)")
            checks.append((f"c3 {row['dtype']} b1024: {row['fit_above_imports_mib']:.0f}"
                           f" MiB{parts} vs limit {row['limit_mib']:.0f} MiB",
                           row["limit_mib"] - row["fit_above_imports_mib"], ok,
                           "(margin {:.0f} MiB)"))
        lines.append(verdict(f"peak RSS of the c3 fit at batch 1024 <= size(X) + "
                             f"size(y) + {MEMORY_SLACK_MIB} MiB above the baseline",
                             checks))
    else:
        lines.append({"target": "peak RSS of the c3 fit", "status": "not measured",
                      "detail": ""})
    return lines


# ---------------------------------------------------------------------------
# reports
# ---------------------------------------------------------------------------
def fit_range(timing):
    """Fastest-slowest of a library's timed fits in a cell (s/epoch): how far
    the machine moved them around the median."""
    vals = timing["seconds_per_epoch"]
    return f"{min(vals):.4f}–{max(vals):.4f}"


def markdown_report(meta, results, startup, memory, targets, torch_threads,
                    thread_names):
    env = meta["environment"]
    out = ["# skminibatch benchmark suite", ""]
    out.append(f"Run {meta['started']} (took {meta['duration_s'] / 60:.1f} min), "
               f"`{meta['command']}`; {provenance(env)}")
    out.append("")
    out.append(f"- Machine: {env['cpu_model']}, {env['cores_available']} cores "
               f"available ({env['cpu_count']} CPUs), SIMD: "
               f"{' '.join(env['cpu_simd_flags'])}")
    out.append(f"- Load average (1/5/15 min): start {meta['loadavg_start']}, "
               f"end {meta['loadavg_end']}")
    out.append(f"- OPENBLAS_CORETYPE={env['OPENBLAS_CORETYPE']}")
    for b in env["blas"]:
        out.append(f"- BLAS: {b['internal_api']} {b['version']} {b['architecture']}, "
                   f"{b['num_threads']} threads by default ({b['file']}; "
                   f"{b['used_by']})")
    out.append(f"- Versions: Python {env['python']}, numpy {env['numpy']}, scipy "
               f"{env['scipy']}, scikit-learn {env['scikit-learn']}, numba "
               f"{env['numba']}, skminibatch {env['skminibatch']}, torch "
               f"{env['torch'] or 'not installed'}"
               + (f" (BLAS {env.get('torch_blas')})" if env["torch"] else ""))
    out.append(f"- Threads: {meta['threads']}")
    out.append(f"- Settings: {meta['samples']} samples, {meta['epochs']} epochs per "
               f"fit, median of {meta['repeats']} fits in rotation"
               + (", each repetition a round over all cells"
                  if meta.get("repeats_in_rounds") else "")
               + ", adam, alpha 1e-4, no early stopping")
    out.append("")
    out.append("Columns: seconds per epoch (warm, median of the timed fits); "
               "ours fits / sklearn fits = the fastest and slowest of those fits "
               "(a wide range: the shared machine changed speed between the "
               "cell's repetitions); "
               "ratios = their time / ours; "
               "sk/ours CPU = the same ratio in process CPU time (all of sklearn's "
               "BLAS threads count, spin-waiting included, so it overstates "
               "sklearn's work; ours counts all its step threads, see Threads); "
               "sklearn x1 = scikit-learn with its BLAS limited to 1 thread "
               "(threadpoolctl), like our BLAS; "
               "GFLOP/s = 6 x samples x weights / s; numpy = single-threaded numpy "
               "`@` on one step's products at that batch; %np = GFLOP/s / numpy; "
               "mm = numpy time for the products a step needs / our time per step; "
               "floor s = the products floor: those products at the single-thread "
               "numpy speed of this run split perfectly over 2 cores (or numpy's "
               "own 2-thread time if faster), times n / batch -- no implementation "
               "whose products run at OpenBLAS speed can take less; ours/floor = "
               "our time / floor; numpy 2-thread scaling = numpy's time for those "
               "products on 1 BLAS thread / on 2 (about 2x when the VM gives two "
               "cores at the time of the row, about 1x when it does not); "
               "load = 1-min load average when the row started.")
    for cname, rows in results.items():
        cfg = CONFIGS[cname]
        out.append("")
        out.append(f"## {cname}: {cfg['kind']}, {cfg['n_features']} features, hidden "
                   f"{cfg['hidden']}"
                   + (f", {cfg['n_classes']} classes" if cfg["n_classes"] else "")
                   + f" ({n_weights(cfg):,} weights)")
        out.append("")
        sk1 = any("sklearn_1" in r for r in rows)
        head = ["dtype", "batch", "ours s", "sklearn s"] + (["sklearn x1 s"] if sk1
                                                             else [])
        head += ["ours fits s", "sklearn fits s"]
        head += [f"torch{thread_names[t]} s" for t in torch_threads]
        head += ["sk/ours", "sk/ours CPU"] + (["sk x1/ours"] if sk1 else [])
        head += [f"torch{thread_names[t]}/ours" for t in torch_threads]
        head += ["GFLOP/s", "numpy GFLOP/s", "%np", "mm", "floor s", "ours/floor",
                 "numpy 2-thread scaling", "µs/step", "load"]
        out.append("| " + " | ".join(head) + " |")
        out.append("|" + "---|" * len(head))
        for r in rows:
            cells = [r["dtype"], str(r["batch_size"]), f"{r['ours']['median']:.4f}",
                     f"{r['sklearn']['median']:.4f}"]
            if sk1:
                cells.append(f"{r['sklearn_1']['median']:.4f}")
            cells += [fit_range(r["ours"]), fit_range(r["sklearn"])]
            cells += [f"{r[f'torch_{t}']['median']:.4f}" for t in torch_threads]
            cells += [f"{r['sklearn_over_ours']:.1f}x", f"{cpu_ratio(r, 'sklearn'):.1f}x"]
            if sk1:
                cells.append(f"{r['sklearn_1_over_ours']:.1f}x")
            cells += [f"{r[f'torch_{t}_over_ours']:.2f}x" for t in torch_threads]
            cells += [f"{r['ours_gflops']:.1f}", f"{r['numpy_gflops']:.1f}",
                      f"{r['fraction_of_numpy']:.0%}", f"{r['mm_share']:.0%}"]
            floor = r.get("products_floor_epoch_s")
            cells += ([f"{floor:.4f}", f"{ours_over_floor(r):.2f}",
                       f"{r['numpy_2_core_scaling']:.2f}x"] if floor
                      else ["", "", ""])
            cells += [f"{r['ours_step_s'] * 1e6:.0f}",
                      f"{r['loadavg_start'][0]:.2f}" if r["loadavg_start"] else ""]
            out.append("| " + " | ".join(cells) + " |")
        models = meta["step_models"].get(cname, {})
        if models:
            out.append("")
            out.append("Per-step cost fit `t = fixed + per_sample x batch`: " + "; ".join(
                f"{dt} {lib} {m['fixed_us']:.0f} µs + {m['per_sample_us']:.2f} µs/sample"
                for dt, libs in models.items() for lib, m in libs.items() if m))
    if startup:
        imp = startup["import"]
        out += ["", "## Start-up (fresh processes)", "",
                "| measurement | seconds |", "|---|---|",
                f"| cold compile, default dense fit + predict, float64 (empty "
                f"NUMBA_CACHE_DIR), wall | {startup['cold_compile_s']:.2f} |",
                f"| the same, CPU time of the process (load-independent) | "
                f"{startup['cold_compile_cpu_s']:.2f} |",
                f"| warm-cache first-fit overhead (median of {len(startup['warm'])}) | "
                f"{startup['warm_first_fit_overhead_s']:.3f} |",
                f"| warm-cache first fit + predict overhead | "
                f"{startup['warm_first_fit_predict_overhead_s']:.3f} |",
                f"| `import sklearn` (median of {imp['runs']}) | {imp['sklearn_s']:.3f} |",
                f"| `import skminibatch` after `import sklearn` | "
                f"{imp['skminibatch_after_sklearn_s']:.3f} |",
                f"| `import sklearn.neural_network` | "
                f"{imp['sklearn_neural_network_s']:.3f} |",
                f"| `import skminibatch` after `import sklearn.neural_network` | "
                f"{imp['skminibatch_after_sklearn_neural_network_s']:.3f} |",
                f"| of which `import numba` (after `import sklearn`) | "
                f"{imp['numba_after_sklearn_s']:.3f} |"]
    if memory:
        out += ["", f"## Peak RSS, c3 fit at batch 1024 ({memory['samples']} samples, "
                f"{memory['epochs']} epochs)", "",
                "| dtype | size(X)+size(y) MiB | fit above imports MiB | limit MiB | "
                "fit above imports + loaded data MiB | of which Numba + compiled "
                "kernels (a 64-row fit; Numba counts only if the fit imports it) MiB | "
                "import numba alone MiB | Numba runtime floor (import numba + one "
                "trivial cached njit call) MiB | of which file-backed pages (shared "
                "libraries) MiB | import llvmlite.binding alone MiB | fit above X, y "
                "and that floor MiB |",
                "|---|---|---|---|---|---|---|---|---|---|---|"]
        for r in memory["rows"]:
            out.append(f"| {r['dtype']} | {(r['size_X_bytes'] + r['size_y_bytes']) / MIB:.1f}"
                       f" | {r['fit_above_imports_mib']:.1f} | {r['limit_mib']:.1f} | "
                       f"{r['fit_above_imports_data_mib']:.1f} | "
                       + (f"{r['kernel_loading_mib']:.1f} | "
                          + (f"{r['numba_import_mib']:.1f} |"
                             if r.get("numba_import_mib") is not None else "- |")
                          if r["kernel_loading_mib"] is not None else "- | - |")
                       + (f" {r['numba_runtime_floor_mib']:.1f} | "
                          + "".join("- | " if r.get(k) is None else f"{r[k]:.1f} | "
                                    for k in ("numba_floor_file_mib",
                                              "llvmlite_import_mib"))
                          + f"{r['fit_above_numba_floor_mib']:.1f} |"
                          if r.get("numba_runtime_floor_mib") is not None
                          else " - | - | - | - |"))
    out += ["", "## Targets (issue 4, section 2)", ""]
    for t in targets:
        out.append(f"- **{t['status']}** — {t['target']}"
                   + (f": {t['detail']}" if t["detail"] else ""))
    return "\n".join(out) + "\n"


# ---------------------------------------------------------------------------
# main
# ---------------------------------------------------------------------------
def render(path, out_dir):
    with open(path) as f:
        data = json.load(f)
    meta = data["meta"]
    torch_threads = meta["torch_threads"]
    thread_names = {t: f"x{t}" for t in torch_threads}
    targets = evaluate_targets(data["results"], data["startup"], data["memory"],
                               torch_threads)
    os.makedirs(out_dir, exist_ok=True)
    with open(os.path.join(out_dir, "bench_suite.md"), "w") as f:
        f.write(markdown_report(meta, data["results"], data["startup"],
                                data["memory"], targets, torch_threads, thread_names))
    print(f"wrote {os.path.join(out_dir, 'bench_suite.md')}")


def parse_args(argv):
    p = argparse.ArgumentParser(
        description="skminibatch vs scikit-learn vs PyTorch (issue 4 benchmark).",
        epilog="See the module docstring for what each number means.")
    p.add_argument("--quick", action="store_true",
                   help="smoke test (< 2 min): c1 and c3, batch 64 and 1024, float32, "
                        "1 repeat, 1 epoch, 5,000 samples, torch 1 thread only, one "
                        "process per start-up measurement")
    p.add_argument("--configs", nargs="+", choices=list(CONFIGS))
    p.add_argument("--batch-sizes", nargs="+", type=int)
    p.add_argument("--dtypes", nargs="+", choices=list(DTYPES))
    p.add_argument("--repeats", type=int,
                   help=f"timed fits per library (default {REPEATS})")
    p.add_argument("--epochs", type=int, help="epochs per fit (default 3)")
    p.add_argument("--samples", type=int, help="generated samples (default 20000)")
    p.add_argument("--no-torch", action="store_true", help="skip PyTorch")
    p.add_argument("--torch-threads", nargs="+",
                   help="torch.set_num_threads values to time ('default' = torch's "
                        "own). Default: 1, plus 'default' when the machine is not "
                        "busy (1-min load average < cores - 0.5 at the start): "
                        "oversubscribed, torch's OpenMP threads wait on each other "
                        "at every op and a batch-16 cell takes tens of minutes")
    p.add_argument("--no-sklearn-1thread", dest="sklearn_1thread",
                   action="store_false", default=None,
                   help="do not also time scikit-learn with its BLAS limited to 1 "
                        "thread (on by default except with --quick)")
    p.add_argument("--no-startup", action="store_true",
                   help="skip cold compile / first-fit / import measurements")
    p.add_argument("--no-memory", action="store_true", help="skip the peak RSS runs")
    p.add_argument("--out", default=os.path.join(HERE, "results"),
                   help="directory for bench_suite.json / bench_suite.md")
    p.add_argument("--render", metavar="JSON",
                   help="only rewrite bench_suite.md (in --out) from a results JSON")
    p.add_argument("--child", nargs=2, help=argparse.SUPPRESS)
    args = p.parse_args(argv)
    quick = args.quick
    defaults = dict(configs=["c1", "c3"] if quick else list(CONFIGS),
                    batch_sizes=[64, 1024] if quick else list(BATCH_SIZES),
                    dtypes=["float32"] if quick else list(DTYPES),
                    repeats=1 if quick else REPEATS, epochs=1 if quick else 3,
                    samples=5000 if quick else 20000)
    if args.sklearn_1thread is None:
        args.sklearn_1thread = not quick
    args.torch_threads_note = "as requested"
    if args.torch_threads is None:
        args.torch_threads = ["1"]
        load, cores = (loadavg() or [0])[0], len(os.sched_getaffinity(0))
        if quick:
            args.torch_threads_note = "--quick: 1 thread only"
        elif load < cores - 0.5:
            args.torch_threads.append("default")
            args.torch_threads_note = f"load {load} < {cores} cores - 0.5"
        else:
            args.torch_threads_note = (f"default threads skipped: load average "
                                       f"{load} on {cores} cores")
    for k, v in defaults.items():
        if getattr(args, k) is None:
            setattr(args, k, v)
    if args.repeats < 1 or args.epochs < 1 or args.samples < 2:
        p.error("--repeats, --epochs must be >= 1 and --samples >= 2")
    return args


def main(argv=None):
    argv = sys.argv[1:] if argv is None else argv
    if argv[:1] == ["--child"]:  # before any heavy import (import timing)
        result = CHILDREN[argv[1]](json.loads(argv[2]))
        print(json.dumps(result))
        return
    args = parse_args(argv)
    if args.render:
        render(args.render, args.out)
        return
    started = time.time()
    load_start = loadavg()

    def log(msg):
        print(f"[{time.time() - started:6.0f} s] {msg}", file=sys.stderr, flush=True)

    torch = None
    if not args.no_torch:
        try:
            import torch
        except ImportError:
            log("PyTorch not importable: its columns are skipped "
                "(pip install -e '.[bench]' adds it)")
    env = describe_environment(torch)
    torch_threads, thread_names = [], {}
    if torch is not None:
        default = env["torch_default_threads"]
        for t in args.torch_threads:
            n = default if t == "default" else int(t)
            if n not in torch_threads:
                torch_threads.append(n)
                thread_names[n] = f"x{n}"
    sk_threads = ", ".join(f"{b['file']}={b['num_threads']}" for b in env["blas"])
    from skminibatch._threads import (MAX_PARTS, MIN_SHARED_WORK, MIN_UNITS_HIDDEN,
                                      MIN_UNITS_WORK, ROWS_MIN_BATCH,
                                      cpu_budget)

    budget = cpu_budget()
    threads = ("ours: BLAS 1 thread inside fit (skminibatch limits SciPy's OpenBLAS "
               f"to 1 thread); steps of >= {MIN_UNITS_WORK:,} multiply-adds "
               f"(batch x weights; dense input, hidden layers >= {MIN_UNITS_HIDDEN} "
               f"units: cut by hidden units, but 2+ hidden layers at batch >= "
               f"{ROWS_MIN_BATCH} (c2, c3): by batch rows, then weights; else "
               f">= {MIN_SHARED_WORK:,}) "
               f"shared by up to {min(MAX_PARTS, budget)} "
               f"skminibatch threads (cpu_budget() = {budget}), results "
               "independent of the thread count; sklearn: default BLAS threads "
               f"({sk_threads})" + ("; also sklearn with BLAS limited to 1 thread "
                                    "(threadpoolctl)" if args.sklearn_1thread else "")
               + "; numpy matmul reference: 1 thread (threadpoolctl)")
    if torch is not None:
        threads += ("; torch: torch.set_num_threads(" + ") and (".join(
            str(t) for t in torch_threads) + f"), its default is {default} "
            f"({args.torch_threads_note})")
    else:
        threads += "; torch: not run"

    import numpy as np

    print(f"skminibatch benchmark suite — {time.strftime('%Y-%m-%d %H:%M:%S')}")
    print(f"machine: {env['cpu_model']}, {env['cores_available']} cores available, "
          f"SIMD {' '.join(env['cpu_simd_flags'])}; load average {load_start}")
    print(f"OPENBLAS_CORETYPE={env['OPENBLAS_CORETYPE']}")
    for b in env["blas"]:
        print(f"BLAS: {b['internal_api']} {b['version']} {b['architecture']} "
              f"num_threads={b['num_threads']} ({b['file']}: {b['used_by']})")
    print(f"threads: {threads}")
    print(f"{provenance(env)}; {args.samples} samples, {args.epochs} epochs/fit, {args.repeats} "
          f"repeats; times are seconds per epoch (median)")
    sys.stdout.flush()

    # every cell's data, warm-up and torch loop first; then repetition 1 of
    # every cell, repetition 2 of every cell, ... (see REPEATS)
    cells = {}
    for cname in args.configs:
        cfg = CONFIGS[cname]
        for dtype in args.dtypes:
            X, y = make_data(cfg, args.samples, dtype)
            log(f"{cname} {dtype}: warm-up")
            warm = slice(0, min(max(2000, 2 * max(args.batch_sizes)), len(X)))
            # ours at every batch size: which kernel a step runs depends on
            # the batch size (step_plan), so a warm-up at one batch size left
            # the others' to compile inside a timed fit when the Numba cache
            # was empty (c2 at batch 1024: 3.1 s an epoch against 0.11)
            for bs in args.batch_sizes:
                time_estimator(estimator_pair(cfg, bs, 1)[0], X[warm], y[warm], 1)
            theirs = estimator_pair(cfg, args.batch_sizes[0], 1)[1]
            time_estimator(theirs, X[warm], y[warm], 1)
            loop = None
            if torch is not None:
                loop = TorchLoop(torch, cfg, X, y)
                for t in torch_threads:
                    torch.set_num_threads(t)
                    loop.fit(args.batch_sizes[0], 1, n_samples=warm.stop)
            cells[cname, dtype] = [
                CellTiming(cfg, X, y, np.dtype(dtype), bs, args, loop, torch_threads)
                for bs in args.batch_sizes]
    for rep in range(args.repeats):
        for (cname, dtype), timings in cells.items():
            for cell in timings:
                log(f"repetition {rep + 1}/{args.repeats}: {cname} {dtype} batch "
                    f"{cell.batch_size}")
                cell.repeat()
    if torch is not None:
        torch.set_num_threads(default)

    results, step_models = {}, {}
    for cname in args.configs:
        cfg = CONFIGS[cname]
        results[cname] = []
        step_models[cname] = {}
        print(f"\n{cname}: {cfg['kind']}, {cfg['n_features']} features, hidden "
              f"{cfg['hidden']}" + (f", {cfg['n_classes']} classes"
                                    if cfg["n_classes"] else "")
              + f", {n_weights(cfg):,} weights")
        print(table_header(torch_threads, thread_names, args.sklearn_1thread))
        for dtype in args.dtypes:
            rows = [cell.row() for cell in cells[cname, dtype]]
            for row in rows:
                print(format_cell_line(row, torch_threads))
            results[cname] += rows
            libs = (["ours", "sklearn"] + (["sklearn_1"] if args.sklearn_1thread else [])
                    + [f"torch_{t}" for t in torch_threads])
            step_models[cname][dtype] = {lib: fit_step_model(rows, lib) for lib in libs}
            m = step_models[cname][dtype]
            if any(m.values()):
                print(f"  {dtype} per-step cost (fixed + per sample): " + "; ".join(
                    f"{lib} {v['fixed_us']:.0f} us + {v['per_sample_us']:.2f} us"
                    for lib, v in m.items() if v))
        sys.stdout.flush()
    del cells

    startup = memory = None
    if not args.no_startup:
        startup = measure_startup(args.quick, log)
        imp = startup["import"]
        print("\nstart-up (fresh processes):")
        print(f"  cold compile, default dense fit + predict (float64): "
              f"{startup['cold_compile_s']:.2f} s wall, "
              f"{startup['cold_compile_cpu_s']:.2f} s CPU (load {startup['cold_loadavg']})")
        print(f"  warm-cache first-fit overhead: "
              f"{startup['warm_first_fit_overhead_s']:.3f} s (fit + predict: "
              f"{startup['warm_first_fit_predict_overhead_s']:.3f} s)")
        print(f"  import sklearn {imp['sklearn_s']:.3f} s; import skminibatch after "
              f"it +{imp['skminibatch_after_sklearn_s']:.3f} s (after "
              f"sklearn.neural_network: +"
              f"{imp['skminibatch_after_sklearn_neural_network_s']:.3f} s; of which "
              f"import numba: {imp['numba_after_sklearn_s']:.3f} s)")
    if not args.no_memory:
        memory = measure_memory(args.samples, args.epochs, args.dtypes, args.quick,
                                log)
        print("\npeak RSS, c3 fit at batch 1024:")
        for r in memory["rows"]:
            print(f"  {r['dtype']}: size(X)+size(y) "
                  f"{(r['size_X_bytes'] + r['size_y_bytes']) / MIB:.1f} MiB; fit above "
                  f"imports {r['fit_above_imports_mib']:.1f} MiB (limit "
                  f"{r['limit_mib']:.1f}); above imports + data "
                  f"{r['fit_above_imports_data_mib']:.1f} MiB"
                  + (f" (Numba + compiled kernels, as a 64-row fit: "
                     f"{r['kernel_loading_mib']:.1f} MiB; import numba alone "
                     f"{r['numba_import_mib']:.1f} MiB; the rest of the fit: "
                     f"{r['fit_above_tiny_fit_mib']:.1f} MiB)"
                     if r["kernel_loading_mib"] is not None else ""))

    targets = evaluate_targets(results, startup, memory, torch_threads)
    print("\ntargets (issue 4, section 2):")
    for t in targets:
        print(f"  [{t['status']}] {t['target']}"
              + (f": {t['detail']}" if t["detail"] else ""))

    meta = {"started": time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(started)),
            "duration_s": time.time() - started,
            "command": "python benchmarks/bench_suite.py" + (
                " " + " ".join(argv) if argv else ""),
            "loadavg_start": load_start, "loadavg_end": loadavg(),
            "environment": env, "threads": threads, "samples": args.samples,
            "epochs": args.epochs, "repeats": args.repeats, "repeats_in_rounds": True,
            "batch_sizes": args.batch_sizes, "dtypes": args.dtypes,
            "torch_threads": torch_threads, "step_models": step_models}
    os.makedirs(args.out, exist_ok=True)
    with open(os.path.join(args.out, "bench_suite.json"), "w") as f:
        json.dump({"meta": meta, "configs": {k: CONFIGS[k] for k in results},
                   "results": results, "startup": startup, "memory": memory,
                   "targets": targets}, f, indent=1)
    with open(os.path.join(args.out, "bench_suite.md"), "w") as f:
        f.write(markdown_report(meta, results, startup, memory, targets,
                                torch_threads, thread_names))
    print(f"\nwrote {os.path.join(args.out, 'bench_suite.json')} and bench_suite.md "
          f"({(time.time() - started) / 60:.1f} min; load average now "
          f"{meta['loadavg_end']})")


if __name__ == "__main__":
    main()
