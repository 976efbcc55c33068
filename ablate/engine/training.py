"""One trial: build the cell's model, train it, evaluate it on the test set, record it all.

The training follows the reference: Adam with inverse-time learning-rate decay per step,
binary cross-entropy between image and reconstruction (mean over pixels) plus the model's
KL term, batch size 64, pixels in [0, 1]. A loss that turns NaN or infinite stops the trial
as ``diverged``; an exception makes it ``failed`` with its traceback. Keras is imported
only when a trial runs.
"""

from __future__ import annotations

import io
import math
import time
import traceback
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from typing import Any, Literal

import numpy as np

from ablate import backend
from ablate.config import Study, TrainingSettings
from ablate.data import Dataset
from ablate.grid import TrialSpec

Status = Literal["complete", "diverged", "failed"]


@dataclass(frozen=True)
class EpochRecord:
    """Losses after one epoch: training (running mean over the epoch) and test set."""

    epoch: int  # 1-based
    train_loss: float | None
    train_recon_loss: float | None
    train_kl_loss: float | None
    test_loss: float | None  # None when the study does not validate every epoch
    test_recon_loss: float | None
    test_kl_loss: float | None
    learning_rate: float
    train_seconds: float  # training steps only, validation excluded
    eval_seconds: float


@dataclass(frozen=True)
class TrialResult:
    """Everything one trial produced, as plain data that survives JSON."""

    status: Status
    test_recon_loss: float | None = None  # binary cross-entropy, mean over pixels
    test_kl_loss: float | None = None  # kl_weight · KL, mean over images
    test_loss: float | None = None  # their sum: the response of the reference study
    train_loss: float | None = None  # last epoch's running mean
    epochs: int = 0  # epochs completed
    history: tuple[EpochRecord, ...] = ()
    params: int | None = None  # count_params(): BatchNorm moving statistics included
    trainable_params: int | None = None
    seconds: float = 0.0  # wall time of the whole trial
    build_seconds: float = 0.0  # model build, compile and optimizer set-up
    train_seconds: float = 0.0
    eval_seconds: float = 0.0
    images_per_second: float | None = None  # training images per second of training
    backend: str = ""
    device: str = ""
    versions: dict[str, str] = field(default_factory=dict)
    error: str | None = None
    traceback: str | None = None
    outputs: bytes | None = field(default=None, repr=False)  # what the model learned (.npz)

    def to_dict(self) -> dict[str, Any]:
        """JSON-safe: non-finite floats become None (the status says what happened).

        ``outputs`` is left out: the storage keeps it apart (see :mod:`ablate.storage`).
        """
        return _finite({k: v for k, v in asdict(self).items() if k != "outputs"})

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> TrialResult:
        known = {k: v for k, v in d.items() if k in cls.__dataclass_fields__}
        known["history"] = tuple(EpochRecord(**e) for e in d.get("history", ()))
        return cls(**known)


EpochCallback = Callable[[EpochRecord], None]


def train_trial(
    study: Study,
    spec: TrialSpec,
    dataset: Dataset,
    on_epoch: EpochCallback | None = None,
    callbacks: Sequence[Any] = (),
) -> TrialResult:
    """Train and evaluate one (cell, replicate); never raises for a failing trial.

    ``on_epoch`` is called after every epoch (progress reports, heartbeats). ``callbacks``:
    further Keras callbacks for ``fit`` (profilers, benchmarks), after ablate's own.
    """
    start = time.perf_counter()
    history: list[EpochRecord] = []
    meta: dict[str, Any] = {}
    try:
        return _train(study, spec, dataset, on_epoch, callbacks, history, meta, start)
    except Exception as err:
        return TrialResult(
            status="failed",
            epochs=len(history),
            history=tuple(history),
            seconds=time.perf_counter() - start,
            error=f"{type(err).__name__}: {err}",
            traceback=traceback.format_exc(),
            **meta,
        )


def _train(
    study: Study,
    spec: TrialSpec,
    dataset: Dataset,
    on_epoch: EpochCallback | None,
    callbacks: Sequence[Any],
    history: list[EpochRecord],
    meta: dict[str, Any],
    start: float,
) -> TrialResult:
    keras = backend.import_keras()
    meta.update(backend=backend.backend_name(), versions=backend.versions())
    settings = study.training
    model, optimizer = prepare_model(keras, study, spec, dataset.input_shape)
    meta.update(
        params=int(model.count_params()),
        trainable_params=int(sum(math.prod(w.shape) for w in model.trainable_weights)),
        device=backend.describe_device(),
    )
    build_seconds = time.perf_counter() - start

    monitor = _monitor(keras, optimizer, history, on_epoch)
    validation = (dataset.x_test, dataset.x_test) if settings.validate_each_epoch else None
    model.fit(
        **_training_batches(dataset.x_train, settings.batch_size, spec.seed),
        epochs=settings.epochs,
        validation_data=validation,
        validation_batch_size=settings.eval_batch_size,
        verbose=0,
        callbacks=[monitor, *callbacks],
    )
    train_seconds = sum(e.train_seconds for e in history)
    eval_seconds = sum(e.eval_seconds for e in history)
    last = history[-1] if history else None
    common = {
        "epochs": len(history),
        "history": tuple(history),
        "build_seconds": build_seconds,
        "train_seconds": train_seconds,
        "images_per_second": (
            len(dataset.x_train) * len(history) / train_seconds if train_seconds > 0 else None
        ),
        "train_loss": last.train_loss if last else None,
        **meta,
    }
    if last is None or not _all_finite(last):
        return TrialResult(
            status="diverged",
            error=f"the loss became NaN or infinite in epoch {len(history)}",
            seconds=time.perf_counter() - start,
            eval_seconds=eval_seconds,
            **common,
        )
    if last.test_loss is None:  # not validated each epoch: evaluate once now
        t = time.perf_counter()
        logs = model.evaluate(
            dataset.x_test,
            dataset.x_test,
            batch_size=settings.eval_batch_size,
            verbose=0,
            return_dict=True,
        )
        eval_seconds += time.perf_counter() - t
        test_loss, test_recon = float(logs["loss"]), float(logs["recon"])
    else:
        test_loss, test_recon = last.test_loss, last.test_recon_loss
    if not (math.isfinite(test_loss) and math.isfinite(test_recon)):
        return TrialResult(
            status="diverged",
            error="the test loss is NaN or infinite",
            seconds=time.perf_counter() - start,
            eval_seconds=eval_seconds,
            **common,
        )
    outputs = None
    if settings.save_outputs:
        t = time.perf_counter()
        outputs = model_outputs(keras, model, dataset, settings.eval_batch_size)
        eval_seconds += time.perf_counter() - t
    return TrialResult(
        status="complete",
        test_recon_loss=test_recon,
        test_kl_loss=test_loss - test_recon,
        test_loss=test_loss,
        seconds=time.perf_counter() - start,
        eval_seconds=eval_seconds,
        outputs=outputs,
        **common,
    )


def _training_batches(x: np.ndarray, batch_size: int, seed: int) -> dict[str, Any]:
    """``fit``'s training data: the images as input and target, reshuffled every epoch.

    Under TensorFlow, a tf.data pipeline that never ends, with ``steps_per_epoch``, so that
    Keras keeps one iterator for the whole trial: with NumPy arrays it builds a new one every
    epoch, and on the development machine the process then stood idle for about 5 s at most
    epoch starts (see bench/throughput.py and the README). This is the data pipeline, not the
    model: models stay backend-agnostic. The images become a tensor once and serve as input
    and target alike (Keras would hold two copies). Same maths as ``fit(x, x, shuffle=True)``:
    a fresh permutation each epoch, the last batch of an epoch partial when ``batch_size``
    does not divide the images. Other backends take the NumPy arrays as they are.
    """
    if backend.backend_name() != "tensorflow":
        return {"x": x, "y": x, "batch_size": batch_size, "shuffle": True}
    import tensorflow as tf

    images = tf.constant(x)  # (n, 28, 28, 1) float32
    n = len(x)
    options = tf.data.Options()
    options.experimental_optimization.apply_default_optimizations = False  # as Keras does
    batches = (
        tf.data.Dataset.range(n)
        .shuffle(n, seed=seed, reshuffle_each_iteration=True)
        .batch(batch_size)  # before repeat: every epoch is one permutation
        .repeat()
        .map(lambda i: (tf.gather(images, i),) * 2, num_parallel_calls=tf.data.AUTOTUNE)
        .prefetch(tf.data.AUTOTUNE)
        .with_options(options)
    )
    # shuffle=False: the pipeline shuffles; Keras would only warn that it cannot
    return {"x": batches, "steps_per_epoch": math.ceil(n / batch_size), "shuffle": False}


#: How much of what a model learned is kept per trial (a few tens of kB compressed).
N_LATENT = 2000  # test digits whose latent codes are kept
N_SHOWN = 10  # test digits kept with their reconstructions
WALK = 10  # the decoded walk over the latent plane is WALK x WALK images


def model_outputs(keras: Any, model: Any, dataset: Dataset, batch_size: int) -> bytes | None:
    """The trained model's view of the test set, small enough to keep with every trial.

    Needs ``encoder`` (image -> (mean, log variance)) and ``decoder`` (code -> image)
    sub-models. Keeps, as a compressed .npz: the latent means of the first test digits and
    their labels; a few test digits with their reconstructions (decoded from the mean); and,
    for a 2-d latent space, a WALK x WALK grid of images decoded across the plane spanned by
    the test codes (1st to 99th percentile).
    """
    encoder = getattr(model, "encoder", None)
    decoder = getattr(model, "decoder", None)
    if encoder is None or decoder is None:
        return None

    def run(sub: Any, x: np.ndarray) -> np.ndarray:
        outs = [sub(x[i : i + batch_size], training=False) for i in range(0, len(x), batch_size)]
        first = [o[0] if isinstance(o, (list, tuple)) else o for o in outs]
        return np.concatenate([keras.ops.convert_to_numpy(o) for o in first])

    x = dataset.x_test[: min(N_LATENT, len(dataset.x_test))]
    mu = run(encoder, x)  # (n, latent) means
    shown = x[:N_SHOWN]
    arrays: dict[str, np.ndarray] = {
        "latent": mu.astype(np.float16),
        "labels": dataset.y_test[: len(x)].astype(np.uint8),
        "originals": _to_bytes(shown),
        "reconstructions": _to_bytes(run(decoder, mu[:N_SHOWN])),
    }
    if mu.shape[1] == 2:
        low, high = np.percentile(mu, [1, 99], axis=0)
        xs = np.linspace(low[0], high[0], WALK, dtype=np.float32)
        ys = np.linspace(high[1], low[1], WALK, dtype=np.float32)  # top row: highest z2
        plane = np.array([[a, b] for b in ys for a in xs], dtype=np.float32)
        arrays.update(walk=_to_bytes(run(decoder, plane)), walk_x=xs, walk_y=ys)
    buffer = io.BytesIO()
    np.savez_compressed(buffer, **arrays)
    return buffer.getvalue()


def _to_bytes(images: np.ndarray) -> np.ndarray:
    """Images in [0, 1], (n, 28, 28, 1) -> uint8 (n, 28, 28)."""
    return np.clip(np.rint(np.asarray(images)[..., 0] * 255), 0, 255).astype(np.uint8)


def prepare_model(
    keras: Any, study: Study, spec: TrialSpec, input_shape: tuple[int, ...]
) -> tuple[Any, Any]:
    """The cell's model, seeded, built and compiled for training, and its optimizer.

    The loss is the model's binary cross-entropy plus its own terms (the KL); the metric
    ``recon`` tracks the cross-entropy alone, so the KL term is their difference. No XLA:
    on CPUs it was measured slower for this model (and Keras's "auto" agrees there).
    """
    keras.utils.set_random_seed(spec.seed)  # weights, dropout masks and shuffling
    build = study.model.spec.load()
    kwargs = {**study.model.builder_kwargs(), **spec.cell.as_dict()}
    model = build(input_shape=input_shape, seed=spec.seed, **kwargs)
    optimizer = make_optimizer(keras, study.training)
    model.compile(
        optimizer=optimizer,
        loss=keras.losses.BinaryCrossentropy(),
        metrics=[keras.metrics.BinaryCrossentropy(name="recon")],
        jit_compile=False,
    )
    # Creating the optimizer's slots now saves tracing the training step twice.
    optimizer.build(model.trainable_variables)
    return model, optimizer


def make_optimizer(keras: Any, settings: TrainingSettings) -> Any:
    """The study's optimizer with inverse-time decay per step: lr_t = lr / (1 + d·t)."""
    rate = settings.decay_rate()
    learning_rate: Any = settings.learning_rate
    if rate > 0:
        learning_rate = keras.optimizers.schedules.InverseTimeDecay(
            settings.learning_rate, decay_steps=1, decay_rate=rate
        )
    classes = {
        "adam": keras.optimizers.Adam,
        "adamw": keras.optimizers.AdamW,
        "rmsprop": keras.optimizers.RMSprop,
        "sgd": keras.optimizers.SGD,
    }
    return classes[settings.optimizer](learning_rate=learning_rate)


def _monitor(
    keras: Any, optimizer: Any, history: list[EpochRecord], on_epoch: EpochCallback | None
) -> Any:
    """A Keras callback that records each epoch and stops training when the loss diverges."""

    class Monitor(keras.callbacks.Callback):
        def on_epoch_begin(self, epoch: int, logs: Any = None) -> None:
            self._epoch_start = time.perf_counter()
            self._eval_seconds = 0.0

        def on_test_begin(self, logs: Any = None) -> None:
            self._eval_start = time.perf_counter()

        def on_test_end(self, logs: Any = None) -> None:
            self._eval_seconds += time.perf_counter() - self._eval_start

        def on_epoch_end(self, epoch: int, logs: Any = None) -> None:
            logs = logs or {}
            elapsed = time.perf_counter() - self._epoch_start
            record = EpochRecord(
                epoch=epoch + 1,
                train_loss=_float(logs.get("loss")),
                train_recon_loss=_float(logs.get("recon")),
                train_kl_loss=_difference(logs.get("loss"), logs.get("recon")),
                test_loss=_float(logs.get("val_loss")),
                test_recon_loss=_float(logs.get("val_recon")),
                test_kl_loss=_difference(logs.get("val_loss"), logs.get("val_recon")),
                learning_rate=float(keras.ops.convert_to_numpy(optimizer.learning_rate)),
                train_seconds=elapsed - self._eval_seconds,
                eval_seconds=self._eval_seconds,
            )
            history.append(record)
            if not _all_finite(record):
                self.model.stop_training = True
            if on_epoch is not None:
                on_epoch(record)

    return Monitor()


def _float(value: Any) -> float | None:
    return None if value is None else float(value)


def _difference(total: Any, part: Any) -> float | None:
    return None if total is None or part is None else float(total) - float(part)


def _all_finite(record: EpochRecord) -> bool:
    values = (record.train_loss, record.test_loss)
    return all(v is None or math.isfinite(v) for v in values) and record.train_loss is not None


def _finite(value: Any) -> Any:
    """Replace NaN and infinities, anywhere in nested data, with None."""
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, dict):
        return {k: _finite(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_finite(v) for v in value]
    return value
