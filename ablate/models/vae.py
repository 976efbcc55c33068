"""The reference study's dense convolutional VAE, built from one cell's factor levels.

Layer by layer as the reference study specifies it (docs/reference-study.md): a
DenseNet-style convolutional encoder, a dense bottleneck down to a 2-d latent space, a
variational layer and the mirror image back up. The convolution block's attention slot
holds one of the layers of :mod:`ablate.models.attention` (``attention``: spatial, channel,
cbam), or a spatial transformer warps the input image before the encoder (``stn``); the
reference's ``spatial_attention: true`` is ``attention: spatial``, layer for layer.
Backend-agnostic Keras 3 only (``keras.layers``, ``keras.ops``, ``keras.random`` with seed
generators), so the same model trains under TensorFlow, JAX and PyTorch. Importing this
module imports Keras; ablate does so only where a model is built.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
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
from ablate.models.gates import Gate, GatedDropout, Rule, SelectActivation
from ablate.models.registry import VAE, VAE_ATTENTION


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
    params = {k: v for k, v in locals().items() if k not in ("input_shape", "seed")}
    return _build(input_shape, seed, params, slots=None)


def build_fused_vae(
    *, input_shape: Sequence[int], seed: int | None, members: Sequence[dict[str, Any]]
) -> VariationalAutoencoder:
    """One VAE holding every optional part any of ``members`` (each a cell's resolved
    parameters) uses, gated per trial (:mod:`ablate.models.gates`): the program a fused group
    of those cells trains. The members may differ only in the parameters the registry marks
    fusable; its variables are named as the members' own models' are, so that each trial
    starts from its own model's values."""
    first = members[0]
    for other in members[1:]:
        differ = [k for k in first if k not in FUSABLE and first[k] != other[k]]
        if differ:
            raise AblateError(f"cells that differ in {', '.join(differ)} cannot be fused")
    modes = [_mode(m) for m in members]
    if "stn" in modes and len(set(modes)) > 1:
        raise AblateError("a spatial transformer cell fuses only with its own replicates")
    slots = _Slots(
        attention=tuple(k for k in VAE_ATTENTION if k in modes and k not in ("none", "stn")),
        batch_norm=any(m["batch_norm"] for m in members),
        dropout=any(m["dropout"] for m in members),
        activations=tuple(dict.fromkeys(m["activation"] for m in members)),
    )
    return _build(input_shape, seed, dict(first), slots=slots)


#: The VAE parameters whose levels may differ within one fused program (declared fusable).
FUSABLE = tuple(p.name for p in VAE.parameters or () if p.fusable)


@dataclass(frozen=True)
class _Slots:
    """The optional parts of a fused VAE's convolution blocks, each gated per trial."""

    attention: tuple[str, ...]  # kinds, in VAE_ATTENTION's order
    batch_norm: bool
    dropout: bool
    activations: tuple[str, ...]


def _mode(params: dict[str, Any]) -> str:
    """The attention a cell's convolution blocks use (spatial_attention: true is spatial)."""
    return "spatial" if params["spatial_attention"] else params["attention"]


def _build(
    input_shape: Sequence[int], seed: int | None, p: dict[str, Any], slots: _Slots | None
) -> VariationalAutoencoder:
    """The VAE for parameters ``p``: one cell's own model, or (``slots``) a fused group's."""
    if p["attention"] not in VAE_ATTENTION:
        raise AblateError(
            f"attention is {p['attention']!r}; the vae takes one of {', '.join(VAE_ATTENTION)}"
        )
    if p["spatial_attention"] and p["attention"] not in ("none", "spatial"):
        raise AblateError(
            f"spatial_attention: true and attention: {p['attention']} both set the convolution "
            "block's attention; use attention alone (spatial_attention: true is attention: "
            "spatial)"
        )
    mode, momentum, latent = _mode(p), p["batch_norm_momentum"], p["latent_dim"]
    block = {
        "batch_norm": p["batch_norm"],
        "dropout": p["dropout"],
        "dropout_rate": p["dropout_rate"],
        "attention": mode if mode != "stn" else "none",  # the transformer acts on the input
        "reduction_ratio": p["reduction_ratio"],
        "activation": p["activation"],
        "momentum": momentum,
        "slots": slots,
    }
    down_units = sorted(p["units"], reverse=True)

    image = keras.Input(tuple(input_shape), name="image")  # (28, 28, 1)
    channels = int(input_shape[-1])
    h = SpatialTransformer(name="transformer")(image) if mode == "stn" else image
    h = _coder(h, down_units, p["depth"], encoder=True, **block)  # (7, 7, units[-1])
    grid_shape = tuple(h.shape[1:])
    n = grid_shape[0] * grid_shape[1] * grid_shape[2]  # 7·7·5 = 245
    h = layers.Flatten()(h)
    h = _dense_bn_relu(h, n, momentum, "enc_fc1")
    h = _dense_bn_relu(h, latent, momentum, "enc_fc2")
    mu = layers.Dense(latent, name="z_mean")(h)
    log_var = layers.Dense(latent, name="z_log_var")(h)
    encoder = keras.Model(image, [mu, log_var], name="encoder")

    z = keras.Input((latent,), name="z")
    g = _dense_bn_relu(z, latent, momentum, "dec_fc1")
    g = _dense_bn_relu(g, n, momentum, "dec_fc2")
    g = layers.Reshape(grid_shape)(g)  # (7, 7, units[-1])
    reconstruction = _coder(  # (28, 28, 1)
        g, down_units[::-1], p["depth"], encoder=False, channels=channels,
        output_batch_norm=p["output_batch_norm"], **block,
    )  # fmt: skip
    decoder = keras.Model(z, reconstruction, name="decoder")

    sampling = Sampling(p["kl_weight"], seed=seed, name="sampling")
    return VariationalAutoencoder(encoder, decoder, sampling)


def _conv_block(
    x: Any, filters: int, name: str, *, batch_norm: bool, dropout: bool, dropout_rate: float,
    attention: str, reduction_ratio: int, activation: str, momentum: float,
    slots: _Slots | None,
) -> Any:  # fmt: skip
    """Conv2D(3×3, same, no bias) -> [attention] -> [BatchNorm] -> [Dropout] -> activation.

    With ``slots`` (a fused group), every part any trial uses, each gated per trial.
    """
    x = layers.Conv2D(filters, 3, padding="same", use_bias=False, name=f"{name}_conv")(x)
    if slots is not None:
        return _gated_rest(x, name, reduction_ratio, momentum, slots)
    if attention != "none":
        x = _attention_layer(attention, reduction_ratio, f"{name}_{attention}")(x)
    if batch_norm:
        x = layers.BatchNormalization(momentum=momentum, name=f"{name}_bn")(x)
    if dropout:
        x = layers.Dropout(dropout_rate, name=f"{name}_dropout")(x)
    return layers.Activation(activation, name=f"{name}_act")(x)


def _is_mode(kind: str) -> Rule:
    """A gate's rule: 1 for a trial whose blocks use this attention, else 0."""
    return lambda p: float(_mode(p) == kind)


def _gated_rest(x: Any, name: str, ratio: int, momentum: float, slots: _Slots) -> Any:
    """A fused block after its convolution: the same parts, in the same order, gated."""
    for kind in slots.attention:
        y = _attention_layer(kind, ratio, f"{name}_{kind}")(x)
        x = Gate(_is_mode(kind), name=f"{name}_{kind}_gate")([y, x])
    if slots.batch_norm:
        y = layers.BatchNormalization(momentum=momentum, name=f"{name}_bn")(x)
        x = Gate(lambda p: float(p["batch_norm"]), name=f"{name}_bn_gate")([y, x])
    if slots.dropout:
        x = GatedDropout(name=f"{name}_dropout")(x)
    return SelectActivation(slots.activations, name=f"{name}_act")(x)


def _attention_layer(kind: str, ratio: int, name: str) -> layers.Layer:
    if kind == "spatial":
        return SpatialAttention(name=name)
    if kind == "channel":
        return ChannelAttention(ratio, name=name)
    return ConvolutionalBlockAttention(ratio, name=name)


def _dense_block(x: Any, filters: int, depth: int, name: str, **block: Any) -> Any:
    """DenseNet-style: each block's output is concatenated onto its input, ``depth`` times."""
    c = x
    for j in range(depth):
        y = _conv_block(c, filters, f"{name}_{j}", **block)
        c = layers.Concatenate(axis=-1)([c, y])  # channels grow by `filters` each time
    return c


def _coder(
    x: Any, units: Sequence[int], depth: int, *, encoder: bool, channels: int = 1,
    output_batch_norm: bool = True, momentum: float = 0.99, **block: Any,
) -> Any:  # fmt: skip
    """Encoder (units descending, stride-2 convs) or decoder (ascending, transposed convs).

    The decoder ends in ``channels`` sigmoid maps, batch-normalised first as in the reference
    unless ``output_batch_norm`` is off. Layers are named by place (``enc1_0_conv``: encoder,
    stage 1, block 0), so that a fused model's variables match each trial's own.
    """
    side = "enc" if encoder else "dec"
    x = layers.Conv2D(units[0], 3, padding="same", use_bias=False, name=f"{side}_in_conv")(x)
    x = layers.ReLU()(x)  # always ReLU, whatever the activation factor says
    resample = layers.Conv2D if encoder else layers.Conv2DTranspose
    for k in range(1, len(units) - 1):
        x = _dense_block(x, units[k], depth, f"{side}{k}", momentum=momentum, **block)
        x = resample(units[k], 3, strides=2, padding="same", use_bias=False,
                     name=f"{side}{k}_resample")(x)  # H/2 or H·2  # fmt: skip
    if encoder:
        x = layers.Conv2D(units[-1], 3, padding="same", use_bias=False, name="enc_out_conv")(x)
        x = layers.BatchNormalization(momentum=momentum, name="enc_out_bn")(x)
        return layers.ReLU()(x)
    x = layers.Conv2D(channels, 3, padding="same", use_bias=not output_batch_norm,
                      name="dec_out_conv")(x)  # fmt: skip
    if output_batch_norm:
        x = layers.BatchNormalization(momentum=momentum, name="dec_out_bn")(x)
    return layers.Activation("sigmoid")(x)


def _dense_bn_relu(x: Any, units: int, momentum: float, name: str) -> Any:
    x = layers.Dense(units, use_bias=False, name=name)(x)
    x = layers.BatchNormalization(momentum=momentum, name=f"{name}_bn")(x)
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
