"""Results on disk: exported from storage with stable types, written atomically, read back."""

from __future__ import annotations

import dataclasses
import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from ablate.errors import AblateError
from ablate.execution.pool import export_queue
from ablate.queue.claims import open_queue
from ablate.queue.workers import WorkerIdentity
from ablate.results import load_outputs, load_results, prepare_results_dir, write_atomic
from ablate.results.export import write_parquet
from ablate.results.files import SCHEMA_VERSION
from ablate.study import parse_study
from ablate.study.grid import expand_trials
from ablate.study.settings import Study
from ablate.training.records import EpochRecord, TrialResult
from tests.helpers import run_cli, tiny_study_text


def _result(loss: float) -> TrialResult:
    values = {"train_loss": 0.6, "train_recon_loss": 0.55, "train_kl_loss": 0.05,
              "test_loss": loss, "test_recon_loss": loss - 0.01, "test_kl_loss": 0.01}  # fmt: skip
    epoch = EpochRecord(1, values, 0.004, 1.0, 0.1)
    return TrialResult(
        status="complete", epochs=1, history=(epoch,), params=100, trainable_params=90,
        values={k: v for k, v in values.items() if k.startswith("test_") or k == "train_loss"},
        seconds=2.0, backend="tensorflow", device="cpu", versions={"keras": "3.x"},
    )  # fmt: skip


@pytest.fixture
def finished(tmp_path: Path) -> Study:
    """A tiny study whose 4 trials are recorded in storage (one failed) and exported."""
    study = parse_study(tiny_study_text(tmp_path / "results"))
    study = dataclasses.replace(study, run=dataclasses.replace(study.run, retries=0))
    prepare_results_dir(study, None)
    queue = open_queue(study, None)
    queue.populate(expand_trials(study))
    me = WorkerIdentity("w1")
    for i in range(4):
        claim = queue.claim(me)
        if i == 2:
            queue.finish(claim, TrialResult(status="failed", error="ValueError: x"))
        else:
            queue.finish(claim, _result(0.3 + i / 10))
    export_queue(study, queue, study.results_dir)
    return study


def test_export_writes_one_typed_row_per_trial_and_one_per_epoch(finished: Study) -> None:
    results = load_results(finished.results_dir)
    t = results.trials
    assert len(t) == 4 and t["trial_key"].is_unique
    assert t["status"].tolist() == ["complete", "complete", "failed", "complete"]
    assert t["batch_norm"].dtype == bool and t["batch_norm"].tolist() == [True, True, False, False]
    assert t["activation"].tolist() == ["relu", "sigmoid", "relu", "sigmoid"]
    assert t.loc[0, "test_loss"] == pytest.approx(0.3)
    assert pd.isna(t.loc[2, "test_loss"]) and t.loc[2, "error"] == "ValueError: x"
    assert t.loc[0, "cell"] == "+batch_norm activation=relu"
    assert json.loads(t.loc[0, "versions"]) == {"keras": "3.x"}
    assert str(t["started_at"].dtype).startswith("datetime64")
    e = results.epochs
    assert len(e) == 3 and set(e["trial_key"]) <= set(t["trial_key"])
    meta = pq.read_schema(finished.results_dir / "trials.parquet").metadata
    assert meta[b"ablate.schema_version"] == str(SCHEMA_VERSION).encode()
    manifest = json.loads((finished.results_dir / "manifest.json").read_text())
    assert manifest["schema_version"] == SCHEMA_VERSION and manifest["storage"] == "optuna.journal"
    assert results.study == finished  # the resolved study.yaml is saved beside the results


def test_a_failed_write_leaves_the_previous_file_intact(tmp_path: Path) -> None:
    target = tmp_path / "trials.parquet"
    target.write_bytes(b"previous version")
    # the temporary file cannot be created (a folder is in its way): the write fails midway
    (tmp_path / f".trials.parquet.{os.getpid()}.tmp").mkdir()
    with pytest.raises(AblateError, match="previous version of the file, if any, is intact"):
        write_atomic(target, b"new contents")
    assert target.read_bytes() == b"previous version"


def test_truncated_and_foreign_files_are_refused_clearly(finished: Study, tmp_path: Path) -> None:
    path = finished.results_dir / "trials.parquet"
    path.write_bytes(path.read_bytes()[:300])
    with pytest.raises(AblateError, match="not a readable parquet file"):
        load_results(finished.results_dir)
    text = tmp_path / "notes.txt"
    text.write_text("hello")
    with pytest.raises(AblateError, match="neither"):
        load_results(text)


def test_results_from_a_newer_schema_are_refused_with_the_version(tmp_path: Path) -> None:
    path = tmp_path / "t.parquet"
    write_parquet(pd.DataFrame({"a": [1]}), path, {"ablate.schema_version": "99"})
    with pytest.raises(AblateError, match="schema version 99"):
        load_results(path)
    write_parquet(pd.DataFrame({"a": [1]}), path, {"ablate.schema_version": "1"})
    assert load_results(path).trials["a"].tolist() == [1]
    # a plain parquet file written by anyone else reads fine
    pq.write_table(pa.table({"a": [2]}), path)
    assert load_results(path).trials["a"].tolist() == [2]


_FULL_DISK = """
import resource, signal, sys
from pathlib import Path
signal.signal(signal.SIGXFSZ, signal.SIG_IGN)   # a write past the limit fails with EFBIG
resource.setrlimit(resource.RLIMIT_FSIZE, (2000, 2000))
from ablate.cli import main
sys.exit(main(["export", sys.argv[1]]))
"""


@pytest.mark.slow
def test_a_full_disk_while_exporting_keeps_the_previous_file_and_says_so(
    tiny_results: Path, tmp_path: Path
) -> None:
    import shutil

    folder = tmp_path / "copy"
    shutil.copytree(tiny_results, folder)
    (folder / "trials.parquet").write_bytes(b"the previous version")
    proc = subprocess.run(
        [sys.executable, "-c", _FULL_DISK, str(folder)], capture_output=True, text=True,
        timeout=120,
    )  # fmt: skip
    assert proc.returncode == 2, proc.stderr
    assert "could not write" in proc.stderr and "File too large" in proc.stderr
    assert "previous version of the file, if any, is intact" in proc.stderr
    assert "Traceback" not in proc.stderr
    assert (folder / "trials.parquet").read_bytes() == b"the previous version"
    assert not list(folder.glob(".*.tmp"))  # no half-written leftovers
    # with room again, the same command rewrites it from storage
    again = run_cli("export", str(folder))
    assert again.returncode == 0 and len(pd.read_parquet(folder / "trials.parquet")) == 8


def test_an_older_results_folder_is_refused_with_its_version(finished: Study) -> None:
    manifest = finished.results_dir / "manifest.json"
    data = json.loads(manifest.read_text())
    data["schema_version"] = 0
    manifest.write_text(json.dumps(data))
    with pytest.raises(AblateError, match=r"schema version 0.*reads version 1.*ablate export"):
        load_results(finished.results_dir)
    proc = run_cli("analyze", str(finished.results_dir))
    assert proc.returncode == 2 and "schema version 0" in proc.stderr


@pytest.mark.slow  # a few seconds (the fast part stays under 3 minutes)
def test_a_foreign_parquet_file_gets_a_clear_message(tmp_path: Path) -> None:
    path = tmp_path / "other.parquet"
    pq.write_table(pa.table({"x": [1, 2], "y": ["a", "b"]}), path)
    for command in ("analyze", "plot"):
        proc = run_cli(command, str(path))
        assert proc.returncode == 2, proc.stderr
        assert "bare table" in proc.stderr and "--factors" in proc.stderr
        proc = run_cli(command, str(path), "--factors", "y", "--response", "test_loss")
        assert proc.returncode == 2 and "has no column 'test_loss'" in proc.stderr


def test_saved_outputs_are_never_unpickled(finished: Study) -> None:
    folder = finished.results_dir / "outputs"
    folder.mkdir(exist_ok=True)
    key = load_results(finished.results_dir).trials["trial_key"].iloc[0]
    np.savez(folder / f"{key}.npz", evil=np.array([object()], dtype=object))
    with pytest.raises(AblateError, match="cannot be read"):
        load_outputs(finished.results_dir, key)
