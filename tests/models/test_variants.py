"""Every attention variant of every built-in model builds and trains a step, under TensorFlow
and under JAX, with the same parameter count on both. JAX runs in the TensorFlow-free
environment that ABLATE_TEST_JAX_PYTHON names (``.ci/run`` builds one), else in this one."""

from __future__ import annotations

import importlib.util
import json
import os
import subprocess
import sys

import numpy as np
import pytest

from tests.helpers import ROOT

# (builder, input shape, classes or None, parameters): small sizes, every attention level
VARIANTS = [
    *[("vae", (28, 28, 1), None, {"units": (8, 6, 4, 2), "depth": 1, "attention": level,
                                  "batch_norm": True})
      for level in ("none", "spatial", "channel", "cbam", "stn")],
    ("vae", (28, 28, 1), None, {"units": (8, 6, 4, 2), "depth": 1, "spatial_attention": True}),
    *[("multiscale_cnn", (28, 28, 1), 10, {"filters": (6, 5, 4, 3), "multi_scale": ms,
                                           "attention": att, "activation": "tanh"})
      for ms in (True, False) for att in (True, False)],
    *[("lstm_attention", (10, 2), 2, {"units": 6, "attention": level, "attention_width": 4,
                                      "recurrent_dropout": 0.5, "activation": "relu"})
      for level in ("none", "additive", "block")],
]  # fmt: skip

# Builds and trains every variant for one step in the backend it is started with; prints
# each variant's parameter count, loss and the kinds of attention it exposes, as JSON.
_SCRIPT = """
import json, sys
import numpy as np
import keras
from ablate.models.registry import BUILDERS
variants = json.loads(sys.argv[1])
out = []
for name, shape, classes, params in variants:
    keras.utils.set_random_seed(0)
    spec = BUILDERS[name]
    params = {k: tuple(v) if isinstance(v, list) else v for k, v in params.items()}
    model = spec.build(input_shape=tuple(shape), n_classes=classes, seed=0, **params)
    x = np.random.default_rng(0).random((8, *shape)).astype("float32")
    if classes is None:
        model.compile(optimizer="adam", loss="binary_crossentropy")
        y = x
    else:
        model.compile(optimizer="adam", loss="sparse_categorical_crossentropy")
        y = np.arange(8) % classes
    loss = model.fit(x, y, batch_size=4, epochs=1, verbose=0).history["loss"][-1]
    maps = {k: list(m(x[:2]).shape) for k, m in model.attention_maps.items()}
    out.append([keras.backend.backend(), int(model.count_params()), float(loss), maps])
print(json.dumps(out))
"""


JAX_PYTHON = os.environ.get("ABLATE_TEST_JAX_PYTHON")


def _run(backend_name: str, python: str = sys.executable) -> list[list[object]]:
    proc = subprocess.run(
        [python, "-c", _SCRIPT, json.dumps(VARIANTS)],
        capture_output=True,
        text=True,
        timeout=900,
        cwd=ROOT,
        env={
            **os.environ,
            "PYTHONPATH": str(ROOT),
            "CUDA_VISIBLE_DEVICES": "",
            "KERAS_BACKEND": backend_name,
        },
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    return json.loads(proc.stdout.strip().splitlines()[-1])


EXPECTED_MAPS = [
    {}, {"spatial": [2, 28, 28, 1]}, {"channel": [2, 6]},  # units[1] = 6 filters
    {"channel": [2, 6], "spatial": [2, 28, 28, 1]}, {"transformed": [2, 28, 28, 1]},
    {"spatial": [2, 28, 28, 1]},
    {"multiscale": [2, 14, 14, 3]}, {}, {"multiscale": [2, 14, 14, 3]}, {},
    {}, {"temporal": [2, 10]}, {"temporal": [2, 10]},
]  # fmt: skip


@pytest.fixture(scope="module")
def tensorflow_results() -> list[list[object]]:
    return _run("tensorflow")


@pytest.mark.slow
def test_every_variant_trains_a_step_under_tensorflow(
    tensorflow_results: list[list[object]],
) -> None:
    assert len(tensorflow_results) == len(VARIANTS)
    for result, expected in zip(tensorflow_results, EXPECTED_MAPS, strict=True):
        backend_name, params, loss, maps = result
        assert backend_name == "tensorflow"
        assert isinstance(params, int) and params > 0 and np.isfinite(loss)
        assert maps == expected


@pytest.mark.slow
@pytest.mark.skipif(
    not JAX_PYTHON and importlib.util.find_spec("jax") is None, reason="JAX is not installed"
)
def test_every_variant_trains_a_step_under_jax_with_tensorflows_parameter_counts(
    tensorflow_results: list[list[object]],
) -> None:
    results = _run("jax", JAX_PYTHON or sys.executable)
    assert len(results) == len(VARIANTS)
    for jax_result, tf_result in zip(results, tensorflow_results, strict=True):
        backend_name, params, loss, maps = jax_result
        _, tf_params, _, tf_maps = tf_result
        assert backend_name == "jax"
        assert params == tf_params and np.isfinite(loss) and maps == tf_maps
