"""The VAE against its published specification: parameter counts, shapes, and the custom
layers' maths."""

from __future__ import annotations

import itertools
from pathlib import Path

import numpy as np
import pytest

from ablate.training import backend
from tests.helpers import ROOT, run_cli

keras = backend.import_keras()

from ablate.models.registry import VAE  # noqa: E402
from ablate.models.vae import Sampling, SpatialAttention  # noqa: E402

# The published specification: count_params() of the whole model, and its trainable part,
# by (batch_norm, spatial_attention).
SPEC_COUNTS = {
    (True, True): (219_033, 217_553),
    (True, False): (218_421, 216_941),
    (False, True): (218_073, 217_073),
    (False, False): (217_461, 216_461),
}


def test_the_reference_study_page_gives_the_counts_the_cells_are_checked_against() -> None:
    """The documentation's table of the 32 cells' counts is the one the slow test below
    checks every built cell against."""
    page = (ROOT / "docs" / "reference-study.md").read_text()
    table = page.split("<!-- reference parameter counts")[1].split("<!-- end reference")[0]
    rows = [line.split("|")[1:-1] for line in table.splitlines() if line.startswith("| true")
            or line.startswith("| false")]  # fmt: skip
    number = lambda text: int(text.replace(",", ""))  # noqa: E731
    shown = {
        (bn.strip() == "true", sa.strip() == "true"): (number(n), number(t))
        for bn, sa, cells, n, t in rows
        if cells.strip() == "8"
    }
    assert shown == SPEC_COUNTS


def _vae(**overrides: object) -> keras.Model:
    """The VAE with the declared defaults, some overridden, on MNIST-shaped input."""
    return VAE.build(input_shape=(28, 28, 1), **overrides)


def _trainable(model: keras.Model) -> int:
    return sum(int(np.prod(w.shape)) for w in model.trainable_weights)


@pytest.mark.slow
def test_every_cell_of_the_reference_grid_matches_the_spec() -> None:
    for bn, do, sa, act in itertools.product(
        (True, False), (True, False), (True, False), ("elu", "relu", "selu", "sigmoid")
    ):
        model = _vae(batch_norm=bn, dropout=do, spatial_attention=sa, activation=act)
        assert (model.count_params(), _trainable(model)) == SPEC_COUNTS[(bn, sa)], (bn, do, sa)
        assert model.encoder.output_shape == [(None, 2), (None, 2)]
        assert model.decoder.output_shape == (None, 28, 28, 1)
        assert model.output_shape == (None, 28, 28, 1)


def test_encoder_reaches_7x7x5_and_layers_follow_the_flags() -> None:
    model = _vae(batch_norm=True, dropout=True, spatial_attention=True, activation="selu")
    flatten = next(layer for layer in model.encoder.layers if layer.name.startswith("flatten"))
    assert flatten.input.shape[1:] == (7, 7, 5)
    kinds = [type(layer).__name__ for layer in model.encoder.layers]
    # 2 dense blocks of depth 3 in the encoder, each conv block with all three optional layers
    assert kinds.count("SpatialAttention") == 6
    assert kinds.count("Dropout") == 6
    acts = [a for a in model.encoder.layers if type(a).__name__ == "Activation"]
    assert len(acts) == 6 and all(a.activation.__name__ == "selu" for a in acts)
    plain = _vae(batch_norm=False, dropout=False, spatial_attention=False)
    plain_kinds = [type(layer).__name__ for layer in plain.encoder.layers]
    assert "SpatialAttention" not in plain_kinds and "Dropout" not in plain_kinds
    # BatchNormalization stays where the spec fixes it: encoder end and the bottleneck (3)
    assert plain_kinds.count("BatchNormalization") == 3


def test_batch_norm_momentum_reaches_every_batch_normalization_and_no_count() -> None:
    def momenta(model: keras.Model) -> set[float]:
        layers = model.encoder.layers + model.decoder.layers
        return {round(x.momentum, 6) for x in layers if type(x).__name__ == "BatchNormalization"}

    reference = _vae(batch_norm=True)
    assert momenta(reference) == {0.99}  # Keras's default, the reference's
    quick = _vae(batch_norm=True, batch_norm_momentum=0.9)
    assert momenta(quick) == {0.9}
    assert quick.count_params() == reference.count_params() == SPEC_COUNTS[(True, False)][0]


def _sigmoid(z: np.ndarray) -> np.ndarray:
    return 1.0 / (1.0 + np.exp(-z))


def test_spatial_attention_matches_a_hand_computation() -> None:
    rng = np.random.default_rng(0)
    x = rng.normal(size=(2, 6, 5, 3)).astype("float32")  # batch, H, W, C
    layer = SpatialAttention()
    layer.build(x.shape)
    kernel = rng.normal(size=(5, 5, 2, 1)).astype("float32")
    bias = np.array([0.3], dtype="float32")
    layer.conv.set_weights([kernel, bias])
    assert layer.count_params() == 51

    pooled = np.stack([x.max(axis=-1), x.mean(axis=-1)], axis=-1)  # (2, 6, 5, 2)
    padded = np.pad(pooled, ((0, 0), (2, 2), (2, 2), (0, 0)))  # "same" for a 5x5 kernel
    logits = np.zeros(x.shape[:3])
    for b, i, j in itertools.product(range(2), range(6), range(5)):
        window = padded[b, i : i + 5, j : j + 5, :]  # (5, 5, 2)
        logits[b, i, j] = np.sum(window * kernel[..., 0]) + bias[0]  # cross-correlation
    expected = x * _sigmoid(logits)[..., None]

    got = keras.ops.convert_to_numpy(layer(x))
    np.testing.assert_allclose(got, expected, rtol=1e-5, atol=1e-5)


def test_sampling_adds_the_weighted_kl_and_samples_around_mu() -> None:
    mu = np.array([[0.5, -1.0], [2.0, 0.0], [0.0, 0.3]], dtype="float32")
    log_var = np.array([[0.0, -2.0], [1.0, 0.5], [-0.5, 0.0]], dtype="float32")
    layer = Sampling(kl_weight=0.001, seed=3)
    z = keras.ops.convert_to_numpy(layer([mu, log_var]))
    kl = -0.5 * np.sum(1 + log_var - mu**2 - np.exp(log_var), axis=-1)  # per image
    assert len(layer.losses) == 1
    assert float(layer.losses[0]) == pytest.approx(0.001 * kl.mean(), rel=1e-6)
    assert z.shape == mu.shape and not np.allclose(z, mu)
    # with log_var very negative the noise vanishes: z == mu
    z0 = keras.ops.convert_to_numpy(layer([mu, np.full_like(log_var, -60.0)]))
    np.testing.assert_allclose(z0, mu, atol=1e-6)


def test_same_seed_same_initial_weights() -> None:
    keras.utils.set_random_seed(5)
    a = _vae(units=(8, 6, 4, 2), depth=1).get_weights()
    keras.utils.set_random_seed(5)
    b = _vae(units=(8, 6, 4, 2), depth=1).get_weights()
    assert all(np.array_equal(u, v) for u, v in zip(a, b, strict=True))


# attention-models.md: squeeze-and-excitation adds 2·C·(C/r) + C/r + C per convolution block,
# CBAM that and the spatial layer's 51. The reference VAE has 6 blocks of 25 filters and 6 of
# 15 (3 per dense block, 2 dense blocks in each coder); C/r = 6 and 3 for r = 4.
SE_EXTRA = 6 * (2 * 25 * 6 + 6 + 25) + 6 * (2 * 15 * 3 + 3 + 15)  # 2,634
CBAM_EXTRA = SE_EXTRA + 12 * 51
STN_EXTRA = (5 * 5 * 1 * 8 + 8) + (5 * 5 * 8 * 10 + 10) + (7 * 7 * 10 * 32 + 32) + (32 * 6 + 6)


@pytest.mark.parametrize(("attention", "extra"), [
    ("none", 0), ("spatial", 12 * 51), ("channel", SE_EXTRA), ("cbam", CBAM_EXTRA),
    ("stn", STN_EXTRA),
])  # fmt: skip
def test_attention_levels_add_the_hand_counted_parameters(attention: str, extra: int) -> None:
    assert (SE_EXTRA, STN_EXTRA) == (2_634, 18_128)
    model = _vae(batch_norm=False, attention=attention)
    assert model.count_params() == SPEC_COUNTS[(False, False)][0] + extra
    assert _trainable(model) == SPEC_COUNTS[(False, False)][1] + extra


def test_attention_spatial_is_the_reference_flag_layer_for_layer() -> None:
    flag = _vae(batch_norm=True, spatial_attention=True)
    level = _vae(batch_norm=True, attention="spatial")
    assert (level.count_params(), _trainable(level)) == SPEC_COUNTS[(True, True)]
    for part in ("encoder", "decoder"):
        kinds = [type(layer).__name__ for layer in getattr(flag, part).layers]
        assert kinds == [type(layer).__name__ for layer in getattr(level, part).layers]
    both = _vae(spatial_attention=True, attention="spatial")  # the same thing said twice
    assert both.count_params() == SPEC_COUNTS[(False, True)][0]


def test_the_flag_and_another_attention_level_are_refused() -> None:
    from ablate.errors import AblateError

    with pytest.raises(AblateError, match="use attention alone"):
        _vae(spatial_attention=True, attention="cbam")


def test_a_study_setting_both_is_refused_before_training(tmp_path: Path) -> None:
    from ablate.errors import AblateError
    from ablate.study import parse_study

    text = "name: both\nfactors:\n  spatial_attention: [true, false]\n  attention: [none, cbam]\n"
    with pytest.raises(AblateError, match=r"spatial_attention \(a factor\) and attention"):
        parse_study(text)
    fixed = "name: both\nmodel: {spatial_attention: true}\nfactors:\n  attention: [none, cbam]\n"
    with pytest.raises(AblateError, match="describe the same part of the model"):
        parse_study(fixed)
    ok = "name: ok\nmodel: {spatial_attention: false}\nfactors:\n  attention: [none, cbam]\n"
    assert parse_study(ok).factor_names == ("attention",)  # false is the default: not in use
    path = tmp_path / "both.yaml"
    path.write_text(text)
    proc = run_cli("run", str(path), "--dry-run")
    assert proc.returncode == 2 and "Traceback" not in proc.stderr


@pytest.mark.parametrize(("attention", "kinds"), [
    ("spatial", {"spatial": (28, 28, 1)}), ("channel", {"channel": (25,)}),
    ("cbam", {"channel": (25,), "spatial": (28, 28, 1)}), ("stn", {"transformed": (28, 28, 1)}),
    ("none", {}),
])  # fmt: skip
def test_the_first_attention_is_exposed_for_the_charts(attention: str, kinds: dict) -> None:
    model = _vae(attention=attention)
    assert {k: m.output_shape[1:] for k, m in model.attention_maps.items()} == kinds
    x = np.random.default_rng(0).random((2, 28, 28, 1)).astype("float32")
    if attention == "stn":  # identity at the start
        got = keras.ops.convert_to_numpy(model.attention_maps["transformed"](x))
        np.testing.assert_allclose(got, x, atol=1e-5)
