"""Datasets: where a study's arrays come from, and the checks they pass before training.

- :mod:`ablate.data.dataset`: the one dataset type, and the checks against task and model;
- :mod:`ablate.data.sources`: the sources a study names (``data.dataset``) and loading them;
- :mod:`ablate.data.keras_datasets`: MNIST, Fashion-MNIST, CIFAR-10 and the bundled sample;
- :mod:`ablate.data.files`: a user's ``.npz`` file or dataset function.
"""

from __future__ import annotations

from ablate.data.dataset import Dataset, check_dataset
from ablate.data.keras_datasets import SAMPLE_PATH, read_mnist
from ablate.data.sources import SOURCES, load_dataset, read_dataset, source

__all__ = [
    "SAMPLE_PATH",
    "SOURCES",
    "Dataset",
    "check_dataset",
    "load_dataset",
    "read_dataset",
    "read_mnist",
    "source",
]
