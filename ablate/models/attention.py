"""Attention layers that ablate's models switch on and off (the attention family).

Image attention, for the convolution block's attention slot (input and output (H, W, C)):

- :class:`SpatialAttention`: the reference layer, a mask over positions (51 parameters);
- :class:`ChannelAttention`: squeeze-and-excitation, a weight per channel;
- :class:`ConvolutionalBlockAttention` (CBAM): channel attention, then spatial attention;
- :class:`SpatialTransformer`: a learned affine warp of its input, identity at the start.

Attention over time, for an LSTM's outputs h (T, U):

- :class:`AdditiveTemporalAttention`: softmax over the T steps, a context vector (U);
- :class:`BlockTemporalAttention`: a softmax over time for every one of the U dimensions.

Every layer has an ``attention(x)`` method that returns what it attends with (a mask, weights,
a warped input) and a ``call`` that applies it; a builder calls ``attention`` on a layer's
symbolic input to make the sub-models that :mod:`ablate.models.explain` saves after training.
Backend-agnostic Keras 3 only (``keras.layers``, ``keras.ops``), so every layer runs under
TensorFlow, JAX and PyTorch. Importing this module imports Keras.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import keras
import numpy as np
from keras import layers, ops

#: The affine map that leaves an image as it is: θ = [[1, 0, 0], [0, 1, 0]], row by row.
IDENTITY_THETA = (1.0, 0.0, 0.0, 0.0, 1.0, 0.0)


@keras.saving.register_keras_serializable(package="ablate")
class SpatialAttention(layers.Layer):
    """CBAM-style spatial attention: scale every position by a learned mask in (0, 1).

    x (H, W, C) -> [max over channels, mean over channels] (H, W, 2) -> Conv2D(1, k×k, same,
    with bias) -> sigmoid -> mask (H, W, 1); output x · mask (shape unchanged). For k = 5 the
    layer has 2·5·5 + 1 = 51 parameters.
    """

    def __init__(self, kernel_size: int = 5, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.kernel_size = kernel_size
        self.conv = layers.Conv2D(1, kernel_size, padding="same", activation="sigmoid")

    def build(self, input_shape: Sequence[int | None]) -> None:
        self.conv.build((*input_shape[:-1], 2))

    def attention(self, x: Any) -> Any:
        """The mask (batch, H, W, 1) in (0, 1)."""
        pooled = ops.concatenate(
            [ops.max(x, axis=-1, keepdims=True), ops.mean(x, axis=-1, keepdims=True)], axis=-1
        )  # (batch, H, W, 2)
        return self.conv(pooled)

    def call(self, x: Any) -> Any:
        return x * self.attention(x)  # mask broadcast over channels

    def compute_output_shape(self, input_shape: Sequence[int | None]) -> Sequence[int | None]:
        return input_shape

    def get_config(self) -> dict[str, Any]:
        return {**super().get_config(), "kernel_size": self.kernel_size}


def reduced(channels: int, ratio: int) -> int:
    """The hidden width of a channel-attention MLP: C / r, at least 1."""
    return max(1, channels // ratio)


@keras.saving.register_keras_serializable(package="ablate")
class ChannelAttention(layers.Layer):
    """Squeeze-and-excitation: scale every channel by a learned weight in (0, 1).

    x (H, W, C) -> global average over H, W (C) -> Dense(C/r) + ReLU -> Dense(C) + sigmoid ->
    weights (C); output x · weights (broadcast over H, W). 2·C·(C/r) + C/r + C parameters.
    """

    def __init__(self, ratio: int = 4, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.ratio = ratio

    def build(self, input_shape: Sequence[int | None]) -> None:
        channels = int(input_shape[-1])  # type: ignore[arg-type]
        self.squeeze = layers.Dense(reduced(channels, self.ratio), activation="relu")
        self.excite = layers.Dense(channels, activation="sigmoid")
        self.squeeze.build((None, channels))
        self.excite.build((None, reduced(channels, self.ratio)))

    def attention(self, x: Any) -> Any:
        """The channel weights (batch, C) in (0, 1)."""
        return self.excite(self.squeeze(ops.mean(x, axis=(1, 2))))

    def call(self, x: Any) -> Any:
        return x * self.attention(x)[:, None, None, :]

    def compute_output_shape(self, input_shape: Sequence[int | None]) -> Sequence[int | None]:
        return input_shape

    def get_config(self) -> dict[str, Any]:
        return {**super().get_config(), "ratio": self.ratio}


@keras.saving.register_keras_serializable(package="ablate")
class ConvolutionalBlockAttention(layers.Layer):
    """CBAM: channel attention, then spatial attention on the channel-weighted input.

    The channel branch passes the average-pooled and the max-pooled (C) vectors through one
    shared MLP (Dense(C/r) + ReLU -> Dense(C)) and adds them before the sigmoid; the spatial
    branch is :class:`SpatialAttention`. Parameters: 2·C·(C/r) + C/r + C + 51.
    """

    def __init__(self, ratio: int = 4, kernel_size: int = 5, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.ratio = ratio
        self.kernel_size = kernel_size
        self.spatial = SpatialAttention(kernel_size)

    def build(self, input_shape: Sequence[int | None]) -> None:
        channels = int(input_shape[-1])  # type: ignore[arg-type]
        self.hidden = layers.Dense(reduced(channels, self.ratio), activation="relu")
        self.out = layers.Dense(channels)
        self.hidden.build((None, channels))
        self.out.build((None, reduced(channels, self.ratio)))
        self.spatial.build(input_shape)

    def channel_weights(self, x: Any) -> Any:
        """The channel weights (batch, C) in (0, 1)."""
        mlp = lambda v: self.out(self.hidden(v))  # noqa: E731  (shared by both poolings)
        return ops.sigmoid(mlp(ops.mean(x, axis=(1, 2))) + mlp(ops.max(x, axis=(1, 2))))

    def attention(self, x: Any) -> tuple[Any, Any]:
        """The channel weights (batch, C) and the spatial mask (batch, H, W, 1)."""
        weights = self.channel_weights(x)
        return weights, self.spatial.attention(x * weights[:, None, None, :])

    def call(self, x: Any) -> Any:
        return self.spatial(x * self.channel_weights(x)[:, None, None, :])

    def compute_output_shape(self, input_shape: Sequence[int | None]) -> Sequence[int | None]:
        return input_shape

    def get_config(self) -> dict[str, Any]:
        return {**super().get_config(), "ratio": self.ratio, "kernel_size": self.kernel_size}


@keras.saving.register_keras_serializable(package="ablate")
class SpatialTransformer(layers.Layer):
    """A spatial transformer: the image warped by an affine map its localisation net predicts.

    Localisation net: Conv2D(8, 5×5, same, ReLU) -> max-pool 2 -> Conv2D(10, 5×5, same, ReLU)
    -> max-pool 2 -> Flatten -> Dense(32, ReLU) -> Dense(6), with zero weights and bias; θ
    (2×3, row by row) = identity + ``theta_scale`` · Dense(6), so the layer starts as the
    identity. The scale (0.1) slows the warp's learning tenfold: Adam moves every weight by
    about one learning rate per step, and at the rates the other layers learn with, θ moved
    that fast and some trials diverged. For a 28×28×C input the pooled map is 7×7×10 and the
    net has (200·C + 8) + 2,010 + 15,712 + 198 parameters (18,128 for C = 1). Then
    :func:`affine_sample` reads the input at θ·(x, y, 1) for every output position:
    differentiable in θ and in the input, zero outside the image.
    """

    def __init__(self, theta_scale: float = 0.1, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.theta_scale = theta_scale

    def build(self, input_shape: Sequence[int | None]) -> None:
        height, width, channels = (int(d) for d in input_shape[1:])  # type: ignore[arg-type]
        self.localisation = [
            layers.Conv2D(8, 5, padding="same", activation="relu"),
            layers.MaxPooling2D(2),
            layers.Conv2D(10, 5, padding="same", activation="relu"),
            layers.MaxPooling2D(2),
            layers.Flatten(),
            layers.Dense(32, activation="relu"),
            layers.Dense(6, kernel_initializer="zeros", bias_initializer="zeros"),
        ]
        shape: tuple[int | None, ...] = (None, height, width, channels)
        for layer in self.localisation:
            layer.build(shape)
            shape = layer.compute_output_shape(shape)

    def theta(self, x: Any) -> Any:
        """The affine maps (batch, 6) the localisation net predicts for ``x``."""
        h = x
        for layer in self.localisation:
            h = layer(h)
        identity = np.array(IDENTITY_THETA, dtype="float32")  # (6)
        # ops.add, not identity + …: a backend array's + cannot take a symbolic tensor (JAX)
        return ops.add(self.theta_scale * h, identity)  # (batch, 6)

    def attention(self, x: Any) -> Any:
        """The warped input (batch, H, W, C): what the rest of the model sees."""
        return affine_sample(x, self.theta(x))

    def call(self, x: Any) -> Any:
        return self.attention(x)

    def compute_output_shape(self, input_shape: Sequence[int | None]) -> Sequence[int | None]:
        return input_shape

    def get_config(self) -> dict[str, Any]:
        return {**super().get_config(), "theta_scale": self.theta_scale}


def affine_sample(x: Any, theta: Any) -> Any:
    """Bilinear sampling of images ``x`` (batch, H, W, C) on an affine grid ``theta`` (batch, 6).

    Output position (x_t, y_t), in normalised coordinates from −1 (first pixel's centre) to 1
    (last pixel's centre), reads the input at (x_s, y_s) = θ·(x_t, y_t, 1), bilinearly from
    its four neighbouring pixels; neighbours outside the image count as 0. A translation by
    one pixel to the right is θ = [1, 0, 2/(W−1), 0, 1, 0]: output[i, j] = input[i, j + 1].
    """
    height, width, channels = (int(d) for d in x.shape[1:])
    ys, xs = np.meshgrid(np.linspace(-1.0, 1.0, height), np.linspace(-1.0, 1.0, width),
                         indexing="ij")  # fmt: skip
    grid = np.stack([xs.ravel(), ys.ravel(), np.ones(height * width)]).astype("float32")  # (3, HW)
    theta = ops.reshape(ops.cast(theta, "float32"), (-1, 2, 3))
    source = ops.matmul(theta, ops.convert_to_tensor(grid))  # (batch, 2, HW)
    sx = (source[:, 0, :] + 1.0) * (0.5 * (width - 1))  # pixel columns, (batch, HW)
    sy = (source[:, 1, :] + 1.0) * (0.5 * (height - 1))  # pixel rows
    x0, y0 = ops.floor(sx), ops.floor(sy)
    flat = ops.reshape(x, (-1, height * width, channels))
    out = 0.0
    for dx, dy in ((0, 0), (1, 0), (0, 1), (1, 1)):
        cx, cy = x0 + dx, y0 + dy  # one neighbour per pass
        weight = (1.0 - ops.abs(sx - cx)) * (1.0 - ops.abs(sy - cy))  # bilinear, (batch, HW)
        inside = (cx >= 0) & (cx <= width - 1) & (cy >= 0) & (cy <= height - 1)
        index = ops.cast(
            ops.clip(cy, 0, height - 1) * width + ops.clip(cx, 0, width - 1), "int32"
        )  # (batch, HW)
        values = ops.take_along_axis(flat, index[:, :, None], axis=1)  # (batch, HW, C)
        out = out + values * (weight * ops.cast(inside, "float32"))[:, :, None]
    return ops.reshape(out, (-1, height, width, channels))


@keras.saving.register_keras_serializable(package="ablate")
class AdditiveTemporalAttention(layers.Layer):
    """Additive attention over time: weights α over the T steps, and the context Σ_t α_t · h_t.

    h (T, U) -> Dense(width, tanh, no bias) -> Dense(1, no bias) -> softmax over the T steps
    -> α (T); output Σ_t α_t h_t (U). U·width + width parameters.
    """

    def __init__(self, width: int = 50, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.width = width
        self.hidden = layers.Dense(width, activation="tanh", use_bias=False)
        self.score = layers.Dense(1, use_bias=False)

    def build(self, input_shape: Sequence[int | None]) -> None:
        self.hidden.build(input_shape)
        self.score.build((*input_shape[:-1], self.width))

    def attention(self, h: Any) -> Any:
        """The weights α (batch, T): positive, summing to 1 over time."""
        return ops.softmax(self.score(self.hidden(h))[..., 0], axis=-1)

    def call(self, h: Any) -> Any:
        return ops.sum(self.attention(h)[:, :, None] * h, axis=1)  # (batch, U)

    def compute_output_shape(self, input_shape: Sequence[int | None]) -> Sequence[int | None]:
        return (input_shape[0], input_shape[-1])

    def get_config(self) -> dict[str, Any]:
        return {**super().get_config(), "width": self.width}


@keras.saving.register_keras_serializable(package="ablate")
class BlockTemporalAttention(layers.Layer):
    """The per-dimension attention block: a softmax over time for each of the U dimensions.

    h (T, U) -> permute (U, T) -> Dense(T, softmax) -> permute back: a (T, U), every column
    summing to 1 over time; output h · a (T, U). T·T + T parameters.
    """

    def build(self, input_shape: Sequence[int | None]) -> None:
        steps = int(input_shape[1])  # type: ignore[arg-type]
        self.dense = layers.Dense(steps, activation="softmax")
        self.dense.build((None, input_shape[-1], steps))

    def attention(self, h: Any) -> Any:
        """The weights a (batch, T, U): positive, summing to 1 over time for every dimension."""
        return ops.transpose(self.dense(ops.transpose(h, (0, 2, 1))), (0, 2, 1))

    def call(self, h: Any) -> Any:
        return h * self.attention(h)

    def compute_output_shape(self, input_shape: Sequence[int | None]) -> Sequence[int | None]:
        return input_shape
