"""The trial queue on real Optuna journal storage: once, atomically, exactly once complete."""

from __future__ import annotations

import dataclasses
import multiprocessing
import re
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pandas as pd
import pytest

from ablate.errors import AblateError
from ablate.queue.claims import TrialQueue, open_queue
from ablate.queue.workers import WorkerIdentity, start_ticks
from ablate.study import parse_study
from ablate.study.grid import expand_trials
from ablate.study.settings import Study
from ablate.training.records import TrialResult
from tests.helpers import run_cli, start_cli, tiny_study_text

COMPLETE = TrialResult(
    status="complete", values={"test_loss": 0.5, "test_recon_loss": 0.4, "test_kl_loss": 0.1}
)
# A failure trying again may cure (out of memory, say), and one that comes back every time.
FAILED = TrialResult(
    status="failed", error="RuntimeError: boom", traceback="Traceback ...", transient=True
)
BROKEN = TrialResult(status="failed", error="KeyError: 'width'", traceback="Traceback ...")
DIVERGED = TrialResult(status="diverged", error="the loss became NaN or infinite in epoch 1")


@pytest.fixture
def study(tmp_path: Path) -> Study:
    return parse_study(tiny_study_text(tmp_path / "results"))


def _queue(study: Study) -> TrialQueue:
    queue = open_queue(study, None)
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


def test_a_failure_that_comes_back_every_time_is_not_retried_until_the_next_run(
    study: Study,
) -> None:
    queue = _queue(study)  # run.retries is 1, but a missing key fails every attempt alike
    first = queue.claim(WorkerIdentity("w1"))
    recorded = queue.finish(first, BROKEN)
    assert recorded is not None and not recorded.retried
    assert queue.summary().failed == 1 and queue.summary().waiting == 3
    # a new run of the study (its cause may be fixed meanwhile) tries it once more ...
    assert queue.populate(expand_trials(study), retry_failed=True) == 1
    assert queue.summary().waiting == 4
    # ... and a diverged trial is a result: no new run tries it again
    while (claim := queue.claim(WorkerIdentity("w1"))) is not None:
        queue.finish(claim, DIVERGED if claim.spec.key == first.spec.key else COMPLETE)
    assert queue.populate(expand_trials(study), retry_failed=True) == 0
    record = next(r for r in queue.records() if r.key == first.spec.key)
    assert (record.status, record.attempts) == ("diverged", 2)


def test_no_retries_means_one_attempt(study: Study) -> None:
    queue = _queue(dataclasses.replace(study, run=dataclasses.replace(study.run, retries=0)))
    claim = queue.claim(WorkerIdentity("w1"))
    queue.finish(claim, FAILED)
    assert queue.summary().failed == 1 and queue.summary().waiting == 3


def _dead_process() -> WorkerIdentity:
    proc = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(30)"])
    ticks = start_ticks(proc.pid)
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
    assert queue.finish(claim, COMPLETE) is None
    for c in taken:
        queue.finish(c, COMPLETE)
    record = next(r for r in queue.records() if r.key == claim.spec.key)
    assert (record.status, record.attempts, record.trial_number) == ("complete", 2, again.number)
    assert queue.summary().duplicates == 0


def test_a_silent_worker_elsewhere_is_declared_lost_after_the_heartbeat_timeout(
    study: Study,
) -> None:
    queue = _queue(study)
    queue.policy = dataclasses.replace(queue.policy, stale_after=0.5)
    remote = WorkerIdentity("w1", host="another-machine", boot="x", pid=1)
    claim = queue.claim(remote)
    assert queue.heartbeat(claim, {"epoch": 1})
    assert queue.recover_lost() == []  # fresh heartbeat
    time.sleep(0.7)
    assert queue.recover_lost() == [claim.spec.cell.label]
    assert queue.heartbeat(claim, {"epoch": 2}) is False  # it is no longer that worker's


def test_lost_trials_give_up_after_lost_retries(study: Study) -> None:
    queue = _queue(study)
    queue.policy = dataclasses.replace(queue.policy, lost_retries=1)  # two attempts in all
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
    queue.enqueue([spec], attempt=1)  # as if a second coordinator had populated concurrently
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
        open_queue(changed, None)
    more = dataclasses.replace(study, replicates=2)  # more seeds join the same study
    queue = open_queue(more, None)
    assert queue.populate(expand_trials(more)) == 4


def test_joining_a_study_that_does_not_exist_says_how_to_start_it(study: Study) -> None:
    with pytest.raises(AblateError, match="Start it first"):
        open_queue(study, None, create=False)


def _hammer(results: str, name: str, storage_url: str | None, out: Any) -> None:
    """A worker that claims and finishes trials as fast as the storage allows."""
    study = parse_study(tiny_study_text(results, replicates=50))
    queue = open_queue(study, storage_url, create=False)
    me = WorkerIdentity(name)
    done = []
    while (claim := queue.claim(me)) is not None:
        queue.heartbeat(claim, {"epoch": 1})
        queue.finish(claim, COMPLETE)
        done.append(claim.spec.key)
    out.put(done)


def _eight_at_once(tmp_path: Path, storage_url: str | None) -> None:
    study = parse_study(tiny_study_text(tmp_path / "results", replicates=50))  # 200 trials
    queue = open_queue(study, storage_url)
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


OPEN = """
import sys
from pathlib import Path
from ablate.storage.opening import open_storage
open_storage(sys.argv[1], Path(sys.argv[2]))
"""


@pytest.mark.slow
@pytest.mark.postgres
def test_processes_that_open_a_new_database_at_once_all_open_it(
    tmp_path: Path, postgres_url: str
) -> None:
    """Optuna creates its tables on first open; a run and a status (or workers) that open a new
    database together race to create them (seen: "duplicate key ... pg_type_typname_nsp_index"
    from a tutorial's `ablate status` beside its `ablate run`). Each opens it, whoever wins."""
    command = [sys.executable, "-c", OPEN, postgres_url, str(tmp_path)]
    procs = [subprocess.Popen(command, stderr=subprocess.PIPE, text=True) for _ in range(6)]
    errors = [p.communicate(timeout=120)[1] for p in procs]
    assert [p.returncode for p in procs] == [0] * 6, errors


# ---------------------------------------------------------------------------------------------
# The database server stopped under a running study


def _start_run(study_path: Path, cwd: Path, url: str, **env: str) -> subprocess.Popen[str]:
    return start_cli("run", str(study_path), "--workers", "2", "--storage", url, cwd=cwd,
                     env=env)  # fmt: skip


def _wait_for_line(proc: subprocess.Popen[str], prefix: str, seen: list[str]) -> None:
    assert proc.stderr is not None
    for line in proc.stderr:
        seen.append(line)
        if line.startswith(prefix):
            return
    raise AssertionError("".join(seen))


def _assert_no_secret(password: str, *texts: str, folder: Path) -> None:
    for text in texts:
        assert password not in text
    for path in folder.rglob("*"):
        if path.is_file():
            assert password.encode() not in path.read_bytes(), path


@pytest.mark.slow
@pytest.mark.postgres
def test_a_database_restart_mid_study_is_ridden_out(tmp_path: Path, private_postgres: Any) -> None:
    study_path = tmp_path / "tiny.yaml"
    study_path.write_text(tiny_study_text(tmp_path / "results", epochs=2, replicates=2))  # 8
    proc = _start_run(study_path, tmp_path, private_postgres.url)
    seen: list[str] = []
    _wait_for_line(proc, "[2/8]", seen)
    private_postgres.stop()
    time.sleep(6)  # workers hit the closed server, back off and retry
    private_postgres.start()
    out, err = proc.communicate(timeout=600)
    err = "".join(seen) + err
    assert proc.returncode == 0, err
    assert "storage unreachable" in err and "retrying in" in err  # said clearly
    assert "8/8 complete" in out
    trials = pd.read_parquet(tmp_path / "results" / "tiny" / "trials.parquet")
    assert len(trials) == 8 and trials["trial_key"].is_unique
    assert (trials["status"] == "complete").all()
    # the password appears nowhere: not in output, logs, manifest, study or results
    _assert_no_secret(private_postgres.PASSWORD, out, err, folder=tmp_path / "results")
    assert "ablate:***@127.0.0.1" in (tmp_path / "results" / "tiny" / "manifest.json").read_text()


@pytest.mark.slow
@pytest.mark.postgres
def test_a_database_that_stays_down_stops_the_run_and_loses_nothing(
    tmp_path: Path, private_postgres: Any
) -> None:
    study_path = tmp_path / "tiny.yaml"
    study_path.write_text(tiny_study_text(tmp_path / "results", epochs=2, replicates=2))
    proc = _start_run(study_path, tmp_path, private_postgres.url, ABLATE_STORAGE_TIMEOUT="8")
    seen: list[str] = []
    _wait_for_line(proc, "[3/8]", seen)
    private_postgres.stop()
    out, err = proc.communicate(timeout=600)
    err = "".join(seen) + err
    assert proc.returncode == 2, err
    assert "unreachable for 8 s" in err and "Every result recorded before remains" in err
    _assert_no_secret(private_postgres.PASSWORD, out, err, folder=tmp_path / "results")
    spooled = list((tmp_path / "results" / "tiny" / "spool").glob("*.json"))

    private_postgres.start()
    rerun = run_cli("run", str(study_path), "--storage", private_postgres.url, cwd=tmp_path)
    assert rerun.returncode == 0, rerun.stderr
    trained = int(re.search(r"(\d+) trained in this run", rerun.stdout).group(1))
    assert trained <= 8 - 3 - len(spooled)  # the 3 recorded before, and the spool, not redone
    assert rerun.stderr.count("from ") >= len(spooled)
    trials = pd.read_parquet(tmp_path / "results" / "tiny" / "trials.parquet")
    assert len(trials) == 8 and trials["trial_key"].is_unique
    assert (trials["status"] == "complete").all()
    assert not list((tmp_path / "results" / "tiny" / "spool").glob("*.json"))


@pytest.mark.slow  # seconds: the fast part stays under 3 minutes
def test_an_unreachable_database_is_a_clear_error_without_the_password(tmp_path: Path) -> None:
    study_path = tmp_path / "tiny.yaml"
    study_path.write_text(tiny_study_text(tmp_path / "results"))
    url = "postgresql://ablate:hunter2-very-secret@127.0.0.1:9/ablate"
    proc = run_cli("run", str(study_path), "--storage", url, cwd=tmp_path,
                   env={"ABLATE_STORAGE_TIMEOUT": "2"})  # fmt: skip
    assert proc.returncode == 2
    assert "cannot open the storage postgresql://ablate:***@127.0.0.1:9/ablate" in proc.stderr
    _assert_no_secret("hunter2-very-secret", proc.stdout, proc.stderr, folder=tmp_path)


def test_a_claim_builds_no_design(tmp_path: Path) -> None:
    """A worker runs a trial from the spec stored with it: claiming never expands the study's
    design (counted with a profiler hook on the design builders, no mock), while filling the
    queue does."""
    study = parse_study(f"""
name: frac
trainer: tests.user_trainers:noisy
responses: {{score: max}}
factors: {{a: [false, true], b: [false, true], c: [false, true], d: [false, true],
          e: [false, true]}}
design: {{type: fractional, resolution: III}}
results: {tmp_path}
""")
    builders = {"build_runs", "expand_trials", "runs", "design_runs", "fractional"}
    calls: list[str] = []

    def hook(frame: Any, event: str, arg: Any) -> None:
        code = frame.f_code
        if event == "call" and code.co_name in builders and "ablate" in code.co_filename:
            calls.append(code.co_name)

    queue = open_queue(study, None)
    sys.setprofile(hook)
    try:
        queue.populate(expand_trials(study))
    finally:
        sys.setprofile(None)
    assert calls  # filling the queue builds the design
    calls.clear()
    other = open_queue(study, None, create=False)  # another worker, as it opens the study
    sys.setprofile(hook)
    try:
        claims = [c for _ in range(8) if (c := other.claim(WorkerIdentity("w2"))) is not None]
    finally:
        sys.setprofile(None)
    assert len(claims) == 8 and calls == []
    assert {c.spec.key for c in claims} == {s.key for s in expand_trials(study)}
