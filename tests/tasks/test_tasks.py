"""Tasks: declared columns and directions, trivial baselines and metrics, against hand sums."""

from __future__ import annotations

import numpy as np
import pytest

from ablate.data import Dataset
from ablate.tasks import TASKS, goal_of
from ablate.tasks.classification import confusion_matrix, per_class_recall


def test_the_reconstruction_task_keeps_the_columns_ablate_always_wrote() -> None:
    task = TASKS["reconstruction"]
    assert task.result_columns == ("test_recon_loss", "test_kl_loss", "test_loss")
    assert task.epoch_columns == (
        "train_loss", "train_recon_loss", "train_kl_loss",
        "test_loss", "test_recon_loss", "test_kl_loss",
    )  # fmt: skip
    assert task.default_response == "test_loss"


def test_directions_follow_each_metric() -> None:
    assert goal_of("test_loss") == "min" and goal_of("train_loss") == "min"
    assert goal_of("test_accuracy") == "max" and goal_of("test_balanced_accuracy") == "max"
    assert goal_of("test_recall_7", TASKS["classification"]) == "max"
    assert goal_of("test_r2") == "max" and goal_of("test_mae") == "min"
    assert goal_of("images_per_second") == "max" and goal_of("seconds") == "min"
    assert goal_of("something_else") is None
    assert TASKS["classification"].default_response == "test_accuracy"


def _data(y_train: list[int], y_test: list[int], x_train=None, x_test=None) -> Dataset:
    n, m = len(y_train), len(y_test)
    return Dataset(
        "t", "here",
        x_train=np.zeros((n, 2), np.float32) if x_train is None else x_train,
        y_train=np.array(y_train), x_test=np.zeros((m, 2), np.float32) if x_test is None
        else x_test, y_test=np.array(y_test),
    )  # fmt: skip


def test_classification_baselines_by_hand() -> None:
    data = _data([0, 0, 0, 1, 2, 2], [0, 1, 1, 2])
    b = TASKS["classification"].baselines(data)
    assert b["test_accuracy"].value == pytest.approx(1 / 4)  # majority class 0, one of four
    assert b["test_balanced_accuracy"].value == pytest.approx(1 / 3)
    prior = np.array([3, 1, 2]) / 6  # training class frequencies
    expected = -np.mean(np.log(prior[[0, 1, 1, 2]]))
    assert b["test_loss"].value == pytest.approx(expected)


def test_reconstruction_baseline_is_the_mean_image_cross_entropy() -> None:
    x_train = np.array([[0.0, 1.0], [1.0, 1.0]], np.float32)  # mean image (0.5, 1 - ε)
    x_test = np.array([[1.0, 0.0]], np.float32)
    b = TASKS["reconstruction"].baselines(_data([0, 0], [0], x_train, x_test))
    eps = 1e-7
    expected = -(np.log(0.5) + np.log(eps)) / 2  # pixel 1: 1·log .5; pixel 2: log(1 − (1 − ε))
    assert b["test_recon_loss"].value == pytest.approx(expected, rel=1e-5)
    assert b["test_loss"].value == b["test_recon_loss"].value


def test_regression_baselines_predict_the_training_mean() -> None:
    data = Dataset("t", "here", np.zeros((3, 1), np.float32), np.array([1.0, 2.0, 3.0]),
                   np.zeros((2, 1), np.float32), np.array([0.0, 4.0]))  # fmt: skip
    b = TASKS["regression"].baselines(data)
    assert b["test_loss"].value == pytest.approx((4 + 4) / 2)  # errors -2 and 2 from mean 2
    assert b["test_mae"].value == pytest.approx(2.0)
    assert b["test_r2"].value == pytest.approx(1 - 8 / 8)  # the test mean is 2 as well


def test_confusion_matrix_and_recall_by_hand() -> None:
    truth = np.array([0, 0, 1, 1, 1, 2])
    predicted = np.array([0, 1, 1, 1, 0, 1])
    cm = confusion_matrix(truth, predicted, 4)
    assert cm.tolist() == [[1, 1, 0, 0], [1, 2, 0, 0], [0, 1, 0, 0], [0, 0, 0, 0]]
    recall = per_class_recall(cm)
    assert recall[:3].tolist() == pytest.approx([0.5, 2 / 3, 0.0])
    assert np.isnan(recall[3])  # class 3 has no test example


def test_the_balanced_accuracy_metric_accumulates_a_confusion_matrix_over_batches() -> None:
    from ablate.training import backend

    backend.import_keras()
    from ablate.tasks.metrics import BalancedAccuracy

    metric = BalancedAccuracy(4)
    batches = [(np.array([0, 0, 1]), np.array([0, 1, 1])), (np.array([1, 1, 2]), [1, 0, 1])]
    for truth, predicted in batches:
        metric.update_state(truth, np.eye(4, dtype=np.float32)[predicted])
    # over all six: the same as the hand example above; class 3 absent, so the mean of three
    assert float(metric.result()) == pytest.approx((0.5 + 2 / 3 + 0.0) / 3)
    metric.reset_state()
    metric.update_state(np.array([2]), np.eye(4, dtype=np.float32)[[2]])
    assert float(metric.result()) == pytest.approx(1.0)
