"""Results on disk: exported from storage with stable types, written atomically, read back."""

from __future__ import annotations

import dataclasses
import json
import os
from pathlib import Path

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from ablate.config import Study, parse_study
from ablate.errors import AblateError
from ablate.grid import expand_trials
from ablate.results import (
    SCHEMA_VERSION,
    export,
    load_results,
    prepare_results_dir,
    write_atomic,
    write_parquet,
)
from ablate.storage import TrialQueue, WorkerIdentity, open_storage
from ablate.training import EpochRecord, TrialResult
from tests.helpers import tiny_study_text


def _result(loss: float) -> TrialResult:
    epoch = EpochRecord(1, 0.6, 0.55, 0.05, loss, loss - 0.01, 0.01, 0.004, 1.0, 0.1)
    return TrialResult(
        status="complete", test_loss=loss, test_recon_loss=loss - 0.01, test_kl_loss=0.01,
        train_loss=0.6, epochs=1, history=(epoch,), params=100, trainable_params=90,
        seconds=2.0, backend="tensorflow", device="cpu", versions={"keras": "3.x"},
    )  # fmt: skip


@pytest.fixture
def finished(tmp_path: Path) -> Study:
    """A tiny study whose 4 trials are recorded in storage (one failed) and exported."""
    study = parse_study(tiny_study_text(tmp_path / "results"))
    study = dataclasses.replace(study, run=dataclasses.replace(study.run, retries=0))
    prepare_results_dir(study, None)
    queue = TrialQueue.open(study, open_storage(None, study.results_dir))
    queue.populate(expand_trials(study))
    me = WorkerIdentity("w1")
    for i in range(4):
        claim = queue.claim(me)
        if i == 2:
            queue.finish(claim, TrialResult(status="failed", error="ValueError: x"))
        else:
            queue.finish(claim, _result(0.3 + i / 10))
    export(queue, study.results_dir)
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
