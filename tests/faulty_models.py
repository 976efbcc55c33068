"""A user's own model builder, as a study file names it ("tests.faulty_models:build").

A small real Keras autoencoder whose ``mode`` factor makes it misbehave on purpose: ``nan``
adds a NaN loss term (the trial diverges), ``raise`` raises inside the model while it trains
(the trial fails), ``slow`` sleeps in every step (time to kill its worker mid-trial).
"""

from __future__ import annotations

import math
import time
from collections.abc import Sequence
from typing import Any

import keras
from keras import layers, ops


class _Misbehave(layers.Layer):
    def __init__(self, mode: str, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.mode = mode

    def call(self, x: Any, training: bool | None = None) -> Any:
        if self.mode == "nan":
            self.add_loss(ops.mean(x) * math.nan)
        if self.mode == "raise" and training:
            raise RuntimeError("the model exploded on purpose")
        if self.mode == "slow" and training:
            x = keras.ops.convert_to_tensor(x)
            time.sleep(0.5)  # at trace time: the first step of the trial takes this long
        return x


def build(
    *, input_shape: Sequence[int], seed: int | None = None, mode: str = "ok", width: int = 8
) -> keras.Model:
    image = keras.Input(tuple(input_shape))
    h = layers.Flatten()(image)
    h = layers.Dense(width, activation="relu")(h)
    h = layers.Dense(math.prod(input_shape), activation="sigmoid")(h)
    out = layers.Reshape(tuple(input_shape))(_Misbehave(mode)(h))
    return keras.Model(image, out)
