"""The attention charts from known arrays: one panel per kind, bars that are the means."""

from __future__ import annotations

import numpy as np
from matplotlib import colormaps
from matplotlib.axes import Axes
from matplotlib.colors import to_rgba
from matplotlib.figure import Figure
from matplotlib.image import AxesImage
from matplotlib.patches import Rectangle

from ablate.views.attention import attention_figure, has_attention
from ablate.views.style import SIGNIFICANT


def _panels(fig: Figure) -> list[Axes]:
    """The figure's axes but its colour bars."""
    return [ax for ax in fig.axes if ax.get_label() != "<colorbar>"]


def _bars(ax: Axes) -> list[Rectangle]:
    return [p for p in ax.patches if isinstance(p, Rectangle) and p.get_height() > 0]


def test_temporal_bars_are_the_mean_weight_per_step_and_mark_the_label_step() -> None:
    rng = np.random.default_rng(0)
    weights = rng.dirichlet(np.ones(10), size=400).astype(np.float32)
    weights[:, 2] += 1.0
    weights /= weights.sum(axis=1, keepdims=True)
    outputs = {"attention_temporal": weights, "attention_labels": np.zeros(400, np.int32)}
    assert has_attention(outputs)
    fig = attention_figure(outputs, "best", label_step=2)
    (ax,) = _panels(fig)
    bars = _bars(ax)
    assert len(bars) == 10
    np.testing.assert_allclose([b.get_height() for b in bars], weights.mean(axis=0), rtol=1e-5)
    colours = [b.get_facecolor() for b in bars]
    assert colours[2] == to_rgba(SIGNIFICANT) and colours[0] != to_rgba(SIGNIFICANT)
    assert "peak at step 2" in ax.get_title()
    assert any("step 2: holds the label" in t.get_text() for t in ax.get_legend().get_texts())


def test_image_panels_stack_inputs_over_their_maps() -> None:
    rng = np.random.default_rng(1)
    outputs = {
        "attention_inputs": rng.integers(0, 255, (8, 28, 28)).astype(np.uint8),
        "attention_spatial": rng.random((8, 28, 28)).astype(np.float32),
        "attention_channel": rng.random((50, 6)).astype(np.float32),
    }
    fig = attention_figure(outputs, "worst")
    spatial, channel = _panels(fig)
    image = next(a for a in spatial.get_children() if isinstance(a, AxesImage))
    assert image.get_array().shape == (56, 224, 3)  # inputs over masks, 8 side by side, RGB
    masks = np.concatenate(list(outputs["attention_spatial"]), axis=1)
    np.testing.assert_allclose(image.get_array()[28:, :, :3],
                               colormaps["magma"](masks)[..., :3], atol=1e-6)  # fmt: skip
    grey = 1 - np.concatenate(list(outputs["attention_inputs"]), axis=1) / 255
    np.testing.assert_allclose(image.get_array()[:28, :, 0], grey, atol=1e-6)
    np.testing.assert_allclose([b.get_height() for b in _bars(channel)],
                               outputs["attention_channel"].mean(axis=0), rtol=1e-5)  # fmt: skip


def test_multiscale_and_transformed_panels() -> None:
    rng = np.random.default_rng(2)
    a = rng.dirichlet(np.ones(5), size=(8, 14, 14)).astype(np.float32)  # (8, 14, 14, 5)
    outputs = {
        "attention_inputs": rng.integers(0, 255, (8, 28, 28)).astype(np.uint8),
        "attention_multiscale": a,
        "attention_transformed": rng.integers(0, 255, (8, 28, 28)).astype(np.uint8),
    }
    fig = attention_figure(outputs, "best")
    transformed, maps, channels = _panels(fig)
    image = next(c for c in maps.get_children() if isinstance(c, AxesImage))
    assert image.get_array().shape == (28, 112, 3)  # inputs (14×14) over the largest weights
    np.testing.assert_allclose([b.get_height() for b in _bars(channels)],
                               a.reshape(-1, 5).mean(axis=0), rtol=1e-5)  # fmt: skip
    assert "transformer" in transformed.get_title()
    assert not has_attention({"confusion": np.eye(2)})
