"""MNIST, Fashion-MNIST and CIFAR-10: from a file, a folder, Keras's cache or its download.

Each is read from, first that applies: the study's ``data.path``, its environment variable
(``ABLATE_MNIST``, ``ABLATE_FASHION_MNIST``, ``ABLATE_CIFAR10``), or Keras's own cache and
download (``keras.datasets``). A path may be an ``.npz`` holding ``x_train, y_train, x_test,
y_test`` (Keras's MNIST layout) or, for the two MNISTs, a folder with the four IDX files,
gzipped or not. ``ABLATE_OFFLINE=1`` forbids the download. ``mnist-sample`` is 5,000 training
and 1,000 test digits of the real MNIST bundled with ablate, so small studies run offline
anywhere. One dataset never stands in for another: if the one asked for is missing, loading
fails with a message that lists every way to provide it.
"""

from __future__ import annotations

import gzip
import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ablate.data.dataset import ARRAYS, Dataset, as_inputs
from ablate.errors import AblateError

ENV_OFFLINE = "ABLATE_OFFLINE"  # "1": never try Keras's download
SAMPLE_PATH = Path(__file__).parent / "samples" / "mnist-sample.npz"

_IDX_FILES = {
    "x_train": "train-images-idx3-ubyte",
    "y_train": "train-labels-idx1-ubyte",
    "x_test": "t10k-images-idx3-ubyte",
    "y_test": "t10k-labels-idx1-ubyte",
}
DIGITS = tuple(str(d) for d in range(10))


@dataclass(frozen=True)
class KerasDataset:
    """One of Keras's image datasets: where ablate looks for it, and what it must look like."""

    name: str  # as a study file names it
    title: str  # as people name it
    module: str  # keras.datasets.<module>
    env: str  # environment variable with a path to it
    cache: tuple[str, ...]  # what Keras's cache holds once downloaded (under datasets/)
    image_shape: tuple[int, ...]  # one image as stored: (28, 28) or (32, 32, 3)
    class_names: tuple[str, ...]
    idx: bool  # a folder of IDX files is accepted too

    def ways_to_provide(self) -> str:
        idx = (
            " or to a folder with the four IDX files (train-images-idx3-ubyte, "
            "train-labels-idx1-ubyte, t10k-images-idx3-ubyte, t10k-labels-idx1-ubyte, gzipped or "
            "not)"
            if self.idx
            else ""
        )
        cached = " and ".join(f"~/.keras/datasets/{c}" for c in self.cache)
        sample = " For a small study without any of these, use dataset: mnist-sample."
        return (
            f"Ways to provide {self.title}: set data.path in the study file, or the {self.env} "
            f"environment variable, to an .npz holding x_train, y_train, x_test and y_test{idx}; "
            f"or put Keras's copy in its cache ({cached}); or connect to the internet once so "
            f"that keras.datasets.{self.module} can download it." + sample
        )


KERAS_DATASETS = {
    d.name: d
    for d in (
        KerasDataset(
            "mnist", "MNIST", "mnist", "ABLATE_MNIST", ("mnist.npz",), (28, 28), DIGITS, idx=True
        ),
        KerasDataset(
            "fashion_mnist",
            "Fashion-MNIST",
            "fashion_mnist",
            "ABLATE_FASHION_MNIST",
            tuple(f"fashion-mnist/{f}.gz" for f in _IDX_FILES.values()),
            (28, 28),
            (
                "T-shirt/top",
                "Trouser",
                "Pullover",
                "Dress",
                "Coat",
                "Sandal",
                "Shirt",
                "Sneaker",
                "Bag",
                "Ankle boot",
            ),
            idx=True,
        ),
        KerasDataset(
            "cifar10",
            "CIFAR-10",
            "cifar10",
            "ABLATE_CIFAR10",
            ("cifar-10-batches-py-target_archive",),
            (32, 32, 3),
            (
                "airplane",
                "automobile",
                "bird",
                "cat",
                "deer",
                "dog",
                "frog",
                "horse",
                "ship",
                "truck",
            ),
            idx=False,
        ),
    )
}


def load_keras_dataset(name: str, path: str | None) -> Dataset:
    """One of :data:`KERAS_DATASETS`, as images in [0, 1] with a channel axis."""
    spec = KERAS_DATASETS[name]
    explicit = path or os.environ.get(spec.env)
    if explicit:
        where = "data.path in the study file" if path else f"the {spec.env} environment variable"
        p = Path(explicit).expanduser()
        if not p.exists():
            raise AblateError(
                f"{spec.title} was to be read from {p} ({where}), but nothing is there. "
                + spec.ways_to_provide()
            )
        arrays, source = read_images(p, spec), str(p)
    else:
        arrays, source = _from_keras(spec), f"Keras's cache (keras.datasets.{spec.module})"
    return _images(spec, arrays, source)


def load_sample() -> Dataset:
    """The first 5,000 training and 1,000 test digits of MNIST, bundled with ablate."""
    arrays = _read_npz(SAMPLE_PATH, KERAS_DATASETS["mnist"])
    return _images(KERAS_DATASETS["mnist"], arrays, "the sample bundled with ablate")


def _images(spec: KerasDataset, arrays: dict[str, np.ndarray], source: str) -> Dataset:
    """uint8 images -> float32 in [0, 1] with a channel axis; labels as one int per image."""

    def images(x: np.ndarray) -> np.ndarray:
        return as_inputs(x[..., None] if x.ndim == 3 else x, "x")  # (n, H, W, C)

    return Dataset(
        name=spec.name,
        source=source,
        x_train=images(arrays["x_train"]),
        y_train=arrays["y_train"].reshape(-1).astype(np.int64),
        x_test=images(arrays["x_test"]),
        y_test=arrays["y_test"].reshape(-1).astype(np.int64),
        class_names=spec.class_names,
    )


def read_mnist(path: Path) -> dict[str, np.ndarray]:
    """MNIST arrays from an ``.npz`` (Keras layout) or a folder of the four IDX files."""
    return read_images(path, KERAS_DATASETS["mnist"])


def read_images(path: Path, spec: KerasDataset) -> dict[str, np.ndarray]:
    """A Keras image dataset from an ``.npz`` or (the MNISTs) a folder of IDX files, checked."""
    if path.is_dir():
        if not spec.idx:
            raise AblateError(
                f"{path} is a folder, but {spec.title} is read from an .npz file holding "
                "x_train, y_train, x_test and y_test."
            )
        arrays = _read_idx_folder(path)
    else:
        arrays = _read_npz(path, spec)
    _check_images(arrays, path, spec)
    return arrays


def _read_npz(path: Path, spec: KerasDataset) -> dict[str, np.ndarray]:
    try:
        with np.load(path, allow_pickle=False) as f:
            missing = [k for k in ARRAYS if k not in f.files]
            if missing:
                raise AblateError(
                    f"{path} is not a {spec.title} .npz: it lacks {', '.join(missing)} (it has "
                    f"{', '.join(f.files) or 'nothing'}). Use the file keras.datasets."
                    f"{spec.module} downloads"
                    + (", or a folder with the four IDX files." if spec.idx else ".")
                )
            return {k: f[k] for k in ARRAYS}
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


def _check_images(arrays: dict[str, np.ndarray], path: Path, spec: KerasDataset) -> None:
    for part in ("train", "test"):
        x, y = arrays[f"x_{part}"], arrays[f"y_{part}"]
        if (
            x.ndim != 1 + len(spec.image_shape)
            or x.shape[1:] != spec.image_shape
            or (x.dtype != np.uint8)
        ):
            shape = ", ".join(str(d) for d in spec.image_shape)
            raise AblateError(
                f"{path}: x_{part} has shape {x.shape} and type {x.dtype}; {spec.title} images "
                f"are (n, {shape}) unsigned bytes."
            )
        if y.reshape(-1).shape != (len(x),) or y.ndim > 2:
            raise AblateError(
                f"{path}: y_{part} has shape {y.shape} but there are {len(x):,} {part} images."
            )


def _from_keras(spec: KerasDataset) -> dict[str, np.ndarray]:
    """Keras's cached copy, downloading it if needed (unless ABLATE_OFFLINE=1)."""
    if os.environ.get(ENV_OFFLINE) == "1":
        home = Path(os.environ.get("KERAS_HOME", "~/.keras")).expanduser() / "datasets"
        missing = [home / c for c in spec.cache if not (home / c).exists()]
        if missing:
            raise AblateError(
                f"{spec.title} is not in Keras's cache ({missing[0]}) and {ENV_OFFLINE}=1 forbids "
                "downloading it. " + spec.ways_to_provide()
            )
        if spec.name == "mnist":  # read it ourselves: no Keras import needed
            return read_images(home / spec.cache[0], spec)
    import importlib

    loader = importlib.import_module(f"keras.datasets.{spec.module}")
    try:
        (x_train, y_train), (x_test, y_test) = loader.load_data()
    except Exception as err:
        reason = str(err).splitlines()[0][:200] if str(err) else ""
        raise AblateError(
            f"{spec.title} could not be loaded from Keras's cache or downloaded "
            f"({type(err).__name__}: {reason}). " + spec.ways_to_provide()
        ) from None
    return {"x_train": x_train, "y_train": y_train, "x_test": x_test, "y_test": y_test}
