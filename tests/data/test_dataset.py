"""Any dataset: .npz files and functions load as one type, and every kind of bad data is named."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pytest

from ablate.data import SAMPLE_PATH, Dataset, check_dataset, read_dataset
from ablate.data.files import load_function, load_npz
from ablate.errors import AblateError
from ablate.models.registry import VAE
from ablate.study.settings import DataSettings
from ablate.tasks import TASKS
from tests.helpers import run_cli

CLASSIFY, RECONSTRUCT, REGRESS = (TASKS[t] for t in ("classification", "reconstruction",
                                                     "regression"))  # fmt: skip


def _check(data: Dataset, task: Any, model: Any = None) -> None:
    """What the checks before a run ask of a dataset: itself, the task, the model's inputs."""
    check_dataset(data)
    task.check_data(data)
    if model is not None:
        model.check_inputs(data)


def _digits(n_train: int = 40, n_test: int = 20) -> dict[str, np.ndarray]:
    with np.load(SAMPLE_PATH) as f:
        return {
            "x_train": f["x_train"][:n_train, :, :, None],
            "y_train": f["y_train"][:n_train],
            "x_test": f["x_test"][:n_test, :, :, None],
            "y_test": f["y_test"][:n_test],
        }


def _dataset(**changes: Any) -> Dataset:
    arrays = {**_digits(), **changes}
    scale = {k: v / 255.0 if k.startswith("x") and v.dtype == np.uint8 else v
             for k, v in arrays.items()}  # fmt: skip
    return Dataset("test", "here", **scale)


def test_an_npz_of_digits_loads_scaled_with_its_class_names(tmp_path: Path) -> None:
    path = tmp_path / "digits.npz"
    names = np.array([f"digit {d}" for d in range(10)])
    np.savez(path, **_digits(), class_names=names)
    data = load_npz(str(path))
    assert data.x_train.dtype == np.float32 and data.x_train.shape == (40, 28, 28, 1)
    assert data.x_train.max() == 1.0 and data.x_train.min() == 0.0  # bytes scaled by 1/255
    assert data.n_classes == 10 and data.class_names[3] == "digit 3"
    assert data.y_train.dtype == np.uint8  # labels as stored: no overflow counting classes
    _check(data, CLASSIFY)  # fits classification as it is
    settings = DataSettings(dataset="npz", path=str(path), train_size=30)
    assert len(read_dataset(settings).x_train) == 30


def test_a_dataset_function_is_called_with_the_seed_and_its_options() -> None:
    data = load_function("tests.user_regression:linear", 5, {"n": 90})
    assert (len(data.x_train), len(data.x_test)) == (60, 30)
    again = load_function("tests.user_regression:linear", 5, {"n": 90})
    np.testing.assert_array_equal(data.x_train, again.x_train)  # the seed fixes the data
    other = load_function("tests.user_regression:linear", 6, {"n": 90})
    assert not np.array_equal(data.x_train, other.x_train)
    _check(data, REGRESS)
    with pytest.raises(AblateError, match="cannot be imported"):
        load_function("tests.no_such_module:f", 0, {})
    with pytest.raises(AblateError, match=r"does not take the keyword argument 'bogus' \(in data"):
        load_function("tests.user_regression:linear", 0, {"bogus": 1})
    with pytest.raises(AblateError, match=r"has no attribute linearr .did you mean .*:linear"):
        load_function("tests.user_regression:linearr", 0, {})


@pytest.mark.parametrize(
    ("changes", "task", "fragments"),
    [
        ({"y_train": np.r_[-1, np.zeros(39, int)]}, CLASSIFY, ["y_train", "label -1", "from 0"]),
        ({"y_train": np.zeros(39, int)}, CLASSIFY, ["y_train has 39 entries", "40 examples"]),
        ({"y_test": np.full(20, 0.5)}, CLASSIFY, ["y_test", "not whole numbers"]),
        ({"y_train": np.zeros((40, 2), int)}, CLASSIFY, ["y_train has shape (40, 2)"]),
        ({"y_train": np.zeros(40, int), "y_test": np.zeros(20, int)}, CLASSIFY,
         ["fewer than 2 classes"]),
        ({"x_test": np.full((20, 28, 28, 1), np.nan)}, CLASSIFY, ["x_test", "NaN or infinite"]),
        ({"y_train": np.r_[np.inf, np.zeros(39)]}, REGRESS, ["y_train", "NaN or infinite"]),
        ({"x_train": np.zeros((40, 28, 28, 1)) + 2.0}, RECONSTRUCT, ["x_train", "[0, 1]"]),
        ({"x_test": np.zeros((20, 32, 32, 1))}, CLASSIFY, ["x_train's examples have shape"]),
        ({"x_train": np.zeros((0, 28, 28, 1)), "y_train": np.zeros(0, int)}, CLASSIFY,
         ["x_train is empty"]),
    ],
)  # fmt: skip
def test_data_that_does_not_fit_itself_or_its_task_is_named(
    changes: dict[str, np.ndarray], task: Any, fragments: list[str]
) -> None:
    with pytest.raises(AblateError) as info:
        _check(_dataset(**changes), task)
    for fragment in fragments:
        assert fragment in str(info.value), str(info.value)


def test_an_image_array_without_a_channel_axis_is_refused_for_the_vae() -> None:
    flat = _dataset(x_train=_digits()["x_train"][..., 0], x_test=_digits()["x_test"][..., 0])
    with pytest.raises(AblateError) as info:
        _check(flat, RECONSTRUCT, VAE)
    message = str(info.value)
    assert "x_train has shape (40, 28, 28)" in message and "vae model needs 3" in message
    assert "x[..., None]" in message and "(40, 28, 28, 1)" in message


def test_a_missing_or_unreadable_array_file_is_named(tmp_path: Path) -> None:
    partial = tmp_path / "partial.npz"
    arrays = _digits()
    del arrays["y_test"]
    np.savez(partial, **arrays)
    with pytest.raises(AblateError, match=r"lacks y_test .*needs the arrays x_train"):
        load_npz(str(partial))
    pickled = tmp_path / "objects.npz"
    np.savez(pickled, **_digits(), extra=np.array([object()], dtype=object))
    with pytest.raises(AblateError, match="never unpickles"):
        load_npz(str(pickled))
    with pytest.raises(AblateError, match="no such file"):
        load_npz(str(tmp_path / "absent.npz"))


STUDY = """\
name: labels
task: classification
model: {{builder: "mymodels:small_cnn"}}
factors: {{activation: [relu, tanh]}}
training: {{epochs: 1}}
data: {{dataset: npz, path: {path}}}
results: {results}
"""


def test_labels_below_zero_stop_the_run_with_exit_code_2_naming_y_train(tmp_path: Path) -> None:
    from tests.helpers import ROOT

    arrays = _digits()
    arrays["y_train"] = arrays["y_train"].astype(np.int64)
    arrays["y_train"][7] = -1
    np.savez(tmp_path / "bad.npz", **arrays)
    (tmp_path / "mymodels.py").write_text((ROOT / "examples/classifier/mymodels.py").read_text())
    study = tmp_path / "labels.yaml"
    study.write_text(STUDY.format(path="bad.npz", results=tmp_path / "results"))
    for command in (("run", str(study)), ("run", str(study), "--dry-run")):
        proc = run_cli(*command, cwd=tmp_path)
        assert proc.returncode == 2, proc.stderr
        assert "y_train holds the label -1" in proc.stderr and "Traceback" not in proc.stderr
    assert not (tmp_path / "results" / "labels" / "optuna.journal").exists()  # nothing ran


@pytest.mark.parametrize("task", [RECONSTRUCT, CLASSIFY, REGRESS], ids=lambda t: t.name)
def test_examples_of_no_value_are_refused_for_every_task(task: Any) -> None:
    """Found by the property test of npz files: x of shape (1, 0) crashed the reconstruction
    task's range check (the minimum of an empty array) instead of being refused."""
    empty = np.zeros((1, 0), dtype=np.float32)
    data = Dataset("npz", "data.npz", empty, np.zeros(1, np.int64), empty, np.zeros(1, np.int64))
    with pytest.raises(AblateError, match=r"shape \(0,\), which holds no value"):
        _check(data, task)
