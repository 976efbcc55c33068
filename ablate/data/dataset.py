"""One dataset type for arrays of any shape, and the checks every dataset passes before training.

A :class:`Dataset` is four arrays — ``x_train, y_train, x_test, y_test`` — and optional class
names: images, sequences or tables alike. :func:`check_dataset` refuses, before anything
trains, a dataset that does not fit itself (different lengths of x and y, NaN or infinite
values, train and test examples of different shapes); its task and its model check the rest
(:meth:`ablate.tasks.Task.check_data`, :meth:`ablate.models.registry.ModelSpec.check_inputs`).
Every message names the array, what was expected and what was found.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ablate.errors import AblateError

ARRAYS = ("x_train", "y_train", "x_test", "y_test")


@dataclass(frozen=True, eq=False)
class Dataset:
    """A study's data: inputs ``x`` (float32) and targets ``y`` for training and test."""

    name: str
    source: str  # where it was read from, for logs and results
    x_train: np.ndarray  # (n_train, ...) float32, e.g. (n, 28, 28, 1) images in [0, 1]
    y_train: np.ndarray  # (n_train,) labels, or targets
    x_test: np.ndarray  # (n_test, ...) like x_train
    y_test: np.ndarray
    class_names: tuple[str, ...] | None = None

    @property
    def input_shape(self) -> tuple[int, ...]:
        return tuple(self.x_train.shape[1:])

    @property
    def n_classes(self) -> int | None:
        """The number of classes: from the class names, else the largest integer label + 1."""
        if self.class_names is not None:
            return len(self.class_names)
        labels = (self.y_train, self.y_test)
        if all(np.issubdtype(y.dtype, np.integer) and y.ndim == 1 for y in labels):
            return max((int(y.max()) for y in labels if len(y)), default=-1) + 1
        return None

    def describe(self) -> str:
        sizes = f"{len(self.x_train):,} train, {len(self.x_test):,} test"
        shape = "×".join(str(d) for d in self.input_shape) or "scalar"
        return f"{self.name} ({sizes}; inputs {shape}) from {self.source}"


def as_inputs(x: np.ndarray, name: str) -> np.ndarray:
    """Inputs as float32: unsigned bytes are images and are scaled to [0, 1]."""
    if x.dtype == np.uint8:
        return np.ascontiguousarray(x, dtype=np.float32) / np.float32(255.0)
    real = np.issubdtype(x.dtype, np.number) and not np.issubdtype(x.dtype, np.complexfloating)
    if not real or np.issubdtype(x.dtype, np.bool_):
        raise AblateError(f"{name} holds {x.dtype} values; inputs must be real numbers.")
    return np.ascontiguousarray(x, dtype=np.float32)


def subset(
    x: np.ndarray, y: np.ndarray, size: int | None, part: str
) -> tuple[np.ndarray, np.ndarray]:
    """The first ``size`` examples (all when None); asking for more than exist is an error."""
    if size is None:
        return x, y
    if size > len(x):
        raise AblateError(
            f"data.{part}_size is {size:,} but the dataset has only {len(x):,} {part} examples; "
            f"lower data.{part}_size or remove it to use them all."
        )
    return x[:size], y[:size]


def check_dataset(data: Dataset) -> None:
    """Refuse a dataset that does not fit itself (exit code 2); the task and the model check
    what they need of it (``Task.check_data``, ``ModelSpec.check_inputs``)."""
    for part in ("train", "test"):
        x, y = getattr(data, f"x_{part}"), getattr(data, f"y_{part}")
        if len(x) == 0:
            raise AblateError(f"x_{part} is empty; the dataset needs {part} examples.")
        if x[0].size == 0:  # e.g. shape (n, 0): examples of no value at all
            raise AblateError(
                f"x_{part}'s examples have shape {x.shape[1:]}, which holds no value; every "
                "example needs at least one input value."
            )
        if y is not None and len(y) != len(x):
            raise AblateError(
                f"y_{part} has {len(y):,} entries but x_{part} has {len(x):,} examples; every "
                "example needs exactly one target."
            )
        check_finite(f"x_{part}", x)
        if y is not None and np.issubdtype(y.dtype, np.floating):
            check_finite(f"y_{part}", y)
    if data.x_train.shape[1:] != data.x_test.shape[1:]:
        raise AblateError(
            f"x_train's examples have shape {data.x_train.shape[1:]} but x_test's have "
            f"{data.x_test.shape[1:]}; training and test examples must have the same shape."
        )


def check_finite(name: str, array: np.ndarray) -> None:
    """Refuse NaN or infinite values in a numeric array, naming where the first one is."""
    if not np.issubdtype(array.dtype, np.number) or np.issubdtype(array.dtype, np.bool_):
        raise AblateError(f"{name} holds {array.dtype} values; ablate needs numbers.")
    if np.issubdtype(array.dtype, np.floating):
        bad = ~np.isfinite(array)
        if bad.any():
            first = tuple(int(i) for i in np.argwhere(bad)[0])
            raise AblateError(
                f"{name} holds {int(bad.sum()):,} NaN or infinite values (the first at index "
                f"{first}); remove or replace them before training."
            )
