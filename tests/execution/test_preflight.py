"""The checks before a run: what the user supplies is resolved and exercised, and its failures
are the user's (exit 2, the user's own traceback), found before any worker starts."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from ablate.cli import main
from ablate.errors import AblateError
from ablate.execution.preflight import checked_before_run, preflight
from ablate.study import parse_study
from tests.helpers import ROOT, run_cli, tiny_study_text

USER = """\
name: user
model: {{builder: "{builder}"}}
factors: {{width: [4, 8]}}
training: {{epochs: 1, batch_size: 32}}
data: {{dataset: "{dataset}", train_size: 64, test_size: 32}}
results: {results}
"""


def _study(tmp_path: Path, builder: str = "tests.faulty_models:build",
           dataset: str = "mnist-sample") -> Path:  # fmt: skip
    path = tmp_path / "user.yaml"
    path.write_text(USER.format(builder=builder, dataset=dataset, results=tmp_path / "results"))
    return path


def _dry_run(path: Path, capsys: pytest.CaptureFixture[str], *extra: str) -> tuple[int, str, str]:
    code = main(["run", str(path), "--dry-run", *extra])
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def _refused(code: int, err: str, *fragments: str) -> None:
    assert code == 2, err
    assert "Traceback" not in err and "ablate/" not in err  # none of ablate's frames
    assert err.startswith("ablate: error: ")
    for fragment in fragments:
        assert fragment in err, err


def test_a_valid_study_passes_every_check_and_says_what_would_run(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code, out, err = _dry_run(_study(tmp_path), capsys)
    assert code == 0, err
    assert "the first cell (width=4) builds (" in out and "output 28×28×1 per example" in out
    assert "Every check passed" in out
    assert not (tmp_path / "results").exists()  # a dry run writes nothing


def test_a_dataset_function_that_raises_is_the_users_error_with_its_own_frames(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code, out, err = _dry_run(
        _study(tmp_path, dataset="tests.broken_code:data_that_raises"), capsys
    )
    _refused(code, err, "the dataset function tests.broken_code:data_that_raises raised",
             "FileNotFoundError: my_data/part-768.npy is not there", "not in ablate")  # fmt: skip
    frames = [line for line in err.splitlines() if line.startswith("  File ")]
    assert len(frames) == 2 and all("tests/broken_code.py" in f for f in frames), err
    assert "in data_that_raises" in frames[0] and "in _read_my_files" in frames[1]
    assert "It cannot run as it is" in out


@pytest.mark.parametrize(
    ("builder", "fragments"),
    [
        ("tests.faulty_models:biuld",
         ["has no attribute biuld", "did you mean tests.faulty_models:build"]),
        ("tests.no_such_module:build", ["no module named tests.no_such_module"]),
        ("tests.broken_code:builder_without_width",
         ["does not take the keyword argument 'width' (a factor)", "input_shape"]),
        ("tests.broken_code:builder_that_needs_depth", ["requires the argument 'depth'"]),
        ("tests.broken_code:builder_that_raises",
         ["building the first cell (width=4)", "raised KeyError: 'w4'"]),
        ("tests.user_models:not_a_model", ["returned dict, not a keras.Model"]),
        ("tests.broken_code:builder_of_the_wrong_shape",
         ["output has shape (4,) per example", "(28, 28, 1)"]),
        ("tests.broken_code:builder_of_nan", ["outputs NaN or infinite values before any"]),
        ("tests.broken_import:build", ["its module raised KeyError: 'smal'"]),
    ],
)  # fmt: skip
def test_a_builder_that_cannot_serve_the_study_is_refused_before_training(
    builder: str, fragments: list[str], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code, _, err = _dry_run(_study(tmp_path, builder=builder), capsys)
    _refused(code, err, *fragments)
    if "raised" in " ".join(fragments):  # the user's code: its frames below, ablate's not
        assert '  File "' in err and "tests/broken_" in err


def test_a_storage_url_is_checked_by_the_dry_run(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = _study(tmp_path)
    code, _, err = _dry_run(path, capsys, "--storage", "postgres ql://x")
    _refused(code, err, "is not a database URL")
    code, _, err = _dry_run(path, capsys, "--storage", "postgresql://u:secret99@127.0.0.1:9/db")
    _refused(code, err, "cannot reach the storage postgresql://u:***@127.0.0.1:9/db")
    assert "secret99" not in err


def test_ragged_arrays_from_a_dataset_function_are_named(tmp_path: Path) -> None:
    study = parse_study(_study(tmp_path, dataset="tests.broken_code:data_ragged").read_text(),
                        source=str(tmp_path / "user.yaml"))  # fmt: skip
    with pytest.raises(AblateError, match="x_train cannot be made an array"):
        preflight(study, build=False)


@pytest.mark.slow
def test_the_model_is_checked_in_a_child_process_when_keras_is_not_imported(
    tmp_path: Path,
) -> None:
    """The coordinator of `ablate run` never imports a framework: the model is built in a
    child, which reports the user's error back intact (message and detail)."""
    path = _study(tmp_path, builder="tests.broken_code:builder_that_raises")
    code = (
        "import sys\n"
        "from ablate.execution.preflight import checked_before_run\n"
        "from ablate.errors import AblateError\n"
        "from ablate.study import load_study\n"
        f"study = load_study({str(path)!r})\n"
        "try:\n"
        "    checked_before_run(study)\n"
        "except AblateError as err:\n"
        "    print(err); print(err.detail)\n"
        "print('keras imported here:', 'keras' in sys.modules)\n"
    )  # fmt: skip
    import subprocess

    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          cwd=ROOT, timeout=300)  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    assert "raised KeyError: 'w4'" in proc.stdout
    assert 'broken_code.py", line' in proc.stdout
    assert "keras imported here: False" in proc.stdout


def test_checks_pass_in_this_process_once_keras_is_here(tmp_path: Path) -> None:
    study = parse_study(tiny_study_text(tmp_path / "results"))
    checked = checked_before_run(study)
    assert "builds" in checked.model and checked.baselines["test_loss"].value > 0


@pytest.mark.slow
def test_ablate_run_refuses_a_missing_builder_before_any_worker_starts(tmp_path: Path) -> None:
    path = _study(tmp_path, builder="tests.faulty_models:biuld")
    proc = run_cli("run", str(path), cwd=tmp_path, env={"PYTHONPATH": str(ROOT)})
    assert proc.returncode == 2, proc.stderr
    assert "has no attribute biuld" in proc.stderr and "Traceback" not in proc.stderr
    assert not (tmp_path / "results").exists()  # no results folder, no storage, no worker


@pytest.mark.slow
def test_a_dry_run_prints_what_it_checked_and_no_framework_chatter(tiny_study_file: Path) -> None:
    """The model is built in a child process whose TensorFlow logs "failed call to cuInit" at
    its first device use on a machine without a GPU (the CUDA build, as pip installs it),
    whatever TF_CPP_MIN_LOG_LEVEL says: ablate keeps it, and the like, off the user's screen.
    Run as a user runs it: without the tests' CUDA_VISIBLE_DEVICES="" and TF_CPP_MIN_LOG_LEVEL."""
    env = {k: v for k, v in os.environ.items()
           if k not in ("CUDA_VISIBLE_DEVICES", "TF_CPP_MIN_LOG_LEVEL")}  # fmt: skip
    command = [sys.executable, "-m", "ablate", "run", str(tiny_study_file), "--dry-run"]
    proc = subprocess.run(command, env=env, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr
    assert "Every check passed" in proc.stdout
    assert not [line for line in proc.stderr.splitlines() if line[:5] in ("E0000", "W0000")]
