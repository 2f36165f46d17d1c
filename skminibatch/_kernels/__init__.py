"""Compiled kernels. :func:`network` imports them (and Numba) on first use,
so ``import skminibatch`` stays light."""


def network():
    """The kernel module :mod:`skminibatch._kernels._network`."""
    from . import _network

    return _network
