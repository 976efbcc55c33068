"""Slow checks that run in other processes, started when the session starts, at low priority.

The JAX checks spend a minute each compiling in a separate interpreter. Started as soon as
the tests are collected, under ``nice``, they use the cycles the rest of the suite leaves
idle (waiting for subprocesses, databases and heartbeats) instead of adding their minutes to
it; the test that needs one waits for its result. A module declares its jobs in
``BACKGROUND`` (name -> a function returning the job, or None where it cannot run), and
``tests/conftest.py`` starts those of every module with a selected test.
"""

from __future__ import annotations

import os
import subprocess
import threading
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

#: A job: the commands to run one after another, each as (argv, options for subprocess.run).
Job = list[tuple[list[str], dict[str, Any]]]


@dataclass
class _Running:
    thread: threading.Thread
    results: list[subprocess.CompletedProcess[str]]  # each command's, as they finish


_jobs: dict[str, _Running] = {}
_lock = threading.Lock()


def start(name: str, make: Callable[[], Job | None]) -> None:
    """Start job ``name`` (once) in a thread of its own; its commands run under ``nice``."""
    with _lock:
        if name in _jobs:
            return
        job = make()
        if job is None:
            return
        done: list[subprocess.CompletedProcess[str]] = []

        def run() -> None:
            for argv, options in job:
                proc = subprocess.run(["nice", "-n", "10", *argv], capture_output=True,
                                      text=True, **options)  # fmt: skip
                done.append(proc)
                if proc.returncode != 0:
                    return

        thread = threading.Thread(target=run, name=f"background-{name}", daemon=True)
        _jobs[name] = _Running(thread, done)
        thread.start()


def results(name: str, make: Callable[[], Job | None]) -> list[subprocess.CompletedProcess[str]]:
    """Job ``name``'s finished commands (started now if the session did not), in order; it
    stops at the first that fails."""
    start(name, make)
    assert name in _jobs, f"background job {name} cannot run here"
    running = _jobs[name]
    running.thread.join(timeout=float(os.environ.get("ABLATE_TEST_BACKGROUND_TIMEOUT", "1200")))
    assert not running.thread.is_alive(), f"background job {name} did not finish"
    return running.results
