"""Plots of a fit and of a ``batch_size`` x ``steps_per_epoch`` search.

scikit-learn's Display convention: a class holding the data to draw, a
``plot`` method that draws it and stores the matplotlib artists in
attributes ending in ``_``, and ``from_*`` class methods that collect the
data from a fitted object and plot it.

matplotlib is optional (the ``plot`` extra) and imported only when something
is drawn: importing skminibatch never imports it.
"""

from collections.abc import Mapping
from numbers import Number

import numpy as np

from ._sklearn_compat import check_is_fitted


def _pyplot(caller):
    """``matplotlib.pyplot``, or an ImportError saying how to get it."""
    try:
        import matplotlib.pyplot as plt
    except ImportError as exc:
        raise ImportError(
            f"{caller} requires matplotlib. Install it with `pip install "
            "matplotlib` (or `pip install skminibatch[plot]`)."
        ) from exc
    return plt


def _axes(ax, caller):
    plt = _pyplot(caller)
    if ax is None:
        _, ax = plt.subplots()
    return ax


def _curve(values, name):
    """A 1-D float array, or a ValueError naming ``name``."""
    arr = np.asarray(values, dtype=np.float64)
    if arr.ndim != 1 or arr.shape[0] == 0:
        raise ValueError(
            f"{name} must be a non-empty 1-D sequence of numbers, got shape "
            f"{arr.shape}."
        )
    return arr


class LossCurveDisplay:
    """Loss curve of a fit: training loss per epoch, and with early stopping
    the validation loss and the validation score.

    The training loss and the validation loss share the left axis; the
    validation score (accuracy for a classifier, R² for a regressor) has its
    own axis on the right. Create one with :meth:`from_estimator`, or from
    the curves themselves and then call :meth:`plot`.

    Parameters
    ----------
    loss_curve : array-like of shape (n_epochs,)
        Training loss of each epoch (an estimator's ``loss_curve_``).

    validation_scores : array-like of shape (n_validation_epochs,), default=None
        Validation score after each epoch (``validation_scores_``). When
        shorter than ``loss_curve`` (a warm start that switched early stopping
        on), the scores belong to the last epochs.

    validation_loss_curve : array-like of shape (n_validation_epochs,), \
            default=None
        Validation loss after each epoch (``validation_loss_curve_``), on the
        training loss's scale; aligned with the last epochs like
        ``validation_scores``.

    estimator_name : str, default=None
        Name of the estimator, shown in the title. None: no title.

    Attributes
    ----------
    line_ : matplotlib Line2D
        The training loss.

    validation_loss_line_ : matplotlib Line2D or None
        The validation loss, None without one.

    validation_score_line_ : matplotlib Line2D or None
        The validation score, None without one.

    ax_ : matplotlib Axes
        The axes of the losses.

    score_ax_ : matplotlib Axes or None
        The twin axes of the validation score, None without one.

    figure_ : matplotlib Figure
        The figure holding the axes.

    See Also
    --------
    BatchStepsDisplay : Heatmap of a batch_size x steps_per_epoch search.

    Examples
    --------
    >>> import matplotlib
    >>> matplotlib.use("Agg")  # no window: draw into memory
    >>> import matplotlib.pyplot as plt
    >>> from sklearn.datasets import load_iris
    >>> from skminibatch import LossCurveDisplay, MiniBatchMLPClassifier
    >>> X, y = load_iris(return_X_y=True)
    >>> clf = MiniBatchMLPClassifier(hidden_layer_sizes=(16,), batch_size=16,
    ...                              learning_rate_init=0.01, early_stopping=True,
    ...                              random_state=0).fit(X, y)
    >>> display = LossCurveDisplay.from_estimator(clf)
    >>> display.ax_.get_xlabel(), display.ax_.get_ylabel()
    ('epoch', 'loss')
    >>> list(display.line_.get_ydata()) == clf.loss_curve_
    True
    >>> display.score_ax_.get_ylabel()
    'validation score'
    >>> plt.close(display.figure_)
    """

    def __init__(self, loss_curve, validation_scores=None,
                 validation_loss_curve=None, estimator_name=None):
        self.loss_curve = loss_curve
        self.validation_scores = validation_scores
        self.validation_loss_curve = validation_loss_curve
        self.estimator_name = estimator_name

    def plot(self, ax=None, *, name=None, loss_kwargs=None,
             validation_loss_kwargs=None, validation_score_kwargs=None):
        """Draw the curves.

        Parameters
        ----------
        ax : matplotlib Axes, default=None
            Axes to draw the losses on; None: a new figure. The validation
            score goes on a twin of these axes.

        name : str, default=None
            Title; None: ``estimator_name``.

        loss_kwargs : dict, default=None
            Keyword arguments for the training loss's ``ax.plot``.

        validation_loss_kwargs : dict, default=None
            Keyword arguments for the validation loss's ``ax.plot``.

        validation_score_kwargs : dict, default=None
            Keyword arguments for the validation score's ``plot``.

        Returns
        -------
        display : LossCurveDisplay
            This object, with the artists stored in its attributes.
        """
        loss = _curve(self.loss_curve, "loss_curve")
        n_epochs = loss.shape[0]
        extras = {}
        for key in ("validation_loss_curve", "validation_scores"):
            values = getattr(self, key)
            if values is None or len(values) == 0:
                continue
            values = _curve(values, key)
            if values.shape[0] > n_epochs:
                raise ValueError(
                    f"{key} has {values.shape[0]} values but loss_curve only "
                    f"{n_epochs} epochs."
                )
            # aligned with the last epochs (early stopping switched on by a
            # warm start records validation values from then on)
            epochs = np.arange(n_epochs - values.shape[0] + 1, n_epochs + 1)
            extras[key] = (epochs, values)

        ax = _axes(ax, "LossCurveDisplay")
        epochs = np.arange(1, n_epochs + 1)
        (self.line_,) = ax.plot(
            epochs, loss, **{"label": "training loss", "color": "C0",
                             **(loss_kwargs or {})}
        )
        self.validation_loss_line_ = None
        self.validation_score_line_ = None
        self.score_ax_ = None
        if "validation_loss_curve" in extras:
            (self.validation_loss_line_,) = ax.plot(
                *extras["validation_loss_curve"],
                **{"label": "validation loss", "color": "C1",
                   **(validation_loss_kwargs or {})},
            )
        if "validation_scores" in extras:
            self.score_ax_ = ax.twinx()
            (self.validation_score_line_,) = self.score_ax_.plot(
                *extras["validation_scores"],
                **{"label": "validation score", "color": "C2", "linestyle": "--",
                   **(validation_score_kwargs or {})},
            )
            self.score_ax_.set_ylabel("validation score")
        ax.set_xlabel("epoch")
        ax.set_ylabel("loss")
        lines = [line for line in (self.line_, self.validation_loss_line_,
                                   self.validation_score_line_) if line is not None]
        # one legend for both axes, on the top one so no line hides it
        top = self.score_ax_ if self.score_ax_ is not None else ax
        top.legend(lines, [line.get_label() for line in lines], loc="best")
        title = self.estimator_name if name is None else name
        if title is not None:
            ax.set_title(title)
        self.ax_ = ax
        self.figure_ = ax.figure
        return self

    @classmethod
    def from_estimator(cls, estimator, ax=None, *, name=None, **kwargs):
        """Plot the loss curve of a fitted estimator.

        Parameters
        ----------
        estimator : estimator or Pipeline
            A fitted ``MiniBatchMLPClassifier`` or ``MiniBatchMLPRegressor``
            trained with ``solver='sgd'`` or ``'adam'`` (scikit-learn's
            ``MLPClassifier`` / ``MLPRegressor`` work too), or a Pipeline
            ending in one.

        ax : matplotlib Axes, default=None
            Axes to draw on; None: a new figure.

        name : str, default=None
            Title; None: the estimator's class name.

        **kwargs : dict
            Passed to :meth:`plot`.

        Returns
        -------
        display : LossCurveDisplay
            The display, drawn.

        Raises
        ------
        NotFittedError
            If the estimator is not fitted.
        ValueError
            If it has no loss curve (``solver='lbfgs'`` records none).
        """
        if hasattr(estimator, "steps"):  # a Pipeline: its final step
            estimator = estimator.steps[-1][1]
        check_is_fitted(estimator)
        loss_curve = getattr(estimator, "loss_curve_", None)
        if loss_curve is None:
            solver = getattr(estimator, "solver", None)
            raise ValueError(
                f"{type(estimator).__name__} has no loss_curve_ to plot"
                + (" (solver='lbfgs' records no per-epoch loss; use 'sgd' or "
                   "'adam')." if solver == "lbfgs" else ".")
            )
        display = cls(
            loss_curve=loss_curve,
            validation_scores=getattr(estimator, "validation_scores_", None),
            validation_loss_curve=getattr(estimator, "validation_loss_curve_", None),
            estimator_name=type(estimator).__name__,
        )
        return display.plot(ax=ax, name=name, **kwargs)


# ---------------------------------------------------------------------------
# batch_size x steps_per_epoch heatmap

_UNSET = object()  # a candidate that did not set a parameter (masked entry)


def _same(a, b):
    """Parameter values equal (lists, tuples, arrays and estimators too)."""
    if a is b:
        return True
    try:
        eq = a == b
        if np.ndim(eq) == 0:
            return bool(eq)
        return np.shape(a) == np.shape(b) and bool(np.all(eq))
    except Exception:
        return False


def _distinct(values):
    out = []
    for v in values:
        if not any(_same(v, o) for o in out):
            out.append(v)
    return out


def _plain(value):
    """NumPy scalars as Python ones (for labels and the ``*_`` lists)."""
    return value.item() if isinstance(value, np.generic) else value


def _sort_key(value):
    """None / 'auto' first, then numbers ascending, then anything else."""
    if value is None or isinstance(value, str):
        return (0, 0, str(value))
    if isinstance(value, Number):
        return (1, float(value), "")
    return (2, 0, repr(value))


def _param_values(cv_results, key, n_candidates, defaults):
    """Candidate values of ``param_<key>``; masked entries (a candidate
    whose grid did not set it) take the estimator's value when known."""
    column = cv_results["param_" + key]
    data = np.ma.getdata(column)
    mask = np.ma.getmaskarray(column)
    if len(data) != n_candidates:
        raise ValueError(
            f"cv_results_['param_{key}'] has {len(data)} entries, expected "
            f"{n_candidates}."
        )
    default = defaults.get(key, _UNSET)
    return [default if m else _plain(v) for v, m in zip(data, mask)]


def _find_key(names, name, prefix):
    """The search's parameter called ``name`` whatever its prefix."""
    if prefix is not None:
        matches = [k for k in names if k == prefix + name]
    else:
        matches = [k for k in names if k == name or k.endswith("__" + name)]
    if not matches:
        where = f"'{prefix}{name}'" if prefix is not None else \
            f"'{name}' or '<step>__{name}'"
        raise ValueError(
            f"The search has no {name} parameter: no {where} among its "
            f"parameters {sorted(names)}. BatchStepsDisplay needs both "
            "batch_size and steps_per_epoch in the searched grid."
        )
    if len(matches) > 1:
        raise ValueError(
            f"The search has several {name} parameters {matches}; pass "
            f"prefix= (e.g. prefix={matches[0][:-len(name)]!r}) to choose one."
        )
    return matches[0]


def _resolve_fixed_key(names, key, prefix):
    if key in names:
        return key
    matches = [k for k in names if k == prefix + key or k.endswith("__" + key)]
    if len(matches) == 1:
        return matches[0]
    raise ValueError(
        f"fixed_params names {key!r}, which is not one of the search's "
        f"parameters {sorted(names)}" + (" unambiguously" if matches else "") + "."
    )


def _describe(values):
    return "[" + ", ".join("<not set>" if v is _UNSET else repr(v)
                           for v in values) + "]"


class BatchStepsDisplay:
    """Heatmap of a search's metric over ``batch_size`` x ``steps_per_epoch``.

    Rows are batch sizes (growing upwards), columns ``steps_per_epoch``
    values (``None``, one pass over the training set per epoch, first); each
    cell is annotated with its value. Create one with
    :meth:`from_cv_results`, or from the values themselves and then call
    :meth:`plot`.

    Parameters
    ----------
    values : array-like of shape (n_batch_sizes, n_steps_values)
        ``values[i, j]`` is the metric at ``batch_sizes[i]`` and
        ``steps_per_epoch_values[j]``; NaN for a cell not searched.

    batch_sizes : sequence of length n_batch_sizes
        The rows' ``batch_size`` values (ints, or ``'auto'``).

    steps_per_epoch_values : sequence of length n_steps_values
        The columns' ``steps_per_epoch`` values (ints, or None).

    metric : str, default='mean_test_score'
        Name of the metric: the colorbar's label.

    estimator_name : str, default=None
        Shown in the title with the metric.

    Attributes
    ----------
    values_ : ndarray of shape (n_batch_sizes, n_steps_values)
        The values drawn (float).

    batch_sizes_ : list
        The rows' batch sizes, bottom to top.

    steps_per_epoch_values_ : list
        The columns' ``steps_per_epoch`` values, left to right.

    image_ : matplotlib AxesImage
        The heatmap.

    text_ : ndarray of shape (n_batch_sizes, n_steps_values) of matplotlib \
            Text, or None
        The cell annotations (None when ``values_format=False``).

    colorbar_ : matplotlib Colorbar or None
        The colorbar (None when ``colorbar=False``).

    ax_ : matplotlib Axes
        The axes.

    figure_ : matplotlib Figure
        The figure holding the axes.

    See Also
    --------
    LossCurveDisplay : Loss and validation curves of one fit.

    Examples
    --------
    >>> import matplotlib
    >>> matplotlib.use("Agg")  # no window: draw into memory
    >>> import matplotlib.pyplot as plt
    >>> from sklearn.datasets import load_iris
    >>> from sklearn.model_selection import GridSearchCV
    >>> from skminibatch import BatchStepsDisplay, MiniBatchMLPClassifier
    >>> X, y = load_iris(return_X_y=True)
    >>> mlp = MiniBatchMLPClassifier(hidden_layer_sizes=(16,),
    ...                              learning_rate_init=0.01, early_stopping=True,
    ...                              random_state=0)
    >>> grid = {"batch_size": [16, 64], "steps_per_epoch": [None, 4]}
    >>> search = GridSearchCV(mlp, grid, cv=3).fit(X, y)
    >>> display = BatchStepsDisplay.from_cv_results(search)
    >>> display.batch_sizes_, display.steps_per_epoch_values_
    ([16, 64], [None, 4])
    >>> [label.get_text() for label in display.ax_.get_xticklabels()]
    ['None (one pass)', '4']
    >>> display.values_.shape
    (2, 2)
    >>> plt.close(display.figure_)

    The fit time, from the ``cv_results_`` dict:

    >>> display = BatchStepsDisplay.from_cv_results(search.cv_results_,
    ...                                             metric="mean_fit_time")
    >>> display.colorbar_.ax.get_ylabel()
    'mean_fit_time'
    >>> plt.close(display.figure_)
    """

    def __init__(self, values, batch_sizes, steps_per_epoch_values, *,
                 metric="mean_test_score", estimator_name=None):
        self.values = values
        self.batch_sizes = batch_sizes
        self.steps_per_epoch_values = steps_per_epoch_values
        self.metric = metric
        self.estimator_name = estimator_name

    def plot(self, ax=None, *, cmap="viridis", colorbar=True, values_format=".3g",
             imshow_kwargs=None, text_kwargs=None):
        """Draw the heatmap.

        Parameters
        ----------
        ax : matplotlib Axes, default=None
            Axes to draw on; None: a new figure.

        cmap : str or matplotlib Colormap, default='viridis'
            Colormap of the cells.

        colorbar : bool, default=True
            Whether to add a colorbar labelled with the metric.

        values_format : str or False, default='.3g'
            Format spec of the cell annotations; False: no annotations.

        imshow_kwargs : dict, default=None
            Keyword arguments for ``ax.imshow``.

        text_kwargs : dict, default=None
            Keyword arguments for the annotations' ``ax.text``.

        Returns
        -------
        display : BatchStepsDisplay
            This object, with the artists stored in its attributes.
        """
        values = np.asarray(self.values, dtype=np.float64)
        batch_sizes = [_plain(b) for b in self.batch_sizes]
        steps = [_plain(s) for s in self.steps_per_epoch_values]
        if values.shape != (len(batch_sizes), len(steps)) or values.size == 0:
            raise ValueError(
                f"values has shape {values.shape}; expected (len(batch_sizes), "
                f"len(steps_per_epoch_values)) = ({len(batch_sizes)}, "
                f"{len(steps)}), not empty."
            )
        ax = _axes(ax, "BatchStepsDisplay")
        image = ax.imshow(
            values, **{"origin": "lower", "cmap": cmap, "aspect": "auto",
                       "interpolation": "nearest", **(imshow_kwargs or {})}
        )
        ax.set_xticks(np.arange(len(steps)))
        ax.set_xticklabels(["None (one pass)" if s is None else str(s)
                            for s in steps])
        ax.set_yticks(np.arange(len(batch_sizes)))
        ax.set_yticklabels([str(b) for b in batch_sizes])
        ax.set_xlabel("steps_per_epoch")
        ax.set_ylabel("batch_size")
        ax.set_title(self.metric if self.estimator_name is None
                     else f"{self.estimator_name}: {self.metric}")

        self.text_ = None
        if values_format is not False:
            self.text_ = np.empty(values.shape, dtype=object)
            for (i, j), v in np.ndenumerate(values):
                if np.isfinite(v):
                    label = format(v, values_format)
                    # dark text on light cells, light on dark ones
                    r, g, b, _ = image.cmap(image.norm(v))
                    color = "black" if 0.299 * r + 0.587 * g + 0.114 * b > 0.5 \
                        else "white"
                else:
                    label, color = "n/a", "black"
                self.text_[i, j] = ax.text(
                    j, i, label, **{"ha": "center", "va": "center", "color": color,
                                    **(text_kwargs or {})}
                )
        self.colorbar_ = None
        if colorbar:
            self.colorbar_ = ax.figure.colorbar(image, ax=ax)
            self.colorbar_.set_label(self.metric)

        self.values_ = values
        self.batch_sizes_ = batch_sizes
        self.steps_per_epoch_values_ = steps
        self.image_ = image
        self.ax_ = ax
        self.figure_ = ax.figure
        return self

    @classmethod
    def from_cv_results(cls, search, metric="mean_test_score", *, ax=None,
                        fixed_params=None, prefix=None, **kwargs):
        """Plot a search's metric over ``batch_size`` x ``steps_per_epoch``.

        The parameters are found whatever their prefix: ``batch_size``,
        ``mlp__batch_size`` (a Pipeline step), and so on. When the search
        varied other parameters too, choose one slice of it with
        ``fixed_params``.

        Parameters
        ----------
        search : fitted search or dict
            A fitted ``GridSearchCV`` / ``RandomizedSearchCV`` /
            ``HalvingGridSearchCV``..., or its ``cv_results_`` dict.

        metric : str, default='mean_test_score'
            The ``cv_results_`` key to draw, e.g. ``'mean_test_score'``,
            ``'mean_fit_time'``, ``'mean_train_score'`` or
            ``'mean_test_<scorer>'`` for a multi-metric search.

        ax : matplotlib Axes, default=None
            Axes to draw on; None: a new figure.

        fixed_params : dict, default=None
            ``{parameter: value}`` choosing the candidates drawn when the
            search varied other parameters; names as in the search (prefix
            optional when unambiguous).

        prefix : str, default=None
            The parameters' prefix (e.g. ``'mlp__'``), when the search has
            more than one ``batch_size`` parameter; None: found.

        **kwargs : dict
            Passed to :meth:`plot`.

        Returns
        -------
        display : BatchStepsDisplay
            The display, drawn.

        Raises
        ------
        NotFittedError
            If ``search`` is a search that is not fitted.
        ValueError
            If the search has no ``batch_size`` or ``steps_per_epoch``
            parameter, ``metric`` is not in its results, other parameters
            vary and ``fixed_params`` does not choose one value for each, or
            ``fixed_params`` selects nothing.
        """
        defaults, estimator = {}, None
        if isinstance(search, Mapping):
            cv_results = search
        else:
            check_is_fitted(search, "cv_results_")
            cv_results = search.cv_results_
            estimator = getattr(search, "estimator", None)
            if estimator is not None and hasattr(estimator, "get_params"):
                defaults = estimator.get_params(deep=True)

        names = [k[len("param_"):] for k in cv_results if k.startswith("param_")]
        bs_key = _find_key(names, "batch_size", prefix)
        found_prefix = bs_key[:-len("batch_size")]
        steps_key = _find_key(names, "steps_per_epoch", found_prefix)

        if metric not in cv_results:
            available = sorted(k for k in cv_results
                               if k.startswith(("mean_", "std_", "rank_")))
            raise ValueError(
                f"metric={metric!r} is not in the search's results; available: "
                f"{available}."
            )
        scores = np.asarray(cv_results[metric], dtype=np.float64)
        n = scores.shape[0]
        columns = {k: _param_values(cv_results, k, n, defaults) for k in names}
        for key in (bs_key, steps_key):
            if any(v is _UNSET for v in columns[key]):
                raise ValueError(
                    f"Some candidates do not set {key} (a list of grids); pass "
                    "the fitted search, not its cv_results_ dict, so the "
                    "estimator's value can fill them in."
                )

        keep = np.ones(n, dtype=bool)
        for name, value in (fixed_params or {}).items():
            key = _resolve_fixed_key(names, name, found_prefix)
            if key in (bs_key, steps_key):
                raise ValueError(
                    f"fixed_params cannot fix {key}: it is an axis of the heatmap."
                )
            match = np.array([_same(v, value) for v in columns[key]])
            if not (keep & match).any():
                raise ValueError(
                    f"fixed_params {name}={value!r} selects no candidate; the "
                    f"search tried {_describe(_distinct(columns[key]))}."
                )
            keep &= match

        rows = np.flatnonzero(keep)
        varying = {}
        for key in names:
            if key not in (bs_key, steps_key):
                seen = _distinct([columns[key][i] for i in rows])
                if len(seen) > 1:
                    varying[key] = seen
        if varying:
            example = {k: v[0] for k, v in varying.items() if v[0] is not _UNSET}
            raise ValueError(
                "Other parameters than batch_size and steps_per_epoch vary in "
                "this search: "
                + ", ".join(f"{k} in {_describe(v)}" for k, v in varying.items())
                + f". Choose one slice of the grid with fixed_params, e.g. "
                f"fixed_params={example!r}."
            )

        batch_sizes = sorted(_distinct([columns[bs_key][i] for i in rows]),
                             key=_sort_key)
        steps = sorted(_distinct([columns[steps_key][i] for i in rows]),
                       key=_sort_key)
        values = np.full((len(batch_sizes), len(steps)), np.nan)
        filled = np.zeros(values.shape, dtype=bool)
        for i in rows:
            r = next(k for k, b in enumerate(batch_sizes)
                     if _same(b, columns[bs_key][i]))
            c = next(k for k, s in enumerate(steps)
                     if _same(s, columns[steps_key][i]))
            if filled[r, c]:
                raise ValueError(
                    f"Several candidates have {bs_key}={batch_sizes[r]!r} and "
                    f"{steps_key}={steps[c]!r}; the cell would be ambiguous."
                )
            filled[r, c] = True
            values[r, c] = scores[i]

        name = None
        if estimator is not None:
            owner = defaults.get(found_prefix[:-2]) if found_prefix else estimator
            name = type(owner if owner is not None else estimator).__name__
        display = cls(values, batch_sizes, steps, metric=metric,
                      estimator_name=name)
        return display.plot(ax=ax, **kwargs)
