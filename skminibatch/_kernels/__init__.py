"""Compiled kernels. :func:`network` imports them (and Numba) on first use,
so ``import skminibatch`` stays light."""

import contextlib
import gc
import sys

_NETWORK = __name__ + "._network"


@contextlib.contextmanager
def gc_paused():
    """Python's cyclic garbage collector off for the block (restored after;
    left off if it was off).

    Importing Numba and setting up its compiler runtime allocate some
    100,000 objects. Each time the youngest generation fills up, a
    collection runs, and the oldest one traverses every object the process
    holds -- scikit-learn's and SciPy's modules included. Paused, the first
    fit's Numba start-up took 0.24-0.28 s instead of 0.32-0.43 s (measured
    after ``import sklearn.neural_network``); what the block leaves behind
    is collected at the next collection after it.
    """
    enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if enabled:
            gc.enable()


def network():
    """The kernel module :mod:`skminibatch._kernels._network`.

    The first call imports Numba and the kernels and makes one compiled call
    (Numba builds its typing and target contexts then), with the garbage
    collector paused (:func:`gc_paused`).
    """
    module = sys.modules.get(_NETWORK)
    if module is None:
        with gc_paused():
            from . import _network as module

            module.start_runtime()
    return module
