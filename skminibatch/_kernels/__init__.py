"""Compiled kernels. :func:`network` imports them (and Numba) on first use,
so ``import skminibatch`` stays light."""

import gc
import sys

_NETWORK = __name__ + "._network"


class gc_paused:  # noqa: N801  (used like a function: ``with gc_paused():``)
    """Python's cyclic garbage collector off for the block (restored after;
    left off if it was off).

    Importing Numba and setting up its compiler runtime allocate some
    100,000 objects; that many allocations set off collections of the
    older generations, and those walk every object the process holds --
    scikit-learn's and SciPy's modules included. Paused, the first
    fit's Numba start-up took 0.24-0.28 s instead of 0.32-0.43 s (measured
    after ``import sklearn.neural_network``); what the block leaves behind
    is collected at the next collection after it.
    """

    def __enter__(self):
        self.enabled = gc.isenabled()
        gc.disable()
        return self

    def __exit__(self, *exc):
        if self.enabled:
            gc.enable()
        return False


def network():
    """The kernel module :mod:`skminibatch._kernels._network`.

    The first call imports Numba and the kernels and makes one compiled call
    (Numba builds its typing and target contexts then), with the garbage
    collector paused (:class:`gc_paused`).
    """
    module = sys.modules.get(_NETWORK)
    if module is None:
        with gc_paused():
            from . import _network as module

            module.start_runtime()
    return module
