"""A user's own classifier for ablate: a small CNN whose activation and dropout are factors.

ablate calls ``small_cnn(input_shape=..., n_classes=..., seed=..., **parameters)``, where the
parameters are the study's ``model.options`` merged with one cell's factor levels.
"""

from __future__ import annotations

import keras
from keras import layers


def small_cnn(
    *,
    input_shape: tuple[int, ...],
    n_classes: int,
    width: int = 32,
    activation: str = "relu",
    dropout: bool = False,
) -> keras.Model:
    inputs = keras.Input(input_shape)  # (28, 28, 1)
    h = layers.Conv2D(8, 3, activation=activation)(inputs)  # (26, 26, 8)
    h = layers.MaxPooling2D(2)(h)  # (13, 13, 8)
    h = layers.Conv2D(16, 3, activation=activation)(h)  # (11, 11, 16)
    h = layers.MaxPooling2D(2)(h)  # (5, 5, 16)
    h = layers.Flatten()(h)  # (400,)
    h = layers.Dense(width, activation=activation)(h)
    if dropout:
        h = layers.Dropout(0.3)(h)
    outputs = layers.Dense(n_classes, activation="softmax")(h)  # class probabilities
    return keras.Model(inputs, outputs)
