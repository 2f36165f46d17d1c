"""One training step of skminibatch's kernel, timed on one and on two threads.

A developer's tool beside ``bench_suite.py``. For a network shape, batch
size and dtype it builds the buffers a fit would (the kernel and cut that
``step_plan`` picks), then times calls of ``--steps`` steps each (by
default as many as make a call of ~0.2 s, as a fit's calls), one thread
and two threads alternately, in one process on the same data::

    python benchmarks/bench_step.py --units 100,100,1 --batch 64
    python benchmarks/bench_step.py --units 784,256,256,10 --batch 1024 --dtype float32
    python benchmarks/bench_step.py --units 100,100,1 --batch 64 --watch 20
    python benchmarks/bench_step.py --units 784,256,256,10 --batch 1024 --against HEAD

It prints microseconds a step (median and quartiles) on each thread count
and the two-thread speedup. ``--watch SECONDS`` prints the pairs as a time
series instead. On a shared VM the second core's speed changes for seconds
at a time (measured here: c1 float32 at batch 64 moved between 28 and 56 us
a step on two threads while one thread stayed at 49-50), which moves every
two-thread measurement; a look at the series before a ``bench_suite.py`` run
shows which state the machine is in. Both thread counts compute the same
numbers (see ``skminibatch/_threads.py``), so only the time differs.

``--against REV`` compares two versions of the kernels instead: the
package as committed at git revision ``REV`` (exported once into a
directory under the system's temporary directory, kept for the next run
with its Numba cache, and imported as ``skminibatch_<commit>``) and the
working tree's, both on ``--threads`` threads, alternately in one process.
It prints each one's microseconds a step and the median and quartiles of
their per-round ratio. Measured this way, two kernels a few percent apart
separate even while the machine's speed moves by more than that between
runs of separate processes.

Data are random: X standard normal, targets one-hot over ``units[-1]``
classes (binary labels for one output; ``--loss squared`` for a regressor's
output), relu, adam, every weight updated at every step.
"""

import argparse
import importlib
import os
import statistics
import subprocess
import sys
import tempfile
import time

import numpy as np


def parse_args(argv):
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--units", default="100,100,1",
                   help="n_features,hidden...,n_outputs (default c1: 100,100,1)")
    p.add_argument("--batch", type=int, default=64)
    p.add_argument("--dtype", choices=("float64", "float32"), default="float64")
    p.add_argument("--loss", choices=("log", "squared"), default="log")
    p.add_argument("--samples", type=int, default=20000)
    p.add_argument("--steps", type=int, default=0,
                   help="steps a call (default: a call of about 0.2 s, as in a fit)")
    p.add_argument("--repeats", type=int, default=15, help="calls per thread count")
    p.add_argument("--watch", type=float, default=0.0,
                   help="print one-/two-thread pairs for this many seconds")
    p.add_argument("--against", metavar="REV",
                   help="compare the working tree's kernels with git revision REV's")
    p.add_argument("--threads", type=int, default=2,
                   help="threads of each call with --against (default 2)")
    args = p.parse_args(argv)
    try:
        args.units = [int(u) for u in args.units.split(",")]
    except ValueError:
        p.error(f"--units must be integers separated by commas, got {args.units!r}")
    if len(args.units) < 3 or min(args.units) < 1:
        p.error("--units needs n_features, at least one hidden layer and n_outputs, "
                "all >= 1")
    if args.batch < 1 or args.batch > args.samples:
        p.error("--batch must be between 1 and --samples")
    if args.repeats < 1 or args.steps < 0 or args.watch < 0:
        p.error("--repeats must be >= 1, --steps and --watch >= 0")
    if args.threads < 1:
        p.error("--threads must be >= 1")
    if args.against and args.watch:
        p.error("--against and --watch do not go together")
    return args


def export_revision(rev):
    """Import name of the ``skminibatch`` package as committed at git
    revision ``rev`` of this checkout, exported (once) next to a Numba
    cache of its own."""
    repo = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

    def git(*cmd, **kw):
        return subprocess.run(["git", "-C", repo, *cmd], check=True,
                              capture_output=True, **kw).stdout

    try:
        commit = git("rev-parse", "--verify", f"{rev}^{{commit}}", text=True).strip()
    except (OSError, subprocess.CalledProcessError) as exc:
        raise SystemExit(f"--against: {rev!r} is not a commit of {repo}") from exc
    name = f"skminibatch_{commit[:12]}"
    root = os.path.join(tempfile.gettempdir(), "skminibatch-bench-step")
    target = os.path.join(root, name)
    if not os.path.isdir(target):
        os.makedirs(root, exist_ok=True)
        tmp = tempfile.mkdtemp(dir=root)  # complete before it takes the name
        for path in git("ls-tree", "-r", "--name-only", commit, "skminibatch",
                        text=True).split():
            dest = os.path.join(tmp, path)
            os.makedirs(os.path.dirname(dest), exist_ok=True)
            with open(dest, "wb") as f:
                f.write(git("show", f"{commit}:{path}"))
        os.replace(os.path.join(tmp, "skminibatch"), target)
        os.rmdir(tmp)
    if root not in sys.path:
        sys.path.insert(0, root)
    return name, commit


class StepTimer:
    """The buffers and arguments of one fit's kernel, timed per call."""

    def __init__(self, units, batch, dtype, loss, samples, package="skminibatch"):
        def module(name):
            return importlib.import_module(f"{package}.{name}")

        C = module("_kernels._codes")
        KernelInput, Layout = module("_layout").KernelInput, module("_layout").Layout
        step_plan = module("_threads").step_plan
        _EpochBuffers = module("_training")._EpochBuffers
        new_optimizer_state = module("_training").new_optimizer_state

        self._run = module("_threads").run_train_steps
        self.K = module("_kernels").network()
        rng = np.random.default_rng(0)
        n_out = units[-1]
        self.X = KernelInput(rng.standard_normal((samples, units[0])).astype(dtype))
        if loss == "squared":
            self.Y = rng.standard_normal((samples, n_out)).astype(dtype)
            self.out_code = C.OUT_SQUARED
        elif n_out == 1:
            self.Y = (rng.random((samples, 1)) < 0.5).astype(dtype)
            self.out_code = C.OUT_BINARY_LOG
        else:
            self.Y = np.eye(n_out, dtype=dtype)[rng.integers(0, n_out, samples)]
            self.out_code = C.OUT_SOFTMAX_LOG
        self.sw = np.ones(samples, dtype=dtype)
        self.order = rng.permutation(samples).astype(np.int64)
        self.layout = Layout(units)
        self.batch = batch
        self.n_parts, self.kernel = step_plan(batch, self.layout, False)
        self.buffers = _EpochBuffers(self.layout, batch, units[0], n_out, dtype,
                                     self.n_parts, False, self.kernel)
        self.params = (rng.standard_normal(self.layout.n_params) * 0.05).astype(dtype)
        self.opt = new_optimizer_state("adam", self.layout.n_params, dtype, 1e-3)
        # the kernels' hyperparameter vector, laid out as StochasticRun._hyper
        # builds it: learning rate, momentum, beta_1, beta_2, epsilon, alpha,
        # dtype eps, learning_rate_init
        self.hyper = np.array([1e-3, 0.9, 0.9, 0.999, 1e-8, 1e-4,
                               np.finfo(dtype).eps, 1e-3])
        self.hidden_code, self.solver_code = C.RELU, C.ADAM
        self.n_batches = samples // batch

    def seconds_per_step(self, threads, first_batch, n_steps):
        args = self.buffers.kernel_args(
            self.X, self.Y, self.sw, self.order, first_batch, n_steps, self.batch,
            self.params, self.opt, self.hyper, self.layout, self.hidden_code,
            self.out_code, self.solver_code, False, 0.0)
        t0 = time.perf_counter()
        self._run(self.K, min(threads, self.n_parts), self.n_parts, args, self.kernel)
        return (time.perf_counter() - t0) / n_steps


#: Seconds a timed call lasts by default: a fit's calls last about this
#: long. Shorter calls over-count what a call costs once: the hidden-unit
#: kernel copies the weights in and out once a call (784-256-256-10 at batch
#: 16, float32: 1.3 ms a step on two threads in calls of 9 steps, 0.31 ms
#: in calls of 500).
CALL_SECONDS = 0.2


def calls_of(timer, steps, threads):
    """Steps a call: ``steps``, or as many as make a call of about
    ``CALL_SECONDS`` (doubled from 8 until a call lasts that long)."""
    timer.seconds_per_step(threads, 0, min(2, timer.n_batches))  # compiles or loads
    if steps:
        return min(steps, timer.n_batches)
    n = min(8, timer.n_batches)
    while (n < timer.n_batches
           and timer.seconds_per_step(threads, 0, n) * n < CALL_SECONDS):
        n = min(2 * n, timer.n_batches)
    return n


def quartiles(vals):
    return np.percentile(vals, [25, 75])


def compare(args):
    """``--against``: the revision's kernels and the working tree's, timed
    alternately; returns ``{label: seconds a step per call}``."""
    from skminibatch._threads import single_threaded_blas

    name, commit = export_revision(args.against)
    timers = {}
    for label, package in ((f"{args.against} ({commit[:12]})", name),
                           ("working tree", "skminibatch")):
        timers[label] = StepTimer(args.units, args.batch, np.dtype(args.dtype),
                                  args.loss, args.samples, package)
    (old, a), (new, b) = timers.items()
    with single_threaded_blas():
        steps = min(calls_of(t, args.steps, args.threads) for t in timers.values())
        print(f"units {args.units}, batch {args.batch}, {args.dtype}, {args.threads} "
              f"thread(s), {steps} steps a call; kernels: {a.kernel} ({a.n_parts} "
              f"part(s)) against {b.kernel} ({b.n_parts})")
        times = {old: [], new: []}
        for call in range(args.repeats):
            first = (call * steps) % max(1, a.n_batches - steps + 1)
            for label in ((old, new) if call % 2 == 0 else (new, old)):
                times[label].append(timers[label].seconds_per_step(
                    args.threads, first, steps))
    for label, vals in times.items():
        q = quartiles(vals) * 1e6
        print(f"{label}: {statistics.median(vals) * 1e6:.1f} us a step "
              f"(quartiles {q[0]:.1f}-{q[1]:.1f}, {len(vals)} calls)")
    ratios = [x / y for x, y in zip(times[old], times[new])]
    q = quartiles(ratios)
    print(f"{old} / working tree, per pair of calls: median "
          f"{statistics.median(ratios):.3f} (quartiles {q[0]:.3f}-{q[1]:.3f})")
    return times


def main(argv=None):
    args = parse_args(sys.argv[1:] if argv is None else argv)
    if args.against:
        return compare(args)
    from skminibatch._threads import single_threaded_blas

    timer = StepTimer(args.units, args.batch, np.dtype(args.dtype), args.loss,
                      args.samples)
    with single_threaded_blas():
        steps = calls_of(timer, args.steps, 1)
        print(f"units {args.units}, batch {args.batch}, {args.dtype}: kernel "
              f"{timer.kernel}, {timer.n_parts} part(s) a step, {steps} steps a call"
              + ("" if timer.n_parts > 1 else
                 " (one part: a second thread has nothing to do)"))
        times = {1: [], 2: []}
        start = time.perf_counter()
        call = 0
        line = []
        while True:
            first = (call * steps) % max(1, timer.n_batches - steps + 1)
            for threads in ((1, 2) if call % 2 == 0 else (2, 1)):
                times[threads].append(timer.seconds_per_step(threads, first, steps))
            call += 1
            if args.watch:
                line.append(f"{times[2][-1] * 1e6:.0f}/{times[1][-1] * 1e6:.0f}")
                if len(line) == 10:
                    print(f"t={time.perf_counter() - start:6.1f} s  two/one thread "
                          f"us a step: " + " ".join(line), flush=True)
                    line = []
                if time.perf_counter() - start >= args.watch:
                    break
            elif call >= args.repeats:
                break
    for threads, vals in times.items():
        q = quartiles(vals) * 1e6
        print(f"{threads} thread{'s' if threads > 1 else ''}: "
              f"{statistics.median(vals) * 1e6:.1f} us a step "
              f"(quartiles {q[0]:.1f}-{q[1]:.1f}, {len(vals)} calls)")
    print(f"two-thread speedup: "
          f"{statistics.median(times[1]) / statistics.median(times[2]):.2f}x")
    return times


if __name__ == "__main__":
    main()
