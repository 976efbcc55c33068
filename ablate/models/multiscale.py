"""A multi-scale CNN image classifier with an attention module (after the attention sources).

Published for speech-emotion features arranged as small 2-D maps; here on 28×28 digits.
Shapes for a 28×28×1 input and the default ``filters`` [40, 30, 20, 10]:

==========================  ===============================================  ==============
stage                       layers                                           output
==========================  ===============================================  ==============
1                           Conv2D(40, k, stride 2) for k = 1, 3, 5, 7, 9     14 × 14 × 40
2                           Conv2D(30, k) for k = 1, 3, 5, 7                  14 × 14 × 30
3                           Conv2D(20, k) for k = 1, 3, 5                     14 × 14 × 20
4                           Conv2D(10, k) for k = 1, 3                        14 × 14 × 10
attention module            from stage 1's output (below)                    14 × 14 × 10
head                        x + x·a -> Flatten -> Dense(classes, softmax)     classes
==========================  ===============================================  ==============

Every branch of a stage is a ``same``-padded convolution with bias and the ``activation``;
the branches are combined by their element-wise maximum (maxout). Stage i (from 0) has the
kernel sizes 1, 3, …, max(3, 9 − 2i). ``multi_scale: false`` keeps one 3×3 branch per stage:
the source's "basic CNN".

The attention module (ReLU convolutions without bias, 2×2 kernels, ``same``):
stage 1's output (14, 14, 40) -> max-pool 2 (7, 7, 40) -> Conv2D(30) -> max-pool 2 (3, 3, 30)
-> Conv2D(20) -> bilinear resize to (7, 7) -> Conv2D(20) -> bilinear resize to (14, 14) ->
Conv2D(10, softmax over channels) = a (14, 14, 10), stage 4's shape. The head reads
x + x·a, with x stage 4's output. (In the published code the head flattens x *before* the
attention is applied, so there the module cannot change a prediction; here it does.)
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import keras
from keras import layers


def kernel_sizes(stage: int, multi_scale: bool) -> tuple[int, ...]:
    """The kernel sizes of stage ``stage`` (from 0): 1, 3, …, max(3, 9 − 2·stage), or (3,)."""
    if not multi_scale:
        return (3,)
    return tuple(range(1, max(3, 9 - 2 * stage) + 1, 2))


def build_multiscale_cnn(
    *,
    input_shape: Sequence[int],
    n_classes: int,
    filters: Sequence[int],
    multi_scale: bool,
    attention: bool,
    activation: str,
) -> keras.Model:
    """The classifier for one cell (parameters: ``ablate.models.registry.MULTISCALE_CNN``)."""
    image = keras.Input(tuple(input_shape), name="image")  # (28, 28, 1)
    x = image
    first = None
    for stage, width in enumerate(filters):
        x = _stage(x, width, kernel_sizes(stage, multi_scale), 2 if stage == 0 else 1,
                   activation, name=f"stage{stage + 1}")  # fmt: skip
        first = x if stage == 0 else first  # (14, 14, filters[0])
    maps: dict[str, keras.Model] = {}
    if attention:
        a = _attention_module(first, filters, tuple(x.shape[1:3]))  # (14, 14, filters[-1])
        x = layers.Add(name="attended")([x, layers.Multiply()([x, a])])  # x + x·a
        maps["multiscale"] = keras.Model(image, a)
    probabilities = layers.Dense(n_classes, activation="softmax", name="classes")(
        layers.Flatten()(x)
    )
    model = keras.Model(image, probabilities, name="multiscale_cnn")
    model.attention_maps = maps  # see ablate.models.explain
    return model


def _stage(x: Any, filters: int, kernels: tuple[int, ...], strides: int, activation: str,
           name: str) -> Any:  # fmt: skip
    """Parallel convolutions over ``x``, one per kernel size, combined by their maximum."""
    convolutions = [
        layers.Conv2D(filters, k, strides=strides, padding="same", activation=activation,
                      name=f"{name}_k{k}")
        for k in kernels
    ]  # fmt: skip
    branches = [conv(x) for conv in convolutions]
    return layers.Maximum(name=name)(branches) if len(branches) > 1 else branches[0]


def _attention_module(x: Any, filters: Sequence[int], size: tuple[int, int]) -> Any:
    """From stage 1's output to a (size, filters[-1]) map, a softmax over channels."""
    pooled = layers.MaxPooling2D(2)(x)  # (7, 7, filters[0])
    pooled_size = tuple(pooled.shape[1:3])
    h = _conv(pooled, filters[1], "relu")  # (7, 7, 30)
    h = layers.MaxPooling2D(2)(h)  # (3, 3, 30)
    h = _conv(h, filters[2], "relu")  # (3, 3, 20)
    h = layers.Resizing(*pooled_size, interpolation="bilinear")(h)  # (7, 7, 20)
    h = _conv(h, filters[2], "relu")
    h = layers.Resizing(*size, interpolation="bilinear")(h)  # (14, 14, 20)
    return _conv(h, filters[-1], "softmax", name="attention_map")  # (14, 14, 10)


def _conv(x: Any, filters: int, activation: str, name: str | None = None) -> Any:
    return layers.Conv2D(filters, 2, padding="same", activation=activation, use_bias=False,
                         name=name)(x)  # fmt: skip
