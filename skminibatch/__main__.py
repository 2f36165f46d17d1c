"""``python -m skminibatch``: see :mod:`skminibatch._demo` (``--help`` lists
the commands)."""

from ._demo import main

if __name__ == "__main__":  # guarded: pytest's --doctest-modules imports this
    raise SystemExit(main())
