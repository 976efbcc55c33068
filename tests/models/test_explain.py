"""What a model attended to, saved beside the task's outputs: keys, shapes and values."""

from __future__ import annotations

import numpy as np

from ablate.data import Dataset
from ablate.training import backend

keras = backend.import_keras()

from ablate.models.explain import N_SHOWN, attention_arrays  # noqa: E402
from ablate.models.registry import LSTM_ATTENTION, MULTISCALE_CNN, VAE  # noqa: E402


def _images(n: int = 20) -> Dataset:
    rng = np.random.default_rng(0)
    x = rng.random((n, 28, 28, 1)).astype("float32")
    y = np.arange(n) % 10
    return Dataset("d", "test", x, y, x, y)


def test_temporal_weights_for_every_test_sequence_with_their_labels() -> None:
    rng = np.random.default_rng(1)
    x = rng.normal(size=(30, 8, 2)).astype("float32")
    y = np.arange(30) % 2
    model = LSTM_ATTENTION.build(input_shape=(8, 2), n_classes=2, units=4, attention="additive")
    arrays = attention_arrays(keras, model, Dataset("s", "test", x, y, x, y), 16)
    assert set(arrays) == {"attention_temporal", "attention_labels"}
    assert arrays["attention_temporal"].shape == (30, 8)
    np.testing.assert_allclose(arrays["attention_temporal"].sum(axis=1), 1.0, rtol=1e-5)
    np.testing.assert_array_equal(arrays["attention_labels"], y)


def test_cbam_saves_masks_and_channel_weights_with_the_digits_they_belong_to() -> None:
    model = VAE.build(input_shape=(28, 28, 1), units=(8, 6, 4, 2), depth=1, attention="cbam")
    data = _images()
    arrays = attention_arrays(keras, model, data, 16)
    assert set(arrays) == {"attention_spatial", "attention_channel", "attention_inputs"}
    assert arrays["attention_spatial"].shape == (N_SHOWN, 28, 28)
    assert arrays["attention_channel"].shape == (20, 6)  # every test image (fewer than 500)
    assert ((arrays["attention_channel"] > 0) & (arrays["attention_channel"] < 1)).all()
    assert arrays["attention_inputs"].dtype == np.uint8
    np.testing.assert_array_equal(
        arrays["attention_inputs"], np.rint(data.x_test[:N_SHOWN, ..., 0] * 255).astype(np.uint8)
    )


def test_the_transformer_saves_its_output_and_the_multiscale_module_its_map() -> None:
    data = _images()
    stn = VAE.build(input_shape=(28, 28, 1), units=(8, 6, 4, 2), depth=1, attention="stn")
    arrays = attention_arrays(keras, stn, data, 16)
    np.testing.assert_array_equal(arrays["attention_transformed"], arrays["attention_inputs"])
    cnn = MULTISCALE_CNN.build(input_shape=(28, 28, 1), n_classes=10, filters=(6, 5, 4, 3))
    maps = attention_arrays(keras, cnn, data, 16)["attention_multiscale"]
    assert maps.shape == (N_SHOWN, 14, 14, 3)
    np.testing.assert_allclose(maps.sum(axis=-1), 1.0, rtol=1e-5)


def test_a_model_without_attention_saves_nothing() -> None:
    plain = VAE.build(input_shape=(28, 28, 1), units=(8, 6, 4, 2), depth=1)
    assert attention_arrays(keras, plain, _images(), 16) == {}
    inputs = keras.Input((28, 28, 1))
    user = keras.Model(inputs, keras.layers.Dense(2)(keras.layers.Flatten()(inputs)))
    assert attention_arrays(keras, user, _images(), 16) == {}
