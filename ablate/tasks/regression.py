"""Regression: numeric targets, mean squared error loss, judged by MSE, MAE and R².

A model that learned nothing predicts the training targets' mean: its test MSE and MAE are
the baselines, and its R² is about 0.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, ClassVar

import numpy as np

from ablate.data.dataset import check_finite
from ablate.errors import AblateError
from ablate.tasks.base import Baseline, Finish, Metric, Task, predict

if TYPE_CHECKING:
    from ablate.data import Dataset

N_POINTS = 2000  # test examples whose predictions are kept for the charts


class Regression(Task):
    name: ClassVar[str] = "regression"
    doc: ClassVar[str] = "numeric targets (one or several per example); mean squared error loss"
    metrics: ClassVar[tuple[Metric, ...]] = (
        Metric("loss", "min", "mean squared error", "squared target units", low=0.0),
        Metric("mae", "min", "mean absolute error", "target units", low=0.0),
        Metric(
            "r2", "max", "coefficient of determination on the test set (1 is perfect)", high=1.0
        ),
    )
    default_response: ClassVar[str] = "test_loss"

    def check_data(self, data: Dataset) -> None:
        for part in ("train", "test"):
            name = f"y_{part}"
            y = getattr(data, name)
            if y is None:
                raise AblateError(f"the dataset has no {name}; regression needs targets.")
            check_finite(name, y)
            if y.ndim > 2:
                raise AblateError(
                    f"{name} has shape {y.shape}; regression needs one number or a vector of "
                    "numbers per example."
                )

    def targets(self, data: Dataset) -> tuple[np.ndarray, np.ndarray]:
        """Targets as (n, outputs) float32: Keras's R² metric needs a column per output."""
        train, test = (np.asarray(y, dtype=np.float32) for y in (data.y_train, data.y_test))
        return train.reshape(len(train), -1), test.reshape(len(test), -1)

    def output_shape(self, data: Dataset) -> tuple[int, ...]:
        return (1 if data.y_train.ndim == 1 else data.y_train.shape[1],)

    def output_hint(self, data: Dataset) -> str:
        return "one number per target; end the model with a linear Dense layer"

    def compile_args(self, keras: Any, data: Dataset) -> dict[str, Any]:
        return {
            "loss": keras.losses.MeanSquaredError(),
            "metrics": [
                keras.metrics.MeanAbsoluteError(name="mae"),
                keras.metrics.R2Score(name="r2"),
            ],
        }

    def finish(self, keras: Any, model: Any, data: Dataset, batch_size: int) -> Finish:
        """True and predicted targets of the first test examples (the predicted-vs-true chart)."""
        n = min(N_POINTS, len(data.x_test))
        predicted = predict(keras, model, data.x_test[:n], batch_size)
        truth = self.targets(data)[1][:n]
        return Finish({}, {}, {"y_true": truth, "y_pred": predicted.astype(np.float32)})

    def baselines(self, data: Dataset) -> dict[str, Baseline]:
        train, test = self.targets(data)
        error = test - train.mean(axis=0)
        what = "predicting the mean training target"
        total = ((test - test.mean(axis=0)) ** 2).sum()
        r2 = 1.0 - float((error**2).sum() / total) if total > 0 else 0.0
        return {
            "test_loss": Baseline(float((error**2).mean()), what),
            "test_mae": Baseline(float(np.abs(error).mean()), what),
            "test_r2": Baseline(r2, what),
        }
