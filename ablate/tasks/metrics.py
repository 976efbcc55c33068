"""Keras metrics that Keras lacks, in backend-agnostic Keras 3 (``keras.ops`` only)."""

from __future__ import annotations

from typing import Any

import keras
from keras import ops


class BalancedAccuracy(keras.metrics.Metric):
    """Unweighted mean of the per-class recalls, over the classes present in the labels.

    Accumulates the confusion matrix (K, K) of every batch (rows: true class, columns:
    predicted class = argmax of the output), so the result is exact over an epoch, not an
    average of batch values. Classes with no example among the labels seen are left out of
    the mean, as scikit-learn's ``balanced_accuracy_score`` does.
    """

    def __init__(self, n_classes: int, name: str = "balanced_accuracy", **kwargs: Any) -> None:
        super().__init__(name=name, **kwargs)
        self.n_classes = n_classes
        self.confusion = self.add_variable(
            shape=(n_classes, n_classes), initializer="zeros", name="confusion"
        )

    def update_state(self, y_true: Any, y_pred: Any, sample_weight: Any = None) -> None:
        true = ops.one_hot(ops.cast(ops.reshape(y_true, (-1,)), "int32"), self.n_classes)
        pred = ops.one_hot(ops.argmax(y_pred, axis=-1), self.n_classes)  # (batch, K) each
        self.confusion.assign_add(ops.matmul(ops.transpose(true), pred))  # (K, K)

    def result(self) -> Any:
        support = ops.sum(self.confusion, axis=1)  # examples of each true class
        recall = ops.diagonal(self.confusion) / ops.maximum(support, 1.0)
        present = ops.cast(support > 0, recall.dtype)
        return ops.sum(recall * present) / ops.maximum(ops.sum(present), 1.0)

    def reset_state(self) -> None:
        self.confusion.assign(ops.zeros((self.n_classes, self.n_classes)))

    def get_config(self) -> dict[str, Any]:
        return {**super().get_config(), "n_classes": self.n_classes}
