"""Slow, plain-NumPy float64 reference for the compiled MLP kernels.

Written from the mathematical definitions, independently of
``skminibatch._kernels._network``: a network is a Python list of coefficient
matrices ``coefs[l]`` with shape ``(fan_in, fan_out)`` and a list of
intercept vectors ``intercepts[l]``. Every computation converts its inputs
to float64 first, whatever dtype they arrive in.

Hidden activations are named ``"identity"``, ``"logistic"``, ``"tanh"`` and
``"relu"``; output (activation, loss) pairs are named ``"squared"``
(identity + half squared error), ``"poisson"`` (exp + Poisson half
deviance), ``"binary_log"`` (logistic + binary log-loss) and
``"softmax_log"`` (softmax + categorical log-loss).

The helpers at the end (:func:`pack`, :func:`unpack`, :func:`layout`,
:func:`buffers`) translate between the list form and the flat arrays the
kernels take: all coefficient matrices row-major, then all intercepts, and
``act_off[l]`` (``l >= 1``) the offset of layer ``l``'s block of
``max_rows * units[l]`` values in the shared activation/delta buffers.
"""

import numpy as np

HIDDEN_NAMES = ("identity", "logistic", "tanh", "relu")
OUTPUT_NAMES = ("squared", "poisson", "binary_log", "softmax_log")


def _f64(a):
    return np.asarray(a, dtype=np.float64)


# ---------------------------------------------------------------------------
# activations
# ---------------------------------------------------------------------------
def logistic(Z):
    """1 / (1 + exp(-z)), evaluated without overflow for any finite z."""
    Z = _f64(Z)
    res = np.empty_like(Z)
    nonneg = Z >= 0
    res[nonneg] = 1.0 / (1.0 + np.exp(-Z[nonneg]))
    ez = np.exp(Z[~nonneg])
    res[~nonneg] = ez / (1.0 + ez)
    return res


def hidden_activation(name, Z):
    Z = _f64(Z)
    if name == "identity":
        return Z.copy()
    if name == "logistic":
        return logistic(Z)
    if name == "tanh":
        return np.tanh(Z)
    if name == "relu":
        return np.where(Z > 0, Z, 0.0)
    raise ValueError(name)


def hidden_derivative(name, A):
    """d activation / d z, written with the activation's output ``A``."""
    A = _f64(A)
    if name == "identity":
        return np.ones_like(A)
    if name == "logistic":
        return A * (1.0 - A)
    if name == "tanh":
        return 1.0 - A ** 2
    if name == "relu":
        return (A > 0).astype(np.float64)
    raise ValueError(name)


def output_activation(name, Z):
    Z = _f64(Z)
    if name == "squared":
        return Z.copy()
    if name == "poisson":
        return np.exp(Z)
    if name == "binary_log":
        return logistic(Z)
    if name == "softmax_log":
        shifted = Z - Z.max(axis=1, keepdims=True)
        ez = np.exp(shifted)
        return ez / ez.sum(axis=1, keepdims=True)
    raise ValueError(name)


# ---------------------------------------------------------------------------
# losses
# ---------------------------------------------------------------------------
def per_sample_loss(name, Y, P, eps):
    """Loss of every row (1-D array of length n_samples)."""
    Y = _f64(Y)
    P = _f64(P)
    n_out = Y.shape[1]
    if name == "squared":
        return 0.5 * ((Y - P) ** 2).sum(axis=1) / n_out
    if name == "poisson":
        terms = P.copy()  # y == 0: the term is just p
        pos = Y > 0
        y, p = Y[pos], P[pos]
        terms[pos] = y * np.log(y / p) - y + p
        return terms.sum(axis=1)
    Q = np.clip(P, eps, 1.0 - eps)
    if name == "binary_log":
        terms = np.zeros_like(Y)
        pos = Y > 0
        terms[pos] -= Y[pos] * np.log(Q[pos])
        neg = Y < 1
        terms[neg] -= (1.0 - Y[neg]) * np.log(1.0 - Q[neg])
        return terms.sum(axis=1)
    if name == "softmax_log":
        terms = np.zeros_like(Y)
        nz = Y != 0
        terms[nz] = -Y[nz] * np.log(Q[nz])
        return terms.sum(axis=1)
    raise ValueError(name)


# ---------------------------------------------------------------------------
# network
# ---------------------------------------------------------------------------
def random_network(rng, units, scale=0.5):
    """Random coefficient matrices and intercepts for layer widths ``units``."""
    coefs = [scale * rng.standard_normal((units[l], units[l + 1]))
             for l in range(len(units) - 1)]
    intercepts = [scale * rng.standard_normal(units[l + 1])
                  for l in range(len(units) - 1)]
    return coefs, intercepts


def forward(coefs, intercepts, X, hidden, out):
    """Returns ``(activations, pre_activations)``: ``activations[0]`` is X,
    ``activations[l]`` the output of layer ``l``; ``pre_activations[l-1]``
    the matching value before the activation function."""
    acts = [_f64(X)]
    pre = []
    n_layers = len(coefs)
    for l in range(n_layers):
        Z = acts[-1] @ _f64(coefs[l]) + _f64(intercepts[l])
        pre.append(Z)
        if l < n_layers - 1:
            acts.append(hidden_activation(hidden, Z))
        else:
            acts.append(output_activation(out, Z))
    return acts, pre


def predict(coefs, intercepts, X, hidden, out):
    return forward(coefs, intercepts, X, hidden, out)[0][-1]


def loss_and_grad(coefs, intercepts, X, Y, sw, hidden, out, alpha, eps):
    """Weighted batch loss with the L2 term, and its gradient as lists.

    Returns ``(loss, coef_grads, intercept_grads)``.
    """
    Y = _f64(Y)
    sw = _f64(sw)
    coefs = [_f64(W) for W in coefs]
    acts, _ = forward(coefs, intercepts, X, hidden, out)
    P = acts[-1]
    sw_sum = sw.sum()
    data = np.sum(sw * per_sample_loss(out, Y, P, eps))
    l2 = sum(np.sum(W ** 2) for W in coefs)
    loss = data / sw_sum + 0.5 * alpha * l2 / sw_sum

    n_layers = len(coefs)
    coef_grads = [None] * n_layers
    icpt_grads = [None] * n_layers
    delta = (P - Y) * sw[:, None]  # canonical link: the same for all four
    for l in range(n_layers - 1, -1, -1):
        coef_grads[l] = (acts[l].T @ delta + alpha * coefs[l]) / sw_sum
        icpt_grads[l] = delta.sum(axis=0) / sw_sum
        if l > 0:
            delta = (delta @ coefs[l].T) * hidden_derivative(hidden, acts[l])
    return loss, coef_grads, icpt_grads


# ---------------------------------------------------------------------------
# optimizers (one step, float64, returning new arrays)
# ---------------------------------------------------------------------------
def sgd_step(params, grads, velocity, lr, momentum, nesterov):
    """Returns ``(new_params, new_velocity)``."""
    params, grads, velocity = _f64(params), _f64(grads), _f64(velocity)
    v = momentum * velocity - lr * grads
    if nesterov:
        new = params + momentum * v - lr * grads
    else:
        new = params + v
    return new, v


def adam_step(params, grads, m, v, t, lr, beta_1, beta_2, epsilon):
    """Adam step number ``t`` (1 for the first step).

    Returns ``(new_params, new_m, new_v)``.
    """
    params, grads, m, v = _f64(params), _f64(grads), _f64(m), _f64(v)
    m = beta_1 * m + (1.0 - beta_1) * grads
    v = beta_2 * v + (1.0 - beta_2) * grads ** 2
    lr_t = lr * np.sqrt(1.0 - beta_2 ** t) / (1.0 - beta_1 ** t)
    return params - lr_t * m / (np.sqrt(v) + epsilon), m, v


# ---------------------------------------------------------------------------
# flat layout used by the kernels
# ---------------------------------------------------------------------------
def pack(coefs, intercepts, dtype=np.float64):
    """All coefficient matrices (row-major), then all intercepts."""
    parts = [np.ravel(W, order="C") for W in coefs]
    parts += [np.ravel(b) for b in intercepts]
    return np.ascontiguousarray(np.concatenate(parts), dtype=dtype)


def unpack(flat, units):
    """Inverse of :func:`pack` (float64 copies)."""
    flat = _f64(flat)
    coefs, intercepts = [], []
    pos = 0
    for l in range(len(units) - 1):
        size = units[l] * units[l + 1]
        coefs.append(flat[pos:pos + size].reshape(units[l], units[l + 1]).copy())
        pos += size
    for l in range(len(units) - 1):
        intercepts.append(flat[pos:pos + units[l + 1]].copy())
        pos += units[l + 1]
    assert pos == flat.size
    return coefs, intercepts


def layout(units, max_rows):
    """``(units, coef_off, icpt_off, act_off, buffer_size)`` as int64 arrays
    (and an int), exactly as the kernels take them."""
    units = np.asarray(units, dtype=np.int64)
    n_layers = units.size - 1
    coef_off = np.zeros(n_layers, dtype=np.int64)
    icpt_off = np.zeros(n_layers, dtype=np.int64)
    pos = 0
    for l in range(n_layers):
        coef_off[l] = pos
        pos += units[l] * units[l + 1]
    for l in range(n_layers):
        icpt_off[l] = pos
        pos += units[l + 1]
    act_off = np.zeros(n_layers + 1, dtype=np.int64)  # entry 0 unused
    pos = 0
    for l in range(1, n_layers + 1):
        act_off[l] = pos
        pos += max_rows * units[l]
    return units, coef_off, icpt_off, act_off, int(pos)


def n_params(units):
    return int(sum(units[l] * units[l + 1] + units[l + 1]
                   for l in range(len(units) - 1)))


def buffers(units, max_rows, dtype, fill=np.nan):
    """Fresh ``(acts, deltas)`` buffers, pre-filled with ``fill`` so a kernel
    that reads a value it did not write shows it."""
    size = layout(units, max_rows)[-1]
    return np.full(size, fill, dtype=dtype), np.full(size, fill, dtype=dtype)


def layer_block(buf, act_off, units, l, nb):
    """The ``(nb, units[l])`` matrix of layer ``l`` (``l >= 1``) in a buffer."""
    start = int(act_off[l])
    return buf[start:start + nb * int(units[l])].reshape(nb, int(units[l]))
