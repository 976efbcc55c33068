"""The trial queue on real Optuna journal storage: once, atomically, exactly once complete."""

from __future__ import annotations

import dataclasses
import multiprocessing
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest

from ablate.config import Study, parse_study
from ablate.errors import AblateError
from ablate.grid import expand_trials
from ablate.storage import TrialQueue, WorkerIdentity, _start_ticks, open_storage
from ablate.training import TrialResult
from tests.helpers import tiny_study_text

COMPLETE = TrialResult(status="complete", test_loss=0.5, test_recon_loss=0.4, test_kl_loss=0.1)
FAILED = TrialResult(status="failed", error="RuntimeError: boom", traceback="Traceback ...")
DIVERGED = TrialResult(status="diverged", error="the loss became NaN or infinite in epoch 1")


@pytest.fixture
def study(tmp_path: Path) -> Study:
    return parse_study(tiny_study_text(tmp_path / "results"))


def _queue(study: Study) -> TrialQueue:
    queue = TrialQueue.open(study, open_storage(None, study.results_dir))
    queue.populate(expand_trials(study))
    return queue


def test_populate_is_idempotent_and_keys_are_unique(study: Study) -> None:
    queue = _queue(study)
    assert queue.populate(expand_trials(study)) == 0
    summary = queue.summary()
    assert summary.total == summary.waiting == 4
    # another process opening the same journal sees the same study
    again = _queue(study)
    assert again.summary().total == 4


def test_claims_go_in_grid_order_and_each_trial_once(study: Study) -> None:
    queue = _queue(study)
    me = WorkerIdentity("w1")
    keys = []
    while (claim := queue.claim(me)) is not None:
        keys.append(claim.spec.key)
        assert queue.finish(claim, COMPLETE)
    assert keys == [s.key for s in expand_trials(study)]
    summary = queue.summary()
    assert (summary.complete, summary.waiting, summary.duplicates) == (4, 0, 0)
    records = queue.records()
    assert [r.status for r in records] == ["complete"] * 4
    assert all(r.attempts == 1 for r in records)


def test_a_failure_is_retried_up_to_the_limit_then_reported(study: Study) -> None:
    queue = _queue(study)  # run.retries defaults to 1: two attempts in all
    me = WorkerIdentity("w1")
    first = queue.claim(me)
    assert queue.finish(first, FAILED)
    assert queue.summary().waiting == 4  # requeued at the end of the queue
    attempts = []
    while (claim := queue.claim(me)) is not None:
        if claim.spec.key == first.spec.key:
            attempts.append(claim.attempt)
            queue.finish(claim, DIVERGED)
        else:
            queue.finish(claim, COMPLETE)
    assert attempts == [2]
    summary = queue.summary()
    assert (summary.complete, summary.diverged, summary.failed) == (3, 1, 0)
    record = next(r for r in queue.records() if r.key == first.spec.key)
    assert (record.status, record.attempts) == ("diverged", 2)
    assert "NaN" in record.result.error


def test_no_retries_means_one_attempt(study: Study) -> None:
    queue = _queue(dataclasses.replace(study, run=dataclasses.replace(study.run, retries=0)))
    claim = queue.claim(WorkerIdentity("w1"))
    queue.finish(claim, FAILED)
    assert queue.summary().failed == 1 and queue.summary().waiting == 3


def _dead_process() -> WorkerIdentity:
    proc = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(30)"])
    ticks = _start_ticks(proc.pid)
    proc.kill()
    proc.wait()
    return WorkerIdentity("w9", pid=proc.pid, start_ticks=ticks)


def test_a_trial_whose_worker_died_goes_back_to_the_queue(study: Study) -> None:
    queue = _queue(study)
    dead = _dead_process()
    claim = queue.claim(dead)
    assert queue.summary().running[0].worker["pid"] == dead.pid
    assert queue.recover_lost() == [claim.spec.cell.label]
    assert queue.recover_lost() == []  # once
    me = WorkerIdentity("w1")
    taken = [queue.claim(me) for _ in range(4)]
    again = next(c for c in taken if c.spec.key == claim.spec.key)
    assert again.attempt == 2
    # the dead worker's late result is refused: the trial is no longer its own
    assert queue.finish(claim, COMPLETE) is False
    for c in taken:
        queue.finish(c, COMPLETE)
    record = next(r for r in queue.records() if r.key == claim.spec.key)
    assert (record.status, record.attempts, record.trial_number) == ("complete", 2, again.number)
    assert queue.summary().duplicates == 0


def test_a_silent_worker_elsewhere_is_declared_lost_after_the_heartbeat_timeout(
    study: Study,
) -> None:
    queue = _queue(study)
    queue.stale_after = 0.5
    remote = WorkerIdentity("w1", host="another-machine", boot="x", pid=1)
    claim = queue.claim(remote)
    assert queue.heartbeat(claim, {"epoch": 1})
    assert queue.recover_lost() == []  # fresh heartbeat
    time.sleep(0.7)
    assert queue.recover_lost() == [claim.spec.cell.label]
    assert queue.heartbeat(claim, {"epoch": 2}) is False  # it is no longer that worker's


def test_lost_trials_give_up_after_lost_retries(study: Study) -> None:
    queue = _queue(study)
    queue.lost_retries = 1  # two attempts in all
    for _ in range(2):
        dead = _dead_process()
        while queue.claim(dead) is not None:
            pass
        assert len(queue.recover_lost()) == 4
    summary = queue.summary()
    assert summary.failed == 4 and summary.waiting == 0
    record = queue.records()[0]
    assert record.status == "failed" and record.attempts == 2
    assert "worker process died" in record.result.error


def test_an_interrupted_trial_is_requeued_without_counting_as_an_attempt(study: Study) -> None:
    queue = _queue(study)
    me = WorkerIdentity("w1")
    claim = queue.claim(me)
    queue.release(claim)
    claims = [queue.claim(me) for _ in range(4)]
    again = next(c for c in claims if c.spec.key == claim.spec.key)
    assert again.attempt == 2
    queue.finish(again, COMPLETE)
    record = next(r for r in queue.records() if r.key == claim.spec.key)
    assert record.attempts == 1


def test_a_duplicated_key_is_trained_once(study: Study) -> None:
    queue = _queue(study)
    spec = expand_trials(study)[0]
    queue._enqueue(spec, attempt=1)  # as if a second coordinator had populated concurrently
    me = WorkerIdentity("w1")
    claimed = []
    while (claim := queue.claim(me)) is not None:
        claimed.append(claim.spec.key)
        queue.finish(claim, COMPLETE)
    assert claimed.count(spec.key) == 1
    assert queue.summary().complete == 4 and queue.summary().duplicates == 0


def test_a_different_experiment_under_the_same_name_is_refused(study: Study) -> None:
    _queue(study)
    changed = dataclasses.replace(study, training=dataclasses.replace(study.training, epochs=7))
    with pytest.raises(AblateError, match=r"different settings \(training\.epochs: 1 then, 7 now"):
        TrialQueue.open(changed, open_storage(None, study.results_dir))
    more = dataclasses.replace(study, replicates=2)  # more seeds join the same study
    queue = TrialQueue.open(more, open_storage(None, study.results_dir))
    assert queue.populate(expand_trials(more)) == 4


def test_joining_a_study_that_does_not_exist_says_how_to_start_it(study: Study) -> None:
    with pytest.raises(AblateError, match="Start it first"):
        TrialQueue.open(study, open_storage(None, study.results_dir), create=False)


def _hammer(results: str, name: str, storage_url: str | None, out: Any) -> None:
    """A worker that claims and finishes trials as fast as the storage allows."""
    study = parse_study(tiny_study_text(results, replicates=50))
    queue = TrialQueue.open(study, open_storage(storage_url, study.results_dir), create=False)
    me = WorkerIdentity(name)
    done = []
    while (claim := queue.claim(me)) is not None:
        queue.heartbeat(claim, {"epoch": 1})
        queue.finish(claim, COMPLETE)
        done.append(claim.spec.key)
    out.put(done)


def _eight_at_once(tmp_path: Path, storage_url: str | None) -> None:
    study = parse_study(tiny_study_text(tmp_path / "results", replicates=50))  # 200 trials
    queue = TrialQueue.open(study, open_storage(storage_url, study.results_dir))
    queue.populate(expand_trials(study))
    ctx = multiprocessing.get_context("spawn")
    out = ctx.Queue()
    procs = [
        ctx.Process(target=_hammer, args=(str(tmp_path / "results"), f"w{i}", storage_url, out))
        for i in range(8)
    ]
    for p in procs:
        p.start()
    done = [key for _ in procs for key in out.get(timeout=300)]
    for p in procs:
        p.join(timeout=60)
        assert p.exitcode == 0  # no "database is locked", no other error
    assert len(done) == 200 and len(set(done)) == 200  # each trial once, none twice
    summary = queue.summary()
    assert (summary.complete, summary.duplicates, summary.waiting) == (200, 0, 0)


@pytest.mark.slow
def test_eight_concurrent_workers_share_the_journal_without_lock_errors(tmp_path: Path) -> None:
    _eight_at_once(tmp_path, None)


@pytest.mark.slow
@pytest.mark.postgres
def test_eight_concurrent_workers_share_a_postgresql_study(
    tmp_path: Path, postgres_url: str
) -> None:
    _eight_at_once(tmp_path, postgres_url)
