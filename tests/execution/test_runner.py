"""Worker processes: many at once, killed ones replaced, failures recorded, nothing twice."""

from __future__ import annotations

import json
import os
import random
import re
import signal
import time
from pathlib import Path

import pandas as pd
import pytest

from ablate.execution.planning import plan_workers
from ablate.execution.runner import run_study
from ablate.queue.claims import open_queue
from ablate.study import load_study, parse_study
from tests.helpers import ROOT, run_cli, running_worker_pid, start_cli, tiny_study_text


def test_plan_workers_pins_groups_to_gpus_and_shares_cores() -> None:
    study = parse_study(tiny_study_text("r"))
    gpu = plan_workers(study, workers_per_gpu=2, remaining=100, gpus=2, cores=16)
    assert [s.gpu for s in gpu] == ["0", "0", "1", "1"]
    assert {s.threads for s in gpu} == {4}
    cpu = plan_workers(study, remaining=100, gpus=0, cores=2)
    assert [(s.gpu, s.threads) for s in cpu] == [("", 1), ("", 1)]
    big = plan_workers(study, remaining=100, gpus=0, cores=32)
    assert len(big) == 16 and big[0].threads == 2
    assert len(plan_workers(study, workers=8, remaining=3, gpus=0, cores=2)) == 3
    wrap = plan_workers(study, workers=5, workers_per_gpu=2, remaining=9, gpus=2, cores=8)
    assert [s.gpu for s in wrap] == ["0", "0", "1", "1", "0"]


def _assert_each_trial_once(results: Path, n: int) -> pd.DataFrame:
    trials = pd.read_parquet(results / "trials.parquet")
    assert len(trials) == n and trials["trial_key"].is_unique
    assert not trials.duplicated(["cell_index", "replicate"]).any()
    return trials


def _four_workers(tmp_path: Path, storage_url: str | None) -> None:
    study = parse_study(tiny_study_text(tmp_path / "results", replicates=3))  # 12 trials
    summary = run_study(study, storage_url=storage_url, workers=4, live=False)
    assert (summary.complete, summary.total, summary.workers) == (12, 12, 4)
    trials = _assert_each_trial_once(study.results_dir, 12)
    assert (trials["status"] == "complete").all()
    assert trials["worker"].nunique() > 1  # the work was shared
    queue = open_queue(study, storage_url, create=False)
    assert len(queue.store.trials()) == 12  # no retries, no duplicates: one Optuna trial each
    # a second run of the finished study trains nothing
    again = run_study(study, storage_url=storage_url, workers=4, live=False)
    assert again.trained == 0 and again.workers == 0


@pytest.mark.slow
def test_four_workers_finish_the_grid_with_no_duplicate_and_no_gap(tmp_path: Path) -> None:
    _four_workers(tmp_path, None)


@pytest.mark.slow
@pytest.mark.postgres
def test_four_workers_share_a_postgresql_study(tmp_path: Path, postgres_url: str) -> None:
    _four_workers(tmp_path, postgres_url)


@pytest.mark.slow
def test_a_worker_killed_mid_trial_still_yields_one_complete_row_per_trial(
    tmp_path: Path,
) -> None:
    study_path = tmp_path / "tiny.yaml"
    study_path.write_text(tiny_study_text(tmp_path / "results", epochs=3, replicates=2))
    proc = start_cli("run", str(study_path), "--workers", "2", cwd=tmp_path)
    victim = running_worker_pid(study_path)
    os.kill(victim, signal.SIGKILL)
    out, err = proc.communicate(timeout=300)
    assert proc.returncode == 0, err
    assert "killed by signal 9" in err and "requeued" in err
    trials = _assert_each_trial_once(tmp_path / "results" / "tiny", 8)
    assert (trials["status"] == "complete").all()
    assert trials["attempts"].max() == 2  # the killed trial, run again
    assert "8/8 complete" in out


@pytest.mark.slow
def test_a_failing_and_a_diverging_trial_are_recorded_and_the_study_goes_on(
    tmp_path: Path,
) -> None:
    study_path = tmp_path / "faulty.yaml"
    study_path.write_text(
        "name: faulty\n"
        "model: {builder: 'tests.faulty_models:build'}\n"
        "factors: {mode: [ok, nan, raise], width: [4, 8]}\n"
        "training: {epochs: 2, batch_size: 32}\n"
        "data: {dataset: mnist-sample, train_size: 64, test_size: 32}\n"
        f"results: {tmp_path / 'results'}\n"
        "replicates: 2\n"
        "run: {retries: 1}\n"
    )
    proc = run_cli(
        "run", str(study_path), "--workers", "2", cwd=tmp_path, env={"PYTHONPATH": str(ROOT)}
    )
    assert proc.returncode == 0, proc.stderr
    assert "4/12 complete, 4 failed, 4 diverged" in proc.stdout
    trials = pd.read_parquet(tmp_path / "results" / "faulty" / "trials.parquet")
    by_mode = {mode: set(group["status"]) for mode, group in trials.groupby("mode")}
    assert by_mode == {"ok": {"complete"}, "nan": {"diverged"}, "raise": {"failed"}}
    bad = trials[trials["mode"] != "ok"]
    assert (bad["attempts"] == 2).all()  # retried once, then given up: not forever
    assert bad[bad["mode"] == "raise"]["error"].str.contains("exploded on purpose").all()
    assert bad[bad["mode"] == "raise"]["traceback"].str.contains("Traceback").all()
    assert bad[bad["mode"] == "nan"]["error"].str.contains("NaN").all()
    # the analysis leaves them out, and says so
    analysis = run_cli("analyze", str(tmp_path / "results" / "faulty"), "--factors", "width",
                       "--format", "json", env={"PYTHONPATH": str(ROOT)})  # fmt: skip
    assert analysis.returncode == 0, analysis.stderr
    data = json.loads(analysis.stdout)
    assert data["fit"]["n_used"] == 4
    assert data["fit"]["excluded"] == {"failed": 4, "diverged": 4}
    assert any("4 failed trials" in note and "4 diverged" in note for note in data["notes"])


BUILDER = """\
import keras
from keras import layers


class Lookup(layers.Layer):
    def call(self, x, training=None):
        if training:
            settings = {{"width": 4}}
            return x * settings["{key}"]
        return x


def build(*, input_shape, width):
    inputs = keras.Input(input_shape)
    h = layers.Dense(width, activation="relu")(layers.Flatten()(inputs))
    h = layers.Dense(784, activation="sigmoid")(Lookup()(h))
    return keras.Model(inputs, layers.Reshape(input_shape)(h))
"""


@pytest.mark.slow
def test_a_study_whose_first_trials_fail_alike_stops_and_reruns_once_fixed(
    tmp_path: Path,
) -> None:
    """Every trial would fail in training (a missing key, past the checks before the run,
    which only build the model and run it forward): the run stops after the first three,
    exit 2, training nothing else; once the code is fixed, a rerun retries them and
    completes the study."""
    (tmp_path / "mybuilder.py").write_text(BUILDER.format(key="depth"))
    study_path = tmp_path / "study.yaml"
    study_path.write_text(
        "name: alike\nmodel: {builder: 'mybuilder:build'}\nfactors: {width: [4, 8, 16, 32]}\n"
        "training: {epochs: 1, batch_size: 32}\nreplicates: 2\n"
        "data: {dataset: mnist-sample, train_size: 64, test_size: 32}\n"
        f"results: {tmp_path / 'results'}\n"
    )
    proc = run_cli("run", str(study_path), "--workers", "2", cwd=tmp_path)
    assert proc.returncode == 2, proc.stderr
    assert "the first 3 trials all failed with the same error: KeyError in Lookup.call(): " \
        "depth (cells: width=" in proc.stderr  # fmt: skip
    assert "Traceback" not in proc.stderr and 'mybuilder.py", line 9, in call' in proc.stderr
    queue = open_queue(load_study(study_path), None, create=False)  # fmt: skip
    started = [e for e in queue.store.entries() if e.state != "waiting"]
    # Three failures, and each worker's next claim handed back -- or, on a loaded machine,
    # more: trials that fail in 0.1 s can fail before the workers hear of the stop (seen in
    # .ci/run: 9 attempts). Whatever the count, nothing trained and the message says it; a
    # worker that outlives its grace period on a loaded machine has its trial recovered as lost.
    states = [(e.state, e.outcome) for e in started]
    assert all(s == "fail" and o in ("failed", "interrupted", "lost") for s, o in states), states
    assert sum(e.outcome == "failed" for e in started) >= 3
    assert queue.summary().complete == 0 and queue.summary().total == 8
    summary = queue.summary()
    assert f"{summary.failed} trials failed in all; {summary.waiting} trials are back" in \
        " ".join(proc.stderr.split())  # fmt: skip
    del queue
    (tmp_path / "mybuilder.py").write_text(BUILDER.format(key="width"))  # the fix
    again = run_cli("run", str(study_path), "--workers", "2", cwd=tmp_path)
    assert again.returncode == 0, again.stderr
    assert "alike: 8/8 complete" in again.stdout
    trials = pd.read_parquet(tmp_path / "results" / "alike" / "trials.parquet")
    assert len(trials) == 8 and (trials["status"] == "complete").all()
    assert trials["attempts"].max() == 2  # the three that failed: one attempt each, then this


@pytest.mark.slow
def test_a_second_machine_joins_with_ablate_worker_and_status_sees_both(tmp_path: Path) -> None:
    study_path = tmp_path / "tiny.yaml"
    study_path.write_text(tiny_study_text(tmp_path / "results", epochs=2, replicates=2))
    first = start_cli("run", str(study_path), "--workers", "1", cwd=tmp_path)
    running_worker_pid(study_path)
    results = tmp_path / "results" / "tiny"
    status = run_cli("status", str(results))
    assert status.returncode == 0 and "running +" in status.stdout, status.stderr
    joined = run_cli("worker", str(results), "--workers", "1", cwd=tmp_path)
    first_out, _ = first.communicate(timeout=300)
    assert joined.returncode == 0, joined.stderr
    assert first.returncode == 0
    trials = _assert_each_trial_once(results, 8)
    assert (trials["status"] == "complete").all()
    by_first = int(re.search(r"(\d+) trained in this run", first_out).group(1))
    by_joined = int(re.search(r"(\d+) trained in this run", joined.stdout).group(1))
    assert by_first + by_joined == 8 and by_joined >= 1
    final = run_cli("status", str(results))
    assert "8/8 complete" in final.stdout


def test_joining_a_study_that_was_never_started_is_a_clear_error(tmp_path: Path) -> None:
    study_path = tmp_path / "tiny.yaml"
    study_path.write_text(tiny_study_text(tmp_path / "results"))
    proc = run_cli("worker", str(study_path), cwd=tmp_path)
    assert proc.returncode == 2 and "Start it first" in proc.stderr


# ---------------------------------------------------------------------------------------------
# Fault injection


def _children(pid: int) -> list[int]:
    """Direct child processes of ``pid`` (from /proc)."""
    out = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                stat = (entry / "stat").read_text()
            except OSError:
                continue
            if int(stat.rsplit(")", 1)[1].split()[1]) == pid:
                out.append(int(entry.name))
    return out


def _alive(pid: int) -> bool:
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return False
    return stat.rsplit(")", 1)[1].split()[0] != "Z"


def _workers(coordinator: int) -> list[int]:
    """The worker processes of an `ablate run` (multiprocessing's resource tracker aside)."""
    found = []
    for pid in _children(coordinator):
        try:
            cmdline = Path(f"/proc/{pid}/cmdline").read_bytes().decode(errors="replace")
        except OSError:
            continue
        if "spawn_main" in cmdline and "resource_tracker" not in cmdline:
            found.append(pid)
    return found


@pytest.mark.slow
def test_random_workers_killed_at_random_moments_still_finish_every_trial_once(
    tmp_path: Path,
) -> None:
    study_path = tmp_path / "tiny.yaml"
    study_path.write_text(tiny_study_text(tmp_path / "results", epochs=2, replicates=3))  # 12
    proc = start_cli("run", str(study_path), "--workers", "2", cwd=tmp_path)
    rng = random.Random(11)
    kills = 0
    logs = tmp_path / "results" / "tiny" / "logs"  # made as the workers start (the checks
    while not logs.exists() and proc.poll() is None:  # before the run are over by then)
        time.sleep(0.1)
    while kills < 4 and proc.poll() is None:
        time.sleep(rng.uniform(0.5, 4.0))  # importing, loading data, training, recording...
        victims = _workers(proc.pid)
        if victims:
            os.kill(rng.choice(victims), signal.SIGKILL)
            kills += 1
    out, err = proc.communicate(timeout=600)
    assert proc.returncode == 0, err
    assert kills >= 3, "the study finished before the faults could be injected"
    assert len(re.findall(r"^w\d+ killed by signal 9", err, re.MULTILINE)) == kills
    trials = _assert_each_trial_once(tmp_path / "results" / "tiny", 12)
    assert (trials["status"] == "complete").all()
    assert "12/12 complete" in out


@pytest.mark.slow
def test_killing_the_coordinator_stops_its_workers_and_a_rerun_completes(
    tmp_path: Path,
) -> None:
    study_path = tmp_path / "tiny.yaml"
    study_path.write_text(tiny_study_text(tmp_path / "results", epochs=2, replicates=2))
    proc = start_cli("run", str(study_path), "--workers", "2", cwd=tmp_path)
    running_worker_pid(study_path)
    workers = _workers(proc.pid)
    assert len(workers) == 2
    proc.kill()
    proc.wait()
    deadline = time.monotonic() + 30
    while any(_alive(w) for w in workers) and time.monotonic() < deadline:
        time.sleep(0.2)
    assert not any(_alive(w) for w in workers), "workers outlived their coordinator"
    rerun = run_cli("run", str(study_path), cwd=tmp_path)
    assert rerun.returncode == 0, rerun.stderr
    trials = _assert_each_trial_once(tmp_path / "results" / "tiny", 8)
    assert (trials["status"] == "complete").all()


@pytest.mark.slow
def test_two_runs_of_one_study_at_once_cooperate_and_train_nothing_twice(tmp_path: Path) -> None:
    study_path = tmp_path / "tiny.yaml"
    study_path.write_text(tiny_study_text(tmp_path / "results", epochs=2, replicates=2))
    command = ["run", str(study_path), "--workers", "1"]
    both = [start_cli(*command, cwd=tmp_path) for _ in range(2)]
    outputs = [p.communicate(timeout=600) for p in both]
    for p, (_, err) in zip(both, outputs, strict=True):
        assert p.returncode == 0, err
    trained = [int(re.search(r"(\d+) trained in this run", out).group(1)) for out, _ in outputs]
    assert sum(trained) == 8  # every trial trained by exactly one of them
    trials = _assert_each_trial_once(tmp_path / "results" / "tiny", 8)
    assert (trials["status"] == "complete").all()
    study = load_study(study_path)
    queue = open_queue(study, None, create=False)
    assert queue.summary().duplicates == 0
    complete = [t for t in queue.store.trials() if t.state == "COMPLETE"]
    assert len(complete) == 8
