"""The reference study's dense convolutional VAE, built from one cell's factor levels.

Layer by layer as in ``model-spec.md`` (see the README): a DenseNet-style convolutional
encoder, a dense bottleneck down to a 2-d latent space, a variational layer and the mirror
image back up. The convolution block's attention slot holds one of the layers of
:mod:`ablate.models.attention` (``attention``: spatial, channel, cbam), or a spatial
transformer warps the input image before the encoder (``stn``); the reference's
``spatial_attention: true`` is ``attention: spatial``, layer for layer. Backend-agnostic
Keras 3 only (``keras.layers``, ``keras.ops``, ``keras.random`` with seed generators), so the
same model trains under TensorFlow, JAX and PyTorch. Importing this module imports Keras;
ablate does so only where a model is built.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import keras
from keras import layers, ops

from ablate.errors import AblateError
from ablate.models.attention import (
    ChannelAttention,
    ConvolutionalBlockAttention,
    SpatialAttention,
    SpatialTransformer,
)
from ablate.models.registry import VAE_ATTENTION


@keras.saving.register_keras_serializable(package="ablate")
class Sampling(layers.Layer):
    """(mu, log_var) -> z = mu + exp(log_var / 2) · ε, adding kl_weight · KL to the loss.

    KL is the batch mean of −½ Σ_j (1 + log_var_j − mu_j² − exp(log_var_j)). Sampling happens in
    training and inference alike, as in the reference, so the test loss is the same
    single-sample estimate as the training loss.
    """

    def __init__(self, kl_weight: float, seed: int | None = None, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.kl_weight = kl_weight
        self.seed = seed
        self.seed_generator = keras.random.SeedGenerator(seed)

    def call(self, inputs: Sequence[Any]) -> Any:
        mu, log_var = inputs  # (batch, latent) each
        kl = -0.5 * ops.sum(1.0 + log_var - ops.square(mu) - ops.exp(log_var), axis=-1)
        self.add_loss(self.kl_weight * ops.mean(kl))
        eps = keras.random.normal(ops.shape(mu), seed=self.seed_generator)
        return mu + ops.exp(0.5 * log_var) * eps

    def compute_output_shape(self, input_shape: Sequence[Sequence[int | None]]) -> Any:
        return input_shape[0]

    def get_config(self) -> dict[str, Any]:
        return {**super().get_config(), "kl_weight": self.kl_weight, "seed": self.seed}


class VariationalAutoencoder(keras.Model):
    """encoder -> Sampling -> decoder, keeping both halves reachable for later inspection,
    and the encoder's first attention as ``attention_maps`` (see :mod:`ablate.models.explain`).
    """

    def __init__(self, encoder: keras.Model, decoder: keras.Model, sampling: Sampling) -> None:
        x = keras.Input(encoder.input_shape[1:], name="image")
        mu, log_var = encoder(x)
        super().__init__(x, decoder(sampling([mu, log_var])), name="vae")
        self.encoder = encoder  # image -> (mu, log_var)
        self.decoder = decoder  # z -> reconstructed image
        self.attention_maps = _attention_maps(encoder)  # image -> what the attention computes


def build_vae(
    *,
    input_shape: Sequence[int],
    seed: int | None,
    units: Sequence[int],
    depth: int,
    latent_dim: int,
    kl_weight: float,
    dropout_rate: float,
    batch_norm: bool,
    dropout: bool,
    spatial_attention: bool,
    attention: str,
    reduction_ratio: int,
    activation: str,
    output_batch_norm: bool,
    batch_norm_momentum: float,
) -> VariationalAutoencoder:
    """The reference VAE for one cell; every parameter arrives resolved (defaults and their
    meaning: ``ablate.models.registry.VAE``), the cell's factor levels among them."""
    if attention not in VAE_ATTENTION:
        raise AblateError(
            f"attention is {attention!r}; the vae takes one of {', '.join(VAE_ATTENTION)}"
        )
    if spatial_attention and attention not in ("none", "spatial"):
        raise AblateError(
            f"spatial_attention: true and attention: {attention} both set the convolution "
            "block's attention; use attention alone (spatial_attention: true is attention: "
            "spatial)"
        )
    mode = "spatial" if spatial_attention else attention
    block = {
        "batch_norm": batch_norm,
        "dropout": dropout,
        "dropout_rate": dropout_rate,
        "attention": mode if mode != "stn" else "none",  # the transformer acts on the input
        "reduction_ratio": reduction_ratio,
        "activation": activation,
        "momentum": batch_norm_momentum,
    }
    down_units = sorted(units, reverse=True)

    image = keras.Input(tuple(input_shape), name="image")  # (28, 28, 1)
    channels = int(input_shape[-1])
    h = SpatialTransformer(name="transformer")(image) if mode == "stn" else image
    h = _coder(h, down_units, depth, encoder=True, **block)  # (7, 7, units[-1])
    grid_shape = tuple(h.shape[1:])
    n = grid_shape[0] * grid_shape[1] * grid_shape[2]  # 7·7·5 = 245
    h = layers.Flatten()(h)
    h = _dense_bn_relu(h, n, batch_norm_momentum)
    h = _dense_bn_relu(h, latent_dim, batch_norm_momentum)
    mu = layers.Dense(latent_dim, name="z_mean")(h)
    log_var = layers.Dense(latent_dim, name="z_log_var")(h)
    encoder = keras.Model(image, [mu, log_var], name="encoder")

    z = keras.Input((latent_dim,), name="z")
    g = _dense_bn_relu(z, latent_dim, batch_norm_momentum)
    g = _dense_bn_relu(g, n, batch_norm_momentum)
    g = layers.Reshape(grid_shape)(g)  # (7, 7, units[-1])
    reconstruction = _coder(  # (28, 28, 1)
        g, down_units[::-1], depth, encoder=False, channels=channels,
        output_batch_norm=output_batch_norm, **block,
    )  # fmt: skip
    decoder = keras.Model(z, reconstruction, name="decoder")

    return VariationalAutoencoder(encoder, decoder, Sampling(kl_weight, seed=seed))


def _conv_block(
    x: Any, filters: int, *, batch_norm: bool, dropout: bool, dropout_rate: float,
    attention: str, reduction_ratio: int, activation: str, momentum: float,
) -> Any:  # fmt: skip
    """Conv2D(3×3, same, no bias) -> [attention] -> [BatchNorm] -> [Dropout] -> activation."""
    x = layers.Conv2D(filters, 3, padding="same", use_bias=False)(x)
    if attention == "spatial":
        x = SpatialAttention()(x)
    elif attention == "channel":
        x = ChannelAttention(reduction_ratio)(x)
    elif attention == "cbam":
        x = ConvolutionalBlockAttention(reduction_ratio)(x)
    if batch_norm:
        x = layers.BatchNormalization(momentum=momentum)(x)
    if dropout:
        x = layers.Dropout(dropout_rate)(x)
    return layers.Activation(activation)(x)


def _dense_block(x: Any, filters: int, depth: int, **block: Any) -> Any:
    """DenseNet-style: each block's output is concatenated onto its input, ``depth`` times."""
    c = x
    for _ in range(depth):
        y = _conv_block(c, filters, **block)
        c = layers.Concatenate(axis=-1)([c, y])  # channels grow by `filters` each time
    return c


def _coder(
    x: Any, units: Sequence[int], depth: int, *, encoder: bool, channels: int = 1,
    output_batch_norm: bool = True, momentum: float = 0.99, **block: Any,
) -> Any:  # fmt: skip
    """Encoder (units descending, stride-2 convs) or decoder (ascending, transposed convs).

    The decoder ends in ``channels`` sigmoid maps, batch-normalised first as in the reference
    unless ``output_batch_norm`` is off.
    """
    x = layers.Conv2D(units[0], 3, padding="same", use_bias=False)(x)
    x = layers.ReLU()(x)  # always ReLU, whatever the activation factor says
    resample = layers.Conv2D if encoder else layers.Conv2DTranspose
    for k in range(1, len(units) - 1):
        x = _dense_block(x, units[k], depth, momentum=momentum, **block)
        x = resample(units[k], 3, strides=2, padding="same", use_bias=False)(x)  # H/2 or H·2
    if encoder:
        x = layers.Conv2D(units[-1], 3, padding="same", use_bias=False)(x)
        x = layers.BatchNormalization(momentum=momentum)(x)
        return layers.ReLU()(x)
    x = layers.Conv2D(channels, 3, padding="same", use_bias=not output_batch_norm)(x)
    if output_batch_norm:
        x = layers.BatchNormalization(momentum=momentum)(x)
    return layers.Activation("sigmoid")(x)


def _dense_bn_relu(x: Any, units: int, momentum: float) -> Any:
    x = layers.Dense(units, use_bias=False)(x)
    x = layers.BatchNormalization(momentum=momentum)(x)
    return layers.ReLU()(x)


def _attention_maps(encoder: keras.Model) -> dict[str, keras.Model]:
    """Sub-models from the image to what the encoder's first attention layer computes:
    ``spatial`` masks (H, W, 1), ``channel`` weights (C), or the ``transformed`` input."""
    image = encoder.input
    for layer in encoder.layers:
        if isinstance(layer, SpatialTransformer):
            return {"transformed": keras.Model(image, layer.attention(layer.input))}
        if isinstance(layer, ConvolutionalBlockAttention):
            weights, mask = layer.attention(layer.input)
            return {"channel": keras.Model(image, weights), "spatial": keras.Model(image, mask)}
        if isinstance(layer, (SpatialAttention, ChannelAttention)):
            kind = "spatial" if isinstance(layer, SpatialAttention) else "channel"
            return {kind: keras.Model(image, layer.attention(layer.input))}
    return {}
