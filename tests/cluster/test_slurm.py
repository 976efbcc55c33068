"""`ablate submit --slurm` against a real one-node SLURM cluster (.ci/slurm-one-node starts it):
a study submitted as a job array of 2 workers, one task cancelled mid-trial with scancel, and
the study still completes with exactly one result per trial and nothing left RUNNING. Without
a cluster, the script and the refusal are still checked."""

from __future__ import annotations

import json
import shutil
import subprocess
import time
from pathlib import Path

import pandas as pd
import pytest

from tests.helpers import ROOT, command_study_text, run_cli

STUDY = """
name: sleepy
trainer: {function: "tests.user_trainers:sleepy", options: {seconds: 3}}
responses:
  score: {goal: max}
  loss: min
factors: {wide: [false, true], deep: [false, true]}
replicates: 3
results: results
run: {heartbeat_seconds: 1}
"""
ENV = {"PYTHONPATH": str(ROOT)}  # the jobs inherit it (sbatch exports the environment)


def _cluster_up() -> bool:
    if shutil.which("sinfo") is None:
        return False
    done = subprocess.run(["sinfo", "-h", "-o", "%t"], capture_output=True, text=True, timeout=30)
    return done.returncode == 0 and any(s in done.stdout for s in ("idle", "mix", "alloc"))


def _alive(pid: int) -> bool:
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] not in "ZX"
    except OSError:
        return False


def _status(folder: Path) -> dict:
    done = run_cli("status", "results/sleepy", "--format", "json", cwd=folder, env=ENV)
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout)


def _wait(condition: object, timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():  # type: ignore[operator]
            return
        time.sleep(0.5)
    raise AssertionError(f"timed out after {timeout:.0f} s waiting for {what}")


def test_the_dry_run_prints_a_job_array_of_workers(tmp_path: Path) -> None:
    (tmp_path / "study.yaml").write_text(STUDY)
    done = run_cli("submit", "study.yaml", "--slurm", "--array", "3", "--partition", "gpu",
                   "--gpus-per-task", "1", "--workers-per-task", "2", "--time", "2:00:00",
                   "--dry-run", cwd=tmp_path, env=ENV)  # fmt: skip
    assert done.returncode == 0, done.stderr
    script = done.stdout
    for line in ("#SBATCH --array=0-2", "#SBATCH --partition=gpu", "#SBATCH --gpus-per-task=1",
                 "#SBATCH --time=2:00:00", "#SBATCH --signal=B:TERM@120",
                 "#SBATCH --cpus-per-task=2", f"cd {tmp_path}"):  # fmt: skip
        assert line in script.splitlines(), line
    assert "-m ablate worker" in script and "--workers 2 --workers-per-gpu 2" in script
    assert not (tmp_path / "results").exists()  # a dry run queues nothing


def test_without_sbatch_submit_exits_2_before_queueing(tmp_path: Path) -> None:
    (tmp_path / "study.yaml").write_text(STUDY)
    done = run_cli("submit", "study.yaml", "--slurm", cwd=tmp_path,
                   env={**ENV, "PATH": str(tmp_path)})  # fmt: skip
    assert done.returncode == 2
    assert "sbatch is not on this machine's PATH" in done.stderr
    assert not (tmp_path / "results" / "sleepy" / "optuna.journal").exists()


@pytest.mark.slow
@pytest.mark.skipif(not _cluster_up(), reason="needs a SLURM cluster (.ci/slurm-one-node start)")
def test_a_cancelled_array_task_costs_no_trial(tmp_path: Path) -> None:
    """A study whose trainer is a program (tests/command_program.py, 3 s a trial): the task
    cancelled mid-trial ends its program too, and the trial is trained again elsewhere."""
    text = command_study_text(tmp_path / "results", name="sleepy", seconds=3, replicates=3,
                              run="{heartbeat_seconds: 1}").replace(str(tmp_path / "results"),
                                                                    "results")  # fmt: skip
    (tmp_path / "study.yaml").write_text(text)
    done = run_cli("submit", "study.yaml", "--slurm", "--array", "2", cwd=tmp_path, env=ENV)
    assert done.returncode == 0, done.stderr
    job = done.stdout.split("submitted job array ")[1].split()[0]

    def task_1_is_training() -> bool:
        return any(r["worker"].get("slurm") == f"{job}_1" for r in _status(tmp_path)["running"])

    _wait(task_1_is_training, 90, f"task {job}_1 to hold a running trial")
    subprocess.run(["scancel", f"{job}_1"], check=True, timeout=30)

    def job_gone() -> bool:
        queued = subprocess.run(["squeue", "-h", "-j", job], capture_output=True, text=True)
        return queued.stdout.strip() == ""

    _wait(job_gone, 240, f"job {job} to finish")
    status = _status(tmp_path)
    assert (status["complete"], status["total"], status["running"], status["duplicates"]) == (
        12,
        12,
        [],
        0,
    )
    trials = pd.read_parquet(tmp_path / "results" / "sleepy" / "trials.parquet")
    assert len(trials) == trials["trial_key"].nunique() == 12
    assert (trials["status"] == "complete").all()
    log = (tmp_path / "results" / "sleepy" / "logs" / f"slurm-{job}_1.out").read_text()
    assert "CANCELLED" in log and "their unfinished trials go back to the queue" in log
    assert trials["backend"].eq("command").all()
    pids = [int(p.read_text()) for p in (tmp_path / "results" / "sleepy" / "trials").glob("*/pid")]
    assert len(pids) >= 12 and not [p for p in pids if _alive(p)]  # no program left running


def test_a_slurm_task_plans_for_its_cpus_and_names_its_job(monkeypatch: pytest.MonkeyPatch) -> None:
    from ablate.queue.workers import WorkerIdentity
    from ablate.training.backend import cpu_count

    monkeypatch.setenv("SLURM_CPUS_PER_TASK", "1")
    assert cpu_count() == 1  # the CPUs the task was given, though the node has more
    monkeypatch.setenv("SLURM_ARRAY_JOB_ID", "7")
    monkeypatch.setenv("SLURM_ARRAY_TASK_ID", "1")
    assert WorkerIdentity("w1").to_dict()["slurm"] == "7_1"  # what scancel takes
    monkeypatch.delenv("SLURM_ARRAY_JOB_ID")
    monkeypatch.setenv("SLURM_JOB_ID", "9")
    assert WorkerIdentity("w1").slurm == "9"


def test_a_database_password_stays_out_of_the_script(tmp_path: Path) -> None:
    (tmp_path / "study.yaml").write_text(STUDY)
    url = "postgresql://ablate:hunter2-very-secret@db.example/ablate"
    done = run_cli("submit", "study.yaml", "--slurm", "--storage", url, "--dry-run",
                   cwd=tmp_path, env=ENV)  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert "hunter2" not in done.stdout and "postgresql://ablate:***@db.example" in done.stdout
    secret = tmp_path / "results" / "sleepy" / "slurm-storage-url"
    assert f'export ABLATE_STORAGE="$(cat {secret})"' in done.stdout.splitlines()


@pytest.mark.slow
@pytest.mark.postgres
@pytest.mark.skipif(not _cluster_up(), reason="needs a SLURM cluster (.ci/slurm-one-node start)")
def test_a_postgresql_study_runs_as_a_job_array_reading_its_url_from_a_private_file(
    tmp_path: Path, postgres_url: str
) -> None:
    (tmp_path / "study.yaml").write_text(STUDY.replace("seconds: 3", "seconds: 0.5"))
    done = run_cli("submit", "study.yaml", "--slurm", "--array", "2", "--storage", postgres_url,
                   cwd=tmp_path, env=ENV)  # fmt: skip
    assert done.returncode == 0, done.stderr
    job = done.stdout.split("submitted job array ")[1].split()[0]
    folder = tmp_path / "results" / "sleepy"
    password = postgres_url.split(":")[2].split("@")[0]
    assert f":{password}@" not in (folder / "slurm-job.sh").read_text()
    assert (folder / "slurm-storage-url").stat().st_mode & 0o777 == 0o600

    def job_gone() -> bool:
        queued = subprocess.run(["squeue", "-h", "-j", job], capture_output=True, text=True)
        return queued.stdout.strip() == ""

    _wait(job_gone, 240, f"job {job} to finish")
    status = run_cli("status", "results/sleepy", "--storage", postgres_url, "--format", "json",
                     cwd=tmp_path, env=ENV)  # fmt: skip
    assert json.loads(status.stdout)["complete"] == 12, status.stderr
