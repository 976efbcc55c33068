"""A user's builder with seven on/off switches, for end-to-end tests of two-level designs.

A small dense regression model (``dataset: "tests.user_regression:linear"``) whose seven
boolean options each change it a little, so that a 2^(7-p) fraction trains in seconds.
"""

from __future__ import annotations

from collections.abc import Sequence

import keras
from keras import layers


def build(
    *,
    input_shape: Sequence[int],
    seed: int | None = None,
    wide: bool = False,
    deep: bool = False,
    tanh: bool = False,
    bias: bool = True,
    batch_norm: bool = False,
    dropout: bool = False,
    layer_norm: bool = False,
) -> keras.Model:
    inputs = keras.Input(tuple(input_shape))
    h = inputs
    for _ in range(2 if deep else 1):
        h = layers.Dense(16 if wide else 8, use_bias=bias)(h)
        if batch_norm:
            h = layers.BatchNormalization()(h)
        if layer_norm:
            h = layers.LayerNormalization()(h)
        h = layers.Activation("tanh" if tanh else "relu")(h)
        if dropout:
            h = layers.Dropout(0.1, seed=seed)(h)
    return keras.Model(inputs, layers.Dense(1)(h))
