"""The queue's index: claims and checks read a few trials, never the whole study, on both
storages; the index agrees with Optuna's records, and corrects itself where it fell behind."""

from __future__ import annotations

import threading
import time
from pathlib import Path
from typing import Any

import pytest

from ablate.engine.index import MemoryIndex, SqlIndex
from ablate.engine.queue import TrialQueue
from ablate.engine.records import EpochRecord, TrialResult
from ablate.engine.storage import open_storage
from ablate.engine.workers import WorkerIdentity
from ablate.study import parse_study
from ablate.study.grid import expand_trials
from ablate.study.settings import Study
from tests.helpers import tiny_study_text

COMPLETE = TrialResult(
    status="complete", values={"test_loss": 0.5, "test_recon_loss": 0.4, "test_kl_loss": 0.1}
)


def _study(tmp_path: Path, replicates: int = 1) -> Study:
    return parse_study(tiny_study_text(tmp_path / "results", replicates=replicates))


def _queue(study: Study, url: str | None = None) -> TrialQueue:
    return TrialQueue.open(study, open_storage(url, study.results_dir))


class _Reads:
    """Counts the reads of every trial of the study that a storage is asked for."""

    def __init__(self, storage: Any) -> None:
        self.count = 0
        inner = storage.get_all_trials

        def counted(*args: Any, **kwargs: Any) -> Any:
            self.count += 1
            return inner(*args, **kwargs)

        storage.get_all_trials = counted


def _claims_read_no_whole_study(study: Study, url: str | None) -> None:
    queue = _queue(study, url)
    queue.populate(expand_trials(study))
    reads = _Reads(queue.storage)
    me = WorkerIdentity("w1")
    done = 0
    while (claim := queue.claim(me)) is not None:
        queue.recover_lost()
        assert queue.heartbeat(claim, {"epoch": 1})
        assert queue.finish(claim, COMPLETE)
        done += 1
    queue.summary()
    assert done == 20
    assert reads.count == 0  # neither claims, checks, finishes nor the summary read them all
    assert len(queue.records()) == 20  # the export does, once


def test_journal_claims_read_no_whole_study(tmp_path: Path) -> None:
    study = _study(tmp_path, replicates=5)
    _claims_read_no_whole_study(study, None)
    queue = _queue(study)
    assert isinstance(queue.index, MemoryIndex)


@pytest.mark.postgres
def test_postgresql_claims_read_no_whole_study(tmp_path: Path, postgres_url: str) -> None:
    study = _study(tmp_path, replicates=5)
    _claims_read_no_whole_study(study, postgres_url)
    assert isinstance(_queue(study, postgres_url).index, SqlIndex)


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
    from ablate.engine.storage import JournalFile

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
    from ablate.results import export

    export(queue, study.results_dir)
    exported = study.results_dir / "outputs" / f"{keys[0]}.npz"
    assert exported.read_bytes() == (stored / f"{keys[0]}.npz").read_bytes()
    assert exported.stat().st_ino == (stored / f"{keys[0]}.npz").stat().st_ino  # a hard link
    exported.unlink()
    exported.write_bytes(b"")  # what a power cut can leave of a copy not yet on disk
    export(queue, study.results_dir)
    assert exported.read_bytes() == (stored / f"{keys[0]}.npz").read_bytes()


def test_a_journal_written_by_an_older_ablate_still_reads(tmp_path: Path) -> None:
    """Outputs inside the trial's user attributes, an ``outcome`` beside every result."""
    import base64

    from optuna.trial import TrialState

    from ablate.results import export, load_outputs

    study = _study(tmp_path)
    queue = _queue(study)
    queue.populate(expand_trials(study))
    claim = queue.claim(WorkerIdentity("w1"))
    storage, trial_id = queue.storage, claim.trial_id
    storage.set_trial_user_attr(trial_id, "result", COMPLETE.to_dict())
    legacy = _npz()
    storage.set_trial_user_attr(trial_id, "outputs", base64.b64encode(legacy).decode())
    storage.set_trial_user_attr(trial_id, "outcome", "complete")
    storage.set_trial_state_values(trial_id, TrialState.COMPLETE, [0.5])
    fresh = _queue(study)
    assert fresh.summary().complete == 1
    assert fresh.claim(WorkerIdentity("w1")).spec.key != claim.spec.key
    export(fresh, study.results_dir)
    assert load_outputs(study.results_dir, claim.spec.key)["latent"].shape == (4, 2)


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
    from ablate.engine.doctor import diagnose
    from ablate.results import export, load_outputs, prepare_results_dir

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
    export(queue, study.results_dir)
    key = expand_trials(study)[2].key
    assert load_outputs(study.results_dir, key)["latent"].shape == (4, 2)
    (study.results_dir / "outputs" / f"{key}.npz").unlink()
    findings = diagnose(study.results_dir, postgres_url, repair=True)
    assert [f.level for f in findings if f.level == "problem"] == []
    assert (study.results_dir / "outputs" / f"{key}.npz").exists()


@pytest.mark.postgres
def test_a_postgresql_study_without_index_rows_gets_them_on_open(
    tmp_path: Path, postgres_url: str
) -> None:
    """A study an older ablate started (no ablate_trials rows), or rows a crash cut off."""
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
    from ablate.engine.reading import StoredTrial, read_trials

    study = _study(tmp_path)
    queue = _queue(study, postgres_url)
    queue.populate(expand_trials(study))
    me = WorkerIdentity("w1")
    queue.finish(queue.claim(me), _realistic(2, None))
    queue.finish(queue.claim(me), TrialResult(status="failed", error="x", transient=True))
    queue.claim(me)  # one running, the rest waiting (and a retry enqueued)
    narrow = read_trials(queue.storage, queue.study_id)
    full = sorted(queue._trials(), key=lambda t: t.number)
    assert all(isinstance(t, StoredTrial) for t in narrow) and len(narrow) == len(full) == 5
    for a, b in zip(narrow, full, strict=True):
        assert (a._trial_id, a.number, a.state) == (b._trial_id, b.number, b.state)
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
