"""Training loops: the stochastic epoch loop (sgd / adam) and L-BFGS.

Layers: :func:`run_stochastic` (epochs, stopping rules, early stopping,
verbose output, Ctrl-C) -> :func:`_run_epoch` (one epoch = ``steps_per_epoch``
steps of the stream, in compiled chunks of 0.2-0.3 s, see
:func:`~skminibatch._batching.call_length`) -> a training kernel,
``train_steps_units`` or ``train_steps`` (gather -> forward -> backward ->
update, many steps per call; :func:`skminibatch._threads.step_plan` picks). Everything works on a :class:`FitState` that the estimator commits to
its fitted attributes only when the run ends cleanly, so a failed fit or
``partial_fit`` leaves the estimator as it was.
"""

import copy
import time
import warnings

import numpy as np
import scipy.optimize

from ._batching import BatchStream, call_length, steps_for_seconds
from ._kernels import _codes as C
from ._kernels import network
from ._sklearn_compat import ConvergenceWarning
from ._threads import (ThreadChoice, aligned_empty, run_train_steps,
                       single_threaded_blas, step_plan, training_threads)


# scikit-learn's wording, kept so code matching on it keeps working
NONFINITE_MESSAGE = (
    "Solver produced non-finite parameter weights. The input data may contain "
    "large values and need to be preprocessed."
)


#: Guessed seconds per multiply-add (batch x weights) of a step, for the
#: length of a fit's first compiled call: ~25x what it measured here, so the
#: first call stays well under ``FIRST_CALL_SECONDS`` on slower machines.
FIRST_GUESS_SECONDS_PER_MAC = 2e-9
FIRST_CALL_SECONDS = 0.05


class FitState:
    """Everything a fit produces or continues from (weights in flat form)."""

    def __init__(self):
        self.params = None
        self.n_iter = 0
        self.t = 0
        self.loss = None
        self.loss_curve = []
        self.best_loss = np.inf
        self.no_improvement_count = 0
        self.validation_scores = None
        self.validation_loss_curve = None
        self.best_validation_score = None
        self.best_params = None
        self.optimizer = None  # dict, see new_optimizer_state

    def copy(self):
        return copy.deepcopy(self)


def new_optimizer_state(solver, n_params, dtype, learning_rate_init):
    """Fresh optimizer state: velocities (sgd) or moments (adam)."""
    state = {
        "solver": solver,
        "learning_rate": float(learning_rate_init),
        "state1": np.zeros(n_params, dtype=dtype),
        "state2": np.zeros(n_params if solver == "adam" else 0, dtype=dtype),
        "adam_t": 0,
    }
    return state


class _EpochBuffers:
    """Batch and activation buffers, allocated once per fit, for the kernel
    ``kernel`` (see :func:`skminibatch._threads.step_plan`)."""

    def __init__(self, layout, batch_size, n_features, n_outputs, dtype, n_parts,
                 sparse, kernel="train_steps"):
        self.kernel = kernel
        self.n_parts = n_parts
        # train_steps on dense input: one block of gradient sums per part
        self.grads = aligned_empty(
            layout.n_params * (1 if sparse or kernel != "train_steps" else n_parts),
            dtype)
        if kernel == "train_steps_units":
            self._init_units(layout, batch_size, n_features, n_outputs, dtype,
                             n_parts)
            return
        # the batch's rows (train_steps, dense; sparse rows are read in place)
        self.Xb = aligned_empty(0 if sparse else batch_size * n_features, dtype)
        self.Yb = aligned_empty((batch_size, n_outputs), dtype)
        self.swb = aligned_empty(batch_size, dtype)
        self.row_loss = aligned_empty(batch_size, np.float64)
        self.acts = aligned_empty(layout.act_size(batch_size), dtype)
        self.deltas = aligned_empty(self.acts.shape, dtype)
        # sparse with parts: their first-layer products (train_steps)
        self.partials = aligned_empty(n_parts * batch_size * int(layout.units[1])
                                      if sparse and n_parts > 1 else 0, dtype)
        self.l2_parts = aligned_empty(8 * n_parts, np.float64)
        self.act_off = layout.act_offsets(batch_size)
        # dense float64, wide first layer: that layer kept transposed
        self.first_t = network().first_layer_buffer(layout.units, dtype, sparse,
                                                    batch_size, n_parts)
        self.blas = network().blas_functions()

    def _init_units(self, layout, batch_size, n_features, n_outputs, dtype,
                    n_parts):
        """Buffers of ``train_steps_units`` (see its docstring): per thread
        a copy of the batch, per part packed weights and hidden blocks."""
        K = network()
        weights, acts, deltas, partials = K.units_buffer_sizes(
            layout.units, n_parts, batch_size)
        self.Xb = aligned_empty(n_parts * K._padded.py_func(batch_size * n_features),
                                dtype)
        self.Yb = aligned_empty((n_parts, batch_size, n_outputs), dtype)
        self.swb = aligned_empty((n_parts, batch_size), dtype)
        self.row_loss = aligned_empty((n_parts, batch_size), np.float64)
        self.acts = aligned_empty(acts, dtype)
        self.deltas = aligned_empty(deltas, dtype)
        self.partials = aligned_empty(partials, dtype)
        self.l2_parts = aligned_empty((2, 8 * n_parts), np.float64)
        self.packed = aligned_empty((4, n_parts * weights), dtype)
        self.plan = K.units_plan(layout.units, n_parts, batch_size)
        self.blas = K.blas_functions()

    def kernel_args(self, xin, Y, sw, order, first_batch, n_steps, batch_size,
                    params, optimizer, hyper, layout, hidden_code, out_code,
                    solver, nesterov, loss_acc):
        """Arguments of ``self.kernel`` after ``(tid, n_threads, n_parts,
        sync)``; ``optimizer`` is a dict as :func:`new_optimizer_state`."""
        head = (order, first_batch, n_steps, batch_size, params, self.grads,
                optimizer["state1"], optimizer["state2"], hyper, layout.units,
                layout.coef_off, layout.icpt_off, self.Xb, self.Yb, self.swb,
                self.row_loss, self.acts, self.deltas, self.partials)
        tail = (hidden_code, out_code, solver, nesterov, optimizer["adam_t"],
                loss_acc)
        if self.kernel == "train_steps_units":
            return ((xin.dense, Y, sw) + head + (self.l2_parts, self.packed,
                                                 self.plan) + tail + (self.blas,))
        return ((*xin.args(), Y, sw) + head + (self.l2_parts, self.act_off,
                                                self.first_t) + tail + (self.blas,))


class StochasticRun:
    """One call of ``fit`` / ``partial_fit`` with sgd or adam.

    Parameters are the resolved, validated pieces the estimator hands over;
    ``state`` is mutated (the estimator passes a copy).
    """

    def __init__(self, est, layout, hidden_code, out_code, X, Y, sw, state,
                 batch_size, steps_per_epoch, random_state, validation=None,
                 max_epochs=None, train_rows=None):
        self.est = est
        self.layout = layout
        self.hidden_code = hidden_code
        self.out_code = out_code
        self.X, self.Y, self.sw = X, Y, sw
        self.state = state
        self.batch_size = batch_size
        self.steps_per_epoch = steps_per_epoch
        self.validation = validation  # params -> (score, loss), or None
        self.max_epochs = est.max_iter if max_epochs is None else max_epochs
        if train_rows is None:
            train_rows = np.arange(X.n_rows)
        self.stream = BatchStream(train_rows, batch_size, est.shuffle, random_state)
        dtype = X.dtype
        # how each step is cut for threads: from the shape only (_threads.py)
        self.n_parts, self.kernel = step_plan(batch_size, layout, X.sparse)
        self.buffers = _EpochBuffers(layout, batch_size, X.n_features, Y.shape[1],
                                     dtype, self.n_parts, X.sparse, self.kernel)
        self._threads_now = lambda n_parts: 1  # set while training
        self._thread_choice = ThreadChoice()
        self.dtype = dtype
        # the first call's length from a pessimistic guess of the step's
        # time (a one-step probe call cost ~1 ms of a 50 ms fit); later calls
        # from measured times
        self._steps_per_call = steps_for_seconds(
            FIRST_GUESS_SECONDS_PER_MAC * batch_size * layout.n_params,
            target=FIRST_CALL_SECONDS)
        self.interrupted = False
        # optional ``hook(state, last) -> bool``, called after every finished
        # epoch, after the stopping rules' bookkeeping (``last``: training
        # ends after this epoch anyway); returning True ends training. The
        # estimators use it for scikit-learn's callbacks.
        self.on_epoch_end = None

    # -- one epoch ----------------------------------------------------------
    def _hyper(self):
        est, opt = self.est, self.state.optimizer
        return np.array(
            [opt["learning_rate"], est.momentum, est.beta_1, est.beta_2,
             est.epsilon, est.alpha, np.finfo(self.dtype).eps,
             est.learning_rate_init],
            dtype=np.float64,
        )

    def _run_epoch(self):
        """Run ``steps_per_epoch`` steps; return (mean loss, samples seen)."""
        est, st, opt, b, lay = self.est, self.state, self.state.optimizer, \
            self.buffers, self.layout
        hyper = self._hyper()
        K = network()
        solver = C.ADAM if opt["solver"] == "adam" else C.SGD
        remaining = self.steps_per_epoch
        loss_sum, seen, loss_rows = 0.0, 0, 0
        while remaining > 0:
            room = self.stream.room_in_pass()
            threads, trial = self._thread_choice.choose(
                self._threads_now(self.n_parts), self._steps_per_call)
            per_call = (self._thread_choice.trial_steps(self._steps_per_call)
                        if trial else self._steps_per_call)
            n_steps = (min(remaining, room, per_call) if trial
                       else call_length(per_call, min(remaining, room)))
            t0 = time.perf_counter()
            loss_sum, part_seen, part_rows, updates = run_train_steps(
                K, threads, self.n_parts,
                b.kernel_args(self.X, self.Y, self.sw, self.stream.order,
                              self.stream.next_batch, n_steps, self.batch_size,
                              st.params, opt, hyper, lay, self.hidden_code,
                              self.out_code, solver, bool(est.nesterovs_momentum),
                              loss_sum),
                self.kernel,
            )
            elapsed = time.perf_counter() - t0
            self._thread_choice.record(threads, n_steps, elapsed)
            # hand control back to Python about every 0.2-0.3 s (Ctrl-C, progress)
            self._steps_per_call = steps_for_seconds(elapsed / n_steps)
            self.stream.advance(n_steps)
            if solver == C.ADAM:
                opt["adam_t"] += updates
            remaining -= n_steps
            seen += part_seen
            loss_rows += part_rows
        # an epoch made only of zero-weight batches has no loss to report
        return (loss_sum / loss_rows if loss_rows else float("nan")), seen

    # -- the epoch loop -------------------------------------------------------
    def run(self, incremental):
        est, st = self.est, self.state
        name = type(est).__name__
        early = self.validation is not None
        try:
            with single_threaded_blas(), training_threads() as threads_now:
                self._threads_now = threads_now
                self._epochs(incremental, early, name)
        except KeyboardInterrupt:
            self.interrupted = True
            warnings.warn("Training interrupted by user.", UserWarning)
        if early:
            st.params = st.best_params.copy()

    def _epochs(self, incremental, early, name):
        for _ in range(self.max_epochs):
            epoch_loss, seen = self._run_epoch()
            st = self.state
            st.n_iter += 1
            st.t += seen
            st.loss = float(epoch_loss)
            st.loss_curve.append(st.loss)
            if self.est.verbose:
                print("Iteration %d, loss = %.8f" % (st.n_iter, st.loss))
            stop = self._end_of_epoch(st, early, name, incremental)
            last = stop or incremental or st.n_iter == self.max_epochs
            if self.on_epoch_end is not None and self.on_epoch_end(st, last):
                break
            if stop or incremental:
                break
            if st.n_iter == self.max_epochs:
                warnings.warn(
                    "Stochastic Optimizer: Maximum iterations (%d) reached and "
                    "the optimization hasn't converged yet." % self.max_epochs,
                    ConvergenceWarning,
                )

    def _end_of_epoch(self, st, early, name, incremental):
        """The stopping rules' bookkeeping after an epoch; True to stop."""
        est = self.est
        if early and self._check_validation(st):
            return True
        self._check_finite(name, incremental)
        if not early:
            self._update_loss_improvement(st)
        if st.optimizer["solver"] == "sgd" and est.learning_rate == "invscaling":
            st.optimizer["learning_rate"] = (
                est.learning_rate_init / (st.t + 1) ** est.power_t
            )
        if st.no_improvement_count > est.n_iter_no_change:
            if self._trigger_stopping(early):
                return True
            st.no_improvement_count = 0
        return False

    def _check_finite(self, name, incremental):
        st = self.state
        if not np.isfinite(st.params).all():
            call = "partial_fit" if incremental else "fit"
            raise ValueError(
                NONFINITE_MESSAGE
                + f" ({name}.{call}: the weights became NaN or inf in epoch "
                f"{st.n_iter}, training loss {st.loss!r}; a smaller "
                f"learning_rate_init than {self.est.learning_rate_init} may help."
                + (" The model is left as it was before this call.)" if incremental
                   else ")")
            )

    def _update_loss_improvement(self, st):
        if st.loss > st.best_loss - self.est.tol:
            st.no_improvement_count += 1
        else:
            st.no_improvement_count = 0
        if st.loss < st.best_loss:
            st.best_loss = st.loss

    def _check_validation(self, st):
        """Score the held-out set; returns True when training must end."""
        score, loss = self.validation(st.params)
        st.validation_scores.append(score)
        st.validation_loss_curve.append(loss)
        if self.est.verbose:
            print("Validation score: %f" % score)
        if not np.isfinite(score):
            warnings.warn(
                f"The validation score became non-finite in epoch {st.n_iter}; "
                "training stops and the best weights so far are kept.",
                ConvergenceWarning,
            )
            return True
        if score < st.best_validation_score + self.est.tol:
            st.no_improvement_count += 1
        else:
            st.no_improvement_count = 0
        if score > st.best_validation_score:
            st.best_validation_score = score
            st.best_params = st.params.copy()
        return False

    def _trigger_stopping(self, early):
        est, opt = self.est, self.state.optimizer
        what = "Validation score" if early else "Training loss"
        verb = "improve" if early else "improve"
        msg = (
            "%s did not %s more than tol=%f for %d consecutive epochs."
            % (what, verb, est.tol, est.n_iter_no_change)
        )
        if opt["solver"] == "sgd" and est.learning_rate == "adaptive":
            if opt["learning_rate"] <= 1e-6:
                if est.verbose:
                    print(msg + " Learning rate too small. Stopping.")
                return True
            opt["learning_rate"] /= 5.0
            if est.verbose:
                print(msg + " Setting learning rate to %f" % opt["learning_rate"])
            return False
        if est.verbose:
            print(msg + " Stopping.")
        return True


def run_lbfgs(est, layout, hidden_code, out_code, X, Y, sw, state):
    """Full-batch L-BFGS-B (scipy) on the compiled loss and gradient."""
    dtype = X.dtype
    chunk = layout.rows_per_chunk(X.n_rows, 256)
    acts = np.empty(layout.act_size(chunk), dtype=dtype)
    deltas = np.empty_like(acts)
    act_off = layout.act_offsets(chunk)
    params = state.params
    grads = np.empty_like(params)
    chunk_grads = np.empty_like(params)
    eps = float(np.finfo(dtype).eps)
    alpha = float(est.alpha)

    K = network()

    def loss_and_grad(x):
        params[:] = x
        loss = K.full_loss_grad(*X.args(), Y, sw, params, grads, chunk_grads,
                                layout.units,
                                layout.coef_off, layout.icpt_off, acts, deltas,
                                act_off, hidden_code, out_code, alpha, eps, chunk)
        return loss, grads.astype(np.float64)

    iteration = [0]

    def progress(intermediate_result):
        iteration[0] += 1
        print("Iteration %d, loss = %.8f" % (iteration[0], intermediate_result.fun))

    with single_threaded_blas():  # reproducible across n_jobs (_threads.py)
        result = _minimize(loss_and_grad, params, est, progress)
    if result.status != 0:
        message = result.message
        if isinstance(message, bytes):
            message = message.decode("latin1")
        warnings.warn(
            f"lbfgs failed to converge after {result.nit} iteration(s) "
            f"(status={result.status}): {message}\nIncrease the number of "
            "iterations (max_iter) or function evaluations (max_fun), or scale "
            "the data.",
            ConvergenceWarning,
        )
    params[:] = result.x
    state.n_iter = int(result.nit)
    state.loss = float(result.fun)


def _minimize(loss_and_grad, params, est, progress):
    return scipy.optimize.minimize(
        loss_and_grad,
        params.astype(np.float64),
        method="L-BFGS-B",
        jac=True,
        callback=progress if est.verbose else None,
        options={"maxfun": est.max_fun, "maxiter": est.max_iter, "gtol": est.tol},
    )
