"""Who holds a trial, and whether its process is alive (same machine) or silent (anywhere)."""

from __future__ import annotations

import contextlib
import os
import socket
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any


@dataclass(frozen=True)
class WorkerIdentity:
    """Who holds a trial: enough to tell, from the same machine, whether it is still alive."""

    name: str  # "w1", "w2"... as shown in progress
    host: str = field(default_factory=socket.gethostname)
    boot: str = field(default_factory=lambda: boot_id())
    pid: int = field(default_factory=os.getpid)
    start_ticks: int | None = field(default_factory=lambda: start_ticks(os.getpid()))
    gpu: str | None = None
    slurm: str | None = field(default_factory=lambda: slurm_task())  # "JOB_TASK" in an array

    def to_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "host": self.host,
            "boot": self.boot,
            "pid": self.pid,
            "start_ticks": self.start_ticks,
            "gpu": self.gpu,
            "slurm": self.slurm,
        }


def slurm_task() -> str | None:
    """The SLURM job this process runs in, as ``squeue`` names it: ``JOB_TASK`` for a task of
    a job array (``scancel JOB_TASK`` cancels it), ``JOB`` otherwise; None outside SLURM."""
    job, task = os.environ.get("SLURM_ARRAY_JOB_ID"), os.environ.get("SLURM_ARRAY_TASK_ID")
    if job and task:
        return f"{job}_{task}"
    return os.environ.get("SLURM_JOB_ID") or None


def boot_id() -> str:
    with contextlib.suppress(OSError):
        return Path("/proc/sys/kernel/random/boot_id").read_text().strip()
    return ""


def start_ticks(pid: int) -> int | None:
    """A process's start time in clock ticks since boot (tells a reused PID apart)."""
    with contextlib.suppress(OSError, IndexError, ValueError):
        stat = Path(f"/proc/{pid}/stat").read_text()
        return int(stat.rsplit(")", 1)[1].split()[19])
    return None


def process_alive(pid: int | None, ticks: int | None) -> bool:
    """Whether the process still runs (a zombie or a reused PID counts as gone); ``ticks``:
    its start time as recorded when it claimed (see :func:`start_ticks`)."""
    if pid is None:
        return True  # unknown: leave it to the heartbeat
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        pass
    with contextlib.suppress(OSError, IndexError):
        stat = Path(f"/proc/{pid}/stat").read_text()
        if stat.rsplit(")", 1)[1].split()[0] == "Z":
            return False
    return ticks is None or start_ticks(pid) in (None, ticks)
