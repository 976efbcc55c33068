"""The attention layers against hand calculations: parameter counts, weights, warps, time."""

from __future__ import annotations

import itertools

import numpy as np
import pytest

from ablate.training import backend

keras = backend.import_keras()

from ablate.models.attention import (  # noqa: E402
    IDENTITY_THETA,
    AdditiveTemporalAttention,
    BlockTemporalAttention,
    ChannelAttention,
    ConvolutionalBlockAttention,
    SpatialTransformer,
    affine_sample,
    reduced,
)

ops = keras.ops


def _numpy(x: object) -> np.ndarray:
    return np.asarray(ops.convert_to_numpy(x))


def _sigmoid(z: np.ndarray) -> np.ndarray:
    return 1.0 / (1.0 + np.exp(-z))


def _se_count(c: int, r: int) -> int:
    """attention-models.md: 2·C·(C/r) + C/r + C with biases, C/r at least 1."""
    h = max(1, c // r)
    return 2 * c * h + h + c


@pytest.mark.parametrize(
    ("channels", "ratio", "expected"),
    [(16, 4, 148), (25, 4, 331), (15, 4, 108), (3, 4, 10), (40, 1, 3280)],
)
def test_channel_attention_parameters_equal_the_hand_count(
    channels: int, ratio: int, expected: int
) -> None:
    assert _se_count(channels, ratio) == expected
    layer = ChannelAttention(ratio)
    layer.build((None, 7, 7, channels))
    assert layer.count_params() == expected
    cbam = ConvolutionalBlockAttention(ratio)
    cbam.build((None, 7, 7, channels))
    assert cbam.count_params() == expected + 51  # the shared MLP and the spatial layer


def test_channel_attention_matches_a_hand_computation() -> None:
    rng = np.random.default_rng(1)
    x = rng.normal(size=(3, 5, 4, 8)).astype("float32")
    layer = ChannelAttention(ratio=4)
    layer.build(x.shape)
    w1, b1 = rng.normal(size=(8, 2)), rng.normal(size=2)
    w2, b2 = rng.normal(size=(2, 8)), rng.normal(size=8)
    layer.squeeze.set_weights([w1, b1])
    layer.excite.set_weights([w2, b2])
    squeezed = x.mean(axis=(1, 2))  # (3, 8)
    weights = _sigmoid(np.maximum(squeezed @ w1 + b1, 0) @ w2 + b2)
    got = _numpy(layer.attention(x))
    np.testing.assert_allclose(got, weights, rtol=1e-5, atol=1e-6)
    assert ((got > 0) & (got < 1)).all()  # weights lie in (0, 1)
    np.testing.assert_allclose(_numpy(layer(x)), x * weights[:, None, None, :], rtol=1e-5,
                               atol=1e-5)  # fmt: skip


def test_cbam_is_channel_attention_from_both_poolings_then_spatial_attention() -> None:
    rng = np.random.default_rng(2)
    x = rng.normal(size=(2, 6, 5, 8)).astype("float32")
    layer = ConvolutionalBlockAttention(ratio=4)
    layer.build(x.shape)
    w1, b1 = rng.normal(size=(8, 2)), rng.normal(size=2)
    w2, b2 = rng.normal(size=(2, 8)), rng.normal(size=8)
    layer.hidden.set_weights([w1, b1])
    layer.out.set_weights([w2, b2])
    kernel, bias = rng.normal(size=(5, 5, 2, 1)), np.array([0.1])
    layer.spatial.conv.set_weights([kernel, bias])

    def mlp(v: np.ndarray) -> np.ndarray:
        return np.maximum(v @ w1 + b1, 0) @ w2 + b2

    channel = _sigmoid(mlp(x.mean(axis=(1, 2))) + mlp(x.max(axis=(1, 2))))  # (2, 8)
    y = x * channel[:, None, None, :]
    pooled = np.pad(np.stack([y.max(-1), y.mean(-1)], -1), ((0, 0), (2, 2), (2, 2), (0, 0)))
    logits = np.zeros(y.shape[:3])
    for b, i, j in itertools.product(range(2), range(6), range(5)):
        logits[b, i, j] = np.sum(pooled[b, i : i + 5, j : j + 5] * kernel[..., 0]) + bias[0]
    expected = y * _sigmoid(logits)[..., None]
    np.testing.assert_allclose(_numpy(layer(x)), expected, rtol=1e-4, atol=1e-5)
    weights, mask = layer.attention(x)
    np.testing.assert_allclose(_numpy(weights), channel, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(_numpy(mask)[..., 0], _sigmoid(logits), rtol=1e-4, atol=1e-5)


def test_reduced_width_is_at_least_one() -> None:
    assert [reduced(c, 4) for c in (1, 3, 4, 25, 35)] == [1, 1, 1, 6, 8]


def _theta(*values: float, batch: int = 1) -> np.ndarray:
    return np.tile(np.array(values, dtype="float32"), (batch, 1))


def test_identity_transform_returns_the_input() -> None:
    x = np.random.default_rng(3).random((2, 28, 28, 1)).astype("float32")
    got = _numpy(affine_sample(x, _theta(*IDENTITY_THETA, batch=2)))
    np.testing.assert_allclose(got, x, atol=1e-5)
    colour = np.random.default_rng(4).random((1, 9, 7, 3)).astype("float32")  # H != W, RGB
    np.testing.assert_allclose(_numpy(affine_sample(colour, _theta(*IDENTITY_THETA))), colour,
                               atol=1e-5)  # fmt: skip


def test_a_one_pixel_translation_shifts_the_image_by_one_pixel() -> None:
    x = np.random.default_rng(5).random((1, 28, 28, 1)).astype("float32")
    step = 2 / 27  # one pixel in normalised coordinates
    # every output pixel reads its right neighbour: the image moves one pixel to the left
    left = _numpy(affine_sample(x, _theta(1, 0, step, 0, 1, 0)))
    np.testing.assert_allclose(left[:, :, :-1], x[:, :, 1:], atol=1e-4)
    np.testing.assert_allclose(left[:, :, -1], 0, atol=1e-4)  # zero outside the image
    down = _numpy(affine_sample(x, _theta(1, 0, 0, 0, 1, -step)))  # reads the row above
    np.testing.assert_allclose(down[:, 1:], x[:, :-1], atol=1e-4)
    np.testing.assert_allclose(down[:, 0], 0, atol=1e-4)
    half = _numpy(affine_sample(x, _theta(1, 0, step / 2, 0, 1, 0)))  # bilinear: the average
    np.testing.assert_allclose(half[:, :, :-1], (x[:, :, :-1] + x[:, :, 1:]) / 2, atol=1e-4)


def test_the_spatial_transformer_starts_as_the_identity_and_counts_its_parameters() -> None:
    x = np.random.default_rng(6).random((2, 28, 28, 1)).astype("float32")
    layer = SpatialTransformer()
    np.testing.assert_allclose(_numpy(layer(x)), x, atol=1e-5)
    np.testing.assert_allclose(_numpy(layer.theta(x)), _theta(*IDENTITY_THETA, batch=2))
    # conv 5·5·1·8 + 8, conv 5·5·8·10 + 10, dense 7·7·10·32 + 32, dense 32·6 + 6
    assert layer.count_params() == 208 + 2010 + 15712 + 198 == 18_128
    # θ = identity + 0.1 · Dense(6): a bias of 1 in the Dense moves θ by 0.1
    last = layer.localisation[-1]
    kernel, _ = last.get_weights()
    last.set_weights([kernel, np.array([0, 0, 1, 0, 0, 0], dtype="float32")])
    np.testing.assert_allclose(_numpy(layer.theta(x))[0], [1, 0, 0.1, 0, 1, 0], atol=1e-6)


def test_additive_attention_weights_sum_to_one_and_weight_the_context() -> None:
    rng = np.random.default_rng(7)
    h = rng.normal(size=(4, 10, 6)).astype("float32")  # batch, T, U
    layer = AdditiveTemporalAttention(width=5)
    context = _numpy(layer(h))
    assert layer.count_params() == 6 * 5 + 5  # U·width + width
    w1, w2 = layer.hidden.get_weights()[0], layer.score.get_weights()[0]
    scores = (np.tanh(h @ w1) @ w2)[..., 0]  # (4, 10)
    alpha = np.exp(scores) / np.exp(scores).sum(axis=1, keepdims=True)
    got = _numpy(layer.attention(h))
    np.testing.assert_allclose(got, alpha, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(got.sum(axis=1), 1.0, rtol=1e-6)
    assert (got > 0).all()
    np.testing.assert_allclose(context, (alpha[..., None] * h).sum(axis=1), rtol=1e-5, atol=1e-5)


def test_block_attention_sums_to_one_over_time_for_every_dimension() -> None:
    rng = np.random.default_rng(8)
    h = rng.normal(size=(3, 10, 6)).astype("float32")
    layer = BlockTemporalAttention()
    out = _numpy(layer(h))
    assert layer.count_params() == 10 * 10 + 10  # T·T + T
    kernel, bias = layer.dense.get_weights()
    logits = np.transpose(h, (0, 2, 1)) @ kernel + bias  # (3, U, T)
    a = np.exp(logits) / np.exp(logits).sum(axis=-1, keepdims=True)
    a = np.transpose(a, (0, 2, 1))  # (3, T, U)
    got = _numpy(layer.attention(h))
    np.testing.assert_allclose(got, a, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(got.sum(axis=1), 1.0, rtol=1e-5)  # over time, per dimension
    np.testing.assert_allclose(out, h * a, rtol=1e-5, atol=1e-5)
