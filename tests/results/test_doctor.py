"""ablate doctor: each kind of damage is found, and --repair fixes it without losing results."""

from __future__ import annotations

import io
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from ablate.execution.pool import export_queue
from ablate.queue.claims import TrialQueue, open_queue
from ablate.queue.spool import spool_result
from ablate.queue.workers import WorkerIdentity, start_ticks
from ablate.results import prepare_results_dir
from ablate.results.doctor import diagnose
from ablate.study import parse_study
from ablate.study.grid import expand_trials
from ablate.study.settings import Study
from ablate.training.records import TrialResult
from tests.helpers import run_cli, tiny_study_text


def _npz() -> bytes:
    buffer = io.BytesIO()
    np.savez_compressed(buffer, latent=np.zeros((4, 2), np.float16))
    return buffer.getvalue()


def _result(loss: float) -> TrialResult:
    values = {"test_loss": loss, "test_recon_loss": loss, "test_kl_loss": 0.0}
    return TrialResult(status="complete", values=values, outputs=_npz())


@pytest.fixture
def study(tmp_path: Path) -> Study:
    """4 trials: 3 complete and exported, 1 still waiting."""
    study = parse_study(tiny_study_text(tmp_path / "results"))
    prepare_results_dir(study, None)
    queue = _queue(study)
    queue.populate(expand_trials(study))
    me = WorkerIdentity("w1")
    for i in range(3):
        queue.finish(queue.claim(me), _result(0.5 + i / 10))
    export_queue(study, queue, study.results_dir)
    return study


def _queue(study: Study) -> TrialQueue:
    return open_queue(study, None)


def _levels(study: Study, repair: bool = False) -> dict[str, str]:
    return {
        f.text.split(":")[0].split(" ")[-1]: f.severity
        for f in diagnose(study.results_dir, None, repair)
    }


def _problems(study: Study, repair: bool = False) -> list[str]:
    return [f.text for f in diagnose(study.results_dir, None, repair) if f.severity == "problem"]


def test_a_healthy_study_passes_every_check(study: Study) -> None:
    findings = diagnose(study.results_dir, None)
    assert [f.severity for f in findings] == ["ok"] * len(findings)
    assert len(findings) == 8
    proc = run_cli("doctor", str(study.results_dir))
    assert proc.returncode == 0 and proc.stdout.count("ok") >= 8


def test_an_orphaned_running_trial_is_found_and_returned_to_the_queue(study: Study) -> None:
    proc = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(30)"])
    dead = WorkerIdentity("w7", pid=proc.pid, start_ticks=start_ticks(proc.pid))
    proc.kill()
    proc.wait()
    _queue(study).claim(dead)  # its worker died holding it
    assert any("RUNNING but their worker is gone" in p for p in _problems(study))
    cli = run_cli("doctor", str(study.results_dir))
    assert cli.returncode == 2 and "--repair" in cli.stderr
    assert not _problems(study, repair=True)
    assert _queue(study).summary().waiting == 1 and not _problems(study)


def test_trials_never_enqueued_are_enqueued(tmp_path: Path) -> None:
    study = parse_study(tiny_study_text(tmp_path / "results"))
    prepare_results_dir(study, None)
    queue = _queue(study)
    queue.populate(expand_trials(study)[:1])  # the run stopped while filling the queue
    export_queue(study, queue, study.results_dir)
    assert any("3 trials of the grid were never enqueued" in p for p in _problems(study))
    _problems(study, repair=True)
    assert _queue(study).summary().total == 4


def test_a_duplicated_waiting_trial_is_set_aside(study: Study) -> None:
    queue = _queue(study)
    queue.enqueue([expand_trials(study)[3]], attempt=1)  # two coordinators filled at once
    assert any("duplicate" in p for p in _problems(study))
    _problems(study, repair=True)
    queue = _queue(study)
    claim = queue.claim(WorkerIdentity("w1"))
    queue.finish(claim, _result(0.9))
    assert queue.claim(WorkerIdentity("w1")) is None and queue.summary().complete == 4


def test_stale_or_missing_result_files_are_rewritten_from_storage(study: Study) -> None:
    trials = study.results_dir / "trials.parquet"
    pd.read_parquet(trials).head(1).to_parquet(trials)  # rows lost (e.g. restored backup)
    assert any("differs from the storage" in p for p in _problems(study))
    _problems(study, repair=True)
    assert len(pd.read_parquet(trials)) == 3
    next((study.results_dir / "outputs").glob("*.npz")).unlink()
    assert any("lack their saved model outputs" in p for p in _problems(study))
    assert not _problems(study, repair=True)
    trials.write_bytes(b"garbage")
    assert any("not a readable parquet" in p for p in _problems(study))
    assert not _problems(study, repair=True)


def test_a_journal_cut_short_by_a_crash_is_repaired_with_a_backup(study: Study) -> None:
    journal = study.results_dir / "optuna.journal"
    intact = journal.read_bytes()
    cut = b'{"op_code": 6, "worker_id": "x", "trial_id"'  # a writer died mid-record
    journal.write_bytes(intact + cut)
    assert any("cut short" in p for p in _problems(study))
    assert not _problems(study, repair=True)
    assert journal.read_bytes() == intact
    backups = list(study.results_dir.glob("optuna.journal.damaged-*"))
    assert len(backups) == 1 and backups[0].read_bytes() == intact + cut
    assert _queue(study).summary().complete == 3  # nothing finished was lost
    # any command that opens the journal repairs it too, before a new record is glued on
    journal.write_bytes(intact + cut)
    status = run_cli("status", str(study.results_dir))
    assert status.returncode == 0 and "cut short" in status.stderr
    assert journal.read_bytes() == intact


def test_damage_inside_the_journal_is_reported_not_cut(study: Study) -> None:
    journal = study.results_dir / "optuna.journal"
    lines = journal.read_bytes().splitlines(keepends=True)
    lines[2] = b"not json at all\n"
    journal.write_bytes(b"".join(lines))
    problems = _problems(study, repair=True)
    assert any("Restore the file from a backup" in p for p in problems)
    assert not list(study.results_dir.glob("optuna.journal.damaged-*"))


def test_a_spooled_result_is_recorded(study: Study) -> None:
    queue = _queue(study)
    claim = queue.claim(WorkerIdentity("w1"))
    path = spool_result(
        study.results_dir / "spool", queue, claim, _result(0.42), WorkerIdentity("w1")
    )
    queue.release(claim)  # the storage went away before the worker could record it
    assert any("never recorded in storage" in p for p in _problems(study))
    _problems(study, repair=True)
    assert not path.exists()
    records = {r.key: r for r in _queue(study).records()}
    assert records[claim.spec.key].result.value("test_loss") == pytest.approx(0.42)
    assert (study.results_dir / "outputs" / f"{claim.spec.key}.npz").exists()
