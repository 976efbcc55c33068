"""Reconstruction: the model maps each input to itself through a bottleneck (autoencoders).

The loss is binary cross-entropy between input and output (mean over values) plus whatever
the model adds with ``add_loss`` (a VAE's KL term): the reference study's loss. Inputs must
lie in [0, 1]. A model that learned nothing still scores the *mean-image* baseline: predict
the mean training input for every test input.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, ClassVar

import numpy as np

from ablate.errors import AblateError
from ablate.tasks.base import Baseline, Finish, Metric, Task, predict

if TYPE_CHECKING:
    from ablate.data import Dataset

#: How much of what a model learned is kept per trial (a few tens of kB compressed).
N_LATENT = 2000  # test inputs whose latent codes are kept
N_SHOWN = 10  # test inputs kept with their reconstructions
WALK = 10  # the decoded walk over a 2-d latent plane is WALK x WALK images
_EPSILON = 1e-7  # Keras clips probabilities to [ε, 1 − ε] in binary cross-entropy


class Reconstruction(Task):
    name: ClassVar[str] = "reconstruction"
    doc: ClassVar[str] = (
        "the model reproduces its input (values in [0, 1]); binary cross-entropy per value "
        "plus the model's own loss terms"
    )
    metrics: ClassVar[tuple[Metric, ...]] = (
        Metric(
            "recon_loss",
            "min",
            "binary cross-entropy of the reconstruction, mean per value",
            "BCE per value",
            low=0.0,
        ),
        Metric("kl_loss", "min", "the model's own loss terms (a VAE's weighted KL), per input"),
        Metric("loss", "min", "their sum: the loss the model is trained on", "BCE + KL"),
    )
    default_response: ClassVar[str] = "test_loss"

    def check_data(self, data: Dataset) -> None:
        for part in ("train", "test"):
            x = getattr(data, f"x_{part}")
            low, high = float(x.min()), float(x.max())
            if low < 0.0 or high > 1.0:
                raise AblateError(
                    f"x_{part} holds values from {low:g} to {high:g}; the reconstruction task's "
                    "binary cross-entropy needs values in [0, 1]. Scale the inputs (images "
                    "stored as unsigned bytes are scaled by 1/255 automatically)."
                )

    def targets(self, data: Dataset) -> tuple[np.ndarray, np.ndarray]:
        return data.x_train, data.x_test

    def output_shape(self, data: Dataset) -> tuple[int, ...]:
        return data.input_shape

    def output_hint(self, data: Dataset) -> str:
        return "a reconstruction of the input, of the input's shape"

    def compile_args(self, keras: Any, data: Dataset) -> dict[str, Any]:
        # the metric tracks the cross-entropy alone, so the model's own terms are the difference
        return {
            "loss": keras.losses.BinaryCrossentropy(),
            "metrics": [keras.metrics.BinaryCrossentropy(name="recon")],
        }

    def from_logs(self, logs: dict[str, Any], part: str) -> dict[str, float | None]:
        prefix = "" if part == "train" else "val_"
        loss, recon = logs.get(prefix + "loss"), logs.get(prefix + "recon")
        return {
            f"{part}_recon_loss": None if recon is None else float(recon),
            f"{part}_kl_loss": None if loss is None or recon is None else float(loss - recon),
            f"{part}_loss": None if loss is None else float(loss),
        }

    def finish(self, keras: Any, model: Any, data: Dataset, batch_size: int) -> Finish:
        """Test inputs and their reconstructions; with ``encoder``/``decoder`` sub-models, the
        latent means of test inputs and, for a 2-d latent space, a decoded walk over it."""
        return Finish({}, {}, _learned(keras, model, data, batch_size))

    def baselines(self, data: Dataset) -> dict[str, Baseline]:
        mean = np.clip(data.x_train.mean(axis=0, dtype=np.float64), _EPSILON, 1 - _EPSILON)
        x = data.x_test.astype(np.float64)
        bce = float(-(x * np.log(mean) + (1 - x) * np.log(1 - mean)).mean())
        what = "predicting the mean training input for every test input"
        return {"test_recon_loss": Baseline(bce, what), "test_loss": Baseline(bce, what)}


def _learned(keras: Any, model: Any, data: Dataset, batch_size: int) -> dict[str, np.ndarray]:
    x = data.x_test
    shown = x[:N_SHOWN]
    encoder = getattr(model, "encoder", None)
    decoder = getattr(model, "decoder", None)
    if encoder is None or decoder is None:
        if not _is_image(shown):
            return {}
        return {"originals": _to_bytes(shown), "reconstructions": _to_bytes(model(shown))}
    sample = x[: min(N_LATENT, len(x))]
    mu = _first_output(keras, encoder, sample, batch_size)  # (n, latent) means
    arrays: dict[str, np.ndarray] = {"latent": mu.astype(np.float16)}
    if data.y_test is not None and np.issubdtype(data.y_test.dtype, np.integer):
        arrays["labels"] = data.y_test[: len(sample)].astype(np.int32)
    if _is_image(shown):
        arrays["originals"] = _to_bytes(shown)
        arrays["reconstructions"] = _to_bytes(predict(keras, decoder, mu[:N_SHOWN], batch_size))
        if mu.shape[1] == 2:
            low, high = np.percentile(mu, [1, 99], axis=0)
            xs = np.linspace(low[0], high[0], WALK, dtype=np.float32)
            ys = np.linspace(high[1], low[1], WALK, dtype=np.float32)  # top row: highest z2
            plane = np.array([[a, b] for b in ys for a in xs], dtype=np.float32)
            arrays.update(walk=_to_bytes(predict(keras, decoder, plane, batch_size)))
            arrays.update(walk_x=xs, walk_y=ys)
    return arrays


def _first_output(keras: Any, sub: Any, x: np.ndarray, batch_size: int) -> np.ndarray:
    """The first output of a sub-model with several (an encoder's mean), batch by batch."""
    outs = []
    for i in range(0, len(x), batch_size):
        out = sub(x[i : i + batch_size], training=False)
        outs.append(keras.ops.convert_to_numpy(out[0] if isinstance(out, (list, tuple)) else out))
    return np.concatenate(outs)


def _is_image(x: np.ndarray) -> bool:
    """(n, H, W, 1) or (n, H, W, 3): something imshow can draw."""
    return x.ndim == 4 and x.shape[-1] in (1, 3)


def _to_bytes(images: Any) -> np.ndarray:
    """Images in [0, 1], (n, H, W, C) -> uint8 (n, H, W) for one channel, else (n, H, W, 3)."""
    array = np.asarray(images)
    if array.shape[-1] == 1:
        array = array[..., 0]
    pixels: np.ndarray = np.clip(np.rint(array * 255), 0, 255).astype(np.uint8)
    return pixels
