"""A user's code that is wrong in the ways ablate must catch before anything trains.

Each function is real code a study file can name (``"tests.broken_code:..."``); none is a
stand-in for a part of ablate.
"""

from __future__ import annotations

from typing import Any

import keras
import numpy as np
from keras import layers


def data_that_raises(*, seed: int) -> dict[str, np.ndarray]:
    """A dataset function whose own code fails (a file it cannot find, say)."""
    return _read_my_files(seed)


def _read_my_files(seed: int) -> dict[str, np.ndarray]:
    raise FileNotFoundError(f"my_data/part-{seed}.npy is not there")


def data_ragged(*, seed: int) -> dict[str, Any]:
    """Arrays NumPy cannot stack: examples of different lengths."""
    return {"x_train": [[0.1, 0.2], [0.3]], "y_train": [0, 1], "x_test": [[0.1]], "y_test": [0]}


def builder_without_width(*, input_shape: tuple[int, ...]) -> keras.Model:
    """A builder that does not take the study's factor ``width``."""
    inputs = keras.Input(input_shape)
    return keras.Model(inputs, layers.Activation("sigmoid")(inputs))


def builder_that_needs_depth(*, input_shape: tuple[int, ...], width: int, depth: int) -> Any:
    """A builder with a required argument nobody passes."""
    raise AssertionError("never called")


def builder_that_raises(*, input_shape: tuple[int, ...], width: int = 4) -> keras.Model:
    """A builder whose code fails while building."""
    sizes = {"small": 4}
    return keras.Model(keras.Input(input_shape), layers.Dense(sizes[f"w{width}"])(None))


def builder_of_the_wrong_shape(*, input_shape: tuple[int, ...], width: int = 4) -> keras.Model:
    """An autoencoder that outputs a flat vector instead of the image."""
    inputs = keras.Input(input_shape)
    h = layers.Flatten()(inputs)
    return keras.Model(inputs, layers.Dense(width, activation="sigmoid")(h))


class _NotFinite(layers.Layer):
    def call(self, x: Any) -> Any:
        return x * float("nan")


def builder_of_nan(*, input_shape: tuple[int, ...], width: int = 4) -> keras.Model:
    """A model whose output is NaN before any training."""
    inputs = keras.Input(input_shape)
    return keras.Model(inputs, _NotFinite()(layers.Activation("sigmoid")(inputs)))
