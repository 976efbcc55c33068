"""A study whose trainer is a command line runs as any other (`ablate run`, real processes,
real signals): a worker killed with SIGKILL takes its program with it and the trial is trained
again; Ctrl-C ends every program and a rerun completes the study; a program that hangs is ended
and tried again; a program that always fails stops the study, naming the log to read."""

from __future__ import annotations

import json
import os
import signal
import time
from pathlib import Path

import pandas as pd
import pytest

from ablate.queue.claims import opened_queue
from ablate.study import load_study
from tests.helpers import command_study_text, run_cli, start_cli, workers_of

pytestmark = pytest.mark.slow


def _study(tmp_path: Path, mode: str = "ok", **kw: object) -> Path:
    path = tmp_path / "cmd.yaml"
    path.write_text(command_study_text(tmp_path / "results", mode, **kw))  # type: ignore[arg-type]
    return path


def _each_trial_once(tmp_path: Path, n: int) -> pd.DataFrame:
    trials = pd.read_parquet(tmp_path / "results" / "cmd" / "trials.parquet")
    assert len(trials) == n and trials["trial_key"].is_unique
    assert (trials["status"] == "complete").all(), trials[["status", "error"]]
    return trials


def _alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return False
    return state not in ("Z", "X")


def _programs(tmp_path: Path) -> list[int]:
    """The pids of the programs (and their children) the trials have started so far."""
    found = []
    for name in ("pid", "child"):
        for path in (tmp_path / "results" / "cmd" / "trials").glob(f"*/{name}"):
            text = path.read_text()
            if text:
                found.append(int(text))
    return found


def _wait_for(condition: object, timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():  # type: ignore[operator]
            return
        time.sleep(0.1)
    raise AssertionError(f"timed out waiting for {what}")


def test_a_killed_worker_takes_its_program_with_it_and_the_trial_is_trained_again(
    tmp_path: Path,
) -> None:
    study = _study(tmp_path, seconds=2.0, replicates=2)
    proc = start_cli("run", str(study), "--workers", "2", cwd=tmp_path)
    _wait_for(lambda: len(_programs(tmp_path)) >= 1 and workers_of(proc.pid), 60, "a program")
    program = _programs(tmp_path)[0]
    worker = int(os.popen(f"ps -o ppid= -p {program}").read().strip())
    assert worker in workers_of(proc.pid)
    os.kill(worker, signal.SIGKILL)
    _wait_for(lambda: not _alive(program), 10, "the program of the killed worker to end")
    out, err = proc.communicate(timeout=180)
    assert proc.returncode == 0, err
    assert "killed by signal 9; starting a replacement" in err and "8/8 complete" in out
    trials = _each_trial_once(tmp_path, 8)
    assert trials["backend"].eq("command").all() and trials["epochs"].eq(2).all()
    env = json.loads(next((tmp_path / "results" / "cmd" / "trials").glob("*/env.json"))
                     .read_text())  # fmt: skip
    assert env["CUDA_VISIBLE_DEVICES"] == "" and env["OMP_NUM_THREADS"] == "1"  # the worker's
    epochs = pd.read_parquet(tmp_path / "results" / "cmd" / "epochs.parquet")
    assert len(epochs) == 16 and epochs[["score", "loss"]].notna().all().all()
    assert not [p for p in _programs(tmp_path) if _alive(p)]


def test_ctrl_c_ends_every_program_and_a_rerun_completes_the_study(tmp_path: Path) -> None:
    study = _study(tmp_path, seconds=3.0, replicates=2)
    proc = start_cli("run", str(study), "--workers", "2", cwd=tmp_path)
    _wait_for(lambda: len(_programs(tmp_path)) >= 2, 60, "two programs")
    time.sleep(0.5)
    proc.send_signal(signal.SIGINT)
    _, err = proc.communicate(timeout=120)
    assert proc.returncode == 130, err
    assert "Traceback" not in err and not [p for p in _programs(tmp_path) if _alive(p)]
    with opened_queue(load_study(study), None, create=False) as queue:
        summary = queue.summary()
        assert not summary.running and summary.waiting  # handed back, none lost
    again = run_cli("run", str(study), "--workers", "2", cwd=tmp_path)
    assert again.returncode == 0, again.stderr
    assert "8/8 complete" in again.stdout
    _each_trial_once(tmp_path, 8)


def test_a_program_that_hangs_is_ended_and_tried_again(tmp_path: Path) -> None:
    run = "{heartbeat_seconds: 0.5, stall_timeout: 3, retries: 1}"
    study = _study(tmp_path, "hang_once", run=run)
    started = time.monotonic()
    done = run_cli("run", str(study), "--workers", "1", cwd=tmp_path, timeout=180)
    assert done.returncode == 0, done.stderr
    assert "stalled: no sign of progress for" in done.stderr and "tried again" in done.stderr
    trials = _each_trial_once(tmp_path, 4)
    assert int(trials["attempts"].max()) == 2
    assert not [p for p in _programs(tmp_path) if _alive(p)]  # the hung one and its child
    assert time.monotonic() - started < 90


def test_a_program_that_always_fails_stops_the_study_naming_its_log(tmp_path: Path) -> None:
    study = _study(tmp_path, "fail", replicates=2)
    done = run_cli("run", str(study), "--workers", "2", cwd=tmp_path)
    assert done.returncode == 2, done.stderr
    words = " ".join(done.stderr.split())
    assert "the first 3 trials all failed with the same error" in words
    assert "the command exited with code 3" in words and "trial.log" in words
    assert "Traceback (most recent call last)" not in done.stderr.replace(
        "Traceback (most recent call last):\nValueError: bad shape", ""
    )  # the program's own output is quoted; ablate shows no traceback of its own


def test_a_program_that_fails_for_one_level_leaves_the_others_complete(tmp_path: Path) -> None:
    study = _study(tmp_path, "fail_wide", replicates=1)
    done = run_cli("run", str(study), "--workers", "1", cwd=tmp_path)
    trials = pd.read_parquet(tmp_path / "results" / "cmd" / "trials.parquet")
    failed = trials[trials["status"] == "failed"]
    assert set(failed["wide"]) == {True} and (trials[~trials["wide"]]["status"] == "complete").all()
    error = failed["error"].iloc[0]
    assert "exited with code 3" in error and "trial.log" in error
    assert done.returncode in (0, 2), done.stderr
