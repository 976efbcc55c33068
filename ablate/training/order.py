"""Which examples each training step of a trial sees: one permutation per epoch, from its seed.

Fused and unfused trials must see the same batches (see :mod:`ablate.training.fused`), so the
order is ablate's own rather than whatever a framework's shuffling draws from a global random
state: epoch ``e`` of the trial seeded ``s`` trains on ``permutation(s, e)``, cut into batches
of ``batch_size`` with the last one partial when the size does not divide the examples -- the
same maths as ``fit(x, y, shuffle=True)``. Under TensorFlow, unfused trials keep their
``tf.data`` pipeline (which never fuses); every other backend uses this order.
"""

from __future__ import annotations

from collections.abc import Iterator

import numpy as np


def permutation(seed: int, epoch: int, n: int) -> np.ndarray:
    """The order of the ``n`` training examples in ``epoch`` (0-based) of the trial ``seed``."""
    return np.random.default_rng([seed, epoch]).permutation(n)


def epoch_batches(seed: int, epoch: int, n: int, batch_size: int) -> list[np.ndarray]:
    """The index arrays of one epoch's batches, in training order."""
    order = permutation(seed, epoch, n)
    return [order[i : i + batch_size] for i in range(0, n, batch_size)]


def steps_per_epoch(n: int, batch_size: int) -> int:
    return -(-n // batch_size)


def batch_stream(
    x: np.ndarray, y: np.ndarray, seed: int, batch_size: int
) -> Iterator[tuple[np.ndarray, np.ndarray]]:
    """(inputs, targets) batches, epoch after epoch without end, for ``fit`` with
    ``steps_per_epoch``; targets that are the inputs (reconstruction) are gathered once."""
    epoch = 0
    while True:
        for idx in epoch_batches(seed, epoch, len(x), batch_size):
            xb = x[idx]
            yield xb, (xb if y is x else y[idx])
        epoch += 1
