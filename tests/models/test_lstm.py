"""The LSTM classifier with attention over time: parameter counts and per-step weights."""

from __future__ import annotations

import numpy as np
import pytest

from ablate.training import backend

keras = backend.import_keras()

from ablate.models.registry import LSTM_ATTENTION  # noqa: E402

LSTM = 4 * 60 * (60 + 2 + 1)  # four gates over [h, x] with bias: 15,120 for U = 60, D = 2


@pytest.mark.parametrize(("attention", "expected"), [
    ("none", LSTM + 60 * 2 + 2),  # last state -> Dense(2)
    ("additive", LSTM + (60 * 50 + 50) + 60 * 2 + 2),  # scoring layers, context -> Dense(2)
    ("block", LSTM + (10 * 10 + 10) + 10 * 60 * 2 + 2),  # Dense(T, softmax), flattened -> Dense(2)
])  # fmt: skip
def test_parameter_counts(attention: str, expected: int) -> None:
    model = LSTM_ATTENTION.build(input_shape=(10, 2), n_classes=2, attention=attention)
    assert model.count_params() == expected
    assert model.output_shape == (None, 2)


@pytest.mark.parametrize("attention", ["additive", "block"])
def test_the_weight_per_step_sums_to_one(attention: str) -> None:
    model = LSTM_ATTENTION.build(input_shape=(12, 3), n_classes=2, attention=attention, units=7)
    x = np.random.default_rng(0).normal(size=(5, 12, 3)).astype("float32")
    weights = keras.ops.convert_to_numpy(model.attention_maps["temporal"](x))
    assert weights.shape == (5, 12)
    assert (weights > 0).all()
    np.testing.assert_allclose(weights.sum(axis=1), 1.0, rtol=1e-5)


def test_no_attention_reads_the_last_state_and_has_no_maps() -> None:
    model = LSTM_ATTENTION.build(input_shape=(10, 2), n_classes=3, attention="none", units=5)
    assert model.attention_maps == {}
    lstm = model.get_layer("lstm")
    assert lstm.output.shape[1:] == (5,) and not lstm.return_sequences
