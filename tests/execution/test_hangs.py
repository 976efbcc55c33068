"""A trial that hangs cannot hold a study hostage: real processes, real signals, no mocks.

A worker stopped with SIGSTOP (one of two, or the only one), a training function that never
returns, one that reports progress for ever: each study ends by itself, within its limits, with
every trial complete exactly once; a lost worker's late result is refused on both storages."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import pandas as pd
import pytest

from ablate.queue.claims import opened_queue
from ablate.queue.workers import WorkerIdentity
from ablate.study import load_study, parse_study
from ablate.study.grid import expand_trials
from ablate.training.records import TrialResult
from tests.helpers import ROOT, function_study_text, running_worker_pid, start_cli

ENV = {"PYTHONPATH": str(ROOT)}


def _each_trial_once(results: Path, n: int) -> pd.DataFrame:
    trials = pd.read_parquet(results / "trials.parquet")
    assert len(trials) == n and trials["trial_key"].is_unique
    assert (trials["status"] == "complete").all(), trials[["status", "error"]]
    return trials


@pytest.mark.slow
@pytest.mark.parametrize("workers", [1, 2])
def test_a_stopped_worker_is_ended_and_the_run_ends_by_itself(tmp_path: Path, workers: int) -> None:
    """SIGSTOP, as a hung NFS read or a stuck driver stops a process: its coordinator hears
    no pulse for the stale time, ends it, requeues its trial and starts a replacement."""
    study = tmp_path / "fn.yaml"
    study.write_text(function_study_text(tmp_path / "results", "sleepy", replicates=2,
                                         options="{seconds: 1.5}"))  # fmt: skip
    proc = start_cli("run", str(study), "--workers", str(workers), cwd=tmp_path, env=ENV)
    victim = running_worker_pid(study)
    os.kill(victim, signal.SIGSTOP)
    started = time.monotonic()
    out, err = proc.communicate(timeout=180)
    took = time.monotonic() - started
    assert proc.returncode == 0, err
    assert "fell silent" in err and "ending it" in err, err
    _each_trial_once(tmp_path / "results" / "fn", 8)
    with opened_queue(load_study(study), None, create=False) as queue:
        handed = [e for e in queue.store.entries() if e.outcome in ("interrupted", "lost")]
    assert len(handed) == 1  # the stopped worker's trial, handed back once, trained again
    assert took < 90, took  # stale after 2.5 s, 10 s of grace, 8 trials of 1.5 s
    assert "8/8 complete" in out


@pytest.mark.slow
@pytest.mark.parametrize(("how", "run", "outcome"), [
    ("silent", "{heartbeat_seconds: 0.5, stall_timeout: 3, retries: 1}", "stalled"),
    ("busy", "{heartbeat_seconds: 0.5, trial_timeout: 4, retries: 1}", "timed out"),
])  # fmt: skip
def test_a_trial_that_never_returns_is_ended_and_tried_again(
    tmp_path: Path, how: str, run: str, outcome: str
) -> None:
    """A deadlock (no progress) past run.stall_timeout, an endless loop that reports progress
    past run.trial_timeout: the trial is taken back, its worker replaced, and it is tried
    again; the study completes by itself."""
    study = tmp_path / "fn.yaml"
    options = f"{{marks: '{tmp_path}', how: {how}}}"
    study.write_text(function_study_text(tmp_path / "results", "hangs_once", run=run,
                                         options=options))  # fmt: skip
    started = time.monotonic()
    proc = start_cli("run", str(study), "--workers", "1", cwd=tmp_path, env=ENV)
    _, err = proc.communicate(timeout=180)
    took = time.monotonic() - started
    assert proc.returncode == 0, err
    assert f"{outcome}: " in err and "tried again" in err, err
    line = next(x for x in err.splitlines() if x.startswith("[") and "tried again" in x)
    took_before = re.search(r"\((\d+\.\d) s, w1\)", line)
    assert took_before and float(took_before.group(1)) >= 3, line  # its attempt's time, not 0
    trials = _each_trial_once(tmp_path / "results" / "fn", 4)
    hung = trials[trials["wide"] & trials["deep"]]
    assert int(hung["attempts"].iloc[0]) == 2
    with opened_queue(load_study(study), None, create=False) as queue:
        outcomes = [e.outcome for e in queue.store.entries_of(str(hung["trial_key"].iloc[0]))]
    assert outcomes == [outcome, "complete"]
    assert took < 90, took


LATE = """
import os, signal, sys
from ablate.queue.claims import opened_queue
from ablate.queue.workers import WorkerIdentity
from ablate.study import parse_study
from ablate.training.records import TrialResult
study = parse_study(open(sys.argv[1]).read())
with opened_queue(study, sys.argv[2] or None, create=False) as queue:
    claim = queue.claim(WorkerIdentity("late", host="elsewhere", boot="b"))
    queue.heartbeat(claim, {"epoch": 1})
    print(claim.spec.key, flush=True)
    os.kill(os.getpid(), signal.SIGSTOP)  # a hung read: silent until continued
    recorded = queue.finish(claim, TrialResult(status="complete", values={"score": 9.0,
                                                                          "loss": -9.0}))
    print("refused" if recorded is None else "recorded", flush=True)
"""


def _stopped(pid: int) -> bool:
    return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] == "T"


@pytest.mark.slow
@pytest.mark.parametrize(
    "backend", ["journal", pytest.param("postgresql", marks=pytest.mark.postgres)]
)
def test_a_lost_workers_late_result_is_never_counted_twice(
    tmp_path: Path, backend: str, request: pytest.FixtureRequest
) -> None:
    url = request.getfixturevalue("postgres_url") if backend == "postgresql" else None
    text = function_study_text(tmp_path / "results", "noisy", run="{heartbeat_seconds: 0.2}")
    (tmp_path / "fn.yaml").write_text(text)
    study = parse_study(text)
    with opened_queue(study, url) as queue:
        queue.populate(expand_trials(study))
    argv = [sys.executable, "-c", LATE, str(tmp_path / "fn.yaml"), url or ""]
    late = subprocess.Popen(argv, stdout=subprocess.PIPE, text=True, env={**os.environ, **ENV})
    assert late.stdout is not None
    key = late.stdout.readline().strip()
    while not _stopped(late.pid):
        time.sleep(0.05)
    time.sleep(1.2)  # past the stale time (5 heartbeats of 0.2 s)
    with opened_queue(study, url, create=False) as queue:
        (taken,) = queue.take_back()
        assert (taken.key, taken.outcome, taken.retried) == (key, "lost", True)
        while (claim := queue.claim(WorkerIdentity("w1"))) is not None:
            queue.finish(claim, TrialResult(status="complete", values={"score": 0.5, "loss": 0.5}))
        os.kill(late.pid, signal.SIGCONT)
        assert late.stdout.readline().strip() == "refused"
        late.wait(timeout=60)
        summary = queue.summary()
        assert (summary.complete, summary.total, summary.duplicates) == (4, 4, 0)
        record = next(r for r in queue.records() if r.key == key)
        assert record.result.value("score") == 0.5 and record.attempts == 2
