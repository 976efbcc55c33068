"""``ablate submit --slurm``: a study's workers as a SLURM job array against shared storage.

On the login node ablate makes every check a run makes, fills the queue (the study's storage:
a journal file on a filesystem the compute nodes share, or PostgreSQL), and writes an sbatch
script whose every array task runs ``ablate worker`` on the study: each task claims trials
until none is left, as any worker on any machine does. The script is submitted with plain
``sbatch --parsable`` and the job id printed. (submitit, the other well-kept way, pickles a
Python function for the job and needs the same Python objects on both sides; ablate's workers
are a command line that the queue already coordinates, so a script is all the job needs, and
``sbatch`` is there wherever SLURM is.)

Stopping: the script asks SLURM (``--signal=B:TERM@GRACE``) to send SIGTERM to the task
``GRACE`` seconds before its time limit; ``scancel`` and preemption send SIGTERM too. The
worker then hands its unfinished trials back to the queue, for another task to take; a task
killed outright leaves its trials silent, and the other tasks requeue them once their
heartbeats stop (``run.heartbeat_seconds``).

Secrets: a database URL's password never goes into the script (which ``scontrol write
batch_script`` shows, and users share); the URL is kept in a file beside it that only its
owner may read, and each task reads it into ``ABLATE_STORAGE``.
"""

from __future__ import annotations

import os
import shlex
import shutil
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

from ablate.errors import AblateError, option
from ablate.secrets import mask_url
from ablate.study.settings import Study

#: Seconds before the time limit at which SLURM signals a task to hand its trials back.
GRACE_SECONDS = 120
#: The storage URL, password included, beside the script in the results folder (mode 0600).
STORAGE_FILE = "slurm-storage-url"


@dataclass(frozen=True)
class SlurmOptions:
    """What the job asks SLURM for (None: the cluster's default)."""

    array: int = 2  # tasks, each a group of workers on one node
    workers_per_task: int = 1
    partition: str | None = None
    gpus_per_task: int | None = None
    time: str | None = None  # SLURM's formats: "MM", "HH:MM:SS", "D-HH" ...
    storage_url: str | None = None  # None: the study's journal in its results folder


def sbatch_script(study: Study, study_file: Path, options: SlurmOptions) -> str:
    """The job array's sbatch script: every task runs ``ablate worker`` on the study, from
    this folder (where the study's relative results folder is), with the study file's folder
    on the Python path (for a builder, dataset or training function beside it)."""
    folder, here = study_file.resolve().parent, Path.cwd()
    logs = (study.results_dir / "logs").resolve()
    directives = [
        f"--job-name=ablate-{study.name}",
        f"--array=0-{options.array - 1}",
        f"--output={logs}/slurm-%A_%a.out",
        f"--cpus-per-task={options.workers_per_task}",
        f"--signal=B:TERM@{GRACE_SECONDS}",
    ]
    if options.partition:
        directives.append(f"--partition={options.partition}")
    if options.gpus_per_task:
        directives.append(f"--gpus-per-task={options.gpus_per_task}")
    if options.time:
        directives.append(f"--time={options.time}")
    command = [sys.executable, "-m", "ablate", "worker", str(study_file.resolve()),
               "--workers", str(options.workers_per_task)]  # fmt: skip
    if options.gpus_per_task:
        per_gpu = max(1, options.workers_per_task // options.gpus_per_task)
        command += ["--workers-per-gpu", str(per_gpu)]
    storage = (mask_url(options.storage_url) if options.storage_url
               else f"the journal in {study.results_dir.resolve()}")  # fmt: skip
    lines = [
        "#!/bin/bash",
        f"# ablate submit --slurm: {study.name}, {options.array} tasks of "
        f"{options.workers_per_task} worker(s)",
        f"# storage: {storage}",
        *(f"#SBATCH {d}" for d in directives),
        "set -e",
        f"cd {shlex.quote(str(here))}",
        f'export PYTHONPATH={shlex.quote(str(folder))}"${{PYTHONPATH:+:$PYTHONPATH}}"',
    ]
    if options.storage_url:  # the URL from a file only its owner reads, not from this script
        secret = shlex.quote(str(storage_file(study)))
        lines.append(f'export ABLATE_STORAGE="$(cat {secret})"')
    lines += [
        "# exec: SLURM's SIGTERM reaches ablate itself, which hands its trials back",
        "exec " + " ".join(shlex.quote(part) for part in command),
    ]
    return "\n".join(lines) + "\n"


def storage_file(study: Study) -> Path:
    """Where :func:`write_storage_url` keeps the study's storage URL for its SLURM tasks."""
    return study.results_dir.resolve() / STORAGE_FILE


def write_storage_url(study: Study, url: str) -> Path:
    """Keep ``url`` where the script's tasks read it, readable by its owner only."""
    path = storage_file(study)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    os.fchmod(fd, 0o600)  # a file there already keeps its mode through os.open
    with os.fdopen(fd, "w") as file:
        file.write(url)
    return path


def sbatch_path() -> str:
    """Where ``sbatch`` is; an :class:`AblateError` where this machine has none."""
    sbatch = shutil.which("sbatch")
    if sbatch is None:
        raise AblateError(
            "sbatch is not on this machine's PATH, so there is no SLURM cluster to submit to "
            f"here. Run this on the cluster's login node, or `ablate submit` with "
            f"{option('dry_run', 'True')} to "
            "see the script, or `ablate run` to train on this machine."
        )
    return sbatch


def submit(script: Path) -> str:
    """Submit ``script`` with sbatch; returns the job id."""
    done = subprocess.run([sbatch_path(), "--parsable", str(script)], capture_output=True,
                          text=True, timeout=120)  # fmt: skip
    if done.returncode != 0:
        why = (done.stderr or done.stdout).strip().splitlines()
        raise AblateError(
            f"sbatch refused the job ({why[-1] if why else f'exit code {done.returncode}'}). "
            f"The script is {script}: check its #SBATCH lines (partition, time, GPUs) against "
            "the cluster's limits (`sinfo`), then submit again."
        )
    return done.stdout.strip().split(";")[0]  # "JOBID" or "JOBID;CLUSTER"


@dataclass(frozen=True)
class Submitted:
    """A study submitted: its job array, its script, where its results go, and its queue."""

    job: str
    script: Path
    directory: Path
    waiting: int
    complete: int
    total: int


def submit_study(study: Study, study_file: Path, options: SlurmOptions | None = None) -> Submitted:
    """Check the study, fill its queue and submit its workers as a SLURM job array
    (``ablate submit --slurm``; see the module). Nothing is queued where there is no sbatch."""
    from ablate.execution.runner import enqueue_study

    options = options or SlurmOptions()
    script = sbatch_script(study, study_file, options)
    sbatch_path()  # before anything is queued: no SLURM here is a clear error
    directory, summary = enqueue_study(study, options.storage_url)
    if options.storage_url:
        write_storage_url(study, options.storage_url)
    path = directory / "slurm-job.sh"
    path.write_text(script)
    (directory / "logs").mkdir(exist_ok=True)  # sbatch writes the tasks' output there
    job = submit(path)
    return Submitted(job, path, directory, summary.waiting, summary.complete, summary.total)
