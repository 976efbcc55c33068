"""Classification: integer labels 0 … K−1, softmax outputs, cross-entropy loss.

Every trial records its test loss, accuracy and balanced accuracy (the unweighted mean of
the per-class recalls, which speech-emotion work calls UA recall), the recall of every
class (``test_recall_<k>``) and its confusion matrix. A model that learned nothing scores
the chance levels: the majority class's share for accuracy, 1/K for balanced accuracy, and
the cross-entropy of the training set's class frequencies for the loss.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, ClassVar

import numpy as np

from ablate.errors import AblateError
from ablate.tasks.base import Baseline, Finish, Goal, Metric, Task, predict

if TYPE_CHECKING:
    from ablate.data import Dataset

_EPSILON = 1e-7  # Keras clips probabilities to [ε, 1 − ε] in cross-entropy


class Classification(Task):
    name: ClassVar[str] = "classification"
    doc: ClassVar[str] = (
        "integer labels 0 … K−1; the model outputs K class probabilities (softmax); "
        "cross-entropy loss"
    )
    metrics: ClassVar[tuple[Metric, ...]] = (
        Metric("loss", "min", "cross-entropy of the true class, mean per example", "nats", 0.0),
        Metric(
            "accuracy",
            "max",
            "share of examples whose most probable class is the true one",
            low=0.0,
            high=1.0,
        ),
        Metric(
            "balanced_accuracy",
            "max",
            "unweighted mean of the per-class recalls (UA recall): chance is 1/K",
            low=0.0,
            high=1.0,
        ),
    )
    default_response: ClassVar[str] = "test_accuracy"

    def goal(self, column: str) -> Goal | None:
        if column.startswith("test_recall_"):
            return "max"
        return super().goal(column)

    def is_response(self, column: str) -> bool:
        suffix = column.removeprefix("test_recall_")
        return super().is_response(column) or (column != suffix and suffix.isdigit())

    def check_data(self, data: Dataset) -> None:
        for part in ("train", "test"):
            name = f"y_{part}"
            y = getattr(data, name)
            if y is None:
                raise AblateError(f"the dataset has no {name}; classification needs labels.")
            if y.ndim != 1:
                raise AblateError(
                    f"{name} has shape {y.shape}; classification needs one integer label per "
                    f"example, shape ({len(y)},)."
                )
            integral = np.issubdtype(y.dtype, np.integer) or (
                np.issubdtype(y.dtype, np.floating)
                and np.all(np.isfinite(y))
                and np.all(y == np.round(y))
            )
            if not integral or np.issubdtype(y.dtype, np.bool_):
                raise AblateError(
                    f"{name} holds {y.dtype} values that are not whole numbers; classification "
                    "needs integer class labels 0, 1, … K−1."
                )
            if len(y) and y.min() < 0:
                raise AblateError(
                    f"{name} holds the label {int(y.min())}; classification needs integer "
                    "class labels counted from 0 (0, 1, … K−1)."
                )
        k = data.n_classes
        if k is None or k < 2:
            raise AblateError(
                "the labels name fewer than 2 classes; classification needs at least two."
            )
        if data.class_names is not None:
            top = int(max(data.y_train.max(), data.y_test.max()))
            if top >= len(data.class_names):
                raise AblateError(
                    f"a label is {top} but the dataset names only {len(data.class_names)} "
                    "classes (class_names); labels must lie in 0 … K−1."
                )

    def output_shape(self, data: Dataset) -> tuple[int, ...]:
        assert data.n_classes is not None
        return (data.n_classes,)

    def output_hint(self, data: Dataset) -> str:
        return f"one probability per class; end the model with Dense({data.n_classes}, softmax)"

    def compile_args(self, keras: Any, data: Dataset) -> dict[str, Any]:
        from ablate.tasks.metrics import BalancedAccuracy

        assert data.n_classes is not None
        return {
            "loss": keras.losses.SparseCategoricalCrossentropy(),
            "metrics": [
                keras.metrics.SparseCategoricalAccuracy(name="accuracy"),
                BalancedAccuracy(data.n_classes, name="balanced_accuracy"),
            ],
        }

    def finish(self, keras: Any, model: Any, data: Dataset, batch_size: int) -> Finish:
        """The confusion matrix of the test set, the recall of every class."""
        assert data.n_classes is not None
        probabilities = predict(keras, model, data.x_test, batch_size)
        confusion = confusion_matrix(data.y_test, probabilities.argmax(axis=-1), data.n_classes)
        recall = per_class_recall(confusion)
        values = {f"test_recall_{k}": float(r) for k, r in enumerate(recall) if np.isfinite(r)}
        arrays = {"confusion": confusion, "recall": recall}
        if data.class_names is not None:
            arrays["class_names"] = np.array(data.class_names, dtype=str)
        return Finish(values, {"confusion": confusion.tolist()}, arrays)

    def baselines(self, data: Dataset) -> dict[str, Baseline]:
        k = data.n_classes
        assert k is not None
        counts = np.bincount(data.y_train.astype(np.int64), minlength=k)
        prior = np.clip(counts / counts.sum(), _EPSILON, 1.0)
        majority = int(counts.argmax())
        y = data.y_test.astype(np.int64)
        return {
            "test_accuracy": Baseline(
                float((y == majority).mean()),
                f"always predicting the majority class ({majority})",
                examples=len(y),
            ),
            "test_balanced_accuracy": Baseline(1.0 / k, f"chance with {k} classes (1/{k})"),
            "test_loss": Baseline(
                float(-np.log(prior[y]).mean()), "predicting the training class frequencies"
            ),
        }


def confusion_matrix(y_true: np.ndarray, y_pred: np.ndarray, k: int) -> np.ndarray:
    """Counts (k, k): row = true class, column = predicted class."""
    flat = y_true.astype(np.int64) * k + y_pred.astype(np.int64)
    return np.bincount(flat, minlength=k * k).reshape(k, k)


def per_class_recall(confusion: np.ndarray) -> np.ndarray:
    """Diagonal over row sums: NaN for a class absent from the test set."""
    support = confusion.sum(axis=1)
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(support > 0, np.diag(confusion) / support, np.nan)
