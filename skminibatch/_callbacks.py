"""scikit-learn's callback API (``sklearn.callback``, scikit-learn >= 1.9).

The estimators report one task per ``fit`` / ``partial_fit`` call and, with
``sgd`` / ``adam``, one subtask per epoch, so ``est.set_callbacks(ProgressBar())``
shows epoch progress, also when a ``GridSearchCV`` or a ``Pipeline`` that has
the callback propagates it to the estimator. A callback's stop request
(``on_fit_task_end`` returning True) ends training after that epoch.
``lbfgs`` reports the fit task only (scipy runs its iterations).

The epoch loop (:mod:`skminibatch._training`) knows nothing of this: it calls
a plain ``hook(state, last) -> stop?`` after each epoch, built here.
With older scikit-learn, or an estimator without callbacks, every method
here is a no-op and the loop gets no hook at all.
"""


class _NoTasks:
    """Stand-in when there is nothing to report."""

    def epoch_hook(self, run):
        return None

    def end_fit(self, est):
        pass


_NO_TASKS = _NoTasks()


def begin_fit(est, X, y, sample_weight, incremental):
    """Open the root task of one ``fit`` / ``partial_fit`` call.

    Call it once, first thing in the call, before anything can fail:
    scikit-learn tears the callbacks down after the call only when the root
    context exists.

    Parameters
    ----------
    est : estimator
        The estimator being fitted.
    X, y, sample_weight
        The call's arguments, passed on to the callbacks as given (a callback
        such as ``ScoringMonitor`` scores on them).
    incremental : bool
        True for ``partial_fit`` (one epoch per call).

    Returns
    -------
    tasks : FitTasks or a no-op object with the same methods
    """
    if not hasattr(est, "_init_callback_context"):  # scikit-learn < 1.9
        return _NO_TASKS
    if est.solver == "lbfgs":
        max_epochs = 0  # a leaf: scipy's iterations are not reported
    else:
        max_epochs = 1 if incremental else int(est.max_iter)
    root = est._init_callback_context(task_name="fit", max_subtasks=max_epochs)
    metadata = None if sample_weight is None else {"sample_weight": sample_weight}
    root.call_on_fit_task_begin(estimator=est, X=X, y=y, metadata=metadata)
    if not getattr(est, "_skl_callbacks", None):
        # no callback here; the root task was still opened (and its end is
        # still reported) so a meta-estimator's task tree stays whole
        return FitTasks(root, X, y, metadata, max_epochs, epochs=False)
    return FitTasks(root, X, y, metadata, max_epochs)


class FitTasks:
    """The callback tasks of one ``fit`` / ``partial_fit`` call.

    Epoch k's task begins before epoch k runs and ends in the hook after it;
    the next epoch's task begins only when the loop says training goes on
    (the hook's ``last`` flag covers the stopping rules, ``max_iter`` and
    ``partial_fit``'s single epoch). An epoch interrupted by Ctrl-C is
    closed by :meth:`end_fit`.
    """

    def __init__(self, root, X, y, metadata, max_epochs, epochs=True):
        self.root = root
        self.X, self.y, self.metadata = X, y, metadata
        self.epochs = epochs and max_epochs > 0
        self._open = None  # context of the epoch that has begun, not ended
        self._run = None

    # -- per epoch ------------------------------------------------------------
    def epoch_hook(self, run):
        """``hook(state, last) -> stop?`` for ``run``, or None without
        callbacks."""
        if not self.epochs:
            return None
        self._run = run
        self._begin_epoch(run.est)

        def hook(state, last):
            stop = self._end_epoch(run.est, state)
            if not (stop or last):
                self._begin_epoch(run.est)
            return stop

        return hook

    def _begin_epoch(self, est):
        self._open = self.root.subcontext(task_name="epoch")
        self._open.call_on_fit_task_begin(
            estimator=est, X=self.X, y=self.y, metadata=self.metadata,
            reconstruction_attributes=lambda: self._attributes(self._run.state),
        )

    def _end_epoch(self, est, state):
        ctx, self._open = self._open, None
        return ctx.call_on_fit_task_end(
            estimator=est, X=self.X, y=self.y, metadata=self.metadata,
            reconstruction_attributes=lambda: self._attributes(state),
        )

    def _attributes(self, state):
        """What a copy of the estimator needs to predict with the weights
        of ``state`` (the rest is set before training starts)."""
        coefs, intercepts = self._run.layout.unpack(state.params)
        return {
            "coefs_": coefs,
            "intercepts_": intercepts,
            "n_iter_": state.n_iter,
            "t_": state.t,
            "loss_": state.loss,
            "loss_curve_": list(state.loss_curve),
        }

    # -- end of the call --------------------------------------------------------
    def end_fit(self, est):
        """Close a still open epoch and end the root task (after a
        successful call: the fitted attributes are set)."""
        if self._open is not None:
            # the loop calls the hook after every finished epoch, so an epoch
            # still open was interrupted (Ctrl-C) before it finished
            ctx, self._open = self._open, None
            ctx.call_on_fit_task_end(estimator=est)
        self.root.call_on_fit_task_end(
            estimator=est, X=self.X, y=self.y, metadata=self.metadata,
            reconstruction_attributes={},
        )
