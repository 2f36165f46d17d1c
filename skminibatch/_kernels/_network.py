"""Compiled MLP kernels: activations, losses, forward and backward passes,
optimizer updates, the multi-step training loop, full-batch loss/gradient
(for L-BFGS) and chunked prediction.

Everything lives in this one file on purpose: Numba's on-disk cache keys a
function on its own source file only, so a kernel that inlines a helper from
another file could keep stale machine code after that helper changed.

Parameter layout
----------------
All weights of a network live in one flat, C-contiguous vector ``params``
(float32 or float64): first every layer's coefficient matrix (row-major,
``(fan_in, fan_out)``), then every layer's intercept vector -- the same
order as scikit-learn's ``_pack``. ``units`` holds the layer widths
``[n_features, h1, ..., n_outputs]``; ``coef_off[l]`` / ``icpt_off[l]`` are
the offsets of layer ``l``'s coefficients and intercepts. Gradients use the
same layout. Activations and deltas of layers ``1..L`` share one flat buffer
each with offsets ``act_off`` (sized for the largest batch).

Codes
-----
Hidden activations and output (activation, loss) pairs are chosen by small
integers (:mod:`._codes`) so one compiled specialisation per dtype serves
every model.
"""

import math

import numpy as np

from ._codes import (  # noqa: F401  (re-exported for tests and tools)
    ADAM,
    HIDDEN_CODES,
    IDENTITY,
    LOGISTIC,
    OUT_BINARY_LOG,
    OUT_POISSON,
    OUT_SOFTMAX_LOG,
    OUT_SQUARED,
    RELU,
    SGD,
    TANH,
)
from ._config import kernel


# ---------------------------------------------------------------------------
# elementwise functions
# ---------------------------------------------------------------------------
@kernel
def _tanh(x):
    # exp-based: Numba's math.tanh/np.tanh call libm's tanh, measured ~10x
    # slower than NumPy's here. expm1 keeps full relative precision near 0.
    e = math.expm1(-2.0 * abs(x))
    r = -e / (2.0 + e)
    return r if x >= 0 else -r


@kernel
def _sigmoid(x):
    if x >= 0:
        return 1.0 / (1.0 + math.exp(-x))
    e = math.exp(x)
    return e / (1.0 + e)


@kernel
def hidden_activation(code, Z):
    """Apply the hidden activation ``code`` to the 2-D array ``Z`` in place."""
    n, m = Z.shape
    if code == LOGISTIC:
        for i in range(n):
            for j in range(m):
                Z[i, j] = _sigmoid(Z[i, j])
    elif code == TANH:
        for i in range(n):
            for j in range(m):
                Z[i, j] = _tanh(Z[i, j])
    elif code == RELU:
        for i in range(n):
            for j in range(m):
                if Z[i, j] < 0:
                    Z[i, j] = 0
    # IDENTITY: nothing to do


@kernel
def hidden_derivative(code, A, D):
    """Multiply delta ``D`` by the activation derivative, written in terms of
    the activation's output ``A`` (as scikit-learn does)."""
    n, m = A.shape
    if code == LOGISTIC:
        for i in range(n):
            for j in range(m):
                a = A[i, j]
                D[i, j] *= a * (1 - a)
    elif code == TANH:
        for i in range(n):
            for j in range(m):
                a = A[i, j]
                D[i, j] *= 1 - a * a
    elif code == RELU:
        for i in range(n):
            for j in range(m):
                if A[i, j] == 0:
                    D[i, j] = 0


@kernel
def output_activation(code, Z):
    """Output activation in place: identity, exp, logistic or softmax."""
    n, m = Z.shape
    if code == OUT_POISSON:
        for i in range(n):
            for j in range(m):
                Z[i, j] = math.exp(Z[i, j])
    elif code == OUT_BINARY_LOG:
        for i in range(n):
            for j in range(m):
                Z[i, j] = _sigmoid(Z[i, j])
    elif code == OUT_SOFTMAX_LOG:
        for i in range(n):
            mx = Z[i, 0]
            for j in range(1, m):
                if Z[i, j] > mx:
                    mx = Z[i, j]
            s = 0.0
            for j in range(m):
                e = math.exp(Z[i, j] - mx)
                Z[i, j] = e
                s += e
            for j in range(m):
                Z[i, j] /= s


@kernel
def output_loss_and_delta(code, P, Y, sw, D, eps):
    """Per-batch data loss and output delta.

    ``P`` holds the output activations (after :func:`output_activation`).
    Returns ``sum_i sw[i] * loss_i`` (float64) with scikit-learn's per-sample
    losses: half squared error averaged over outputs, Poisson half-deviance
    summed over outputs, binary log-loss summed over outputs, categorical
    log-loss; probabilities clipped to ``[eps, 1 - eps]`` for the log-losses.
    Writes ``D = (P - Y) * sw`` (canonical link: the same formula for all
    four). Accumulates in float64 whatever the dtype.
    """
    n, m = P.shape
    total = 0.0
    for i in range(n):
        w = sw[i]
        li = 0.0
        for j in range(m):
            p = P[i, j]
            y = Y[i, j]
            D[i, j] = (p - y) * w
            if code == OUT_SQUARED:
                r = float(y) - float(p)
                li += 0.5 * r * r
            elif code == OUT_POISSON:
                if y > 0:
                    li += y * math.log(float(y) / float(p)) - y + p
                else:
                    li += float(p)
            elif code == OUT_BINARY_LOG:
                q = min(max(float(p), eps), 1.0 - eps)
                if y > 0:
                    li -= y * math.log(q)
                if y < 1:
                    li -= (1.0 - y) * math.log(1.0 - q)
            else:  # OUT_SOFTMAX_LOG
                if y != 0:
                    q = min(max(float(p), eps), 1.0 - eps)
                    li -= y * math.log(q)
        if code == OUT_SQUARED:
            li /= m
        total += w * li
    return total


# ---------------------------------------------------------------------------
# views into the flat buffers
# ---------------------------------------------------------------------------
@kernel
def layer_view(buf, off, n, m):
    """``buf[off:off + n*m]`` as an ``(n, m)`` C-contiguous matrix."""
    return buf[off:off + n * m].reshape((n, m))


# ---------------------------------------------------------------------------
# forward / backward on one batch
#
# The input of a batch is either dense rows ``Xd[:nb]`` or, when ``sparse``,
# rows ``rows[:nb]`` of a CSR matrix given by (sp_data, sp_indices,
# sp_indptr); only the first layer looks at it. Sparse rows are never
# densified: the first layer's product and weight gradient run over the
# nonzeros.
# ---------------------------------------------------------------------------
@kernel
def first_layer_forward(params, Xd, sp_data, sp_indices, sp_indptr, rows, sparse,
                        nb, units, coef_off, acts, act_off):
    fi = units[0]
    fo = units[1]
    W = layer_view(params, coef_off[0], fi, fo)
    A = layer_view(acts, act_off[1], nb, fo)
    if sparse:
        A[:, :] = 0
        for r in range(nb):
            i = rows[r]
            for k in range(sp_indptr[i], sp_indptr[i + 1]):
                j = sp_indices[k]
                v = sp_data[k]
                for c in range(fo):
                    A[r, c] += v * W[j, c]
    else:
        np.dot(Xd[:nb], W, A)


@kernel
def forward_any(params, Xd, sp_data, sp_indices, sp_indptr, rows, sparse, nb,
                units, coef_off, icpt_off, acts, act_off, hidden, out):
    """Forward pass of one batch; fills every layer's activations in
    ``acts`` (the output layer holds the output activation)."""
    n_layers = units.shape[0] - 1
    first_layer_forward(params, Xd, sp_data, sp_indices, sp_indptr, rows, sparse,
                        nb, units, coef_off, acts, act_off)
    for l in range(n_layers):
        fi = units[l]
        fo = units[l + 1]
        A = layer_view(acts, act_off[l + 1], nb, fo)
        if l > 0:
            W = layer_view(params, coef_off[l], fi, fo)
            np.dot(layer_view(acts, act_off[l], nb, fi), W, A)
        b = params[icpt_off[l]:icpt_off[l] + fo]
        for i in range(nb):
            for j in range(fo):
                A[i, j] += b[j]
        if l < n_layers - 1:
            hidden_activation(hidden, A)
        else:
            output_activation(out, A)


@kernel
def backward_any(params, grads, Xd, sp_data, sp_indices, sp_indptr, rows, sparse,
                 nb, units, coef_off, icpt_off, acts, deltas, act_off, hidden):
    """Backpropagate the output delta (already in ``deltas``); writes the
    *unnormalised* gradient sums ``A^T delta`` and ``sum(delta)`` into
    ``grads`` (no L2 term, not divided by the weight sum)."""
    n_layers = units.shape[0] - 1
    for l in range(n_layers - 1, -1, -1):
        fi = units[l]
        fo = units[l + 1]
        D = layer_view(deltas, act_off[l + 1], nb, fo)
        G = layer_view(grads, coef_off[l], fi, fo)
        if l > 0:
            np.dot(layer_view(acts, act_off[l], nb, fi).T, D, G)
        elif sparse:
            G[:, :] = 0
            for r in range(nb):
                i = rows[r]
                for k in range(sp_indptr[i], sp_indptr[i + 1]):
                    j = sp_indices[k]
                    v = sp_data[k]
                    for c in range(fo):
                        G[j, c] += v * D[r, c]
        else:
            np.dot(Xd[:nb].T, D, G)
        gb = grads[icpt_off[l]:icpt_off[l] + fo]
        gb[:] = 0
        for i in range(nb):
            for j in range(fo):
                gb[j] += D[i, j]
        if l > 0:
            W = layer_view(params, coef_off[l], fi, fo)
            Dp = layer_view(deltas, act_off[l], nb, fi)
            np.dot(D, W.T, Dp)
            hidden_derivative(hidden, layer_view(acts, act_off[l], nb, fi), Dp)


@kernel
def l2_sum(params, n_coef):
    """``sum(W**2)`` over every coefficient (not the intercepts).

    BLAS ``dot`` (as scikit-learn's ``np.dot(s, s)``): a plain loop sum
    cannot be vectorised without reassociation, and ran 10x slower.
    """
    w = params[:n_coef]
    return float(np.dot(w, w))


@kernel
def finalize_grads(params, grads, n_coef, alpha, inv_sw_sum):
    """``grad = (sum + alpha * W) / sw_sum`` for coefficients,
    ``sum / sw_sum`` for intercepts (scikit-learn's scaling). ``alpha`` and
    ``inv_sw_sum`` come in the weights' dtype."""
    for k in range(n_coef):
        grads[k] = (grads[k] + alpha * params[k]) * inv_sw_sum
    for k in range(n_coef, params.shape[0]):
        grads[k] = grads[k] * inv_sw_sum


@kernel
def batch_loss_grad_any(params, grads, Xd, sp_data, sp_indices, sp_indptr, rows,
                        sparse, Yb, swb, nb, units, coef_off, icpt_off, acts,
                        deltas, act_off, hidden, out, alpha, eps, scratch):
    """Loss (with L2 term) and normalised gradient of one batch.

    ``alpha`` is float64; ``scratch`` is a length-2 array of the weights'
    dtype used to hand scalars to the loops in that dtype.
    """
    last = units.shape[0] - 1
    forward_any(params, Xd, sp_data, sp_indices, sp_indptr, rows, sparse, nb,
                units, coef_off, icpt_off, acts, act_off, hidden, out)
    P = layer_view(acts, act_off[last], nb, units[last])
    D = layer_view(deltas, act_off[last], nb, units[last])
    data = output_loss_and_delta(out, P, Yb[:nb], swb[:nb], D, eps)
    backward_any(params, grads, Xd, sp_data, sp_indices, sp_indptr, rows, sparse,
                 nb, units, coef_off, icpt_off, acts, deltas, act_off, hidden)
    sw_sum = 0.0
    for i in range(nb):
        sw_sum += swb[i]
    n_coef = icpt_off[0]
    scratch[0] = alpha
    scratch[1] = 1.0 / sw_sum
    finalize_grads(params, grads, n_coef, scratch[0], scratch[1])
    return (data + 0.5 * alpha * l2_sum(params, n_coef)) / sw_sum


# dense conveniences (used by tests and tools)
@kernel
def forward(params, Xb, nb, units, coef_off, icpt_off, acts, act_off, hidden, out):
    """Dense forward pass of ``nb`` rows of ``Xb`` (see :func:`forward_any`)."""
    ri = np.empty(0, np.int32)
    forward_any(params, Xb, np.empty(0, params.dtype), ri, ri, ri, False, nb,
                units, coef_off, icpt_off, acts, act_off, hidden, out)


@kernel
def batch_loss_grad(params, grads, Xb, Yb, swb, nb, units, coef_off, icpt_off,
                    acts, deltas, act_off, hidden, out, alpha, eps):
    """Dense :func:`batch_loss_grad_any`."""
    ri = np.empty(0, np.int32)
    return batch_loss_grad_any(params, grads, Xb, np.empty(0, params.dtype), ri, ri,
                               ri, False, Yb, swb, nb, units, coef_off, icpt_off,
                               acts, deltas, act_off, hidden, out, alpha, eps,
                               np.empty(2, params.dtype))


# ---------------------------------------------------------------------------
# optimizer updates (scalars in the weights' dtype)
# ---------------------------------------------------------------------------
@kernel
def sgd_update(params, grads, velocity, lr, momentum, nesterov):
    """scikit-learn's SGD: ``v = mu v - lr g``; ``p += v`` or, Nesterov,
    ``p += mu v - lr g``."""
    n = params.shape[0]
    if nesterov:
        for k in range(n):
            v = momentum * velocity[k] - lr * grads[k]
            velocity[k] = v
            params[k] += momentum * v - lr * grads[k]
    else:
        for k in range(n):
            v = momentum * velocity[k] - lr * grads[k]
            velocity[k] = v
            params[k] += v


@kernel
def adam_update(params, grads, m1, m2, lr_t, beta_1, one_minus_beta_1, beta_2,
                one_minus_beta_2, epsilon):
    """scikit-learn's Adam with the bias correction folded into ``lr_t``.
    ``1 - beta`` come precomputed (in float64, then cast) as scikit-learn
    computes them."""
    n = params.shape[0]
    for k in range(n):
        g = grads[k]
        a = beta_1 * m1[k] + one_minus_beta_1 * g
        b = beta_2 * m2[k] + one_minus_beta_2 * (g * g)
        m1[k] = a
        m2[k] = b
        params[k] -= lr_t * a / (np.sqrt(b) + epsilon)


@kernel
def _adam_fused(params, grads, m1, m2, lo, hi, alpha, inv, lr_t, beta_1, c1,
                beta_2, c2, epsilon):
    """Adam over ``params[lo:hi]`` from unnormalised gradient sums. No
    reduction in this loop: it would stop LLVM from vectorising it."""
    for k in range(lo, hi):
        p = params[k]
        g = (grads[k] + alpha * p) * inv
        a = beta_1 * m1[k] + c1 * g
        b = beta_2 * m2[k] + c2 * (g * g)
        m1[k] = a
        m2[k] = b
        params[k] = p - lr_t * a / (np.sqrt(b) + epsilon)


@kernel
def _sgd_fused(params, grads, velocity, lo, hi, alpha, inv, lr, momentum,
               nesterov):
    """SGD (momentum / Nesterov) over ``params[lo:hi]``."""
    if nesterov:
        for k in range(lo, hi):
            p = params[k]
            g = (grads[k] + alpha * p) * inv
            v = momentum * velocity[k] - lr * g
            velocity[k] = v
            params[k] = p + (momentum * v - lr * g)
    else:
        for k in range(lo, hi):
            p = params[k]
            g = (grads[k] + alpha * p) * inv
            v = momentum * velocity[k] - lr * g
            velocity[k] = v
            params[k] = p + v


@kernel
def fused_update(params, grads, state1, state2, n_coef, c, solver, nesterov):
    """Normalise the gradient sums and apply the optimizer in one pass over
    the weights (one read of each array instead of separate passes; at small
    batches these passes, not the products, dominate a step).

    ``c`` (weights' dtype) = ``[lr, momentum, beta_1, 1-beta_1, beta_2,
    1-beta_2, epsilon, lr_t, alpha, 1/sw_sum]``.
    """
    n = params.shape[0]
    zero = c[8] * 0
    if solver == SGD:
        _sgd_fused(params, grads, state1, 0, n_coef, c[8], c[9], c[0], c[1],
                   nesterov)
        _sgd_fused(params, grads, state1, n_coef, n, zero, c[9], c[0], c[1],
                   nesterov)
    else:
        _adam_fused(params, grads, state1, state2, 0, n_coef, c[8], c[9], c[7],
                    c[2], c[3], c[4], c[5], c[6])
        _adam_fused(params, grads, state1, state2, n_coef, n, zero, c[9], c[7],
                    c[2], c[3], c[4], c[5], c[6])


# ---------------------------------------------------------------------------
# the training loop: many steps in one call
# ---------------------------------------------------------------------------
@kernel
def gather_rows(X, Y, sw, order, start, stop, Xb, Yb, swb, sparse):
    """Copy rows ``order[start:stop]`` of Y, sw (and X unless sparse) into
    the batch buffers."""
    nf = X.shape[1]
    no = Y.shape[1]
    for r in range(stop - start):
        i = order[start + r]
        if not sparse:
            for j in range(nf):
                Xb[r, j] = X[i, j]
        for j in range(no):
            Yb[r, j] = Y[i, j]
        swb[r] = sw[i]


@kernel
def train_steps(X, sp_data, sp_indices, sp_indptr, sparse, Y, sw, order,
                first_batch, n_steps, batch_size, params, grads, state1, state2,
                hyper, units, coef_off, icpt_off, Xb, Yb, swb, acts, deltas,
                act_off, hidden, out, solver, nesterov, adam_t, loss_acc):
    """Run ``n_steps`` mini-batch steps of the current pass.

    Batch ``k`` of the pass is ``order[k*batch_size:(k+1)*batch_size]`` (the
    last one holds the remainder); this runs batches ``first_batch ..
    first_batch + n_steps - 1``, which the caller keeps inside the pass.
    Input rows come from dense ``X`` or, when ``sparse``, from the CSR
    arrays (``X`` is then an empty ``(0, n_features)`` placeholder).

    ``hyper`` (float64) = ``[lr, momentum, beta_1, beta_2, epsilon, alpha,
    eps_clip, lr_init]``; for Adam, ``lr`` is unused and ``adam_t`` is the
    number of Adam steps taken before this call.

    ``loss_acc`` is the epoch's running sum of ``batch_loss * batch_len``
    so far: it is carried through the call (not restarted at 0) so the sum is
    added up in the same order however an epoch is split into calls.

    A batch whose sample weights are all 0 makes no update and adds nothing
    to the loss (its 0/0 gradient carries no information).

    Returns ``(updated loss_acc, samples seen, rows behind loss_acc's new
    terms, optimizer updates made)``.
    """
    n = order.shape[0]
    eps_clip = hyper[6]
    lr_init = hyper[7]
    beta_1_64 = hyper[2]
    beta_2_64 = hyper[3]
    alpha_64 = hyper[5]
    last = units.shape[0] - 1
    n_out = units[last]
    n_coef = icpt_off[0]
    # the optimizer's scalars in the weights' dtype (see fused_update)
    c = np.empty(10, params.dtype)
    c[0] = hyper[0]
    c[1] = hyper[1]
    c[2] = beta_1_64
    c[3] = 1.0 - beta_1_64
    c[4] = beta_2_64
    c[5] = 1.0 - beta_2_64
    c[6] = hyper[4]
    c[8] = alpha_64
    seen = 0
    loss_rows = 0
    updates = 0
    for s in range(n_steps):
        start = (first_batch + s) * batch_size
        stop = min(start + batch_size, n)
        nb = stop - start
        rows = order[start:stop]
        gather_rows(X, Y, sw, order, start, stop, Xb, Yb, swb, sparse)
        seen += nb
        sw_sum = 0.0
        for i in range(nb):
            sw_sum += swb[i]
        if sw_sum == 0.0:
            # every sample of this batch has weight 0: its loss and gradient
            # are 0/0. It carries no information, so it makes no update and
            # stays out of the epoch's loss (it still counts in t_).
            continue
        forward_any(params, Xb, sp_data, sp_indices, sp_indptr, rows, sparse, nb,
                    units, coef_off, icpt_off, acts, act_off, hidden, out)
        P = layer_view(acts, act_off[last], nb, n_out)
        D = layer_view(deltas, act_off[last], nb, n_out)
        data = output_loss_and_delta(out, P, Yb[:nb], swb[:nb], D, eps_clip)
        backward_any(params, grads, Xb, sp_data, sp_indices, sp_indptr, rows,
                     sparse, nb, units, coef_off, icpt_off, acts, deltas, act_off,
                     hidden)
        c[9] = 1.0 / sw_sum
        updates += 1
        if solver == ADAM:
            t = adam_t + updates
            # scikit-learn computes this rate in float64 and applies it in
            # the weights' dtype; the cell c[7] does that cast.
            c[7] = (lr_init * math.sqrt(1.0 - beta_2_64 ** t)
                    / (1.0 - beta_1_64 ** t))
        l2 = l2_sum(params, n_coef)  # weights before the update
        fused_update(params, grads, state1, state2, n_coef, c, solver, nesterov)
        loss = (data + 0.5 * alpha_64 * l2) / sw_sum
        loss_acc += loss * nb
        loss_rows += nb
    return loss_acc, seen, loss_rows, updates


# ---------------------------------------------------------------------------
# full batch (L-BFGS) and prediction, in row chunks
# ---------------------------------------------------------------------------
@kernel
def full_loss_grad(X, sp_data, sp_indices, sp_indptr, sparse, Y, sw, params,
                   grads, chunk_grads, units, coef_off, icpt_off, acts, deltas,
                   act_off, hidden, out, alpha, eps, chunk):
    """Loss (L2 included) and gradient over all rows, computed ``chunk``
    rows at a time so memory stays bounded. Dense rows are used in place (X
    C-contiguous); ``acts``/``deltas`` are sized for ``chunk`` rows."""
    n = Y.shape[0]
    last = units.shape[0] - 1
    n_out = units[last]
    grads[:] = 0
    data = 0.0
    sw_sum = 0.0
    rows = np.arange(n)
    for start in range(0, n, chunk):
        stop = min(start + chunk, n)
        nb = stop - start
        Xc = X[start:stop] if not sparse else X
        forward_any(params, Xc, sp_data, sp_indices, sp_indptr, rows[start:stop],
                    sparse, nb, units, coef_off, icpt_off, acts, act_off, hidden, out)
        P = layer_view(acts, act_off[last], nb, n_out)
        D = layer_view(deltas, act_off[last], nb, n_out)
        data += output_loss_and_delta(out, P, Y[start:stop], sw[start:stop], D, eps)
        backward_any(params, chunk_grads, Xc, sp_data, sp_indices, sp_indptr,
                     rows[start:stop], sparse, nb, units, coef_off, icpt_off, acts,
                     deltas, act_off, hidden)
        for k in range(grads.shape[0]):
            grads[k] += chunk_grads[k]
        for i in range(start, stop):
            sw_sum += sw[i]
    n_coef = icpt_off[0]
    scratch = np.empty(2, params.dtype)
    scratch[0] = alpha
    scratch[1] = 1.0 / sw_sum
    finalize_grads(params, grads, n_coef, scratch[0], scratch[1])
    return (data + 0.5 * alpha * l2_sum(params, n_coef)) / sw_sum


@kernel
def predict_chunked(X, sp_data, sp_indices, sp_indptr, sparse, n_rows, params,
                    units, coef_off, icpt_off, acts, act_off, hidden, out, result,
                    chunk):
    """Output activations for every row into ``result``, ``chunk`` rows at a
    time (``acts`` sized for ``chunk`` rows)."""
    last = units.shape[0] - 1
    n_out = units[last]
    rows = np.arange(n_rows)
    for start in range(0, n_rows, chunk):
        stop = min(start + chunk, n_rows)
        nb = stop - start
        Xc = X[start:stop] if not sparse else X
        forward_any(params, Xc, sp_data, sp_indices, sp_indptr, rows[start:stop],
                    sparse, nb, units, coef_off, icpt_off, acts, act_off, hidden, out)
        P = layer_view(acts, act_off[last], nb, n_out)
        for i in range(nb):
            for j in range(n_out):
                result[start + i, j] = P[i, j]
