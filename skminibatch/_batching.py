"""``batch_size`` / ``steps_per_epoch`` resolution and the batch stream.

The stream (DESIGN §3): successive passes over the training samples, each a
fresh permutation when ``shuffle=True`` (natural order otherwise), each cut
into ``ceil(n_train / batch_size)`` batches with the remainder last. An epoch
is the next ``steps_per_epoch_`` batches of the stream, which does not
restart at an epoch boundary.
"""

import math
import warnings

import numpy as np


def resolve_batch_size(batch_size, n_train):
    """The integer batch size a fit uses (``'auto'`` -> ``min(200, n)``)."""
    if isinstance(batch_size, str):  # 'auto', already validated
        return min(200, n_train)
    if batch_size > n_train:
        warnings.warn(
            f"batch_size={batch_size} is larger than the number of training "
            f"samples ({n_train}); it is clipped to {n_train}.",
            UserWarning,
            stacklevel=4,
        )
        return n_train
    return int(batch_size)


def batches_per_pass(n_train, batch_size):
    return -(-n_train // batch_size)


def resolve_steps_per_epoch(steps_per_epoch, n_train, batch_size):
    """``None`` -> one pass: ``ceil(n_train / batch_size)`` steps."""
    if steps_per_epoch is None:
        return batches_per_pass(n_train, batch_size)
    return int(steps_per_epoch)


class BatchStream:
    """Position in the stream: the current pass's sample order and the index
    of the next batch in it. Passes are drawn lazily, so a pass is shuffled
    only when its first batch is needed.

    The permutation is drawn as scikit-learn's MLP draws it (a shuffled
    ``arange`` applied to the previous order, from the fit's ``RandomState``)
    so that, with ``steps_per_epoch=None``, both libraries see the same
    batches for the same ``random_state``.
    """

    def __init__(self, rows, batch_size, shuffle, random_state):
        # ``rows``: the training rows of X, in their natural order (all rows,
        # or the early-stopping split's training part: X itself is not copied)
        self.order = np.ascontiguousarray(rows, dtype=np.int64)
        n_train = self.order.shape[0]
        self.n_train = n_train
        self.batch_size = batch_size
        self.n_batches = batches_per_pass(n_train, batch_size)
        self.shuffle = shuffle
        self.random_state = random_state
        self.next_batch = self.n_batches  # a new pass is due
        self.n_passes = 0

    def room_in_pass(self):
        """Steps left in the current pass, starting a new pass if needed."""
        if self.next_batch == self.n_batches:
            if self.shuffle:
                perm = np.arange(self.n_train)
                self.random_state.shuffle(perm)
                self.order = np.ascontiguousarray(self.order[perm])
            self.next_batch = 0
            self.n_passes += 1
        return self.n_batches - self.next_batch

    def advance(self, n_steps):
        self.next_batch += n_steps


def call_length(per_call, left):
    """Steps of the next compiled call: ``per_call``, or all ``left`` steps
    (those left in the pass and in the epoch) when stopping at ``per_call``
    would leave a tail of at most half a call. Each call costs a fixed
    time (784-256-256-10 float64 at batch 1024: 2.0-2.4 ms for a call of
    no steps, mostly moving the first layer's weights in and out, and a
    first step ~1.5 ms slower than the next), which a tail call pays again
    for a few steps: 3-epoch fits at that batch (20 steps, 0.23 s an epoch)
    ran as 7-8 calls, epochs cut into ~0.2 s and 1-3 steps. So calls last
    up to 1.5x the ~0.2 s aimed at."""
    if left <= per_call + per_call // 2:
        return left
    return per_call


def steps_for_seconds(seconds_per_step, target=0.2, cap=1 << 30):
    """How many steps make a compiled call of about ``target`` seconds."""
    if seconds_per_step <= 0:
        return cap
    return int(max(1, min(cap, math.floor(target / seconds_per_step))))
