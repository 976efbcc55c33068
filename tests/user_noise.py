"""A study whose noise is known: every trial's ``test_mae`` is a constant drawn from its seed.

``zeros`` is a dataset function whose targets are all 0; ``offset`` builds a model that
predicts one constant c = 10 + ``effect``·shift + ``sd``·z, with z standard normal drawn from
the trial's seed and cell, for every input (its weights start at zero and its bias at c;
trained at a learning rate of 1e-9 they stay put). So test_mae = |c| = c: the response is
Gaussian with SD ``sd`` around a mean that ``shift`` moves by ``effect``, which is what the
sequential replicates test needs (nothing here learns: that is not its question).
"""

from __future__ import annotations

from collections.abc import Sequence

import keras
import numpy as np
from keras import layers


def zeros(*, seed: int, n: int = 32) -> dict[str, np.ndarray]:
    x = np.zeros((n, 2), dtype=np.float32)
    y = np.zeros(n, dtype=np.float32)
    return {"x_train": x, "y_train": y, "x_test": x[:16], "y_test": y[:16]}


def offset(
    *, input_shape: Sequence[int], seed: int, shift: bool = False, effect: float = 0.5,
    sd: float = 0.1,
) -> keras.Model:  # fmt: skip
    z = np.random.default_rng([seed, int(shift)]).standard_normal()
    c = 10.0 + effect * shift + sd * z
    inputs = keras.Input(tuple(input_shape))
    out = layers.Dense(1, kernel_initializer="zeros",
                       bias_initializer=keras.initializers.Constant(c))(inputs)  # fmt: skip
    return keras.Model(inputs, out)
