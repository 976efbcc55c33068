"""What every task declares: its metrics and their direction, its default response, baselines.

A task says what a model is trained to do and how it is judged. It declares its metrics once
(:class:`Metric`: a name, lower or higher is better, one line of doc); the result columns
(``test_<metric>`` per trial, ``train_<metric>`` and ``test_<metric>`` per epoch), the
direction of "best" and "worst", the checks of a dataset and of a model's output, and the
trivial baselines a trained model must beat all derive from that declaration. Keras is only
imported by the methods that compile, evaluate or inspect a model.
"""

from __future__ import annotations

import io
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, ClassVar, Literal

import numpy as np

from ablate.errors import AblateError

if TYPE_CHECKING:
    from ablate.data import Dataset

Goal = Literal["min", "max"]


@dataclass(frozen=True)
class Metric:
    """One measure of a trained model: recorded per epoch (train and test) and per trial (test)."""

    name: str  # columns test_<name>, train_<name>
    goal: Goal  # "min": lower is better
    doc: str
    unit: str = ""  # for axis labels
    low: float | None = None  # the values it can take (an interval outside them is flagged)
    high: float | None = None


@dataclass(frozen=True)
class Baseline:
    """What a model that learned nothing scores: a response's trivial reference value."""

    value: float
    what: str  # e.g. "predicting the mean training image"
    #: For a share of test examples (accuracy): how many examples, for an exact binomial test
    #: of whether a model beats the baseline's rate; None for other responses.
    examples: int | None = None


@dataclass(frozen=True)
class Finish:
    """What a task adds once a model is trained: more test values, details, learned arrays."""

    values: dict[str, float]  # further result columns, e.g. test_recall_3
    details: dict[str, Any]  # JSON-safe extras kept with the result (a confusion matrix)
    arrays: dict[str, np.ndarray]  # what the model learned, saved with the trial (.npz)


class Task:
    """A kind of supervised problem; subclasses declare metrics and implement the hooks."""

    name: ClassVar[str]
    doc: ClassVar[str]
    metrics: ClassVar[tuple[Metric, ...]]  # "loss" among them; result columns in this order
    default_response: ClassVar[str]

    # -- declarations and what derives from them -------------------------------------------

    def metric(self, name: str) -> Metric | None:
        return next((m for m in self.metrics if m.name == name), None)

    @property
    def result_columns(self) -> tuple[str, ...]:
        """The test values of a trial, in trials.parquet's order (extras such as per-class
        recall follow them)."""
        return tuple(f"test_{m.name}" for m in self.metrics)

    @property
    def epoch_columns(self) -> tuple[str, ...]:
        """Per-epoch values: the loss first, then the other metrics, for training then test."""
        ordered = sorted(self.metrics, key=lambda m: m.name != "loss")
        return tuple(f"{part}_{m.name}" for part in ("train", "test") for m in ordered)

    def bounds(self, column: str) -> tuple[float | None, float | None]:
        """The values one of this task's test or train columns can take (None: unbounded)."""
        for part in ("test_", "train_"):
            if column.startswith(part):
                m = self.metric(column.removeprefix(part))
                if m is not None:
                    return m.low, m.high
        return None, None

    def goal(self, column: str) -> Goal | None:
        """Whether lower ("min") or higher ("max") is better for one of this task's columns."""
        for part in ("test_", "train_"):
            if column.startswith(part):
                metric = self.metric(column[len(part) :])
                if metric is not None:
                    return metric.goal
        return None

    def is_response(self, column: str) -> bool:
        return column in self.result_columns or column == "train_loss"

    # -- data ---------------------------------------------------------------------------------

    def check_data(self, data: Dataset) -> None:
        """Refuse a dataset this task cannot learn from, naming the array and the problem."""

    def targets(self, data: Dataset) -> tuple[np.ndarray, np.ndarray]:
        """What the model is trained to output, for the training and the test set."""
        return data.y_train, data.y_test

    def output_shape(self, data: Dataset) -> tuple[int, ...]:
        """The shape of one example of the model's output (without the batch axis)."""
        raise NotImplementedError

    def check_model(self, model: Any, data: Dataset) -> None:
        """A trial's model must be a Keras model whose output fits the task (before training)."""
        import keras

        if not isinstance(model, keras.Model):
            raise AblateError(
                f"the model builder returned {type(model).__name__}, not a keras.Model; a "
                "builder must return a Keras model (see the documentation's Models page, "
                "docs/guide/models.md)."
            )
        shape = model.output_shape
        if isinstance(shape, list):
            raise AblateError(
                f"the model has {len(shape)} outputs; the {self.name} task needs one output "
                f"of shape {self.output_shape(data)} per example."
            )
        if tuple(shape[1:]) != tuple(self.output_shape(data)):
            raise AblateError(
                f"the model's output has shape {tuple(shape[1:])} per example, which does not "
                f"fit the {self.name} task: it needs {self.output_shape(data)} "
                f"({self.output_hint(data)})."
            )

    def output_hint(self, data: Dataset) -> str:
        return ""

    # -- training and evaluation --------------------------------------------------------------

    def compile_args(self, keras: Any, data: Dataset) -> dict[str, Any]:
        """``loss`` and ``metrics`` for ``model.compile``."""
        raise NotImplementedError

    def from_logs(self, logs: dict[str, Any], part: str) -> dict[str, float | None]:
        """Keras's epoch logs as result columns: ``part`` "train" reads loss, accuracy...;
        "test" reads val_loss, val_accuracy... (Keras's names are the metric names)."""
        prefix = "" if part == "train" else "val_"
        return {f"{part}_{m.name}": _float(logs.get(prefix + m.name)) for m in self.metrics}

    def finish(self, keras: Any, model: Any, data: Dataset, batch_size: int) -> Finish:
        """Further test values, details and what the model learned (after training)."""
        return Finish({}, {}, {})

    def baselines(self, data: Dataset) -> dict[str, Baseline]:
        """The trivial reference value of each response that has one."""
        return {}


def predict(keras: Any, model: Any, x: np.ndarray, batch_size: int) -> np.ndarray:
    """The model's outputs for ``x`` in inference mode, batch by batch, as one NumPy array."""
    outs = [
        keras.ops.convert_to_numpy(model(x[i : i + batch_size], training=False))
        for i in range(0, len(x), batch_size)
    ]
    return np.concatenate(outs) if outs else np.zeros((0,))


def _float(value: Any) -> float | None:
    return None if value is None else float(value)


def npz_bytes(arrays: dict[str, np.ndarray]) -> bytes | None:
    """Arrays as a compressed .npz (None when there are none); read back without pickle."""
    if not arrays:
        return None
    buffer = io.BytesIO()
    # numpy's stub: a key could be its allow_pickle keyword; ablate's output names never are
    np.savez_compressed(buffer, **arrays)  # type: ignore[arg-type]
    return buffer.getvalue()
