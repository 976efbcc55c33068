"""Every attention variant of every built-in model builds and trains a step, under TensorFlow
and under JAX, with the same parameter count on both. TensorFlow runs in this process; JAX in
the TensorFlow-free environment that ABLATE_TEST_JAX_PYTHON names (``.ci/run`` builds one),
else in this one, in the background from the session's start (tests/background.py). One step
each: eagerly under TensorFlow (tracing every model would cost minutes on 2 cores; the tiny
studies of tests/test_studies.py train traced models), compiled under JAX (where op-by-op
dispatch is slower still)."""

from __future__ import annotations

import importlib.util
import json
import os
import sys
from typing import Any

import numpy as np
import pytest

from tests import background
from tests.background import Job
from tests.helpers import ROOT

# (builder, input shape, classes or None, parameters): small sizes, every attention level.
# 12×12 images (the VAE's coder halves them twice; stage 1 of the CNN once): XLA on a CPU
# takes several times longer to compile the same models for 28×28.
# The VAE without attention and the reference's spatial_attention flag train in test_vae.py;
# the multi-scale stages and the attention module are independent, so two cells cover them.
VARIANTS = [
    *[("vae", (12, 12, 1), None, {"units": (6, 4, 3, 2), "depth": 1, "attention": level,
                                  "batch_norm": True})
      for level in ("spatial", "channel", "cbam", "stn")],
    *[("multiscale_cnn", (12, 12, 1), 10, {"filters": (4, 4, 3, 3), "multi_scale": both,
                                           "attention": both, "activation": "tanh"})
      for both in (True, False)],
    *[("lstm_attention", (10, 2), 2, {"units": 6, "attention": level, "attention_width": 4,
                                      "recurrent_dropout": 0.5, "activation": "relu"})
      for level in ("none", "additive", "block")],
]  # fmt: skip

EXPECTED_MAPS = [
    {"spatial": [12, 12, 1]}, {"channel": [4]},  # units[1] = 4 filters
    {"channel": [4], "spatial": [12, 12, 1]}, {"transformed": [12, 12, 1]},
    {"multiscale": [6, 6, 3]}, {},
    {}, {"temporal": [10]}, {"temporal": [10]},
]  # fmt: skip

# Builds every variant and trains it for one step in the backend it is started with; prints
# each variant's backend, parameter count, loss, weights moved and the shapes of its
# attention sub-models (calling them is test_explain.py's part), as JSON.
_SCRIPT = """
import json, sys
import numpy as np
import keras
from ablate.models.registry import BUILDERS

def train(variants):
    out = []
    for name, shape, classes, params in variants:
        keras.utils.set_random_seed(0)
        params = {k: tuple(v) if isinstance(v, list) else v for k, v in params.items()}
        model = BUILDERS[name].build(input_shape=tuple(shape), n_classes=classes, seed=0,
                                     **params)
        x = np.random.default_rng(0).random((4, *shape)).astype("float32")
        y = x if classes is None else np.arange(4) % classes
        loss = "binary_crossentropy" if classes is None else "sparse_categorical_crossentropy"
        eager = keras.backend.backend() == "tensorflow"  # tracing costs more than the step
        model.compile(optimizer="adam", loss=loss, run_eagerly=eager)
        numpy = keras.ops.convert_to_numpy
        before = [numpy(w) for w in model.trainable_weights]
        value = float(np.ravel(model.train_on_batch(x, y))[0])
        moved = sum(not np.allclose(a, numpy(w)) for a, w in zip(before,
                    model.trainable_weights))
        maps = {k: list(m.output.shape[1:]) for k, m in model.attention_maps.items()}
        out.append([keras.backend.backend(), int(model.count_params()), value, moved,
                    len(before), maps])
    return out

if __name__ == "__main__":
    print(json.dumps(train(json.loads(sys.argv[1]))))
"""

JAX_PYTHON = os.environ.get("ABLATE_TEST_JAX_PYTHON")


def _check(results: list[list[Any]], backend_name: str) -> None:
    assert len(results) == len(VARIANTS)
    for result, expected in zip(results, EXPECTED_MAPS, strict=True):
        name, params, loss, moved, weights, maps = result
        assert name == backend_name
        assert params > 0 and np.isfinite(loss)
        assert moved >= weights // 2  # the step updated the weights (Adam moves most of them)
        assert maps == expected


def _jax_variants() -> Job | None:
    """The JAX run, in the TensorFlow-free environment if there is one; None without JAX."""
    if not JAX_PYTHON and importlib.util.find_spec("jax") is None:
        return None
    env = {**os.environ, "PYTHONPATH": str(ROOT), "CUDA_VISIBLE_DEVICES": "",
           "KERAS_BACKEND": "jax"}  # fmt: skip
    command = [JAX_PYTHON or sys.executable, "-c", _SCRIPT, json.dumps(VARIANTS)]
    return [(command, {"cwd": ROOT, "env": env, "timeout": 900})]


#: Started when the session starts (tests/background.py): it compiles while others run.
BACKGROUND = {"jax-variants": _jax_variants}


@pytest.fixture(scope="module")
def tensorflow_results() -> list[list[Any]]:
    from ablate.training import backend

    keras = backend.import_keras()
    if keras.backend.backend() != "tensorflow":
        pytest.skip("this process runs another Keras backend")
    namespace: dict[str, Any] = {}
    exec(compile(_SCRIPT, "variants", "exec"), namespace)  # the code JAX runs
    return namespace["train"](json.loads(json.dumps(VARIANTS)))


@pytest.mark.slow
def test_every_variant_trains_a_step_under_tensorflow(
    tensorflow_results: list[list[Any]],
) -> None:
    _check(tensorflow_results, "tensorflow")


@pytest.mark.slow
@pytest.mark.skipif(
    not JAX_PYTHON and importlib.util.find_spec("jax") is None, reason="JAX is not installed"
)
def test_every_variant_trains_a_step_under_jax_with_tensorflows_parameter_counts(
    tensorflow_results: list[list[Any]],
) -> None:
    (run,) = background.results("jax-variants", _jax_variants)
    assert run.returncode == 0, run.stderr[-3000:]
    results = json.loads(run.stdout.strip().splitlines()[-1])
    _check(results, "jax")
    assert [r[1] for r in results] == [r[1] for r in tensorflow_results]
