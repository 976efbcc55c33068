"""A scikit-learn model trained by its own loop, for ablate's ``trainer:`` seam.

scikit-learn's 8x8 handwritten digits (shipped with it: no download), split 70/30 with the
classes balanced, and a one-hidden-layer perceptron (``MLPClassifier``) trained epoch by epoch
with ``partial_fit``, so that every epoch is reported to ablate. The factors are its width,
activation, L2 penalty and whether the pixels are standardised; ``seed`` sets the network's
initial weights and the order of the examples.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
from sklearn.datasets import load_digits
from sklearn.metrics import confusion_matrix, log_loss
from sklearn.model_selection import train_test_split
from sklearn.neural_network import MLPClassifier
from sklearn.preprocessing import StandardScaler


def train(
    hidden: int, activation: str, alpha: float, standardise: bool, seed: int,
    report: Callable[..., None], epochs: int = 40,
) -> dict[str, object]:  # fmt: skip
    """Train one trial; returns the responses the study file declares, and the confusion
    matrix as an output kept with the trial."""
    x, y = load_digits(return_X_y=True)
    x_train, x_test, y_train, y_test = train_test_split(
        x, y, test_size=0.3, random_state=0, stratify=y
    )
    if standardise:
        scaler = StandardScaler().fit(x_train)
        x_train, x_test = scaler.transform(x_train), scaler.transform(x_test)
    else:
        x_train, x_test = x_train / 16.0, x_test / 16.0  # pixel intensities are 0 to 16
    model = MLPClassifier(hidden_layer_sizes=(hidden,), activation=activation, alpha=alpha,
                          learning_rate_init=1e-3, random_state=seed)  # fmt: skip
    classes = np.arange(10)
    for epoch in range(1, epochs + 1):
        model.partial_fit(x_train, y_train, classes=classes)
        report(epoch, train_loss=model.loss_, test_accuracy=model.score(x_test, y_test))
    probabilities = model.predict_proba(x_test)
    return {
        "test_accuracy": model.score(x_test, y_test),
        "test_log_loss": log_loss(y_test, probabilities, labels=classes),
        "confusion": confusion_matrix(y_test, probabilities.argmax(axis=1), labels=classes),
    }
