"""The stores: claims and checks read a few trials, never the whole study, on both storages;
what they read agrees with Optuna's records, and corrects itself where it fell behind."""

from __future__ import annotations

import re
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from ablate.execution.pool import export_queue
from ablate.queue.claims import TrialQueue, open_queue
from ablate.queue.workers import WorkerIdentity
from ablate.storage.journal import JournalStore
from ablate.storage.journal_file import JournalFile
from ablate.storage.sql import SqlStore
from ablate.study import parse_study
from ablate.study.grid import expand_trials
from ablate.study.settings import Study
from ablate.training.records import EpochRecord, TrialResult
from tests.helpers import tiny_study_text

COMPLETE = TrialResult(
    status="complete", values={"test_loss": 0.5, "test_recon_loss": 0.4, "test_kl_loss": 0.1}
)


def _study(tmp_path: Path, replicates: int = 1) -> Study:
    return parse_study(tiny_study_text(tmp_path / "results", replicates=replicates))


def _queue(study: Study, url: str | None = None) -> TrialQueue:
    return open_queue(study, url)


def _work_through(queue: TrialQueue) -> int:
    """Claim, check for lost workers, beat and finish every trial, as a worker does."""
    me = WorkerIdentity("w1")
    done = 0
    while (claim := queue.claim(me)) is not None:
        queue.recover_lost()
        assert queue.heartbeat(claim, {"epoch": 1})
        assert queue.finish(claim, COMPLETE)
        done += 1
    queue.summary()
    return done


def test_journal_claims_reread_only_the_trials_they_touch(tmp_path: Path) -> None:
    study = _study(tmp_path, replicates=50)  # 200 trials
    queue = _queue(study)
    assert isinstance(queue.store, JournalStore)
    queue.populate(expand_trials(study))
    queue.summary()
    before = queue.store.rereads
    assert _work_through(queue) == 200
    # each trial is re-read after its own claim and finish (a few times), never the study
    assert queue.store.rereads - before < 10 * 200, queue.store.rereads - before
    assert len(queue.records()) == 200  # the export reads them all, once


def _statements(during: Callable[[], Any]) -> list[str]:
    """Every SQL statement any engine of this process runs while ``during`` runs (SQLAlchemy's
    own event hook on the real database)."""
    import sqlalchemy as sa

    seen: list[str] = []

    def listen(conn: Any, cursor: Any, statement: str, *args: Any) -> None:
        seen.append(statement)

    sa.event.listen(sa.engine.Engine, "before_cursor_execute", listen)
    try:
        during()
    finally:
        sa.event.remove(sa.engine.Engine, "before_cursor_execute", listen)
    return seen


@pytest.mark.postgres
def test_postgresql_claims_read_no_whole_study(tmp_path: Path, postgres_url: str) -> None:
    study = _study(tmp_path, replicates=5)
    queue = _queue(study, postgres_url)
    assert isinstance(queue.store, SqlStore)
    queue.populate(expand_trials(study))
    done: list[int] = []
    statements = _statements(lambda: done.append(_work_through(queue)))
    assert done == [20] and statements
    whole = re.compile(r"FROM trials\b(?![^;]*trial_id\s*(=|IN))", re.IGNORECASE | re.DOTALL)
    reads = [s for s in statements if whole.search(s) and "study_id" in s]
    assert reads == []  # claims, checks, finishes and the summary read only their trials
    assert len(queue.records()) == 20  # the export reads them all, once


def test_the_journal_index_follows_another_process_changes(tmp_path: Path) -> None:
    study = _study(tmp_path)
    mine, theirs = _queue(study), _queue(study)  # two storages on one journal: two processes
    mine.populate(expand_trials(study))
    claim = theirs.claim(WorkerIdentity("w2", host="elsewhere", boot="b", pid=1))
    running = mine.summary().running
    assert [r.key for r in running] == [claim.spec.key] and running[0].worker["name"] == "w2"
    assert mine.claim(WorkerIdentity("w1")).spec.key != claim.spec.key
    theirs.finish(claim, COMPLETE)
    assert mine.summary().complete == 1 and not any(
        r.key == claim.spec.key for r in mine.summary().running
    )


def test_claims_take_turns_across_processes(tmp_path: Path) -> None:
    journal = JournalFile(str(tmp_path / "optuna.journal"))
    other = JournalFile(str(tmp_path / "optuna.journal"))  # as another process opens it
    got: list[float] = []

    def claim() -> None:
        with other.claiming():
            got.append(time.monotonic())

    with journal.claiming():
        thread = threading.Thread(target=claim)
        thread.start()
        time.sleep(0.3)
        assert not got  # waits for this claim
        released = time.monotonic()
    thread.join(5)
    assert got and got[0] >= released


def _realistic(epochs: int, outputs: bytes | None) -> TrialResult:
    values = {"train_loss": 0.31, "train_recon_loss": 0.3, "train_kl_loss": 0.01,
              "test_loss": 0.3, "test_recon_loss": 0.28, "test_kl_loss": 0.02}  # fmt: skip
    history = tuple(EpochRecord(e, values, 0.001, 4.2, 0.4) for e in range(1, epochs + 1))
    return TrialResult(
        status="complete", epochs=epochs, history=history, params=14_000,
        values={k: v for k, v in values.items() if k.startswith("test_") or k == "train_loss"},
        seconds=45.0, backend="tensorflow", device="cpu", versions={"keras": "3.15"},
        outputs=outputs,
    )  # fmt: skip


def test_outputs_live_beside_the_journal_and_its_rows_stay_small(tmp_path: Path) -> None:
    import os

    study = _study(tmp_path, replicates=5)
    queue = _queue(study)
    queue.populate(expand_trials(study))
    journal = study.results_dir / "optuna.journal"
    before = journal.stat().st_size
    me = WorkerIdentity("w1")
    keys = []
    while (claim := queue.claim(me)) is not None:
        queue.heartbeat(claim, {"epoch": 1})
        for epoch in (1, 2, 3):
            queue.report_epoch(claim, epoch, {"test_loss": 0.3})
        queue.finish(claim, _realistic(3, os.urandom(40_000)))
        keys.append(claim.spec.key)
    per_trial = (journal.stat().st_size - before) / 20
    created = before / 20
    assert per_trial + created < 5000, (per_trial, created)  # bytes per trial, outputs apart
    stored = study.results_dir / "stored-outputs"
    assert {p.stem for p in stored.glob("*.npz")} == set(keys)
    export_queue(study, queue, study.results_dir)
    exported = study.results_dir / "outputs" / f"{keys[0]}.npz"
    assert exported.read_bytes() == (stored / f"{keys[0]}.npz").read_bytes()
    assert exported.stat().st_ino == (stored / f"{keys[0]}.npz").stat().st_ino  # a hard link
    exported.unlink()
    exported.write_bytes(b"")  # what a power cut can leave of a copy not yet on disk
    export_queue(study, queue, study.results_dir)
    assert exported.read_bytes() == (stored / f"{keys[0]}.npz").read_bytes()


def _npz() -> bytes:
    import io

    import numpy as np

    buffer = io.BytesIO()
    np.savez_compressed(buffer, latent=np.zeros((4, 2), np.float16))
    return buffer.getvalue()


# ---------------------------------------------------------------------------------------------
# PostgreSQL: ablate's tables beside Optuna's


def _rows(url: str, sql: str) -> list[Any]:
    import sqlalchemy as sa

    engine = sa.create_engine(url)
    try:
        with engine.begin() as conn:
            result = conn.execute(sa.text(sql))
            return list(result) if result.returns_rows else []
    finally:
        engine.dispose()


@pytest.mark.postgres
def test_postgresql_keeps_outputs_in_its_table_and_exports_them(
    tmp_path: Path, postgres_url: str
) -> None:
    from ablate.results import load_outputs, prepare_results_dir
    from ablate.results.doctor import diagnose

    study = _study(tmp_path)
    prepare_results_dir(study, postgres_url)
    queue = _queue(study, postgres_url)
    queue.populate(expand_trials(study))
    me = WorkerIdentity("w1")
    while (claim := queue.claim(me)) is not None:
        queue.finish(claim, _realistic(2, _npz()))
    assert _rows(postgres_url, "SELECT count(*) FROM ablate_outputs")[0][0] == 4
    attrs = _rows(postgres_url, "SELECT count(*) FROM trial_user_attributes WHERE key='outputs'")
    assert attrs[0][0] == 0  # nothing bulky in Optuna's rows
    export_queue(study, queue, study.results_dir)
    key = expand_trials(study)[2].key
    assert load_outputs(study.results_dir, key)["latent"].shape == (4, 2)
    (study.results_dir / "outputs" / f"{key}.npz").unlink()
    findings = diagnose(study.results_dir, postgres_url, repair=True)
    assert [f.severity for f in findings if f.severity == "problem"] == []
    assert (study.results_dir / "outputs" / f"{key}.npz").exists()


@pytest.mark.postgres
def test_a_postgresql_study_without_index_rows_gets_them_on_open(
    tmp_path: Path, postgres_url: str
) -> None:
    """Rows a crash cut off (a coordinator stopped between creating trials and their rows)."""
    study = _study(tmp_path, replicates=2)
    queue = _queue(study, postgres_url)
    queue.populate(expand_trials(study))
    queue.finish(queue.claim(WorkerIdentity("w1")), COMPLETE)
    _rows(postgres_url, "DELETE FROM ablate_trials WHERE number >= 3")
    again = _queue(study, postgres_url)
    assert again.summary().total == 8 and again.summary().complete == 1
    me = WorkerIdentity("w1")
    keys = []
    while (claim := again.claim(me)) is not None:
        keys.append(claim.spec.key)
        again.finish(claim, COMPLETE)
    assert len(keys) == 7 and again.summary().complete == 8


@pytest.mark.postgres
def test_a_postgresql_row_behind_optuna_is_corrected(tmp_path: Path, postgres_url: str) -> None:
    """A process died between an Optuna change and its row: the row is corrected, never
    trusted over Optuna."""
    study = _study(tmp_path)
    queue = _queue(study, postgres_url)
    queue.populate(expand_trials(study))
    first = queue.claim(WorkerIdentity("w1"))
    queue.finish(first, COMPLETE)
    # the row of the finished trial says waiting again; the next one's says it is done
    _rows(postgres_url, f"UPDATE ablate_trials SET state = 'waiting' WHERE trial_id = "
          f"{first.trial_id}")  # fmt: skip
    me = WorkerIdentity("w1")
    keys = []
    while (claim := queue.claim(me)) is not None:
        keys.append(claim.spec.key)
        queue.finish(claim, COMPLETE)
    assert first.spec.key not in keys and len(keys) == 3
    states = _rows(postgres_url, "SELECT state, count(*) FROM ablate_trials GROUP BY state")
    assert dict(states) == {"complete": 4}


@pytest.mark.postgres
def test_reading_a_postgresql_study_for_export_agrees_with_optuna(
    tmp_path: Path, postgres_url: str
) -> None:
    import optuna

    study = _study(tmp_path)
    queue = _queue(study, postgres_url)
    queue.populate(expand_trials(study))
    me = WorkerIdentity("w1")
    queue.finish(queue.claim(me), _realistic(2, None))
    queue.finish(queue.claim(me), TrialResult(status="failed", error="x", transient=True))
    queue.claim(me)  # one running, the rest waiting (and a retry enqueued)
    narrow = queue.store.trials()
    full = optuna.load_study(study_name=study.name, storage=postgres_url).get_trials()
    assert len(narrow) == len(full) == 5
    for a, b in zip(narrow, full, strict=True):
        assert (a.number, a.state) == (b.number, b.state.name)
        assert (a.datetime_start, a.datetime_complete) == (b.datetime_start, b.datetime_complete)
        assert a.user_attrs == b.user_attrs


@pytest.mark.postgres
def test_postgresql_index_rows_a_server_crash_takes_back_are_corrected(
    tmp_path: Path, postgres_url: str
) -> None:
    """ablate's reservations commit without waiting for the disk: a server crash may take
    back the last ones while Optuna's survive (played here by writing the rows back). A
    reservation taken back: the trial is not claimed twice, nor does its row name the failed
    claimant; a finished trial's row behind (as an older ablate, which wrote it after Optuna's
    change, could leave it): the lost-worker check corrects it, and retries nothing."""
    study = _study(tmp_path)
    queue = _queue(study, postgres_url)
    queue.populate(expand_trials(study))
    first = queue.claim(WorkerIdentity("w1"))
    where = f"WHERE trial_id = {first.trial_id}"
    _rows(postgres_url, f"UPDATE ablate_trials SET state = 'waiting', worker = NULL {where}")
    second = queue.claim(WorkerIdentity("w2"))
    assert second is not None and second.trial_id != first.trial_id
    assert _rows(postgres_url, f"SELECT state, worker FROM ablate_trials {where}") == [
        ("running", None)
    ]
    assert queue.heartbeat(first, {"epoch": 1}) and queue.finish(first, COMPLETE)
    _rows(postgres_url, f"UPDATE ablate_trials SET state = 'running', beat = 0 {where}")
    assert queue.recover_lost() == []
    assert _rows(postgres_url, f"SELECT state FROM ablate_trials {where}") == [("complete",)]
    assert queue.finish(second, COMPLETE)
    me = WorkerIdentity("w1")
    keys = [first.spec.key, second.spec.key]
    while (claim := queue.claim(me)) is not None:
        keys.append(claim.spec.key)
        queue.finish(claim, COMPLETE)
    assert sorted(keys) == sorted(s.key for s in expand_trials(study))  # each once


def test_a_retry_a_stopped_worker_never_enqueued_is_enqueued_by_the_next_run(
    tmp_path: Path,
) -> None:
    """A worker stopped between handing its trial back (failed, "interrupted") and enqueuing
    the next attempt: the next run's filling of the queue enqueues it, once."""
    study = _study(tmp_path)
    specs = expand_trials(study)
    queue = _queue(study)
    queue.populate(specs)
    stopped = queue.claim(WorkerIdentity("w1"))
    assert queue._fail(stopped.trial_id, "interrupted")  # and no _requeue: the worker stopped
    assert queue.summary().failed == 1
    again = _queue(study)
    assert again.populate(specs) == 1 and again.populate(specs) == 0
    me = WorkerIdentity("w2")
    keys = []
    while (claim := again.claim(me)) is not None:
        keys.append(claim.spec.key)
        again.finish(claim, COMPLETE)
    assert sorted(keys) == sorted(s.key for s in specs) and again.summary().complete == 4
