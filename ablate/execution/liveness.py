"""Which of the coordinator's workers to end: silent ones, and those left over at the end.

Every worker process sends a pulse to its coordinator every heartbeat interval, from a thread
of its own (:class:`ablate.execution.worker.Pulse`), whatever its trial is doing. A process
that falls silent for the queue's ``stale_after`` is stopped (SIGSTOP: a hung NFS read, a
stuck driver) or wedged below Python: the coordinator ends it -- SIGCONT and SIGTERM, then
SIGKILL after a grace period -- its trial goes back to the queue as ``lost`` and a replacement
starts. Once the queue holds nothing to run or running, a worker still alive after a grace
period (a stopped one never exits by itself) is ended too, so that ``ablate run`` always ends.
The trials' own time limits are their workers' to enforce
(:class:`ablate.execution.worker.Heartbeat`), and anyone's who reads the queue.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field

#: Seconds a worker asked to end gets before it is killed.
GRACE = 10.0


@dataclass
class Liveness:
    """When each worker was last heard of, and which are being ended (and until when)."""

    silent_after: float  # seconds without a pulse after which a worker is ended
    linger: float  # seconds a worker may outlive the study's last trial
    heard: dict[str, float] = field(default_factory=dict)  # name -> monotonic time
    ending: dict[str, float] = field(default_factory=dict)  # name -> kill deadline
    done_since: float | None = None  # when the queue was first seen with nothing left

    def started(self, name: str) -> None:
        self.heard[name] = time.monotonic()
        self.ending.pop(name, None)

    def hear(self, name: str) -> None:
        self.heard[name] = time.monotonic()

    def silent(self, names: list[str]) -> list[tuple[str, float]]:
        """Workers (of ``names``, not being ended) silent too long, with their silence."""
        now = time.monotonic()
        quiet = [(n, now - self.heard.get(n, now)) for n in names if n not in self.ending]
        return [(n, s) for n, s in quiet if s > self.silent_after]

    def lingering(self, names: list[str], nothing_left: bool) -> list[str]:
        """Workers still alive ``linger`` seconds after the queue had nothing left."""
        now = time.monotonic()
        if not nothing_left:
            self.done_since = None
            return []
        self.done_since = self.done_since or now
        late = now - self.done_since > self.linger
        return [n for n in names if n not in self.ending] if late else []

    def end(self, name: str) -> None:
        self.ending[name] = time.monotonic() + GRACE

    def overdue(self) -> list[str]:
        """Workers asked to end whose grace period is over: to be killed."""
        now = time.monotonic()
        return [n for n, deadline in self.ending.items() if now > deadline]

    def forget(self, name: str) -> bool:
        """A worker exited; whether it was one the coordinator was ending."""
        self.heard.pop(name, None)
        return self.ending.pop(name, None) is not None
