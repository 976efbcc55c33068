"""What a trained model attended to, saved with its trial beside the task's own outputs.

A model (a built-in one, or a user's) that has an ``attention_maps`` attribute — a mapping
from a kind to a Keras sub-model of the same input — gets each sub-model's output for test
inputs saved in ``outputs/<trial_key>.npz`` as ``attention_<kind>``, and the charts draw it
(:mod:`ablate.views.attention`). The kinds, and what each sub-model returns per input:

=================  ======================  ================================================
kind               sub-model output        saved for
=================  ======================  ================================================
``spatial``        (H, W, 1) mask          the first N_SHOWN test inputs, as (n, H, W)
``channel``        (C) channel weights     the first N_CHANNEL test inputs, as (n, C)
``transformed``    (H, W, C) warped input  the first N_SHOWN test inputs, like the inputs
``multiscale``     (H, W, K) softmax map   the first N_SHOWN test inputs
``temporal``       (T) weight per step     the first N_SEQUENCES test inputs, as (n, T)
=================  ======================  ================================================

Images shown are saved as ``attention_inputs`` (uint8); for ``temporal`` the test labels
are saved as ``attention_labels``. Nothing is saved for a model without attention.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import numpy as np

from ablate.tasks.base import predict

if TYPE_CHECKING:
    from ablate.data import Dataset

N_SHOWN = 8  # test images whose masks or warped versions are kept
N_CHANNEL = 500  # test images whose channel weights are kept
N_SEQUENCES = 2000  # test sequences whose weights per step are kept
KINDS = ("spatial", "channel", "transformed", "multiscale", "temporal")


def attention_arrays(
    keras: Any, model: Any, data: Dataset, batch_size: int
) -> dict[str, np.ndarray]:
    """``attention_<kind>`` arrays (and the inputs they belong to) for a model that has
    ``attention_maps``; {} for one that has none."""
    maps = getattr(model, "attention_maps", None) or {}
    arrays: dict[str, np.ndarray] = {}
    x = data.x_test
    for kind, sub in maps.items():
        if kind not in KINDS:
            continue  # a user's own kind: not drawn, so not kept either
        n = {"channel": N_CHANNEL, "temporal": N_SEQUENCES}.get(kind, N_SHOWN)
        values = predict(keras, sub, x[:n], batch_size)
        if kind == "spatial":
            values = values[..., 0]  # (n, H, W)
        if kind == "transformed":
            arrays[f"attention_{kind}"] = _images(values)
        else:
            arrays[f"attention_{kind}"] = values.astype(np.float32)
    if not arrays:
        return {}
    if x.ndim == 4 and x.shape[-1] in (1, 3):
        arrays["attention_inputs"] = _images(x[:N_SHOWN])
    if "attention_temporal" in arrays and data.y_test is not None:
        arrays["attention_labels"] = data.y_test[:N_SEQUENCES].astype(np.int32)
    return arrays


def _images(images: np.ndarray) -> np.ndarray:
    """Images in [0, 1], (n, H, W, C) -> uint8 (n, H, W) for one channel, else (n, H, W, 3)."""
    array = np.asarray(images)
    if array.shape[-1] == 1:
        array = array[..., 0]
    pixels: np.ndarray = np.clip(np.rint(array * 255), 0, 255).astype(np.uint8)
    return pixels
