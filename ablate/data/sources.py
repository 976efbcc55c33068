"""The data sources a study can name, each declared once with its options, and loading them.

``data.dataset`` names a built-in source (:data:`SOURCES`) or a user's function written as
``"package.module:function"``. Each built-in source declares whether it reads ``data.path``
and which ``data.options`` it takes (as :class:`~ablate.parameters.Parameter`), so the study
file is validated against the declaration. :func:`load_dataset` loads a study's data once
per process and cuts it to ``train_size`` and ``test_size``.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from dataclasses import dataclass, replace
from typing import Any, Literal, Protocol

from ablate.data.dataset import Dataset, subset
from ablate.data.sequences import OPTIONS as SEQUENCE_OPTIONS
from ablate.parameters import Parameter
from ablate.targets import is_target

PathUse = Literal["none", "optional", "required"]


class DataSettings(Protocol):
    """What a study's ``data:`` asks for (:class:`ablate.study.settings.DataSettings`, a
    frozen dataclass: read-only)."""

    @property
    def dataset(self) -> str: ...

    @property
    def path(self) -> str | None: ...

    @property
    def options(self) -> tuple[tuple[str, Any], ...]: ...

    @property
    def train_size(self) -> int | None: ...

    @property
    def test_size(self) -> int | None: ...


@dataclass(frozen=True)
class Source:
    """A named way to get a dataset: what it is, whether it reads a path, its options."""

    name: str
    doc: str
    load: Callable[[str | None, int, dict[str, Any]], Dataset]  # (path, seed, options)
    path: PathUse = "none"
    options: tuple[Parameter, ...] | None = ()  # None: a user's function, options unchecked
    task: str | None = None  # the task it is made for, if only one


def _keras(name: str) -> Callable[[str | None, int, dict[str, Any]], Dataset]:
    def load(path: str | None, seed: int, options: dict[str, Any]) -> Dataset:
        from ablate.data.keras_datasets import load_keras_dataset

        return load_keras_dataset(name, path)

    return load


def _sample(path: str | None, seed: int, options: dict[str, Any]) -> Dataset:
    from ablate.data.keras_datasets import load_sample

    return load_sample()


def _sequences(path: str | None, seed: int, options: dict[str, Any]) -> Dataset:
    from ablate.data.sequences import attention_sequences

    return attention_sequences(seed, options)


def _npz(path: str | None, seed: int, options: dict[str, Any]) -> Dataset:
    from ablate.data.files import load_npz

    return load_npz(path)


SOURCES: dict[str, Source] = {
    s.name: s
    for s in (
        Source("mnist", "MNIST digits, 60,000 + 10,000, 28×28×1", _keras("mnist"), "optional"),
        Source(
            "mnist-sample",
            "the first 5,000 + 1,000 MNIST digits, bundled with ablate (no download)",
            _sample,
        ),
        Source(
            "fashion_mnist",
            "Fashion-MNIST, 60,000 + 10,000, 28×28×1, 10 classes",
            _keras("fashion_mnist"),
            "optional",
        ),
        Source(
            "cifar10",
            "CIFAR-10, 50,000 + 10,000 colour images, 32×32×3, 10 classes",
            _keras("cifar10"),
            "optional",
        ),
        Source(
            "attention-sequences",
            "synthetic sequences whose label sits in one time step (the attention sources' "
            "task), generated from the study's seed",
            _sequences,
            options=SEQUENCE_OPTIONS,
            task="classification",
        ),
        Source(
            "npz",
            "your own .npz file (data.path) with x_train, y_train, x_test, y_test",
            _npz,
            "required",
        ),
    )
}


def source(name: str) -> Source | None:
    """A built-in source by name, or a user's function written as "package.module:function"."""
    if name in SOURCES:
        return SOURCES[name]
    if is_target(name):

        def load(path: str | None, seed: int, options: dict[str, Any]) -> Dataset:
            from ablate.data.files import load_function

            return load_function(name, seed, options)

        return Source(name, "a user's dataset function", load, "none", options=None)
    return None


@functools.lru_cache(maxsize=4)
def load_dataset(settings: DataSettings, seed: int = 0) -> Dataset:
    """Load (once per process) the dataset a study asks for, cut as it says."""
    return read_dataset(settings, seed)


def read_dataset(settings: DataSettings, seed: int = 0) -> Dataset:
    """Load the dataset a study asks for, without keeping it (a coordinator's check)."""
    found = source(settings.dataset)
    assert found is not None, settings.dataset  # validated when the study was parsed
    data = found.load(settings.path, seed, dict(settings.options))
    x_train, y_train = subset(data.x_train, data.y_train, settings.train_size, "train")
    x_test, y_test = subset(data.x_test, data.y_test, settings.test_size, "test")
    return replace(data, x_train=x_train, y_train=y_train, x_test=x_test, y_test=y_test)
