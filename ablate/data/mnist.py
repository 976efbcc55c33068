"""Datasets: MNIST from a file, a folder, Keras's cache or download, or the bundled sample.

``dataset: mnist`` is the full MNIST, read from (first that applies) the study's
``data.path``, the ``ABLATE_MNIST`` environment variable, or Keras's own cache and download
(``keras.datasets.mnist``). A path may be an ``.npz`` laid out like Keras's or a folder with
the four IDX files, gzipped or not. ``dataset: mnist-sample`` is 5,000 training and 1,000 test
digits of the real MNIST bundled with ablate, so small studies run offline anywhere. One
dataset never stands in for another: if the one asked for is missing, loading fails with
a message that lists the ways to provide it.
"""

from __future__ import annotations

import functools
import gzip
import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ablate.config import DataSettings
from ablate.errors import AblateError

ENV_PATH = "ABLATE_MNIST"  # a file or folder with the full MNIST
ENV_OFFLINE = "ABLATE_OFFLINE"  # "1": never try Keras's download
SAMPLE_PATH = Path(__file__).parent / "_data" / "mnist-sample.npz"

_IDX_FILES = {
    "x_train": "train-images-idx3-ubyte",
    "y_train": "train-labels-idx1-ubyte",
    "x_test": "t10k-images-idx3-ubyte",
    "y_test": "t10k-labels-idx1-ubyte",
}


@dataclass(frozen=True, eq=False)
class Dataset:
    """Images scaled to [0, 1] with a channel axis, and their digit labels."""

    name: str
    source: str  # where it was read from, for logs and results
    x_train: np.ndarray  # (n_train, 28, 28, 1) float32 in [0, 1]
    y_train: np.ndarray  # (n_train,) uint8 digit labels
    x_test: np.ndarray  # (n_test, 28, 28, 1) float32 in [0, 1]
    y_test: np.ndarray  # (n_test,) uint8

    @property
    def input_shape(self) -> tuple[int, ...]:
        return tuple(self.x_train.shape[1:])

    def describe(self) -> str:
        sizes = f"{len(self.x_train):,} train, {len(self.x_test):,} test"
        return f"{self.name} ({sizes}) from {self.source}"


@functools.lru_cache(maxsize=4)
def load_dataset(settings: DataSettings) -> Dataset:
    """Load (once per process) the dataset a study asks for, subset as it says."""
    if settings.dataset == "mnist-sample":
        arrays = _read_npz(SAMPLE_PATH)
        source = "the sample bundled with ablate"
    else:
        arrays, source = _load_mnist(settings.path)
    x_train, y_train = _subset(arrays["x_train"], arrays["y_train"], settings.train_size, "train")
    x_test, y_test = _subset(arrays["x_test"], arrays["y_test"], settings.test_size, "test")
    return Dataset(
        name=settings.dataset,
        source=source,
        x_train=_scale(x_train),
        y_train=y_train,
        x_test=_scale(x_test),
        y_test=y_test,
    )


def _scale(images: np.ndarray) -> np.ndarray:
    """uint8 (n, 28, 28) -> float32 (n, 28, 28, 1) in [0, 1], contiguous for the framework."""
    return np.ascontiguousarray(images[..., None], dtype=np.float32) / np.float32(255.0)


def _subset(
    x: np.ndarray, y: np.ndarray, size: int | None, part: str
) -> tuple[np.ndarray, np.ndarray]:
    """The first ``size`` examples (all when None); asking for more than exist is an error."""
    if size is None:
        return x, y
    if size > len(x):
        raise AblateError(
            f"data.{part}_size is {size:,} but the dataset has only {len(x):,} {part} images; "
            f"lower data.{part}_size or remove it to use them all."
        )
    return x[:size], y[:size]


def _load_mnist(path: str | None) -> tuple[dict[str, np.ndarray], str]:
    explicit = path or os.environ.get(ENV_PATH)
    if explicit:
        where = "data.path in the study file" if path else f"the {ENV_PATH} environment variable"
        p = Path(explicit).expanduser()
        if not p.exists():
            raise AblateError(
                f"MNIST was to be read from {p} ({where}), but nothing is there. "
                + _WAYS_TO_PROVIDE
            )
        return read_mnist(p), str(p)
    return _keras_mnist(), "Keras's cache (keras.datasets.mnist)"


def read_mnist(path: Path) -> dict[str, np.ndarray]:
    """MNIST arrays from an ``.npz`` (Keras layout) or a folder of the four IDX files."""
    arrays = _read_idx_folder(path) if path.is_dir() else _read_npz(path)
    _check_mnist(arrays, path)
    return arrays


def _read_npz(path: Path) -> dict[str, np.ndarray]:
    try:
        with np.load(path, allow_pickle=False) as f:
            missing = [k for k in _IDX_FILES if k not in f.files]
            if missing:
                raise AblateError(
                    f"{path} is not an MNIST .npz: it lacks {', '.join(missing)} (it has "
                    f"{', '.join(f.files) or 'nothing'}). Use the file keras.datasets.mnist "
                    "downloads, or a folder with the four IDX files."
                )
            return {k: f[k] for k in _IDX_FILES}
    except AblateError:
        raise
    except Exception as err:  # zip errors, truncation, pickled objects...
        raise AblateError(
            f"{path} cannot be read as an .npz file ({type(err).__name__}: {err}). It may be "
            "truncated or not an .npz at all; download it again or point to another copy."
        ) from None


def _read_idx_folder(folder: Path) -> dict[str, np.ndarray]:
    arrays = {}
    for key, stem in _IDX_FILES.items():
        dotted = stem.replace("-idx", ".idx")  # the other common spelling
        candidates = [folder / n for s in (stem, dotted) for n in (s, s + ".gz")]
        found = next((c for c in candidates if c.is_file()), None)
        if found is None:
            raise AblateError(
                f"{folder} has no {stem} (or {stem}.gz); an MNIST folder needs the four IDX "
                f"files {', '.join(_IDX_FILES.values())}, gzipped or not."
            )
        arrays[key] = _read_idx(found)
    return arrays


def _read_idx(path: Path) -> np.ndarray:
    """One IDX file: 2 zero bytes, type 0x08 (uint8), ndim, big-endian dims, then the data."""
    opener = gzip.open if path.suffix == ".gz" else open
    try:
        with opener(path, "rb") as f:
            raw = f.read()
    except (OSError, EOFError) as err:
        raise AblateError(f"{path} cannot be read ({err}); download it again.") from None
    if len(raw) < 4 or raw[0] != 0 or raw[1] != 0 or raw[2] != 0x08:
        raise AblateError(f"{path} is not an IDX file of unsigned bytes (bad header).")
    ndim = raw[3]
    header = 4 + 4 * ndim
    dims = [int.from_bytes(raw[4 + 4 * i : 8 + 4 * i], "big") for i in range(ndim)]
    data = np.frombuffer(raw, dtype=np.uint8, offset=header)
    if data.size != int(np.prod(dims)):
        raise AblateError(
            f"{path} is truncated: its header announces {dims} values but it holds {data.size:,}."
        )
    return data.reshape(dims)


def _check_mnist(arrays: dict[str, np.ndarray], path: Path) -> None:
    for part in ("train", "test"):
        x, y = arrays[f"x_{part}"], arrays[f"y_{part}"]
        if x.ndim != 3 or x.shape[1:] != (28, 28) or x.dtype != np.uint8:
            raise AblateError(
                f"{path}: x_{part} has shape {x.shape} and type {x.dtype}; MNIST images are "
                "(n, 28, 28) unsigned bytes."
            )
        if y.shape != (len(x),):
            raise AblateError(
                f"{path}: y_{part} has shape {y.shape} but there are {len(x):,} {part} images."
            )


def _keras_mnist() -> dict[str, np.ndarray]:
    """Keras's cached copy, downloading it if needed (unless ABLATE_OFFLINE=1)."""
    if os.environ.get(ENV_OFFLINE) == "1":
        cached = Path(os.environ.get("KERAS_HOME", "~/.keras")).expanduser() / "datasets"
        cached = cached / "mnist.npz"
        if not cached.is_file():
            raise AblateError(
                f"MNIST is not in Keras's cache ({cached}) and {ENV_OFFLINE}=1 forbids "
                "downloading it. " + _WAYS_TO_PROVIDE
            )
        return read_mnist(cached)
    import keras

    try:
        (x_train, y_train), (x_test, y_test) = keras.datasets.mnist.load_data()
    except Exception as err:
        raise AblateError(
            f"MNIST could not be loaded from Keras's cache or downloaded ({type(err).__name__}: "
            f"{str(err).splitlines()[0][:200]}). " + _WAYS_TO_PROVIDE
        ) from None
    return {"x_train": x_train, "y_train": y_train, "x_test": x_test, "y_test": y_test}


_WAYS_TO_PROVIDE = (
    "Ways to provide the full MNIST: set data.path in the study file, or the ABLATE_MNIST "
    "environment variable, to an mnist.npz (Keras's layout) or to a folder with the four IDX "
    "files (train-images-idx3-ubyte, train-labels-idx1-ubyte, t10k-images-idx3-ubyte, "
    "t10k-labels-idx1-ubyte, gzipped or not); or put mnist.npz in ~/.keras/datasets/; or "
    "connect to the internet once so that keras.datasets.mnist can download it. For a small "
    "study without any of these, use dataset: mnist-sample."
)
