"""The flat parameter layout shared by the estimators and the kernels."""

import numpy as np
import scipy.sparse as sp

from ._kernels import network
from ._threads import available_threads, run_on_threads, single_threaded_blas

#: Activation values a prediction thread holds at once (its chunk of rows):
#: 1 MiB of float64, 251 rows of 784-256-256-10. The chunks, of whole rows,
#: depend on the number of rows and the layer widths only, so the outputs
#: do not depend on the threads. Measured (5,000 rows of 784-256-256-10, two
#: threads): chunks of 256 and 512 rows as fast (float64 24.8 ms, float32
#: 16.4-16.7), of 1024 to 4096 slower (the threads' shares less even).
PREDICT_CHUNK_VALUES = 1 << 17


class Layout:
    """Offsets of every layer's weights in the flat parameter vector and of
    every layer's activations in the flat activation buffer.

    ``units = [n_features, *hidden_layer_sizes, n_outputs]``. Coefficients
    come first, then intercepts (scikit-learn's packing order).
    """

    def __init__(self, units):
        self.units = np.asarray(units, dtype=np.int64)
        n_layers = len(units) - 1
        coef_sizes = [units[i] * units[i + 1] for i in range(n_layers)]
        self.coef_off = np.zeros(n_layers, dtype=np.int64)
        self.coef_off[1:] = np.cumsum(coef_sizes)[:-1]
        n_coef = int(sum(coef_sizes))
        self.icpt_off = np.zeros(n_layers, dtype=np.int64)
        self.icpt_off[0] = n_coef
        self.icpt_off[1:] = n_coef + np.cumsum(units[1:-1])
        self.n_coef = n_coef
        self.n_params = n_coef + int(sum(units[1:]))
        self.n_layers = n_layers

    def coef_shapes(self):
        u = self.units
        return [(int(u[i]), int(u[i + 1])) for i in range(self.n_layers)]

    def act_offsets(self, rows):
        """Offsets into an activation buffer sized for ``rows`` rows; entry
        ``l`` (``l >= 1``) is layer ``l``'s block."""
        off = np.zeros(self.n_layers + 1, dtype=np.int64)
        off[2:] = rows * np.cumsum(self.units[1:-1])
        return off

    def rows_per_chunk(self, n_rows, min_rows, max_values=1 << 21):
        """Rows per chunk of a full-data pass, so the activation buffer holds
        at most ``max_values`` values (but at least ``min_rows`` rows)."""
        width = max(int(self.units[1:].sum()), 1)
        return int(max(1, min(n_rows, max(min_rows, max_values // width))))

    def act_size(self, rows):
        return int(rows * self.units[1:].sum())

    def pack(self, coefs, intercepts, dtype):
        """Copy ``coefs`` / ``intercepts`` lists into a new flat vector."""
        flat = np.empty(self.n_params, dtype=dtype)
        for l, (fi, fo) in enumerate(self.coef_shapes()):
            flat[self.coef_off[l]:self.coef_off[l] + fi * fo] = np.asarray(
                coefs[l]
            ).reshape(-1)
            flat[self.icpt_off[l]:self.icpt_off[l] + fo] = np.asarray(
                intercepts[l]
            ).reshape(-1)
        return flat

    def unpack(self, flat):
        """New (owning, independent) arrays for ``coefs_`` and ``intercepts_``."""
        coefs, intercepts = [], []
        for l, (fi, fo) in enumerate(self.coef_shapes()):
            c0, i0 = self.coef_off[l], self.icpt_off[l]
            coefs.append(flat[c0:c0 + fi * fo].reshape(fi, fo).copy())
            intercepts.append(flat[i0:i0 + fo].copy())
        return coefs, intercepts


class KernelInput:
    """X as the kernels take it: a dense C-contiguous matrix, or a CSR matrix
    as its three arrays plus an empty ``(0, n_features)`` dense placeholder
    (kernel arguments keep one type either way, so the dense and the sparse
    path share one compiled specialisation)."""

    _EMPTY_INDEX = np.empty(0, dtype=np.int32)

    def __init__(self, X):
        self.n_rows, self.n_features = X.shape
        self.dtype = X.dtype
        if sp.issparse(X):
            X = X.tocsr()  # once per fit or predict call; a no-op for CSR
            if not X.has_sorted_indices:
                X = X.sorted_indices()
            self.sparse = True
            self.data = np.ascontiguousarray(X.data)
            self.indices = np.ascontiguousarray(X.indices)
            self.indptr = np.ascontiguousarray(X.indptr)
            self.dense = np.empty((0, self.n_features), dtype=self.dtype)
        else:
            self.sparse = False
            self.dense = np.ascontiguousarray(X)
            self.data = np.empty(0, dtype=self.dtype)
            self.indices = self.indptr = self._EMPTY_INDEX

    def args(self):
        """``(X, sp_data, sp_indices, sp_indptr, sparse)`` for a kernel."""
        return self.dense, self.data, self.indices, self.indptr, self.sparse

    def take_rows(self, idx):
        """A new :class:`KernelInput` holding rows ``idx`` (used once per fit
        for the early-stopping split)."""
        if self.sparse:
            X = sp.csr_matrix((self.data, self.indices, self.indptr),
                              shape=(self.n_rows, self.n_features))
            return KernelInput(X[idx])
        return KernelInput(self.dense[idx])


def predict_rows(Xin, params, layout, hidden_code, out_code, max_buffer=None):
    """Output activations for every row of ``Xin`` (a :class:`KernelInput`),
    compiled, in chunks of rows whose activations take at most
    ``max_buffer`` values (default ``PREDICT_CHUNK_VALUES``), shared by
    :func:`available_threads` threads.

    BLAS runs single-threaded inside each chunk. With OpenBLAS's own threads
    (as before) its idle worker kept spinning for ~0.1 s after a predict,
    and a fit started then (as in a grid search: fit, score, fit) lost a
    core meanwhile: 784-256-256-10 float64, 3 epochs at batch 1024, 7% more
    time after predicting 5,000 rows than after a pause."""
    n = Xin.n_rows
    units = layout.units
    result = np.empty((n, int(units[-1])), dtype=params.dtype)
    if n == 0:
        return result
    chunk = layout.rows_per_chunk(n, 64, max_buffer or PREDICT_CHUNK_VALUES)
    n_chunks = -(-n // chunk)
    n_threads = min(n_chunks, available_threads())
    X, data, indices, indptr, sparse = Xin.args()
    kernel = network().predict_chunked
    act_off = layout.act_offsets(chunk)

    def work(t):
        acts = np.empty(layout.act_size(chunk), dtype=params.dtype)
        for k in range(t, n_chunks, n_threads):
            r0, r1 = k * chunk, min((k + 1) * chunk, n)
            kernel(X if sparse else X[r0:r1], data, indices,
                   indptr[r0:r1 + 1] if sparse else indptr, sparse, r1 - r0,
                   params, units, layout.coef_off, layout.icpt_off, acts, act_off,
                   hidden_code, out_code, result[r0:r1], r1 - r0)

    with single_threaded_blas():
        run_on_threads(work, n_threads)
    return result
