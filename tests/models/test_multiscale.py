"""The multi-scale CNN: shapes and parameter counts by hand, and attention that reaches the head."""

from __future__ import annotations

import numpy as np
import pytest

from ablate.training import backend

keras = backend.import_keras()

from ablate.models.multiscale import kernel_sizes  # noqa: E402
from ablate.models.registry import MULTISCALE_CNN  # noqa: E402


def _conv(k: int, c_in: int, filters: int, bias: bool = True) -> int:
    return k * k * c_in * filters + (filters if bias else 0)


# attention-models.md, 28×28×1 input, filters 40, 30, 20, 10: every branch's kernel and bias
STAGES = {
    1: sum(_conv(k, 1, 40) for k in (1, 3, 5, 7, 9)),  # 40·165 + 5·40
    2: sum(_conv(k, 40, 30) for k in (1, 3, 5, 7)),  # 1200·84 + 4·30
    3: sum(_conv(k, 30, 20) for k in (1, 3, 5)),  # 600·35 + 3·20
    4: sum(_conv(k, 20, 10) for k in (1, 3)),  # 200·10 + 2·10
}
BASIC = {1: _conv(3, 1, 40), 2: _conv(3, 40, 30), 3: _conv(3, 30, 20), 4: _conv(3, 20, 10)}
# 2×2 convolutions without bias: 40 -> 30, 30 -> 20, 20 -> 20, 20 -> 10
MODULE = 4 * 40 * 30 + 4 * 30 * 20 + 4 * 20 * 20 + 4 * 20 * 10
HEAD = 14 * 14 * 10 * 10 + 10  # Flatten (14·14·10) -> Dense(10)


def test_hand_counts() -> None:
    assert STAGES == {1: 6_800, 2: 100_920, 3: 21_060, 4: 2_020}
    assert BASIC == {1: 400, 2: 10_830, 3: 5_420, 4: 1_810}
    assert MODULE == 9_600 and HEAD == 19_610


def _model(**overrides: object) -> keras.Model:
    return MULTISCALE_CNN.build(input_shape=(28, 28, 1), n_classes=10, **overrides)


@pytest.mark.parametrize("multi_scale", [True, False])
def test_stages_and_module_have_the_hand_counted_parameters(multi_scale: bool) -> None:
    model = _model(multi_scale=multi_scale, attention=True)
    counts = STAGES if multi_scale else BASIC
    for stage, expected in counts.items():
        branches = [layer for layer in model.layers if layer.name.startswith(f"stage{stage}_k")]
        assert sum(b.count_params() for b in branches) == expected, stage
        assert [b.kernel_size[0] for b in branches] == list(kernel_sizes(stage - 1, multi_scale))
    assert model.count_params() == sum(counts.values()) + MODULE + HEAD
    plain = _model(multi_scale=multi_scale, attention=False)
    assert plain.count_params() == sum(counts.values()) + HEAD


def test_shapes_on_28x28_digits() -> None:
    model = _model()
    shapes = {layer.name: tuple(layer.output.shape[1:]) for layer in model.layers}
    assert shapes["stage1"] == (14, 14, 40)  # stride 2
    assert shapes["stage2"] == (14, 14, 30)
    assert shapes["stage3"] == (14, 14, 20)
    assert shapes["stage4"] == (14, 14, 10)
    assert shapes["attention_map"] == (14, 14, 10)
    assert model.output_shape == (None, 10)


def test_the_attention_map_is_a_softmax_over_channels_and_feeds_the_head() -> None:
    keras.utils.set_random_seed(0)
    model = _model(filters=(8, 6, 4, 3))
    x = np.random.default_rng(0).random((4, 28, 28, 1)).astype("float32")
    a = keras.ops.convert_to_numpy(model.attention_maps["multiscale"](x))
    assert a.shape == (4, 14, 14, 3)
    np.testing.assert_allclose(a.sum(axis=-1), 1.0, rtol=1e-5)
    # the head reads x + x·a: changing the module's weights changes the prediction
    before = keras.ops.convert_to_numpy(model(x))
    last = model.get_layer("attention_map")
    rng = np.random.default_rng(1)  # not a constant shift: the softmax would ignore that
    last.set_weights([w + rng.normal(size=w.shape) for w in last.get_weights()])
    after = keras.ops.convert_to_numpy(model(x))
    assert np.abs(after - before).max() > 1e-4
    flatten_input = next(layer for layer in model.layers if layer.name.startswith("flatten"))
    assert flatten_input.input is model.get_layer("attended").output


def test_kernel_sets_follow_the_source() -> None:
    assert [kernel_sizes(i, True) for i in range(5)] == [
        (1, 3, 5, 7, 9), (1, 3, 5, 7), (1, 3, 5), (1, 3), (1, 3)
    ]  # fmt: skip
    assert kernel_sizes(2, False) == (3,)
