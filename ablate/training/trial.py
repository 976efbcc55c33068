"""One trial: build the cell's model, train it, evaluate it on the test set, record it all.

The study's task (:mod:`ablate.tasks`) says what the model is trained to output, with which
loss and metrics, and what is kept of it afterwards; the optimizer follows the study's
training settings (by default the reference: Adam with inverse-time learning-rate decay per
step). A model that is not a Keras model, or whose output does not fit the task, fails the
trial before training. A loss that turns NaN or infinite stops the trial as ``diverged``;
an exception makes it ``failed`` with its traceback. Keras is imported only when a trial
runs.
"""

from __future__ import annotations

import math
import time
import traceback
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from ablate.data import Dataset
from ablate.errors import AblateError
from ablate.models.explain import attention_arrays
from ablate.study.grid import TrialSpec
from ablate.study.settings import Study, TrainingSettings
from ablate.tasks.base import npz_bytes
from ablate.training import backend, order
from ablate.training.failures import Phase, describe_exception, is_transient
from ablate.training.records import EpochRecord, TrialResult

EpochCallback = Callable[[EpochRecord], None]
ProgressCallback = Callable[[int], None]  # training examples seen since the last call

PROGRESS_EVERY = 2.0  # seconds between progress reports within an epoch


def train_trial(
    study: Study,
    spec: TrialSpec,
    dataset: Dataset,
    on_epoch: EpochCallback | None = None,
    callbacks: Sequence[Any] = (),
    on_progress: ProgressCallback | None = None,
) -> TrialResult:
    """Train and evaluate one (cell, replicate); never raises for a failing trial.

    ``on_epoch`` is called after every epoch (progress reports, heartbeats), ``on_progress``
    every few seconds within an epoch with the examples trained since. ``callbacks``:
    further Keras callbacks for ``fit`` (profilers, benchmarks), after ablate's own.
    """
    attempt = Attempt(start=time.perf_counter())
    try:
        return _train(study, spec, dataset, on_epoch, on_progress, callbacks, attempt)
    except Exception as err:
        error = str(err) if isinstance(err, AblateError) else describe_exception(err)
        return TrialResult(
            status="failed",
            epochs=len(attempt.history),
            history=tuple(attempt.history),
            seconds=time.perf_counter() - attempt.start,
            error=error,
            error_type=type(err).__name__,
            transient=is_transient(err, attempt.phase),
            traceback=traceback.format_exc(),
            **attempt.meta,
        )


@dataclass
class Attempt:
    """What a trial has done so far, kept for its record if it fails: its epochs, what is
    known of its model, and whether it was still being built or already training."""

    start: float
    history: list[EpochRecord] = field(default_factory=list)
    meta: dict[str, Any] = field(default_factory=dict)
    phase: Phase = "build"


def _train(
    study: Study,
    spec: TrialSpec,
    dataset: Dataset,
    on_epoch: EpochCallback | None,
    on_progress: ProgressCallback | None,
    callbacks: Sequence[Any],
    attempt: Attempt,
) -> TrialResult:
    keras = backend.import_keras()
    history, meta = attempt.history, attempt.meta
    meta.update(backend=backend.backend_name(), versions=backend.versions())
    settings, task = study.training, study.task_spec
    model, optimizer = prepare_model(keras, study, spec, dataset)
    meta.update(
        params=int(model.count_params()),
        trainable_params=int(sum(math.prod(w.shape) for w in model.trainable_weights)),
        device=backend.describe_device(),
    )
    build_seconds = time.perf_counter() - attempt.start
    attempt.phase = "train"
    y_train, y_test = task.targets(dataset)
    monitor = _monitor(keras, study, optimizer, history, on_epoch, on_progress)
    model.fit(
        **_training_batches(
            dataset.x_train, y_train, settings.batch_size, spec.seed_of("data_order")
        ),
        epochs=settings.epochs,
        validation_data=(dataset.x_test, y_test) if settings.validate_each_epoch else None,
        validation_batch_size=settings.eval_batch_size,
        verbose=0,
        callbacks=[monitor, *callbacks],
    )
    train_seconds = sum(e.train_seconds for e in history)
    common: dict[str, Any] = {
        "epochs": len(history), "history": tuple(history), "build_seconds": build_seconds,
        "train_seconds": train_seconds,
        "images_per_second": (
            len(dataset.x_train) * len(history) / train_seconds if train_seconds > 0 else None
        ),
        **meta,
    }  # fmt: skip
    return finish_trial(keras, study, model, dataset, y_test, attempt, common)


def finish_trial(
    keras: Any,
    study: Study,
    model: Any,
    dataset: Dataset,
    y_test: np.ndarray,
    attempt: Attempt,
    common: dict[str, Any],
) -> TrialResult:
    """The trained model's result: diverged if a loss is not finite, else its test values,
    what the task adds and, if kept, what it learned."""
    settings, task, history = study.training, study.task_spec, attempt.history
    eval_seconds = sum(e.eval_seconds for e in history)
    last = history[-1] if history else None
    train_loss = last.get("train_loss") if last else None

    def diverged(why: str, seconds: float) -> TrialResult:
        return TrialResult(status="diverged", values={"train_loss": train_loss}, error=why,
                           seconds=time.perf_counter() - attempt.start, eval_seconds=seconds,
                           **common)  # fmt: skip

    if last is None or not all_finite(last):
        return diverged(f"the loss became NaN or infinite in epoch {len(history)}", eval_seconds)
    t = time.perf_counter()
    if settings.validate_each_epoch:
        test = {c: last.get(c) for c in task.result_columns}
    else:  # evaluate once now
        logs = model.evaluate(dataset.x_test, y_test, batch_size=settings.eval_batch_size,
                              verbose=0, return_dict=True)  # fmt: skip
        test = task.from_logs({f"val_{k}": v for k, v in logs.items()}, "test")
    if not all(v is not None and math.isfinite(v) for v in test.values()):
        return diverged("a test value is NaN or infinite", eval_seconds + time.perf_counter() - t)
    finish = task.finish(keras, model, dataset, settings.eval_batch_size)
    arrays = finish.arrays
    if settings.save_outputs:  # what the model attended to, only where it is kept
        arrays = {**arrays, **attention_arrays(keras, model, dataset, settings.eval_batch_size)}
    return TrialResult(
        status="complete",
        values={**test, **finish.values, "train_loss": train_loss},
        details=finish.details,
        seconds=time.perf_counter() - attempt.start,
        eval_seconds=eval_seconds + time.perf_counter() - t,
        outputs=npz_bytes(arrays) if settings.save_outputs else None,
        **common,
    )


def _training_batches(x: np.ndarray, y: np.ndarray, batch_size: int, seed: int) -> dict[str, Any]:
    """``fit``'s training data: inputs and targets, reshuffled every epoch.

    Under TensorFlow, a tf.data pipeline that never ends, with ``steps_per_epoch``, so that
    Keras keeps one iterator for the whole trial: with NumPy arrays it builds a new one every
    epoch, and on the development machine the process then stood idle for about 5 s at most
    epoch starts (see bench/throughput.py and docs/performance.md). This is the data pipeline,
    not the model: models stay backend-agnostic. When the targets are the inputs (reconstruction)
    they become one tensor serving as both (Keras would hold two copies). Same maths as
    ``fit(x, y, shuffle=True)``: a fresh permutation each epoch, the last batch of an epoch
    partial when ``batch_size`` does not divide the examples. Other backends get the batches of
    :mod:`ablate.training.order`, the order fused trials see too.
    """
    if backend.backend_name() != "tensorflow":  # ablate's own order, as fused trials see it
        return {
            "x": order.batch_stream(x, y, seed, batch_size),
            "steps_per_epoch": order.steps_per_epoch(len(x), batch_size),
            "shuffle": False,
        }
    import tensorflow as tf

    inputs = tf.constant(x)  # (n, ...) float32
    targets = inputs if y is x else tf.constant(y)
    n = len(x)
    options = tf.data.Options()
    options.experimental_optimization.apply_default_optimizations = False  # as Keras does
    batches = (
        tf.data.Dataset.range(n)
        .shuffle(n, seed=seed, reshuffle_each_iteration=True)
        .batch(batch_size)  # before repeat: every epoch is one permutation
        .repeat()
        .map(
            lambda i: (tf.gather(inputs, i), tf.gather(targets, i)),
            num_parallel_calls=tf.data.AUTOTUNE,
        )
        .prefetch(tf.data.AUTOTUNE)
        .with_options(options)
    )
    # shuffle=False: the pipeline shuffles; Keras would only warn that it cannot
    return {"x": batches, "steps_per_epoch": math.ceil(n / batch_size), "shuffle": False}


def prepare_model(keras: Any, study: Study, spec: TrialSpec, dataset: Dataset) -> tuple[Any, Any]:
    """The cell's model, seeded, built, checked against the task and compiled; its optimizer.

    XLA per ``training.jit_compile`` ("auto": see :func:`use_xla`), and
    ``training.steps_per_execution`` steps per call into the backend.
    """
    model = build_model(study, spec, dataset)
    optimizer = make_optimizer(keras, study.training)
    model.compile(
        optimizer=optimizer,
        jit_compile=use_xla(study.training),
        steps_per_execution=steps_per_call(study.training, len(dataset.x_train)),
        **study.task_spec.compile_args(keras, dataset),
    )
    # Creating the optimizer's slots now saves tracing the training step twice.
    optimizer.build(model.trainable_variables)
    return model, optimizer


def build_model(study: Study, spec: TrialSpec, dataset: Dataset) -> Any:
    """The cell's model, seeded (weights, dropout masks, shuffling), built for the data's
    inputs and checked against the task (a Keras model whose output fits it)."""
    keras = backend.import_keras()
    keras.utils.set_random_seed(spec.seed_of("init"))
    model = study.model.spec.build(
        input_shape=dataset.input_shape,
        task=study.task,
        n_classes=dataset.n_classes if study.task == "classification" else None,
        seed=spec.seed_of("noise"),
        **{**study.model.builder_kwargs(), **spec.cell.as_dict()},
    )
    study.task_spec.check_model(model, dataset)
    if spec.streams:
        reseed_noise(keras, model, spec.seed_of("noise"))
    return model


def reseed_noise(keras: Any, model: Any, seed: int) -> None:
    """Point every seed generator of the model (dropout masks, sampling noise) at the noise
    seed, so that with seed streams the noise is the noise stream's alone: a layer's generator
    otherwise draws its starting state from the global seed set for the initialisation. The
    k-th generator gets ``seed + k``, as distinct generators must."""
    states = [v for v in model.variables if v.path.endswith("seed_generator_state")]
    for k, state in enumerate(states):
        state.assign(keras.ops.convert_to_tensor([(seed + k) % 2**31, 0], state.dtype))
    keras.utils.set_random_seed(seed)  # what the backend draws from its global state


def use_xla(settings: TrainingSettings) -> bool:
    """Whether the training step is compiled with XLA (Keras imported).

    "auto": on a GPU under JAX or TensorFlow, where one small step is otherwise many tiny
    kernel launches (under JAX without XLA, every operation is dispatched on its own); off on
    CPUs, where it was measured slower for the reference model, and under PyTorch (whose
    ``torch.compile`` is another matter).
    """
    if settings.jit_compile != "auto":
        return bool(settings.jit_compile)
    on_gpu = backend.describe_device().startswith("gpu")
    return on_gpu and backend.backend_name() in ("jax", "tensorflow")


def steps_per_call(settings: TrainingSettings, n_train: int) -> int:
    """Training steps per call into the backend (Keras's ``steps_per_execution``).

    Under JAX and PyTorch a call ends with the epoch's data, so the study's number applies.
    TensorFlow's call runs whole groups from ablate's never-ending pipeline and would take
    steps from the next epoch: there it is the largest divisor of the steps per epoch not above
    the study's number, so that every epoch stays one permutation.
    """
    wanted = settings.steps_per_execution
    if wanted == 1 or backend.backend_name() != "tensorflow":
        return wanted
    steps = math.ceil(n_train / settings.batch_size)
    return max(k for k in range(1, min(wanted, steps) + 1) if steps % k == 0)


def learning_rate_at(settings: TrainingSettings, step: int) -> float:
    """The learning rate after ``step`` training steps (:func:`make_optimizer`'s schedule)."""
    return settings.learning_rate / (1.0 + settings.decay_rate() * step)


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
    keras: Any,
    study: Study,
    optimizer: Any,
    history: list[EpochRecord],
    on_epoch: EpochCallback | None,
    on_progress: ProgressCallback | None,
) -> Any:
    """A Keras callback that records each epoch, reports progress within epochs, and stops
    training when the loss diverges."""
    task = study.task_spec
    batch_size = study.training.batch_size

    class Monitor(keras.callbacks.Callback):
        def on_train_begin(self, logs: Any = None) -> None:
            self._reported = time.perf_counter()
            self._unreported = 0

        def on_epoch_begin(self, epoch: int, logs: Any = None) -> None:
            self._epoch_start = time.perf_counter()
            self._eval_seconds = 0.0
            self._steps = 0  # training steps of this epoch reported so far

        def on_train_batch_end(self, batch: int, logs: Any = None) -> None:
            if on_progress is None:
                return
            # ``batch``: the epoch's last step done (several per call with steps_per_execution)
            self._unreported += (batch + 1 - self._steps) * batch_size  # last batch: smaller
            self._steps = batch + 1
            if time.perf_counter() - self._reported >= PROGRESS_EVERY:
                on_progress(self._unreported)
                self._unreported, self._reported = 0, time.perf_counter()

        def on_test_begin(self, logs: Any = None) -> None:
            self._eval_start = time.perf_counter()

        def on_test_end(self, logs: Any = None) -> None:
            self._eval_seconds += time.perf_counter() - self._eval_start

        def on_epoch_end(self, epoch: int, logs: Any = None) -> None:
            logs = logs or {}
            elapsed = time.perf_counter() - self._epoch_start
            validated = any(k.startswith("val_") for k in logs)
            values = task.from_logs(logs, "train")
            values.update(task.from_logs(logs, "test") if validated else {})
            record = EpochRecord(
                epoch=epoch + 1,
                values=values,
                learning_rate=float(keras.ops.convert_to_numpy(optimizer.learning_rate)),
                train_seconds=elapsed - self._eval_seconds,
                eval_seconds=self._eval_seconds,
            )
            history.append(record)
            self._unreported = 0  # on_epoch reports the whole epoch
            if not all_finite(record):
                self.model.stop_training = True
            if on_epoch is not None:
                on_epoch(record)

    return Monitor()


def all_finite(record: EpochRecord) -> bool:
    """The training loss, and the test loss if measured, are finite numbers."""
    train, test = record.get("train_loss"), record.get("test_loss")
    return train is not None and math.isfinite(train) and (test is None or math.isfinite(test))
