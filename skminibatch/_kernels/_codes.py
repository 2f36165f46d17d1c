"""Integer codes the kernels dispatch on (plain Python: importing this
module does not import Numba).

Hidden activations and output (activation, loss) pairs are chosen by small
integers so one compiled specialisation per dtype serves every model. The
values are frozen into the compiled kernels (Numba's cache is keyed on
``_network.py`` only), so they must never change.
"""

# hidden activation codes
IDENTITY, LOGISTIC, TANH, RELU = 0, 1, 2, 3
HIDDEN_CODES = {"identity": IDENTITY, "logistic": LOGISTIC, "tanh": TANH, "relu": RELU}

# output (activation + loss) codes
OUT_SQUARED, OUT_POISSON, OUT_BINARY_LOG, OUT_SOFTMAX_LOG = 0, 1, 2, 3

# solver codes
SGD, ADAM = 0, 1
