"""Docstring pieces shared by the two estimators (numpydoc)."""

PARAMETERS = """
    hidden_layer_sizes : array-like of shape (n_layers - 2,), default=(100,)
        Width of each hidden layer.

    activation : {'identity', 'logistic', 'tanh', 'relu'}, default='relu'
        Hidden-layer activation.

    solver : {'lbfgs', 'sgd', 'adam'}, default='adam'
        Weight optimiser. ``'sgd'`` and ``'adam'`` train on mini-batches from
        the batch stream; ``'lbfgs'`` is full-batch L-BFGS-B and ignores
        ``batch_size``, ``steps_per_epoch`` and the learning-rate settings.

    alpha : float, default=1e-4
        L2 penalty. Its term is divided by the sum of the batch's sample
        weights (the batch size when unweighted), as in scikit-learn.

    batch_size : int or 'auto', default='auto'
        Samples per gradient step; ``'auto'`` is ``min(200, n_samples)``. A
        value above the number of training samples is clipped to it with a
        ``UserWarning``.

    learning_rate : {'constant', 'invscaling', 'adaptive'}, default='constant'
        Schedule for ``solver='sgd'``. It changes at epoch ends, so with
        ``steps_per_epoch`` it changes as often as epochs end.

    learning_rate_init : float, default=1e-3
        Initial step size (``'sgd'``, ``'adam'``).

    power_t : float, default=0.5
        Exponent of the ``'invscaling'`` schedule.

    max_iter : int, default=200
        Maximum number of epochs (``'sgd'``, ``'adam'``) or L-BFGS iterations.

    shuffle : bool, default=True
        Draw each pass over the training samples in a fresh random order.

    random_state : int, RandomState instance or None, default=None
        Seeds initialisation, the early-stopping split and shuffling. An int
        gives a bit-identical fit in any process.

    tol : float, default=1e-4
        Improvement below which an epoch counts as "no improvement".

    verbose : bool, default=False
        Print the loss (and validation score) after every epoch.

    warm_start : bool, default=False
        Continue ``fit`` from ``coefs_`` / ``intercepts_`` (also weights you
        assigned) instead of new random weights; optimizer state restarts.

    momentum : float, default=0.9
        Momentum of ``'sgd'``.

    nesterovs_momentum : bool, default=True
        Use Nesterov's momentum with ``'sgd'``.

    early_stopping : bool, default=False
        Hold out ``validation_fraction`` of the data (stratified for
        single-label classification, binary and multiclass), score it after
        every epoch, stop after ``n_iter_no_change`` epochs without an
        improvement of ``tol`` and keep the best weights.

    validation_fraction : float, default=0.1
        Share of the data held out when ``early_stopping=True``.

    beta_1 : float, default=0.9
        Adam's first-moment decay.

    beta_2 : float, default=0.999
        Adam's second-moment decay.

    epsilon : float, default=1e-8
        Adam's numerical-stability constant.

    n_iter_no_change : int, default=10
        Epochs without improvement before stopping (or, with
        ``learning_rate='adaptive'``, before dividing the rate by 5).

    max_fun : int, default=15000
        Maximum loss evaluations of ``'lbfgs'``.

    steps_per_epoch : int or None, default=None
        Gradient steps per epoch. ``None`` means one pass over the training
        samples, ``ceil(n_train / batch_size)`` steps. Batches come from one
        stream of passes that does not restart at epoch ends, so this only
        moves where epochs end: where the loss is recorded, where ``tol``,
        early stopping and the learning-rate schedule are checked, and what
        ``max_iter`` and ``n_iter_`` count.
"""

ATTRIBUTES = """
    loss_ : float
        Training loss of the last epoch (L2 term included).

    best_loss_ : float or None
        Lowest epoch loss; ``None`` with early stopping.

    loss_curve_ : list of float
        Loss of every epoch: the batch-size-weighted mean of each batch's
        loss before its update.

    validation_scores_ : list of float or None
        Held-out score after every epoch when ``early_stopping=True``.

    validation_loss_curve_ : list of float or None
        Held-out loss after every epoch when ``early_stopping=True`` (the
        training loss's formula on the validation set, L2 term included).
        scikit-learn's MLP has no such attribute.

    best_validation_score_ : float or None
        Best of ``validation_scores_``.

    t_ : int
        Training samples seen by the solver (sum of batch lengths).

    coefs_ : list of ndarray of shape (n_fan_in, n_fan_out)
        Weight matrices, one per layer: the one source of truth for the
        weights (``warm_start`` and ``partial_fit`` continue from them).

    intercepts_ : list of ndarray of shape (n_fan_out,)
        Bias vectors, one per layer.

    n_features_in_ : int
        Number of features seen during fit.

    feature_names_in_ : ndarray of shape (`n_features_in_`,)
        Feature names, when X had string column names.

    n_iter_ : int
        Epochs run by the last ``fit`` (iterations for ``'lbfgs'``).

    n_layers_ : int
        Number of layers, input and output included.

    n_outputs_ : int
        Number of outputs.

    out_activation_ : str
        Output activation.

    batch_size_ : int or None
        Batch size the last fit used (``None`` for ``'lbfgs'``).

    steps_per_epoch_ : int or None
        Steps per epoch the last fit used (``None`` for ``'lbfgs'``).
"""


def fill(template):
    return template.replace("%(parameters)s", PARAMETERS.strip("\n")).replace(
        "%(attributes)s", ATTRIBUTES.strip("\n")
    )
