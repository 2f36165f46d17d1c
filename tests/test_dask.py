"""Beyond one machine (DESIGN §6, issue 5 §4): joblib's Dask backend on a
``dask.distributed`` cluster runs a grid search to the same result as a
serial one, with workers as threads of this process and as separate
processes; and ``partial_fit`` driven over the blocks of a dask array
(``dask_ml.wrappers.Incremental``, and a plain loop over ``to_delayed()``
blocks) gives the same model as the same loop over NumPy blocks.

Worker processes inherit this process's environment, so they use the same
``NUMBA_CACHE_DIR`` and load the kernels instead of compiling them.

The searches use a small ``max_iter``, so most fits stop there with a
ConvergenceWarning; those tests ignore that warning (and only that one).
"""

import logging
import os
import warnings

import joblib
import numpy as np
import pytest
from sklearn.datasets import load_digits
from sklearn.exceptions import ConvergenceWarning
from sklearn.model_selection import GridSearchCV
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import StandardScaler

from skminibatch import MiniBatchMLPClassifier, MiniBatchMLPRegressor
from skminibatch._kernels import _config
from _search_checks import assert_same_search

da = pytest.importorskip("dask.array")
distributed = pytest.importorskip("distributed")

ignore_convergence = pytest.mark.filterwarnings(
    "ignore::sklearn.exceptions.ConvergenceWarning"
)

GRID = {"mlp__batch_size": [16, 64], "mlp__steps_per_epoch": [None, 5]}


def _search(n_jobs):
    pipe = Pipeline([
        ("scale", StandardScaler()),
        ("mlp", MiniBatchMLPClassifier(hidden_layer_sizes=(16,), max_iter=5,
                                       learning_rate_init=0.01, random_state=0)),
    ])
    return GridSearchCV(pipe, GRID, cv=2, n_jobs=n_jobs)


@pytest.fixture(scope="module")
def digits_slice():
    X, y = load_digits(return_X_y=True)
    return X[:300], y[:300]


@pytest.fixture(scope="module")
def serial_search(digits_slice):
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", category=ConvergenceWarning)
        return _search(n_jobs=1).fit(*digits_slice)


def _local_cluster(processes):
    return distributed.LocalCluster(
        processes=processes, n_workers=2, threads_per_worker=1,
        dashboard_address=None, silence_logs=logging.ERROR,
        # dashboard_address=None turns the dashboard off, but the scheduler
        # still serves HTTP (/health, /metrics) on port 8787 by default and
        # warns when that port is taken (by the other cluster of this
        # module, or anything else on the machine): use a free loopback port.
        scheduler_kwargs={"dashboard_address": "127.0.0.1:0"},
    )


@pytest.fixture(scope="module")
def thread_client():
    """A two-worker cluster whose workers are threads of this process."""
    with _local_cluster(processes=False) as cluster, \
            distributed.Client(cluster) as client:
        yield client


@pytest.fixture(scope="module")
def process_client():
    """A two-worker cluster whose workers are separate processes."""
    with _local_cluster(processes=True) as cluster, \
            distributed.Client(cluster) as client:
        yield client


def _fit_on_dask(client, X, y):
    """Fit a search through joblib's Dask backend; check the workers ran it."""
    before = _tasks_run(client)
    with joblib.parallel_backend("dask"):
        search = _search(n_jobs=-1).fit(X, y)
    ran = _tasks_run(client)
    # the 4 cells x 2 folds ran on the cluster (joblib may batch several
    # fits into one task once it has timed a few)
    assert sum(ran.values()) > sum(before.values()), (before, ran)
    return search


def _tasks_run(client):
    """{worker address: tasks it has executed so far}"""
    def count(dask_worker):
        return dask_worker.state.executed_count

    return client.run(count)


@ignore_convergence
def test_grid_search_on_dask_threads_same_as_serial(thread_client, digits_slice,
                                                    serial_search):
    search = _fit_on_dask(thread_client, *digits_slice)
    assert_same_search(serial_search, search)


@ignore_convergence
def test_grid_search_on_dask_processes_same_as_serial(process_client, digits_slice,
                                                      serial_search):
    search = _fit_on_dask(process_client, *digits_slice)
    assert_same_search(serial_search, search)

    def kernel_state():
        from skminibatch._kernels import _config, _network

        dispatchers = [getattr(_network, n) for n in dir(_network)
                       if hasattr(getattr(_network, n), "stats")]
        return dict(
            pid=os.getpid(),
            cache_dir=os.environ.get("NUMBA_CACHE_DIR"),
            cache_enabled=_config.CACHE_ENABLED,
            hits=sum(sum(d.stats.cache_hits.values()) for d in dispatchers),
            misses=sum(sum(d.stats.cache_misses.values()) for d in dispatchers),
        )

    workers = process_client.run(kernel_state)
    assert len(workers) == 2
    for state in workers.values():
        assert state["pid"] != os.getpid()
        assert state["cache_dir"] == os.environ.get("NUMBA_CACHE_DIR")
        if _config.CACHE_ENABLED:
            # this process compiled (or loaded) and cached the kernels for
            # the serial search; the workers load them instead of compiling
            assert state["misses"] == 0 and state["hits"] > 0, state


def _blocks_data():
    rng = np.random.RandomState(0)
    X = rng.normal(size=(400, 6))
    y_class = (X[:, 0] + X[:, 1] > 0).astype(int)
    y_reg = np.sin(X[:, 0]) + X[:, 1] * X[:, 2]
    return X, y_class, y_reg


def _numpy_block_loop(est, X, y, n_blocks, passes, **fit_params):
    for _ in range(passes):
        for Xb, yb in zip(np.array_split(X, n_blocks), np.array_split(y, n_blocks)):
            est.partial_fit(Xb, yb, **fit_params)
    return est


def _assert_same_weights(a, b):
    for ca, cb in zip(a.coefs_ + a.intercepts_, b.coefs_ + b.intercepts_):
        np.testing.assert_array_equal(ca, cb)


def test_incremental_partial_fit_over_dask_blocks(process_client):
    # process workers: the model is pickled to a worker and back after
    # fit, then out again for the second pass, which must continue from its
    # optimizer state exactly as the uninterrupted NumPy loop does
    wrappers = pytest.importorskip("dask_ml.wrappers")
    X, y, _ = _blocks_data()
    dX = da.from_array(X, chunks=(100, -1))
    dy = da.from_array(y, chunks=100)
    assert dX.numblocks == (4, 1)

    def make():
        return MiniBatchMLPClassifier(hidden_layer_sizes=(8,), batch_size=32,
                                      learning_rate_init=0.03, random_state=0)

    # two passes over the four blocks, in order (no block shuffling)
    before = _tasks_run(process_client)
    inc = wrappers.Incremental(make(), shuffle_blocks=False)
    inc.fit(dX, dy, classes=[0, 1])
    inc.partial_fit(dX, dy)
    # the 8 partial_fit calls ran on the cluster
    assert sum(_tasks_run(process_client).values()) - sum(before.values()) >= 8
    expected = _numpy_block_loop(make(), X, y, n_blocks=4, passes=2,
                                 classes=[0, 1])
    _assert_same_weights(inc.estimator_, expected)
    # one loss_curve_ entry per partial_fit call, every sample seen twice
    assert len(inc.estimator_.loss_curve_) == len(expected.loss_curve_) == 8
    assert inc.estimator_.t_ == expected.t_ == 2 * 400
    np.testing.assert_array_equal(inc.predict(dX).compute(), expected.predict(X))
    # it learned something in 8 small epochs
    assert expected.score(X, y) > 0.9


def test_plain_loop_over_dask_blocks(thread_client):
    X, _, y = _blocks_data()
    dX = da.from_array(X, chunks=(100, -1))
    dy = da.from_array(y, chunks=100)

    def make():
        return MiniBatchMLPRegressor(hidden_layer_sizes=(8,), batch_size=32,
                                     learning_rate_init=0.01, random_state=0)

    est = make()
    for _ in range(2):
        for Xb, yb in zip(dX.to_delayed().ravel(), dy.to_delayed()):
            Xb, yb = thread_client.compute([Xb, yb], sync=True)
            est.partial_fit(Xb, yb)
    expected = _numpy_block_loop(make(), X, y, n_blocks=4, passes=2)
    _assert_same_weights(est, expected)
    assert len(est.loss_curve_) == 8 and est.t_ == 2 * 400
