"""Datasets: the bundled sample, MNIST from .npz and IDX folders, and clear errors otherwise."""

from __future__ import annotations

import gzip
from pathlib import Path

import numpy as np
import pytest

from ablate.data import SAMPLE_PATH, load_dataset, read_mnist
from ablate.errors import AblateError
from ablate.study.settings import DataSettings


def test_bundled_sample_is_real_mnist_scaled_to_unit_range() -> None:
    ds = load_dataset(DataSettings(dataset="mnist-sample"))
    assert ds.x_train.shape == (5000, 28, 28, 1) and ds.x_test.shape == (1000, 28, 28, 1)
    assert ds.x_train.dtype == np.float32
    assert ds.x_train.min() == 0.0 and ds.x_train.max() == 1.0
    # the first 5,000 training digits of MNIST: their label counts, pinned from the source
    assert np.bincount(ds.y_train).tolist() == [479, 563, 488, 493, 535, 434, 501, 550, 462, 495]
    assert ds.input_shape == (28, 28, 1)


def test_loaded_once_per_process_and_subset_from_the_start() -> None:
    settings = DataSettings(dataset="mnist-sample", train_size=100, test_size=10)
    a, b = load_dataset(settings), load_dataset(settings)
    assert a is b
    full = load_dataset(DataSettings(dataset="mnist-sample"))
    np.testing.assert_array_equal(a.x_train, full.x_train[:100])
    assert len(a.x_test) == 10


def test_asking_for_more_than_exists_is_an_error() -> None:
    with pytest.raises(AblateError, match=r"train_size is 6,000 .* only 5,000"):
        load_dataset(DataSettings(dataset="mnist-sample", train_size=6000))


def _write_idx(path: Path, array: np.ndarray, gz: bool) -> None:
    header = bytes([0, 0, 0x08, array.ndim]) + b"".join(d.to_bytes(4, "big") for d in array.shape)
    data = header + array.astype(np.uint8).tobytes()
    path.write_bytes(gzip.compress(data) if gz else data)


@pytest.fixture
def sample_arrays() -> dict[str, np.ndarray]:
    with np.load(SAMPLE_PATH) as f:
        return {k: f[k][:50] for k in f.files}


@pytest.mark.parametrize("gz", [True, False])
def test_idx_folder_reads_like_the_npz(
    tmp_path: Path, sample_arrays: dict[str, np.ndarray], gz: bool
) -> None:
    names = {
        "x_train": "train-images-idx3-ubyte",
        "y_train": "train-labels-idx1-ubyte",
        "x_test": "t10k-images-idx3-ubyte",
        "y_test": "t10k-labels-idx1-ubyte",
    }
    for key, name in names.items():
        _write_idx(tmp_path / (name + (".gz" if gz else "")), sample_arrays[key], gz)
    arrays = read_mnist(tmp_path)
    for key in names:
        np.testing.assert_array_equal(arrays[key], sample_arrays[key])


def test_npz_from_the_study_path_and_from_the_environment(
    tmp_path: Path, sample_arrays: dict[str, np.ndarray], monkeypatch: pytest.MonkeyPatch
) -> None:
    path = tmp_path / "mnist.npz"
    np.savez(path, **sample_arrays)
    ds = load_dataset(DataSettings(dataset="mnist", path=str(path)))
    assert len(ds.x_train) == 50 and ds.source == str(path)
    monkeypatch.setenv("ABLATE_MNIST", str(path))
    load_dataset.cache_clear()
    assert load_dataset(DataSettings(dataset="mnist")).source == str(path)


def test_truncated_idx_file_is_named(tmp_path: Path, sample_arrays: dict[str, np.ndarray]) -> None:
    target = tmp_path / "train-images-idx3-ubyte"
    _write_idx(target, sample_arrays["x_train"], gz=False)
    target.write_bytes(target.read_bytes()[:-100])
    with pytest.raises(AblateError, match="truncated"):
        read_mnist(tmp_path)


def test_not_mnist_npz_and_garbage_file(tmp_path: Path) -> None:
    other = tmp_path / "other.npz"
    np.savez(other, a=np.zeros(3))
    with pytest.raises(AblateError, match="lacks x_train"):
        read_mnist(other)
    garbage = tmp_path / "garbage.npz"
    garbage.write_bytes(b"not a zip file at all")
    with pytest.raises(AblateError, match=r"cannot be read as an \.npz"):
        read_mnist(garbage)


def test_missing_dataset_lists_every_way_to_provide_it(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("ABLATE_MNIST", raising=False)
    monkeypatch.setenv("KERAS_HOME", str(tmp_path / "empty-keras-home"))
    monkeypatch.setenv("ABLATE_OFFLINE", "1")
    load_dataset.cache_clear()
    with pytest.raises(AblateError) as info:
        load_dataset(DataSettings(dataset="mnist"))
    message = str(info.value)
    for way in ("data.path", "ABLATE_MNIST", "~/.keras/datasets", "internet", "mnist-sample"):
        assert way in message
    with pytest.raises(AblateError, match="nothing is there"):
        load_dataset(DataSettings(dataset="mnist", path=str(tmp_path / "absent.npz")))
