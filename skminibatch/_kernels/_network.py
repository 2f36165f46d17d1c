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
import platform
import sys

import numpy as np
from llvmlite import ir as llvm_ir
from numba.core import cgutils, types
from numba.core.imputils import impl_ret_borrowed
from numba.extending import get_cython_function_address, intrinsic

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
from .._threads import aligned_empty
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
        # a select, not a conditional store: vectorised (NaN stays NaN)
        for i in range(n):
            for j in range(m):
                z = Z[i, j]
                Z[i, j] = 0 if z < 0 else z
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
                D[i, j] = 0 if A[i, j] == 0 else D[i, j]


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
def _row_loss_and_delta(code, P, Y, D, w, i, eps):
    """Row ``i``: write ``D[i] = (P[i] - Y[i]) * w`` and return the row's
    unweighted loss (see :func:`output_loss_and_delta`)."""
    m = P.shape[1]
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
    return li


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
    total = 0.0
    for i in range(P.shape[0]):
        w = sw[i]
        total += w * _row_loss_and_delta(code, P, Y, D, w, i, eps)
    return total


@kernel
def output_row_losses(code, P, Y, sw, D, eps, row_loss):
    """:func:`output_loss_and_delta` that writes each row's weighted loss
    ``sw[i] * loss_i`` into ``row_loss[i]`` instead of summing them (summed
    later in row order, the same total)."""
    for i in range(P.shape[0]):
        w = sw[i]
        row_loss[i] = w * _row_loss_and_delta(code, P, Y, D, w, i, eps)


@intrinsic
def _flat(typingctx, arr):
    """A C-contiguous array as a 1-D view, without ``reshape``'s general
    search for a compatible layout and its error paths (which the C layout
    cannot need): code that a kernel would otherwise compile at every call
    site."""
    if not isinstance(arr, types.Array) or arr.layout != "C":
        return None
    flat = arr.copy(ndim=1, layout="C")

    def codegen(context, builder, signature, args):
        src = context.make_array(signature.args[0])(context, builder, args[0])
        dst = context.make_array(flat)(context, builder)
        context.populate_array(dst, data=src.data,
                               shape=cgutils.pack_array(builder, [src.nitems]),
                               strides=cgutils.pack_array(builder, [src.itemsize]),
                               itemsize=src.itemsize, meminfo=src.meminfo,
                               parent=src.parent)
        return impl_ret_borrowed(context, builder, flat, dst._getvalue())

    return flat(arr), codegen


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
def first_layer_product(params, Xd, sp_data, sp_indices, sp_indptr, rows, sparse,
                        nb, k0, k1, units, coef_off, A):
    """``A = X[:, k0:k1] @ W_0[k0:k1]`` for the ``nb`` batch rows (no
    intercept): the first layer's product restricted to input features
    ``k0:k1``. Dense ``Xd`` holds exactly those columns (``(nb, k1 - k0)``);
    sparse rows ``rows`` of the CSR arrays are read over their nonzeros."""
    fo = units[1]
    if sparse:
        W = layer_view(params, coef_off[0], units[0], fo)
        A[:, :] = 0
        for r in range(nb):
            i = rows[r]
            for k in range(sp_indptr[i], sp_indptr[i + 1]):
                j = sp_indices[k]
                if j < k0 or j >= k1:
                    continue
                v = sp_data[k]
                for c in range(fo):
                    A[r, c] += v * W[j, c]
    elif k1 > k0:
        np.dot(Xd[:nb], layer_view(params, coef_off[0] + k0 * fo, k1 - k0, fo), A)
    else:
        A[:, :] = 0


@kernel
def forward_layers(params, nb, units, coef_off, icpt_off, acts, act_off, hidden,
                   out):
    """The forward pass after the first layer's product (already in layer
    1's block of ``acts``): intercepts, activations and the later layers."""
    n_layers = units.shape[0] - 1
    for l in range(n_layers):
        fi = units[l]
        fo = units[l + 1]
        A = layer_view(acts, act_off[l + 1], nb, fo)
        if l > 0:
            W = layer_view(params, coef_off[l], fi, fo)
            np.dot(layer_view(acts, act_off[l], nb, fi), W, A)
        b = params[icpt_off[l]:icpt_off[l] + fo]
        if l < n_layers - 1:
            _bias_activation(hidden, A, b)
        else:
            for i in range(nb):
                for j in range(fo):
                    A[i, j] += b[j]
            output_activation(out, A)


@kernel
def forward_any(params, Xd, sp_data, sp_indices, sp_indptr, rows, sparse, nb,
                units, coef_off, icpt_off, acts, act_off, hidden, out):
    """Forward pass of one batch; fills every layer's activations in
    ``acts`` (the output layer holds the output activation)."""
    first_layer_product(params, Xd, sp_data, sp_indices, sp_indptr, rows, sparse,
                        nb, 0, units[0], units, coef_off,
                        layer_view(acts, act_off[1], nb, units[1]))
    forward_layers(params, nb, units, coef_off, icpt_off, acts, act_off, hidden,
                   out)


@kernel
def weight_grad(acts, act_off, Xd, sp_data, sp_indices, sp_indptr, rows, sparse,
                l, nb, fi, i0, i1, D, G):
    """``G = A_l[:, i0:i1]^T D``: rows ``i0:i1`` (input units) of layer
    ``l``'s unnormalised coefficient gradient over the ``nb`` batch rows
    (``D`` is ``(nb, fan_out)``, ``G`` is ``(i1 - i0, fan_out)``). Layer 0
    reads the batch input: dense ``Xd`` or the CSR rows ``rows`` (nonzeros
    only). Dense input takes every row of ``G`` (``i0 = 0``, ``i1 = fi``);
    :func:`train_steps` reads column slices in place through :func:`gemm`."""
    if l == 0 and sparse:
        fo = D.shape[1]
        G[:, :] = 0
        for r in range(nb):
            i = rows[r]
            for k in range(sp_indptr[i], sp_indptr[i + 1]):
                j = sp_indices[k]
                if j < i0 or j >= i1:
                    continue
                v = sp_data[k]
                for c in range(fo):
                    G[j - i0, c] += v * D[r, c]
    elif i0 != 0 or i1 != fi:
        raise ValueError("weight_grad: dense input takes every row")
    elif l == 0:
        np.dot(Xd[:nb].T, D, G)
    else:
        np.dot(layer_view(acts, act_off[l], nb, fi).T, D, G)


@kernel
def column_sums(D, j0, out):
    """``out[j] = sum_i D[i, j0 + j]``, rows added in order."""
    out[:] = 0
    for i in range(D.shape[0]):
        for j in range(out.shape[0]):
            out[j] += D[i, j0 + j]


@kernel
def propagate_delta(params, l, nb, units, coef_off, acts, deltas, act_off, hidden):
    """Delta of hidden layer ``l`` from layer ``l + 1``'s:
    ``D_l = (D_{l+1} W_l^T) * f'(A_l)`` for ``nb`` rows."""
    fi = units[l]
    fo = units[l + 1]
    W = layer_view(params, coef_off[l], fi, fo)
    Dp = layer_view(deltas, act_off[l], nb, fi)
    np.dot(layer_view(deltas, act_off[l + 1], nb, fo), W.T, Dp)
    hidden_derivative(hidden, layer_view(acts, act_off[l], nb, fi), Dp)


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
        weight_grad(acts, act_off, Xd, sp_data, sp_indices, sp_indptr, rows, sparse,
                    l, nb, fi, 0, fi, D, layer_view(grads, coef_off[l], fi, fo))
        column_sums(D, 0, grads[icpt_off[l]:icpt_off[l] + fo])
        if l > 0:
            propagate_delta(params, l, nb, units, coef_off, acts, deltas, act_off,
                            hidden)


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
# BLAS gemm with leading dimensions
#
# Numba's ``np.dot`` takes contiguous operands only (it copies the others).
# The hidden-unit parts of ``train_steps_units`` multiply column blocks of a
# weight matrix and write column blocks of a gradient, so they call BLAS's
# gemm themselves: the same SciPy BLAS that Numba's ``np.dot`` calls (its
# address comes in as an argument, so the compiled code stays cacheable).
# ---------------------------------------------------------------------------
NOTRANS = 78  # ord("N")
TRANS = 84  # ord("T")

_BLAS_ADDRESSES = None


def blas_functions():
    """Addresses of SciPy's ``dgemm`` and ``sgemm`` (the ``blas`` argument
    of the kernels that call :func:`gemm`)."""
    global _BLAS_ADDRESSES
    if _BLAS_ADDRESSES is None:
        _BLAS_ADDRESSES = np.array(
            [get_cython_function_address("scipy.linalg.cython_blas", name)
             for name in ("dgemm", "sgemm")], dtype=np.int64)
    return _BLAS_ADDRESSES


@intrinsic
def _gemm_column_major(typingctx, fns, ta, tb, m, n, k, a, lda, b, ldb, beta, c,
                       ldc):
    """Fortran gemm ``c = op(a) op(b) + beta c`` (alpha 1) through the
    address in ``fns[0]`` (float64) or ``fns[1]`` (float32); ``a``, ``b``,
    ``c`` are arrays of that dtype whose data pointer is the first element.
    Scalars go by reference, as Fortran takes them."""
    sig = types.void(fns, ta, tb, m, n, k, a, lda, b, ldb, beta, c, ldc)
    dt = c.dtype

    def codegen(context, builder, signature, args):
        sa = signature.args
        i8, i32 = llvm_ir.IntType(8), llvm_ir.IntType(32)
        fty = context.get_value_type(dt)

        def by_ref(irty, value):
            ptr = cgutils.alloca_once(builder, irty)
            builder.store(value, ptr)
            return ptr

        def integer(i, irty):
            value = context.cast(builder, args[i], sa[i], types.int64)
            return by_ref(irty, builder.trunc(value, irty))

        def real(i):
            return by_ref(fty, context.cast(builder, args[i], sa[i], dt))

        def data(i):
            ary = context.make_array(sa[i])(context, builder, args[i])
            return builder.bitcast(ary.data, fty.as_pointer())

        table = context.make_array(sa[0])(context, builder, args[0])
        which = 0 if dt == types.float64 else 1
        address = builder.load(cgutils.gep(builder, table.data, which))
        ip, fp = i32.as_pointer(), fty.as_pointer()
        fnty = llvm_ir.FunctionType(
            llvm_ir.VoidType(),
            [i8.as_pointer(), i8.as_pointer(), ip, ip, ip, fp, fp, ip, fp, ip, fp,
             fp, ip])
        fn = builder.inttoptr(address, fnty.as_pointer())
        one = by_ref(fty, llvm_ir.Constant(fty, 1.0))
        builder.call(fn, [integer(1, i8), integer(2, i8), integer(3, i32),
                          integer(4, i32), integer(5, i32), one, data(6),
                          integer(7, i32), data(8), integer(9, i32), real(10),
                          data(11), integer(12, i32)])
        return context.get_dummy_value()

    return sig, codegen


@kernel
def _gemm_fits(trans, rows, cols, ld, size):
    """Whether a row-major operand ``rows x cols`` (as used, i.e. after
    ``trans``) with leading dimension ``ld`` lies inside ``size`` values."""
    if trans == TRANS:
        rows, cols = cols, rows
    return ld >= max(cols, 1) and (rows - 1) * ld + cols <= size


@kernel
def gemm(blas, ta, tb, m, n, k, A, lda, B, ldb, beta, C, ldc):
    """Row-major ``C[:m, :n] = op(A) @ op(B) + beta * C`` (``op`` is the
    identity for ``NOTRANS``, the transpose for ``TRANS``; ``op(A)`` is
    ``m x k``) with leading dimensions (row strides) ``lda``, ``ldb``,
    ``ldc``. ``A``, ``B``, ``C`` start at the matrices' first element (a
    slice of a flat buffer, or a 2-D view). The extents are checked against
    the arrays' sizes first: BLAS itself would write past them silently."""
    if m <= 0 or n <= 0:
        return
    if not (_gemm_fits(ta, m, k, lda, A.size) and _gemm_fits(tb, k, n, ldb, B.size)
            and _gemm_fits(np.int64(NOTRANS), m, n, ldc, C.size)):
        raise ValueError("gemm: an operand does not fit its array")
    # row-major C = op(A) op(B) is column-major C^T = op(B)^T op(A)^T: the
    # same buffers with the operands swapped
    _gemm_column_major(blas, tb, ta, n, m, k, B, ldb, A, lda, beta, C, ldc)


#: OpenBLAS's direct kernel for small products (no packing; SciPy's build
#: on AVX-512 CPUs) takes products of up to ~1e6 multiply-adds, and ran
#: them faster here than its general path ran larger ones: a ``(256, 100)
#: @ (100, 50)`` float64 product at 41 GFLOP/s in one call, 55 in row
#: chunks of 64 to 128 (float32: 87 -> 110). Products on few input
#: features are therefore cut into row chunks of at least
#: ``SMALL_GEMM_MIN_ROWS`` under that size (with more features the chunks
#: would be thin, and measured slower).
SMALL_GEMM_WORK = 1_000_000
SMALL_GEMM_MIN_ROWS = 32


@kernel
def _small_gemm_rows(rows, n, k):
    """Rows per chunk for a ``rows x k @ k x n`` product (all when the
    product is small already or the chunks would be too thin)."""
    if rows * n * k <= SMALL_GEMM_WORK:
        return rows
    chunk = SMALL_GEMM_WORK // max(n * k, 1) // 16 * 16
    return rows if chunk < SMALL_GEMM_MIN_ROWS else chunk


@kernel
def gemm_by_rows(blas, tb, m, n, k, A, lda, B, ldb, C, ldc):
    """``C = A @ op(B)`` (``A`` is ``m x k``), in row chunks sized for
    BLAS's small-product kernel (see ``SMALL_GEMM_WORK``); each row of C
    is that row's dot products either way."""
    if m <= 0:
        return
    chunk = _small_gemm_rows(m, n, k)
    for r0 in range(0, m, chunk):
        mm = min(chunk, m - r0)
        gemm(blas, np.int64(NOTRANS), tb, mm, n, k, A[r0 * lda:], lda, B, ldb, 0.0,
             C[r0 * ldc:], ldc)


@kernel
def gemm_tn_by_rows(blas, m, n, k, A, lda, B, ldb, C, ldc):
    """``C = A^T @ B`` where ``A`` is ``k x m`` and ``B`` ``k x n`` (a
    weight gradient summed over ``k`` batch rows), the sum taken in chunks
    of rows sized as :func:`gemm_by_rows` and added up in order."""
    chunk = _small_gemm_rows(k, n, m)
    for r0 in range(0, k, chunk):
        kk = min(chunk, k - r0)
        gemm(blas, np.int64(TRANS), np.int64(NOTRANS), m, n, kk, A[r0 * lda:], lda,
             B[r0 * ldb:], ldb, 0.0 if r0 == 0 else 1.0, C, ldc)


# ---------------------------------------------------------------------------
# optimizer updates
# ---------------------------------------------------------------------------
@kernel
def _adam_segment(params, grads, m1, m2, pk, gk, n, alpha, inv, lr_t, beta_1, c1,
                  beta_2, c2, epsilon):
    """scikit-learn's Adam on ``params[pk:pk+n]`` (and its moments) from the
    unnormalised gradient sums ``grads[gk:gk+n]``, bias correction folded
    into ``lr_t``. The loop runs from 0 over slices with no reduction:
    otherwise LLVM does not vectorise it (measured 4x slower)."""
    P = params[pk:pk + n]
    G = grads[gk:gk + n]
    M1 = m1[pk:pk + n]
    M2 = m2[pk:pk + n]
    for k in range(n):
        p = P[k]
        g = (G[k] + alpha * p) * inv
        a = beta_1 * M1[k] + c1 * g
        b = beta_2 * M2[k] + c2 * (g * g)
        M1[k] = a
        M2[k] = b
        P[k] = p - lr_t * a / (np.sqrt(b) + epsilon)


@kernel
def _sgd_segment(params, grads, velocity, pk, gk, n, alpha, inv, lr, momentum,
                 nesterov):
    """scikit-learn's SGD, ``v = mu v - lr g``; ``p += v`` or, Nesterov,
    ``p += mu v - lr g``, on ``params[pk:pk+n]`` (slices, as Adam's)."""
    P = params[pk:pk + n]
    G = grads[gk:gk + n]
    V = velocity[pk:pk + n]
    if nesterov:
        for k in range(n):
            p = P[k]
            g = (G[k] + alpha * p) * inv
            v = momentum * V[k] - lr * g
            V[k] = v
            P[k] = p + (momentum * v - lr * g)
    else:
        for k in range(n):
            p = P[k]
            g = (G[k] + alpha * p) * inv
            v = momentum * V[k] - lr * g
            V[k] = v
            P[k] = p + v


@kernel
def update_segment(params, grads, state1, state2, pk, gk, n, alpha, c, solver,
                   nesterov):
    """Normalise gradient sums and apply the optimizer in one pass over
    ``n`` weights (one read of each array instead of separate passes; at
    small batches these passes, not the products, dominate a step).

    ``c`` (weights' dtype) = ``[lr, momentum, beta_1, 1-beta_1, beta_2,
    1-beta_2, epsilon, lr_t, alpha, 1/sw_sum]``; ``alpha`` is ``c[8]`` for
    coefficients and 0 for intercepts.
    """
    if solver == SGD:
        _sgd_segment(params, grads, state1, pk, gk, n, alpha, c[9], c[0], c[1],
                     nesterov)
    else:
        _adam_segment(params, grads, state1, state2, pk, gk, n, alpha, c[9], c[7],
                      c[2], c[3], c[4], c[5], c[6])


# ---------------------------------------------------------------------------
# threads of one fit: barriers
#
# A step can be shared by ``n_threads`` threads (train_steps below), each
# running the same compiled loop on its own share and meeting the others at
# barriers. A barrier is one counter per thread in ``sync`` (on separate
# cache lines): a thread publishes how many barriers it has reached and
# waits until every other thread has reached as many. Atomic acquire/release
# accesses keep the compiler from caching the counters in registers and
# order the buffer writes before the counter. ``sync[SYNC_ABORT]`` != 0 makes
# every waiting thread give up (the caller's thread failed or was stopped).
# ---------------------------------------------------------------------------
SYNC_STRIDE = 16  # int64 slots between counters: 128 bytes
SYNC_ABORT = 0
_X86 = platform.machine().lower() in ("x86_64", "amd64", "i386", "i686")
_POSIX = sys.platform != "win32"


@intrinsic
def _load_acquire(typingctx, arr, idx):
    sig = types.int64(arr, idx)

    def codegen(context, builder, signature, args):
        aryty = signature.args[0]
        ary = context.make_array(aryty)(context, builder, args[0])
        ptr = cgutils.get_item_pointer(context, builder, aryty, ary, [args[1]])
        return builder.load_atomic(ptr, "acquire", 8)

    return sig, codegen


@intrinsic
def _store_release(typingctx, arr, idx, val):
    sig = types.void(arr, idx, types.int64)

    def codegen(context, builder, signature, args):
        aryty = signature.args[0]
        ary = context.make_array(aryty)(context, builder, args[0])
        ptr = cgutils.get_item_pointer(context, builder, aryty, ary, [args[1]])
        value = context.cast(builder, args[2], signature.args[2], types.int64)
        builder.store_atomic(value, ptr, "release", 8)
        return context.get_dummy_value()

    return sig, codegen


def _emit_pause(builder):
    """Code generation: the x86 ``pause`` spin-wait hint (nothing
    elsewhere)."""
    if _X86:
        fnty = llvm_ir.FunctionType(llvm_ir.VoidType(), [])
        fn = cgutils.get_or_insert_function(builder.module, fnty,
                                            "llvm.x86.sse2.pause")
        builder.call(fn, [])


@intrinsic
def _spin_pause(typingctx):
    """x86 ``pause`` (spin-wait hint); nothing elsewhere."""
    sig = types.void()

    def codegen(context, builder, signature, args):
        _emit_pause(builder)
        return context.get_dummy_value()

    return sig, codegen


@intrinsic
def _yield_cpu(typingctx):
    """``sched_yield()``: let the OS run someone else (POSIX); elsewhere a
    spin-wait hint only."""
    sig = types.void()

    def codegen(context, builder, signature, args):
        if _POSIX:
            fnty = llvm_ir.FunctionType(llvm_ir.IntType(32), [])
            fn = cgutils.get_or_insert_function(builder.module, fnty, "sched_yield")
            builder.call(fn, [])
        else:
            _emit_pause(builder)
        return context.get_dummy_value()

    return sig, codegen


@kernel
def barrier(sync, tid, n_threads, count):
    """Wait until every thread has reached barrier number ``count``.
    Returns False when told to abort. Spins ~3 us (100 ``pause``, ~29 ns
    each here; the others are usually that close), then yields the CPU on
    every check: when both threads share a core -- a busy machine, or
    before the OS spreads them -- a longer spin made every step wait for the
    spinner's time slice (2,000 spins: steps up to 3x slower)."""
    _store_release(sync, (tid + 1) * SYNC_STRIDE, count)
    for other in range(n_threads):
        if other == tid:
            continue
        spins = 0
        while _load_acquire(sync, (other + 1) * SYNC_STRIDE) < count:
            if _load_acquire(sync, SYNC_ABORT) != 0:
                return False
            spins += 1
            if spins < 100:
                _spin_pause()
            else:
                _yield_cpu()
    return True


@kernel
def part_range(n, n_parts, p):
    """Part ``p`` of ``range(n)`` cut into ``n_parts`` near-equal pieces
    (the first ones one longer)."""
    q, r = divmod(n, n_parts)
    lo = p * q + min(p, r)
    return lo, lo + q + (1 if p < r else 0)


# ---------------------------------------------------------------------------
# the training loop: many steps in one call
# ---------------------------------------------------------------------------
@kernel
def thread_private(n, dtype):
    """A new array of ``n`` values that shares no cache line with any other
    allocation: each thread of a step writes its own small arrays at every
    step, and two of them side by side in memory (malloc may place them so)
    made both threads' cores pass the line back and forth -- measured: a
    two-thread step twice as slow as on one thread."""
    return np.empty(n + 32, dtype)[16:16 + n]


@kernel
def _step_scalars(hyper):
    """``(eps_clip, lr_init, beta_1, beta_2, alpha)`` from ``hyper`` (see
    :func:`train_steps`), float64."""
    return hyper[6], hyper[7], hyper[2], hyper[3], hyper[5]


@kernel
def optimizer_scalars(hyper, dtype):
    """The optimizer's scalars in the weights' dtype (see
    :func:`update_segment`; ``c[7]`` and ``c[9]`` are set per step)."""
    c = thread_private(np.int64(10), dtype)
    c[0] = hyper[0]
    c[1] = hyper[1]
    c[2] = hyper[2]
    c[3] = 1.0 - hyper[2]
    c[4] = hyper[3]
    c[5] = 1.0 - hyper[3]
    c[6] = hyper[4]
    c[7] = 0
    c[8] = hyper[5]
    c[9] = 0
    return c


@kernel
def gather_part(X, Y, sw, order, start, nb, k0, k1, r0, r1, Xq, Yb, swb, sparse):
    """One part's share of gathering batch ``order[start:start+nb]``:
    columns ``k0:k1`` of X for every batch row into ``Xq`` (unless sparse),
    and Y, sw of batch rows ``r0:r1``."""
    if not sparse:
        for r in range(nb):
            src = X[order[start + r]]
            dst = Xq[r]
            for j in range(k1 - k0):
                dst[j] = src[k0 + j]
    no = Y.shape[1]
    for r in range(r0, r1):
        i = order[start + r]
        for j in range(no):
            Yb[r, j] = Y[i, j]
        swb[r] = sw[i]


#: Weight gradients ``A^T D`` with fewer output units than this (but more
#: than 2) are computed as ``(D^T A)^T`` through a scratch buffer: BLAS ran
#: the transposed shape faster (512 rows, 256 inputs, 10 outputs: 80 against
#: 122 us in float64, 48 against 57 in float32; 784 inputs: 232 against
#: 374 us in float64; from 16 outputs on, about even).
SMALL_FAN_OUT = 16


@kernel
def _transposed_fan_out(fo):
    """Whether a layer of ``fo`` outputs takes its weight gradient through
    the transposed product (see ``SMALL_FAN_OUT``)."""
    return 2 < fo < SMALL_FAN_OUT


@kernel
def transposed_scratch_size(units):
    """Values of the scratch :func:`part_gradient` needs for ``units``."""
    size = 0
    for l in range(units.shape[0] - 1):
        if _transposed_fan_out(units[l + 1]):
            size = max(size, units[l] * units[l + 1])
    return size


@kernel
def part_gradient(blas, Xb, nf, acts, deltas, part_off, units, coef_off, icpt_off,
                  m, G, scratch, t0):
    """Dense :func:`train_steps`: the unnormalised gradient sums of one part's
    ``m`` batch rows, every layer (``A_l^T D_{l+1}`` over those rows and the
    deltas' column sums), into ``G`` (``n_params`` long); with ``t0`` the
    first layer's transposed, ``D_1^T X`` (see ``first_t`` there). ``Xb``
    starts at the part's first gathered row; ``part_off`` locates its rows
    of ``acts`` and ``deltas`` (``m >= 1``); ``scratch`` has
    :func:`transposed_scratch_size` values."""
    NT = np.int64(NOTRANS)
    TT = np.int64(TRANS)
    for l in range(units.shape[0] - 1):
        fi = units[l]
        fo = units[l + 1]
        D = deltas[part_off[l + 1]:part_off[l + 1] + m * fo]
        Gl = G[coef_off[l]:coef_off[l] + fi * fo]
        A = Xb if l == 0 else acts[part_off[l]:]
        lda = nf if l == 0 else fi
        if l == 0 and t0:
            gemm(blas, TT, NT, fo, fi, m, D, fo, A, lda, 0.0, Gl, fi)
        elif _transposed_fan_out(fo):
            gemm(blas, TT, NT, fo, fi, m, D, fo, A, lda, 0.0, scratch, fi)
            for i in range(fi):
                for j in range(fo):
                    Gl[i * fo + j] = scratch[j * fi + i]
        else:
            gemm(blas, TT, NT, fi, fo, m, A, lda, D, fo, 0.0, Gl, fo)
        column_sums(D.reshape((m, fo)), 0, G[icpt_off[l]:icpt_off[l] + fo])


@kernel
def sum_parts_and_update(params, grads, state1, state2, k0, k1, n_params, n_parts,
                         n_coef, c, solver, nesterov, first_t):
    """Dense :func:`train_steps`: weights ``k0:k1`` (coefficients and
    intercepts in their flat order) get the gradient sums of every part
    (``grads`` holds ``n_parts`` blocks of ``n_params``), added into block
    0 in part order, and their optimizer update -- in chunks, so each chunk
    is still in the core's cache when the update reads it. The first
    ``first_t.shape[1]`` weights (the first layer's coefficients, when kept
    transposed) are those of ``first_t`` (weights, state1, state2)."""
    zero = c[8] * 0
    chunk = UPDATE_CHUNK_BYTES // params.itemsize
    n0 = first_t.shape[1]
    for s0 in range(k0, k1, chunk):
        s1 = min(s0 + chunk, k1)
        G0 = grads[s0:s1]
        for p in range(1, n_parts):
            Gp = grads[p * n_params + s0:p * n_params + s1]
            for k in range(s1 - s0):
                G0[k] += Gp[k]
        e0 = min(s1, n0)
        if e0 > s0:
            update_segment(first_t[0], grads, first_t[1], first_t[2], s0, s0,
                           e0 - s0, c[8], c, solver, nesterov)
        a0 = max(s0, n0)
        a1 = min(s1, n_coef)  # coefficients take the L2 term, intercepts not
        if a1 > a0:
            update_segment(params, grads, state1, state2, a0, a0, a1 - a0, c[8],
                           c, solver, nesterov)
        b0 = max(s0, n_coef)
        if s1 > b0:
            update_segment(params, grads, state1, state2, b0, b0, s1 - b0, zero,
                           c, solver, nesterov)


#: Dense float64 input whose first layer has at least twice as many inputs
#: as units (and at least ``SMALL_FAN_OUT`` units), in products too large
#: for BLAS's small-product kernel (a part's rows x inputs x units >
#: ``SMALL_GEMM_WORK``): during a :func:`train_steps` call that layer's
#: coefficients and their optimizer state live transposed, ``(units,
#: n_features)``, in ``first_t``, moved in at the call's start and back at
#: its end, so its weight gradient is ``D^T X`` and its forward product ``X
#: W^T``. Measured, single-threaded BLAS, both products, transposed / not:
#: 784 x 256 at 512 rows 1.05-1.07x as fast, at 128 rows 1.00-1.03x; 784 x
#: 100 1.04-1.12x; 3000 x 256 1.11-1.15x; 200 x 50 1.03-1.04x; 100 x 50 at
#: 256 rows 1.03x; 300 x 128 and 128 x 64 even; with fewer inputs a unit
#: slower (150 x 100 0.97x, 100 x 64 0.99x); in float32 the gradient even
#: (784 x 256: 104 GFLOP/s either way); slower for small products (100 x 50
#: at 128 rows 0.86x) and few units (200 x 4 at 512 rows 0.57x). Steps,
#: two threads: 784-256-256-10 1.03x faster at batches 256 and 1024.
@kernel
def _move_first_layer(params, state1, state2, adam, first_t, a, b, fo, back):
    """Values ``a:b`` of ``first_t``'s rows (the first layer's coefficients
    transposed, ``(fo, n_features)``, flat) from the first layer's
    coefficients ``(n_features, fo)`` of ``params``, ``state1`` and (Adam)
    ``state2``, or back into them if ``back``: at most three blocks of
    :func:`_move_weights` (the rest of a first unit, whole units, the start
    of a last one)."""
    fi = first_t.shape[1] // fo
    one = np.int64(1)
    k = a
    while k < b:
        j = k // fi
        i0 = k - j * fi
        if i0 == 0 and b - k >= fi:  # whole units j, j + 1, ...
            rows = fi
            cols = (b - k) // fi
        else:  # part of unit j
            rows = min(fi, b - j * fi) - i0
            cols = one
        _move_weights(params, state1, state2, adam, i0 * fo + j, fo, first_t[0],
                      first_t[1], first_t[2], k, one, fi, rows, cols, back)
        k += rows * cols


def first_layer_buffer(units, dtype, sparse, batch_size, n_parts):
    """``train_steps``'s ``first_t`` for a fit: ``(3, n_features *
    units[1])`` when the first layer's coefficients are kept transposed
    during a call (see above), else ``(3, 0)``."""
    fi, fo = int(units[0]), int(units[1])
    rows = -(-int(batch_size) // max(int(n_parts), 1))
    keep = (not sparse and np.dtype(dtype).itemsize == 8
            and fi >= 2 * fo and fo >= SMALL_FAN_OUT
            and rows * fi * fo > SMALL_GEMM_WORK)
    return aligned_empty((3, fi * fo if keep else 0), dtype)


@kernel
def train_steps(tid, n_threads, n_parts, sync, X, sp_data, sp_indices, sp_indptr,
                sparse, Y, sw, order, first_batch, n_steps, batch_size, params,
                grads, state1, state2, hyper, units, coef_off, icpt_off, Xb, Yb,
                swb, row_loss, acts, deltas, partials, l2_parts, act_off, first_t,
                hidden, out, solver, nesterov, adam_t, loss_acc, blas):
    """Run ``n_steps`` mini-batch steps of the current pass.

    Batch ``k`` of the pass is ``order[k*batch_size:(k+1)*batch_size]`` (the
    last one holds the remainder); this runs batches ``first_batch ..
    first_batch + n_steps - 1``, which the caller keeps inside the pass.
    Input rows come from dense ``X`` or, when ``sparse``, from the CSR
    arrays (``X`` is then an empty ``(0, n_features)`` placeholder).

    Each step is cut into ``n_parts`` parts, the same cut however many
    threads run it, so the result never depends on the thread count.

    Forward and deltas go by batch rows. Dense input: part ``p`` gathers
    its rows of the batch (whole rows, into ``Xb`` as ``(nb, n_features)``)
    and runs them through every layer (full-width products: on 784 features
    and (256, 256) units these ran 5-8% faster than two half-width ones),
    taking their losses and the deltas of every layer. Sparse input: the
    first layer is cut by input features instead (phase 1: part ``q``
    multiplies the nonzeros of its features by its rows of ``W_0`` into
    ``partials`` block ``q``), and the partial products are added in part
    order before the rest of the forward pass by rows (phase 2).

    Then gradients and updates by weights. Dense: part ``p`` has already
    taken the gradient sums of its batch rows, every weight, into block
    ``p`` of ``grads`` (``n_parts`` blocks of ``n_params``;
    :func:`part_gradient`); part ``q`` adds the blocks over its contiguous
    run of the weights, in part order, and applies the update
    (:func:`sum_parts_and_update`). Measured against reading column slices
    of the whole batch (784-256-256-10, batch 1024, two threads alternating
    in one process): 2-5% faster a step; 1000-8-1 at batch 256, 1.9x.
    Sparse: part ``q`` takes a slice of every layer's input units (its rows
    of the coefficient gradient ``A[:, units]^T D``, read in place through
    BLAS's leading dimension, and a contiguous run of ``grads`` and
    ``params``) and a slice of every layer's intercepts, each with its
    optimizer update. Before that, each part takes the sum of squares of
    its slice of the coefficients (the L2 term, weights before the update)
    into ``l2_parts[8 * q]`` (float64, 64 bytes apart); thread 0 adds them
    in part order.

    Barriers: dense, one before each step's gather (the previous updates,
    and their reads of the batch and of every part's gradient block, done)
    and one before the sums and updates; sparse, one
    after phase 1 and one after phase 2 (the gradients of one step and
    phase 1 of the next touch disjoint data). ``tid`` (0 .. ``n_threads`` -
    1) runs parts ``tid, tid + n_threads, ...``; thread 0 alone adds up the
    loss. With one part ``partials`` may be empty; ``blas`` from
    :func:`blas_functions`.

    ``first_t`` (dense input only) is ``(3, 0)`` or, to keep the first
    layer's coefficients transposed during the call (see
    :func:`first_layer_buffer`), ``(3, n_features * units[1])``: each part
    moves its own range of them (and of both optimizer states) in at the
    start (a barrier follows) and back at the end, aborted or not; the
    parts' gradient blocks then hold that layer transposed too.

    ``hyper`` (float64) = ``[lr, momentum, beta_1, beta_2, epsilon, alpha,
    eps_clip, lr_init]``; for Adam, ``lr`` is unused and ``adam_t`` is the
    number of Adam steps taken before this call.

    ``loss_acc`` is the epoch's running sum of ``batch_loss * batch_len``
    so far: it is carried through the call (not restarted at 0) so the sum is
    added up in the same order however an epoch is split into calls.

    A batch whose sample weights are all 0 makes no update and adds nothing
    to the loss (its 0/0 gradient carries no information).

    Returns ``(updated loss_acc, samples seen, rows behind loss_acc's new
    terms, optimizer updates made)`` (meaningful in thread 0), or ``seen =
    -1`` if told to abort.
    """
    n = order.shape[0]
    eps_clip, lr_init, beta_1_64, beta_2_64, alpha_64 = _step_scalars(hyper)
    last = units.shape[0] - 1
    n_out = units[last]
    n_coef = icpt_off[0]
    n_params = params.shape[0]
    if not sparse and grads.shape[0] < n_parts * n_params:
        raise ValueError("train_steps: dense input needs n_parts gradient blocks")
    nf = units[0]
    h1 = units[1]
    n0 = first_t.shape[1]  # first-layer coefficients kept transposed
    t0 = n0 > 0
    if t0 and (sparse or n0 != nf * h1 or first_t.shape[0] != 3):
        raise ValueError("train_steps: first_t must be (3, n_features * units[1]) "
                         "or (3, 0), and (3, 0) for sparse input")
    adam = solver == ADAM
    c = optimizer_scalars(hyper, params.dtype)
    zero = c[8] * 0
    NT = np.int64(NOTRANS)
    TT = np.int64(TRANS)
    part_off = thread_private(last + 1, np.int64)  # act_off shifted to a row slice
    scratch = thread_private(0 if sparse else transposed_scratch_size(units),
                             params.dtype)
    seen = 0
    loss_rows = 0
    updates = 0
    n_barriers = 0
    aborted = False
    if t0:  # each part's own weights (those it updates), then every thread's
        for q in range(tid, n_parts, n_threads):
            k0, k1 = part_range(n_params, n_parts, q)
            _move_first_layer(params, state1, state2, adam, first_t, k0,
                              min(k1, n0), h1, np.int64(0))
        if n_threads > 1:
            n_barriers += 1
            aborted = not barrier(sync, tid, n_threads, n_barriers)
    for s in range(0 if aborted else n_steps):
        start = (first_batch + s) * batch_size
        stop = min(start + batch_size, n)
        nb = stop - start
        rows = order[start:stop]
        seen += nb
        A1 = layer_view(acts, act_off[1], nb, h1)
        if not sparse:
            # -- dense: gather whole rows, their first-layer product ----------
            if s > 0 and n_threads > 1:
                n_barriers += 1
                if not barrier(sync, tid, n_threads, n_barriers):
                    aborted = True
                    break
            for p in range(tid, n_parts, n_threads):
                r0, r1 = part_range(nb, n_parts, p)
                Xr = layer_view(Xb, r0 * nf, r1 - r0, nf)
                gather_part(X, Y, sw, order, start + r0, r1 - r0, 0, nf, 0, r1 - r0,
                            Xr, Yb[r0:], swb[r0:], sparse)
                A1r = layer_view(acts, act_off[1] + r0 * h1, r1 - r0, h1)
                if t0:  # X W^T
                    gemm_by_rows(blas, TT, r1 - r0, h1, nf, _flat(Xr), nf,
                                 first_t[0], nf, _flat(A1r), h1)
                else:
                    first_layer_product(params, Xr, sp_data, sp_indices,
                                        sp_indptr, rows, sparse, r1 - r0, 0, nf,
                                        units, coef_off, A1r)
        else:
            # -- sparse, phase 1: first-layer products by input features ------
            for q in range(tid, n_parts, n_threads):
                k0, k1 = part_range(nf, n_parts, q)
                r0, r1 = part_range(nb, n_parts, q)
                gather_part(X, Y, sw, order, start, nb, k0, k1, r0, r1,
                            Xb[:0].reshape((0, 0)), Yb, swb, sparse)
                Pq = (A1 if n_parts == 1
                      else layer_view(partials, q * batch_size * h1, nb, h1))
                first_layer_product(params, Xb[:0].reshape((0, 0)), sp_data,
                                    sp_indices, sp_indptr, rows, sparse, nb, k0, k1,
                                    units, coef_off, Pq)
            if n_threads > 1:
                n_barriers += 1
                if not barrier(sync, tid, n_threads, n_barriers):
                    aborted = True
                    break
        # -- forward and deltas by batch rows ---------------------------------
        for p in range(tid, n_parts, n_threads):
            c0, c1 = part_range(n_coef, n_parts, p)
            l2 = 0.0  # weights before the update
            e0 = min(c1, n0)
            if e0 > c0:
                seg = first_t[0, c0:e0]
                l2 = np.dot(seg, seg)
            a0 = max(c0, n0)
            if c1 > a0:
                seg = params[a0:c1]
                l2 += np.dot(seg, seg)
            l2_parts[8 * p] = l2
            r0, r1 = part_range(nb, n_parts, p)
            m = r1 - r0
            if m == 0:
                if not sparse:
                    grads[p * n_params:(p + 1) * n_params] = 0
                continue
            if sparse and n_parts > 1:
                P0 = layer_view(partials, 0, nb, h1)
                for r in range(r0, r1):
                    for j in range(h1):
                        A1[r, j] = P0[r, j]
                for q in range(1, n_parts):
                    Pq = layer_view(partials, q * batch_size * h1, nb, h1)
                    for r in range(r0, r1):
                        for j in range(h1):
                            A1[r, j] += Pq[r, j]
            for l in range(last + 1):
                part_off[l] = act_off[l] + r0 * units[l]
            forward_layers(params, m, units, coef_off, icpt_off, acts, part_off,
                           hidden, out)
            output_row_losses(out, layer_view(acts, part_off[last], m, n_out),
                              Yb[r0:r1], swb[r0:r1],
                              layer_view(deltas, part_off[last], m, n_out),
                              eps_clip, row_loss[r0:r1])
            for l in range(last - 1, 0, -1):
                propagate_delta(params, l, m, units, coef_off, acts, deltas,
                                part_off, hidden)
            if not sparse:
                part_gradient(blas, Xb[r0 * nf:], nf, acts, deltas, part_off, units,
                              coef_off, icpt_off, m,
                              grads[p * n_params:(p + 1) * n_params], scratch, t0)
        # every thread reads all of swb once every part's rows are in: sparse,
        # now (phase 1's barrier), as the next step's phase 1 may overwrite
        # them as soon as this step's barrier is passed; dense, after that
        # barrier (the next gather waits for the next step's first one)
        sw_sum = 0.0
        if sparse:
            for i in range(nb):
                sw_sum += swb[i]
        if n_threads > 1:
            n_barriers += 1
            if not barrier(sync, tid, n_threads, n_barriers):
                aborted = True
                break
        if not sparse:
            for i in range(nb):
                sw_sum += swb[i]
        # -- gradients and updates by weights ---------------------------------
        # a batch whose samples all weigh 0 has a 0/0 loss and gradient: it
        # makes no update and stays out of the epoch's loss (it still counts
        # in t_)
        if sw_sum == 0.0:
            continue
        c[9] = 1.0 / sw_sum
        updates += 1
        if solver == ADAM:
            t = adam_t + updates
            # scikit-learn computes this rate in float64 and applies it in
            # the weights' dtype; the cell c[7] does that cast.
            c[7] = (lr_init * math.sqrt(1.0 - beta_2_64 ** t)
                    / (1.0 - beta_1_64 ** t))
        if not sparse:
            for q in range(tid, n_parts, n_threads):
                k0, k1 = part_range(n_params, n_parts, q)
                sum_parts_and_update(params, grads, state1, state2, k0, k1, n_params,
                                     n_parts, n_coef, c, solver, nesterov, first_t)
        else:  # sparse: by input units of every layer
            for q in range(tid, n_parts, n_threads):
                for l in range(last):
                    fi = units[l]
                    fo = units[l + 1]
                    D = layer_view(deltas, act_off[l + 1], nb, fo)
                    i0, i1 = part_range(fi, n_parts, q)
                    if i1 > i0:
                        gk = coef_off[l] + i0 * fo
                        G = layer_view(grads, gk, i1 - i0, fo)
                        if l == 0:  # the nonzeros of input features i0:i1
                            weight_grad(acts, act_off, Xb[:0].reshape((0, 0)),
                                        sp_data, sp_indices, sp_indptr, rows, sparse,
                                        0, nb, fi, i0, i1, D, G)
                        else:  # columns i0:i1 of A_l, in place
                            gemm(blas, TT, NT, i1 - i0, fo, nb,
                                 acts[act_off[l] + i0:], fi, _flat(D), fo, 0.0,
                                 _flat(G), fo)
                        update_segment(params, grads, state1, state2, gk, gk,
                                       (i1 - i0) * fo, c[8], c, solver, nesterov)
                    j0, j1 = part_range(fo, n_parts, q)
                    if j1 > j0:
                        ik = icpt_off[l] + j0
                        column_sums(D, j0, grads[ik:ik + j1 - j0])
                        update_segment(params, grads, state1, state2, ik, ik,
                                       j1 - j0, zero, c, solver, nesterov)
        if tid == 0:
            data = 0.0
            for i in range(nb):
                data += row_loss[i]
            l2 = 0.0
            for q in range(n_parts):
                l2 += l2_parts[8 * q]
            loss = (data + 0.5 * alpha_64 * l2) / sw_sum
            loss_acc += loss * nb
            loss_rows += nb
    if t0:  # each part's own weights back: no other thread writes them now
        for q in range(tid, n_parts, n_threads):
            k0, k1 = part_range(n_params, n_parts, q)
            _move_first_layer(params, state1, state2, adam, first_t, k0,
                              min(k1, n0), h1, np.int64(1))
    if aborted:
        return loss_acc, -1, loss_rows, updates
    return loss_acc, seen, loss_rows, updates


# ---------------------------------------------------------------------------
# dense input: parts own hidden units
# ---------------------------------------------------------------------------
#: Values each thread's block of batch rows, activations, deltas and output
#: shares in :func:`train_steps_units` is padded to a multiple of: 4 KiB of
#: float32, 8 KiB of float64. With the buffers starting on page boundaries
#: (``_threads.aligned_empty``), every such block starts on a page of its
#: own, where the hardware prefetchers of a core streaming through another
#: block never reach (see ``_threads.BUFFER_ALIGN``). Measured against
#: 128-byte blocks (c1, 100-100-1 float64 at batch 16, two threads,
#: per-pair medians of alternating calls): 1.04x faster when the machine
#: is quiet, 1.17x in its slow spells (29.7 -> 25.5 us a step), when our
#: two vCPUs pass a cache line back and forth in 320 ns instead of 55.
#: The parts' packed weights are not padded to whole pages: then the four
#: rows Adam streams through together (weights, two moments, gradient) put
#: the same weight of each at the same offset in a page, and 784-256-256-10
#: steps at batch 16 ran 0.81x as fast. Each part's block is followed by a
#: guard of ``BLOCK_VALUES`` values instead (whole pages, never read or
#: written), so the next part's block starts on a later page than the one
#: this block ends on, at the offsets in a page it had before. Measured
#: against no guard (100-100-1 float64): batch 16 1.04x quiet, 1.10x slow;
#: batch 64 1.005x / 1.05x; 784-256-256-10 at batch 16 0.99x / 1.01x.
BLOCK_VALUES = 1024


def _line_padded(n):
    """``n`` rounded up to whole 128-byte units of float64 (64 of float32):
    blocks that different threads write never share a cache line. Plain
    Python (see :func:`units_plan`)."""
    return (n + 15) // 16 * 16


@kernel
def _padded(n):
    """``n`` rounded up to whole ``BLOCK_VALUES``: a block of its own
    page(s) for each thread (see there)."""
    return (n + BLOCK_VALUES - 1) // BLOCK_VALUES * BLOCK_VALUES


def start_runtime():
    """One compiled call (of a tiny kernel): Numba sets up its typing and
    target contexts at a process's first one. :func:`skminibatch._kernels.
    network` does it while the garbage collector is paused."""
    return _padded(1)


@kernel
def _tn_units_chunk(w, nb, nf):
    """Units a BLAS call of a transposed first layer's forward product
    (``w`` units, ``nb`` rows, ``nf`` features) takes: all of them, or for
    a product too large for the small-product kernel the chunk described
    at ``SMALL_TN_OUTPUTS`` (all of them when even ``TN_MIN_UNITS`` is
    too many)."""
    if w * nb * nf <= SMALL_GEMM_WORK:
        return w
    c = 0
    t = TN_MIN_UNITS
    while t < w and t * nb <= SMALL_TN_OUTPUTS and t * nb * nf <= SMALL_GEMM_WORK:
        c = t
        t *= 2
    return c if c > 0 else w


@kernel
def _tn_delta_chunk(m, nb):
    """Units of a hidden layer per BLAS call of the delta passed back to
    them (``m`` units, ``nb`` rows): see ``TN_FEW_ROWS``."""
    if nb > TN_FEW_ROWS or nb * m <= SMALL_TN_OUTPUTS:
        return m
    return SMALL_TN_OUTPUTS // TN_FEW_ROWS


@kernel
def _first_layer_transposed(units, n_parts):
    """Whether each part keeps its first-layer block transposed, ``(units,
    n_features)``. For products too large for BLAS's small-product kernel
    even in chunks of ``SMALL_GEMM_MIN_ROWS`` rows, the weight gradient
    ``D^T X`` ran at 47 GFLOP/s where ``X^T D`` ran at 38 (784 features,
    128 units, batch 1024, float64); for small ones the forward product
    with a transposed operand ran slower instead (38 against 54 GFLOP/s,
    100 features, 50 units, batch 64)."""
    width = (units[1] + n_parts - 1) // n_parts
    return SMALL_GEMM_MIN_ROWS * units[0] * width > SMALL_GEMM_WORK


def _units_layout(units, n_parts, batch_size):
    """Block sizes and offsets of :func:`train_steps_units`'s buffers (plain
    Python: :func:`units_plan` computes them once a fit).

    Returns ``(packed, ablk, hoff, doff, dpoff, oblk, acts_size, deltas_size,
    partials_size)``: values per part in ``packed``; per hidden layer ``h``
    (index ``h``, 1-based; entry 0 unused) the block size of one part's
    ``(batch, units)`` activations and where layer ``h``'s activation
    blocks (``hoff``: by parity and part), delta blocks (``doff``: by part)
    and delta partial products (``dpoff``: by source and destination part)
    start; the output block size; the three buffer sizes."""
    n_layers = units.shape[0] - 1
    n_out = units[n_layers]
    ablk = np.zeros(n_layers, np.int64)
    hoff = np.zeros(n_layers, np.int64)
    doff = np.zeros(n_layers, np.int64)
    dpoff = np.zeros(n_layers, np.int64)
    a = 0
    d = 0
    packed = 0
    for h in range(1, n_layers):
        width = (units[h] + n_parts - 1) // n_parts
        packed += units[h - 1] * width + width  # coefficients in, intercepts
        ablk[h] = _padded.py_func(batch_size * width)
        hoff[h] = a
        a += 2 * n_parts * ablk[h]
        doff[h] = d
        d += n_parts * ablk[h]
    for h in range(1, n_layers - 1):  # hidden layers that pass deltas back
        dpoff[h] = d
        d += n_parts * n_parts * ablk[h]
    width = (units[n_layers - 1] + n_parts - 1) // n_parts
    # part 0 also holds the output intercepts
    # a guard of BLOCK_VALUES after each part's weights (see there)
    packed = _line_padded(packed + width * n_out + n_out) + BLOCK_VALUES
    oblk = _padded.py_func(batch_size * n_out)
    return (packed, ablk, hoff, doff, dpoff, oblk, a + n_parts * oblk,
            d + n_parts * oblk, 2 * n_parts * oblk)


def units_buffer_sizes(units, n_parts, batch_size):
    """``(packed per part, acts, deltas, partials)`` sizes (values) of
    :func:`train_steps_units`'s buffers."""
    lay = _units_layout(np.asarray(units, dtype=np.int64), int(n_parts),
                        int(batch_size))
    return int(lay[0]), int(lay[6]), int(lay[7]), int(lay[8])


#: Where :func:`units_plan`'s sections start: ``n_parts, batch_size``, the
#: values a part's packed block takes and an output block's, then four
#: sections of ``L`` values (``ablk, hoff, doff, dpoff`` of
#: :func:`_units_layout`), each part's ``2 L + 2`` offsets and last the
#: ``L + 1`` layer widths it was made for.
PLAN_HEAD = 4


def units_plan(units, n_parts, batch_size):
    """The int64 ``plan`` argument of :func:`train_steps_units`: its
    buffers' layout (:func:`_units_layout`) and each part's offsets in its
    packed block (:func:`_units_part_offsets`), computed once a fit in
    plain Python. (Compiled into the kernel they cost ~0.5 s of a cold
    first fit's compilation and were recomputed at every call.)"""
    units = np.asarray(units, dtype=np.int64)
    n_parts, batch_size = int(n_parts), int(batch_size)
    L = units.shape[0] - 1
    psz, ablk, hoff, doff, dpoff, oblk, _, _, _ = _units_layout(units, n_parts,
                                                                batch_size)
    poff = np.zeros(n_parts * (2 * L + 2), dtype=np.int64)
    for q in range(n_parts):
        _units_part_offsets(units, n_parts, q, poff[q * (2 * L + 2):])
    return np.concatenate([np.array([n_parts, batch_size, psz, oblk], np.int64),
                           ablk, hoff, doff, dpoff, poff, units])


def _units_part_offsets(units, n_parts, q, out):
    """Part ``q``'s packed block: ``out[l]`` = where layer ``l``'s
    coefficient block starts (``(fan_in, part's units)`` for hidden layers
    -- the first one's maybe transposed, see :func:`_first_layer_transposed`
    -- ``(part's units of the last hidden layer, n_outputs)`` for the output
    layer), ``out[L + l]`` its intercepts' (hidden layers only; part 0
    also holds the output intercepts, last), ``out[2L]`` = the number of
    coefficients, ``out[2L + 1]`` = all. Plain Python (see
    :func:`units_plan`)."""
    part_range_ = part_range.py_func
    n_layers = units.shape[0] - 1
    k = 0
    for l in range(n_layers):
        out[l] = k
        if l < n_layers - 1:
            j0, j1 = part_range_(units[l + 1], n_parts, q)
            k += units[l] * (j1 - j0)
        else:
            j0, j1 = part_range_(units[l], n_parts, q)
            k += (j1 - j0) * units[l + 1]
    out[2 * n_layers] = k
    for l in range(n_layers - 1):
        out[n_layers + l] = k
        j0, j1 = part_range_(units[l + 1], n_parts, q)
        k += j1 - j0
    if q == 0:
        k += units[n_layers]
    out[2 * n_layers + 1] = k


@kernel
def _move_weights(params, state1, state2, adam, a, a_row, Wq, S1q, S2q, b, b_row,
                  b_col, rows, cols, back):
    """``Wq[b + i * b_row + k * b_col] = params[a + i * a_row + k]`` for
    ``i < rows``, ``k < cols``, with the optimizer state (``back``: the
    other way). A block per call, not a weight: each call of a compiled
    function with array arguments costs atomic reference counts on them (a
    call per weight made packing a 100-100-1 network's 10,201 weights in and
    out take ~450 us a call)."""
    for m in range(3 if adam else 2):
        src = params if m == 0 else state1 if m == 1 else state2
        dst = Wq if m == 0 else S1q if m == 1 else S2q
        for i in range(rows):
            p0 = a + i * a_row
            q0 = b + i * b_row
            if back:
                for k in range(cols):
                    src[p0 + k] = dst[q0 + k * b_col]
            else:
                for k in range(cols):
                    dst[q0 + k * b_col] = src[p0 + k]


@kernel
def _pack_units(params, state1, state2, adam, units, coef_off, icpt_off, n_parts,
                q, off, Wq, S1q, S2q, back):
    """Copy part ``q``'s weights -- its hidden units' columns of every hidden
    layer's coefficients and their intercepts, its rows of the output
    layer's coefficients, for part 0 the output intercepts -- and their
    optimizer state between ``params`` and the contiguous block ``Wq``
    (``back``: into ``params``); ``off`` from :func:`_units_part_offsets`."""
    n_layers = units.shape[0] - 1
    transposed = _first_layer_transposed(units, n_parts)
    # run-time values, not literals: constant arguments would compile
    # _move_weights a second time, for their literal types
    zero = np.int64(0)
    one = np.int64(1)
    for l in range(n_layers):
        fi = units[l]
        fo = units[l + 1]
        if l < n_layers - 1:  # hidden layer: columns j0:j1, intercepts j0:j1
            j0, j1 = part_range(fo, n_parts, q)
            w = j1 - j0
            t = l == 0 and transposed  # stored as (w, fi)
            _move_weights(params, state1, state2, adam, coef_off[l] + j0, fo, Wq,
                          S1q, S2q, off[l], one if t else w, fi if t else one, fi, w,
                          back)
            _move_weights(params, state1, state2, adam, icpt_off[l] + j0, zero, Wq,
                          S1q, S2q, off[n_layers + l], zero, one, one, w, back)
        else:  # output layer: rows j0:j1; part 0 the intercepts
            j0, j1 = part_range(fi, n_parts, q)
            _move_weights(params, state1, state2, adam, coef_off[l] + j0 * fo, zero,
                          Wq, S1q, S2q, off[l], zero, one, one, (j1 - j0) * fo, back)
            if q == 0:
                _move_weights(params, state1, state2, adam, icpt_off[l], zero, Wq,
                              S1q, S2q, off[2 * n_layers + 1] - fo, zero, one, one, fo,
                              back)


@kernel
def _bias_activation(code, A, b):
    """``A = f(A + b)`` (``b`` added to every row) in one pass for ReLU."""
    n, m = A.shape
    if code == RELU:
        for i in range(n):
            for j in range(m):
                z = A[i, j] + b[j]
                A[i, j] = 0 if z < 0 else z  # NaN stays NaN, like np.maximum
    else:
        for i in range(n):
            for j in range(m):
                A[i, j] += b[j]
        hidden_activation(code, A)


#: Batches of at most this many rows compute a transposed first layer's
#: product as ``W X^T`` (then transpose it): for 16 rows of 784 features
#: and 128 units BLAS ran it at 77 GFLOP/s in float32 where ``X W^T`` ran at
#: 40 (float64: the same either way; from 64 rows on, both the same).
FEW_ROWS = 32
#: A transposed first layer's forward product over more than
#: ``SMALL_GEMM_WORK`` multiply-adds goes to BLAS in chunks of units, a
#: power of two (at least ``TN_MIN_UNITS``) that keeps each call within
#: ``SMALL_GEMM_WORK`` and within this many outputs (units x rows): in
#: OpenBLAS this product (a transposed first operand, column-major) reaches
#: the small-product kernel only for such sizes, and one call instead took
#: the general path, which packs the whole weight block at every step.
#: Measured, 784 features and 128 units, one call -> chunks: batch 16
#: 95 -> 62 us (float64; float32 42 -> 32), batch 32 159 -> 123 (78 -> 64),
#: batch 64 290 -> 246 (142 -> 126), batch 128 588 -> 568 (287 -> 269).
SMALL_TN_OUTPUTS = 1024
TN_MIN_UNITS = 8
#: The same holds for the delta passed back to a hidden layer, ``D W^T``
#: (a part's units of the layer after x its units of this one), at batches
#: of at most this many rows: it goes to BLAS in chunks of
#: ``SMALL_TN_OUTPUTS // TN_FEW_ROWS`` units of this layer. Measured, steps
#: of 100-256-256-2 at batch 16 1.10x faster (float32 1.08x), of
#: 784-256-256-10 1.06x (1.03x); for 128 x 128 blocks at batch 32 the
#: chunks were as fast in float64 and slower in float32 (15.8 -> 17.8 us).
TN_FEW_ROWS = 16
#: A part's weight gradient is computed and applied in chunks of about this
#: many bytes of each of the four arrays involved (weights, gradient, two
#: optimizer states), so the gradient is still in the core's cache when the
#: update reads it: at batch 16 on 784 features the update was memory-bound
#: (0.9 ns a weight in float32 against 0.3 in cache). The chunk grows with
#: the batch, by one ``UPDATE_CHUNK_BYTES`` per ``UPDATE_CHUNK_ROWS`` rows:
#: every chunk's product packs the whole shared operand (the batch of X or
#: of a delta) again, which at large batches cost more than the cache saved
#: (784-256-256-10 float32, batch 1024: 12.3 -> 10.5 ms a step; batch 64:
#: 806 -> 722 us; batch 16 unchanged).
UPDATE_CHUNK_BYTES = 131_072
UPDATE_CHUNK_ROWS = 16
#: Batches of at least this many values (rows x features) are gathered by
#: all threads together (one more barrier a step) rather than by each.
SHARED_GATHER_VALUES = 32_768


@kernel
def train_steps_units(tid, n_threads, n_parts, sync, X, Y, sw, order, first_batch,
                      n_steps, batch_size, params, grads, state1, state2, hyper,
                      units, coef_off, icpt_off, Xb, Yb, swb, row_loss, acts,
                      deltas, partials, l2_parts, packed, plan, hidden, out,
                      solver, nesterov, adam_t, loss_acc, blas):
    """:func:`train_steps` for dense input, cut into ``n_parts`` parts by
    hidden units.

    Part ``q`` owns the units ``J_h`` (``part_range``) of every hidden layer
    ``h``: the columns ``J_h`` of the coefficients into layer ``h`` and
    those intercepts, and its rows ``J`` of the output layer's coefficients
    (part 0 also the output intercepts). It alone reads and updates them:
    for the call they live, with their optimizer state and gradient, in
    part ``q``'s block of ``packed`` (rows: weights, state1, state2,
    gradient; copied in at the start of the call and back at the end), so
    no cache line is written by two threads.

    A step: each thread gathers the whole batch into its own block of
    ``Xb``/``Yb``/``swb`` or, for large batches (``SHARED_GATHER_VALUES``),
    its share of the rows into block ``s % 2`` followed by a barrier (a
    plain copy loop: prefetch hints for the rows ahead measured no faster,
    c1 batch 64 and c3 batch 16-1024). Forward: part ``q``
    computes its units of layer 1 from X, then of each next hidden layer
    from every part's units of the layer before (products added in part
    order), meeting the others at a barrier after each hidden layer but the
    last; then its share of the output layer's product (part 0 adds the
    output intercepts) and the sum of squares of its coefficients (taken
    during the previous step's update, while they were in cache; read from
    the block at a call's first step). Barrier.
    Each thread adds the output shares in part order (the same numbers in
    every thread), applies the output function and takes the output delta.
    Backward: part ``q`` takes the delta of its units of the last hidden
    layer; for each earlier hidden layer, every part multiplies its delta
    into each part's rows (barrier) and part ``p`` adds the products
    addressed to it in part order. Then each part computes its weights'
    gradient and updates them. Activations, output shares and sums of
    squares alternate between two halves by step parity, so a part can
    write step ``s + 1``'s while another thread still reads step ``s``'s:
    ``2 L - 3`` barriers a step for ``L`` layers (one with a single hidden
    layer), one more with a shared gather. Thread 0 adds up the loss.

    The cut depends on ``n_parts`` only, so the result is bit-identical
    with any number of threads. Arguments as :func:`train_steps`, except:
    dense input only; ``Xb`` (``n_parts * _padded(batch_size *
    n_features)``: a block per thread, each on pages of its own),
    ``Yb`` (``(n_parts, batch_size, n_outputs)``), ``swb`` and ``row_loss``
    (``(n_parts, batch_size)``) hold one block per thread (``n_parts >=
    2``, as the shared gather uses two); ``acts``,
    ``deltas`` and ``partials`` are flat, sized by
    :func:`units_buffer_sizes` (as is ``packed``, ``(4, n_parts * size)``);
    ``l2_parts`` is float64 ``(2, 8 * n_parts)``; ``plan`` from
    :func:`units_plan` for these ``units``, ``n_parts`` and
    ``batch_size``; ``blas`` from :func:`blas_functions`.
    """
    n = order.shape[0]
    eps_clip, lr_init, beta_1_64, beta_2_64, alpha_64 = _step_scalars(hyper)
    L = units.shape[0] - 1  # layers; L - 1 hidden ones
    NH = L - 1
    nf = units[0]
    no = units[L]
    adam = solver == ADAM
    # run-time values, not literals: one compiled gemm serves every call
    NT = np.int64(NOTRANS)
    TT = np.int64(TRANS)
    w0_t = _first_layer_transposed(units, n_parts)
    c = optimizer_scalars(hyper, params.dtype)
    zero = c[8] * 0
    n_plan = PLAN_HEAD + 4 * L + n_parts * (2 * L + 2)
    plan_ok = (plan.shape[0] == n_plan + L + 1 and plan[0] == n_parts
               and plan[1] == batch_size)
    for l in range(L + 1 if plan_ok else 0):
        plan_ok = plan_ok and plan[n_plan + l] == units[l]
    if not plan_ok:
        raise ValueError("train_steps_units: plan is not for these units, "
                         "n_parts and batch_size")
    psz = plan[2]
    oblk = plan[3]
    ablk = plan[PLAN_HEAD:PLAN_HEAD + L]
    hoff = plan[PLAN_HEAD + L:PLAN_HEAD + 2 * L]
    doff = plan[PLAN_HEAD + 2 * L:PLAN_HEAD + 3 * L]
    dpoff = plan[PLAN_HEAD + 3 * L:PLAN_HEAD + 4 * L]
    # each part's offsets in its packed block (see _units_part_offsets)
    poff = plan[PLAN_HEAD + 4 * L:n_plan]
    Wp = packed[0]
    S1p = packed[1]
    S2p = packed[2]
    Gp = packed[3]
    for q in range(tid, n_parts, n_threads):
        _pack_units(params, state1, state2, adam, units, coef_off, icpt_off,
                    n_parts, q, poff[q * (2 * L + 2):], Wp[q * psz:], S1p[q * psz:],
                    S2p[q * psz:], np.int64(0))
    # large batches of many features are gathered by all threads into
    # shared buffers (alternating by step parity), small ones by each thread
    # into its own (no barrier needed)
    shared = n_threads > 1 and batch_size * nf >= SHARED_GATHER_VALUES
    xblk = _padded(batch_size * nf)  # a block of Xb, on pages of its own
    if Xb.shape[0] < n_parts * xblk:
        raise ValueError("train_steps_units: Xb needs n_parts blocks of "
                         "_padded(batch_size * n_features) values")
    rl = row_loss[tid]
    # each own part's sum of squared coefficients, taken during the update
    # (the weights are in cache there) for the next step's L2 term; a call's
    # first step reads the block once for it
    l2_next = thread_private(n_parts, np.float64)
    l2_known = False
    a_tail = acts.shape[0] - n_parts * oblk
    d_tail = deltas.shape[0] - n_parts * oblk
    Pt = layer_view(acts, a_tail + tid * oblk, batch_size, no)
    Dt = layer_view(deltas, d_tail + tid * oblk, batch_size, no)
    seen = 0
    loss_rows = 0
    updates = 0
    n_barriers = 0
    aborted = False
    for s in range(n_steps):
        par = s & 1
        start = (first_batch + s) * batch_size
        stop = min(start + batch_size, n)
        nb = stop - start
        seen += nb
        blk = par if shared else tid
        Xt = layer_view(Xb, blk * xblk, batch_size, nf)
        Yt = Yb[blk]
        swt = swb[blk]
        r0, r1 = part_range(nb, n_threads, tid) if shared else (0, nb)
        for r in range(r0, r1):
            i = order[start + r]
            src = X[i]
            dst = Xt[r]
            for j in range(nf):
                dst[j] = src[j]
            for j in range(no):
                Yt[r, j] = Y[i, j]
            swt[r] = sw[i]
        if shared:
            n_barriers += 1
            if not barrier(sync, tid, n_threads, n_barriers):
                aborted = True
                break
        # -- forward: hidden layers, then this thread's output shares ---------
        for h in range(1, NH + 1):
            fi = units[h - 1]
            for q in range(tid, n_parts, n_threads):
                off = poff[q * (2 * L + 2):]
                o = q * psz
                j0, j1 = part_range(units[h], n_parts, q)
                w = j1 - j0
                A = layer_view(acts, hoff[h] + (par * n_parts + q) * ablk[h], nb, w)
                W = Wp[o + off[h - 1]:]
                cw = _tn_units_chunk(w, nb, nf) if h == 1 and w0_t else w
                if h == 1 and w0_t and nb <= FEW_ROWS:
                    # W stored transposed, (w, nf): A^T = W X^T into the
                    # (still unused) delta block, then transposed
                    At = layer_view(deltas, doff[1] + q * ablk[1], w, nb)
                    for c0 in range(0, w, cw):
                        gemm(blas, NT, TT, min(cw, w - c0), nb, nf, W[c0 * nf:], nf,
                             _flat(Xt), nf, 0.0, _flat(At)[c0 * nb:], nb)
                    for r in range(nb):
                        for j in range(w):
                            A[r, j] = At[j, r]
                elif h == 1 and cw < w:  # X W^T, a chunk of A's columns a call
                    for c0 in range(0, w, cw):
                        gemm(blas, NT, TT, nb, min(cw, w - c0), nf, _flat(Xt), nf,
                             W[c0 * nf:], nf, 0.0, _flat(A)[c0:], w)
                elif h == 1:  # W maybe stored transposed, (w, nf)
                    gemm_by_rows(blas, TT if w0_t else NT, nb, w, nf,
                                 _flat(Xt), nf, W, nf if w0_t else w,
                                 _flat(A), w)
                if h == 1 and l2_known:  # before the update
                    l2_parts[par, 8 * q] = l2_next[q]
                elif h == 1:
                    nc = off[2 * L]
                    Wc = Wp[o:o + nc]
                    l2_parts[par, 8 * q] = np.dot(Wc, Wc)
                else:
                    for p in range(n_parts):  # every part's units of layer h-1
                        i0, i1 = part_range(fi, n_parts, p)
                        Ap = layer_view(acts, hoff[h - 1]
                                        + (par * n_parts + p) * ablk[h - 1],
                                        nb, i1 - i0)
                        gemm(blas, NT, NT, nb, w, i1 - i0, _flat(Ap), i1 - i0,
                             W[i0 * w:], w, 0.0 if p == 0 else 1.0, _flat(A),
                             w)
                ib = o + off[L + h - 1]
                _bias_activation(hidden, A, Wp[ib:ib + w])
            if h < NH and n_threads > 1:
                n_barriers += 1
                if not barrier(sync, tid, n_threads, n_barriers):
                    aborted = True
                    break
        if aborted:
            break
        for q in range(tid, n_parts, n_threads):
            o = q * psz
            j0, j1 = part_range(units[NH], n_parts, q)
            w = j1 - j0
            A = layer_view(acts, hoff[NH] + (par * n_parts + q) * ablk[NH], nb, w)
            Pq = layer_view(partials, (par * n_parts + q) * oblk, nb, no)
            gemm(blas, NT, NT, nb, no, w, _flat(A), w,
                 Wp[o + poff[q * (2 * L + 2) + L - 1]:], no, 0.0, _flat(Pq), no)
            if q == 0:  # the output intercepts, at the end of part 0's block
                bo = o + poff[2 * L + 1] - no
                for r in range(nb):
                    for j in range(no):
                        Pq[r, j] += Wp[bo + j]
        if n_threads > 1:
            n_barriers += 1
            if not barrier(sync, tid, n_threads, n_barriers):
                aborted = True
                break
        # -- output layer (every thread, the same numbers) --------------------
        P = Pt[:nb]
        P0 = layer_view(partials, par * n_parts * oblk, nb, no)
        for r in range(nb):
            for j in range(no):
                P[r, j] = P0[r, j]
        for q in range(1, n_parts):
            Pq = layer_view(partials, (par * n_parts + q) * oblk, nb, no)
            for r in range(nb):
                for j in range(no):
                    P[r, j] += Pq[r, j]
        output_activation(out, P)
        D = Dt[:nb]
        if tid == 0:
            output_row_losses(out, P, Yt[:nb], swt[:nb], D, eps_clip, rl[:nb])
        else:  # the others need only the delta (as _row_loss_and_delta has it)
            for r in range(nb):
                w_r = swt[r]
                for j in range(no):
                    D[r, j] = (P[r, j] - Yt[r, j]) * w_r
        sw_sum = 0.0
        for i in range(nb):
            sw_sum += swt[i]
        if sw_sum == 0.0:  # no update, no loss (see train_steps)
            for q in range(tid, n_parts, n_threads):
                l2_next[q] = l2_parts[par, 8 * q]
            l2_known = True
            continue
        c[9] = 1.0 / sw_sum
        updates += 1
        if adam:
            t = adam_t + updates
            c[7] = (lr_init * math.sqrt(1.0 - beta_2_64 ** t)
                    / (1.0 - beta_1_64 ** t))
        # -- backward: the deltas of this thread's units ----------------------
        for h in range(NH, 0, -1):
            if h == NH:  # the last hidden layer's, from the output delta
                for q in range(tid, n_parts, n_threads):
                    o = q * psz
                    off = poff[q * (2 * L + 2):]
                    j0, j1 = part_range(units[NH], n_parts, q)
                    w = j1 - j0
                    A = layer_view(acts, hoff[NH] + (par * n_parts + q) * ablk[NH],
                                   nb, w)
                    Dh = layer_view(deltas, doff[NH] + q * ablk[NH], nb, w)
                    Wo = Wp[o + off[L - 1]:o + off[L - 1] + w * no]
                    if no == 1:  # an outer product: a loop beats a BLAS call
                        for r in range(nb):
                            d = D[r, 0]
                            for j in range(w):
                                Dh[r, j] = d * Wo[j]
                    else:
                        gemm(blas, NT, TT, nb, w, no, _flat(D), no, Wo, no, 0.0,
                             _flat(Dh), w)
                    gemm(blas, TT, NT, w, no, nb, _flat(A), w, _flat(D), no,
                         0.0, Gp[o + off[L - 1]:], no)
            else:  # layer h's, from every part's delta of layer h + 1
                fi = units[h]
                for q in range(tid, n_parts, n_threads):
                    o = q * psz
                    j0, j1 = part_range(units[h + 1], n_parts, q)
                    w = j1 - j0
                    Dq = layer_view(deltas, doff[h + 1] + q * ablk[h + 1], nb, w)
                    W = Wp[o + poff[q * (2 * L + 2) + h]:]
                    for p in range(n_parts):
                        i0, i1 = part_range(fi, n_parts, p)
                        Cp = layer_view(deltas,
                                        dpoff[h] + (q * n_parts + p) * ablk[h],
                                        nb, i1 - i0)
                        m = i1 - i0
                        cm = _tn_delta_chunk(m, nb)
                        for c0 in range(0, m, cm):
                            gemm(blas, NT, TT, nb, min(cm, m - c0), w, _flat(Dq),
                                 w, W[(i0 + c0) * w:], w, 0.0, _flat(Cp)[c0:], m)
                if n_threads > 1:
                    n_barriers += 1
                    if not barrier(sync, tid, n_threads, n_barriers):
                        aborted = True
                        break
                for p in range(tid, n_parts, n_threads):
                    i0, i1 = part_range(fi, n_parts, p)
                    w = i1 - i0
                    Dh = layer_view(deltas, doff[h] + p * ablk[h], nb, w)
                    for q in range(n_parts):
                        Cq = layer_view(deltas,
                                        dpoff[h] + (q * n_parts + p) * ablk[h], nb, w)
                        for r in range(nb):
                            for j in range(w):
                                Dh[r, j] = Cq[r, j] if q == 0 else Dh[r, j] + Cq[r, j]
            for p in range(tid, n_parts, n_threads):  # times f'(A_h)
                i0, i1 = part_range(units[h], n_parts, p)
                w = i1 - i0
                hidden_derivative(hidden, layer_view(
                    acts, hoff[h] + (par * n_parts + p) * ablk[h], nb, w),
                    layer_view(deltas, doff[h] + p * ablk[h], nb, w))
        if aborted:
            break
        # -- this thread's parts: gradients and updates -----------------------
        for q in range(tid, n_parts, n_threads):
            o = q * psz
            off = poff[q * (2 * L + 2):]
            nc = off[2 * L]
            l2_acc = 0.0
            for l in range(NH):  # the intercepts' gradients
                j0, j1 = part_range(units[l + 1], n_parts, q)
                ib = o + off[L + l]
                column_sums(layer_view(deltas, doff[l + 1] + q * ablk[l + 1], nb,
                                       j1 - j0), 0, Gp[ib:ib + j1 - j0])
            if q == 0:
                bo = o + off[2 * L + 1] - no
                column_sums(D, 0, Gp[bo:bo + no])
            # every hidden layer's coefficient block, a chunk of rows at a time:
            # its gradient, then its update while the gradient is in cache;
            # then the output layer's block (gradient computed above) and the
            # intercepts
            for l in range(L + 1):
                w = 0
                rows = 1
                if l < NH:
                    j0, j1 = part_range(units[l + 1], n_parts, q)
                    w = j1 - j0
                    rows = w if l == 0 and w0_t else units[l]
                    row_len = nf if l == 0 and w0_t else w
                elif l == NH:
                    row_len = nc - off[l]
                else:
                    row_len = off[2 * L + 1] - nc
                chunk = max(1, UPDATE_CHUNK_BYTES * max(1, nb // UPDATE_CHUNK_ROWS)
                            // Wp.itemsize // max(row_len, 1))
                for r0 in range(0, rows, chunk):
                    r1 = min(rows, r0 + chunk)
                    G = Gp[o + off[l] + r0 * row_len:] if l < L else Gp[:0]
                    if l == 0:  # D^T X when the weights are transposed, else X^T D
                        Dq = layer_view(deltas, doff[1] + q * ablk[1], nb, w)
                        Xf = _flat(Xt)
                        Df = _flat(Dq)
                        gemm_tn_by_rows(blas, r1 - r0, row_len, nb,
                                        Df[r0:] if w0_t else Xf[r0:],
                                        w if w0_t else nf, Xf if w0_t else Df,
                                        row_len, G, row_len)
                    elif l < NH:  # A^T D, rows from each part's units
                        Dq = layer_view(deltas, doff[l + 1] + q * ablk[l + 1], nb, w)
                        for p in range(n_parts):
                            i0, i1 = part_range(units[l], n_parts, p)
                            a0 = max(r0, i0)
                            a1 = min(r1, i1)
                            if a1 > a0:
                                Ap = layer_view(acts, hoff[l]
                                                + (par * n_parts + p) * ablk[l], nb,
                                                i1 - i0)
                                gemm(blas, TT, NT, a1 - a0, w, nb,
                                     _flat(Ap)[a0 - i0:], i1 - i0,
                                     _flat(Dq), w, 0.0, G[(a0 - r0) * w:], w)
                    k = o + (off[l] if l < L else nc) + r0 * row_len
                    update_segment(Wp, Gp, S1p, S2p, k, k, (r1 - r0) * row_len,
                                   c[8] if l < L else zero, c, solver, nesterov)
                    if l < L:  # coefficients: the next step's sum of squares
                        seg = Wp[k:k + (r1 - r0) * row_len]
                        l2_acc += np.dot(seg, seg)
            l2_next[q] = l2_acc
        l2_known = True
        if tid == 0:
            data = 0.0
            for i in range(nb):
                data += rl[i]
            l2 = 0.0
            for q in range(n_parts):
                l2 += l2_parts[par, 8 * q]
            loss = (data + 0.5 * alpha_64 * l2) / sw_sum
            loss_acc += loss * nb
            loss_rows += nb
    for q in range(tid, n_parts, n_threads):
        _pack_units(params, state1, state2, adam, units, coef_off, icpt_off,
                    n_parts, q, poff[q * (2 * L + 2):], Wp[q * psz:], S1p[q * psz:],
                    S2p[q * psz:], np.int64(1))
    if aborted:
        return loss_acc, -1, loss_rows, updates
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
