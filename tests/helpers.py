"""Helpers shared by the tests: the tiny study and running the real `ablate` command."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]

TINY = """\
name: {name}
model: {{units: [8, 6, 4, 2], depth: 1}}
factors:
  batch_norm: [true, false]
  activation: [relu, sigmoid]
training: {{epochs: {epochs}, batch_size: 32}}
data: {{dataset: mnist-sample, train_size: 96, test_size: 64}}
replicates: {replicates}
results: {results}
run: {{heartbeat_seconds: 0.5}}
"""


def tiny_study_text(results: Path, name: str = "tiny", epochs: int = 1, replicates: int = 1) -> str:
    """A 4-cell study of a ~14k-parameter VAE that trains in about a second per trial."""
    return TINY.format(name=name, epochs=epochs, replicates=replicates, results=results)


def run_cli(*args: str, cwd: Path | None = None, env: dict[str, str] | None = None,
            timeout: float = 300) -> subprocess.CompletedProcess[str]:  # fmt: skip
    """Run the real `ablate` command in a fresh process, as a user would."""
    return subprocess.run(
        [sys.executable, "-m", "ablate", *args],
        cwd=cwd,
        env={**os.environ, **(env or {})},
        capture_output=True,
        text=True,
        timeout=timeout,
    )


FUNCTION = """\
name: {name}
trainer: {{function: "tests.user_trainers:{function}", options: {options}}}
responses:
  score: {{goal: max, low: -1, high: 2, baseline: 0.0, baseline_what: a score of nothing}}
  loss: min
factors:
  wide: [false, true]
  deep: [false, true]
replicates: {replicates}
results: {results}
run: {run}
"""


def function_study_text(
    results: Path, function: str, *, name: str = "fn", options: str = "{}", replicates: int = 1,
    run: str = "{heartbeat_seconds: 0.5}",
) -> str:  # fmt: skip
    """A 4-cell study trained by a function of tests/user_trainers.py (no framework)."""
    return FUNCTION.format(name=name, function=function, options=options, results=results,
                           replicates=replicates, run=run)  # fmt: skip


COMMAND = """\
name: {name}
trainer:
  command: >-
    python {program} --mode {{mode}} --wide {{wide}} --deep {{deep}} --seed {{seed}}
    --out {{result}} --epochs-file {{epochs_file}} --seconds {{seconds}} --marks {{marks}}
  options: {{mode: {mode}, seconds: {seconds}, marks: "{marks}"}}
responses:
  score: {{goal: max, low: -1, high: 2, baseline: 0.0, baseline_what: a score of nothing}}
  loss: min
factors:
  wide: [false, true]
  deep: [false, true]
replicates: {replicates}
results: {results}
run: {run}
"""


def command_study_text(
    results: Path, mode: str = "ok", *, name: str = "cmd", seconds: float = 0.0,
    replicates: int = 1, run: str = "{heartbeat_seconds: 0.5}",
) -> str:  # fmt: skip
    """A 4-cell study trained by tests/command_program.py run as a command (``mode`` says what
    it does), its markers kept beside ``results``."""
    return COMMAND.format(name=name, program=ROOT / "tests" / "command_program.py", mode=mode,
                          seconds=seconds, marks=results.parent, results=results,
                          replicates=replicates, run=run)  # fmt: skip


def start_cli(*args: str, cwd: Path | None = None, env: dict[str, str] | None = None,
              python: str | None = None) -> subprocess.Popen[str]:  # fmt: skip
    """Start the real `ablate` command in a fresh process (output piped), as a user would
    (``python``: another environment's interpreter)."""
    return subprocess.Popen(
        [python or sys.executable, "-m", "ablate", *args], cwd=cwd,
        env={**os.environ, **(env or {})},
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )  # fmt: skip


def children(pid: int) -> list[int]:
    """The processes whose parent is ``pid``."""
    found = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if int(fields[1]) == pid:
            found.append(int(stat.parent.name))
    return found


def workers_of(coordinator: int) -> list[int]:
    """The worker processes of an `ablate run` (multiprocessing's resource tracker aside)."""
    found = []
    for pid in children(coordinator):
        try:
            cmdline = Path(f"/proc/{pid}/cmdline").read_bytes().decode(errors="replace")
        except OSError:
            continue
        if "spawn_main" in cmdline and "resource_tracker" not in cmdline:
            found.append(pid)
    return found


def running_worker_pid(study_path: Path, timeout: float = 120) -> int:
    """The pid of a worker process in the middle of a trial of the study at ``study_path``,
    read from the study's queue as ``ablate status`` reads it."""
    from ablate.queue.claims import opened_queue
    from ablate.study import load_study

    study = load_study(study_path)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if (study.results_dir / "optuna.journal").exists():
            try:
                with opened_queue(study, None, create=False) as queue:
                    running = queue.summary().running
            except Exception:  # the study is being created right now
                running = ()
            if running:
                return int(running[0].worker["pid"])
        time.sleep(0.2)
    raise AssertionError("no trial started")
