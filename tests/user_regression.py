"""A user's regression problem for the tests: generated data and a small dense model.

``linear`` is a dataset function (``dataset: "tests.user_regression:linear"``): targets are a
fixed linear function of 8 inputs plus noise of SD ``noise``, so the best possible test MSE
is noise² and a model that learned something beats predicting the mean by far.
"""

from __future__ import annotations

import keras
import numpy as np
from keras import layers


def linear(*, seed: int, n: int = 600, noise: float = 0.1) -> dict[str, np.ndarray]:
    rng = np.random.default_rng(seed)
    weights = np.linspace(-1.0, 1.0, 8)
    x = rng.normal(size=(n, 8)).astype(np.float32)
    y = (x @ weights + rng.normal(0.0, noise, n)).astype(np.float32)
    split = n * 2 // 3
    return {"x_train": x[:split], "y_train": y[:split], "x_test": x[split:], "y_test": y[split:]}


def mlp(*, input_shape: tuple[int, ...], width: int = 16, activation: str = "relu") -> keras.Model:
    inputs = keras.Input(input_shape)
    h = layers.Dense(width, activation=activation)(inputs)
    return keras.Model(inputs, layers.Dense(1)(h))  # one linear output per target
