"""Seeing a study run: a live status block on a terminal, plain log lines anywhere else.

Workers report :class:`Event` objects (claimed, progress within an epoch, epoch, finished...);
:class:`Progress` turns them into the display. On a terminal it redraws a few lines in place:
done / running / failed / total, throughput and ETA, and each worker's current cell, epoch
and last epoch's values (the study's response and the test loss). When output is not a
terminal (a log file, CI) it prints one line per finished trial and, every 30 s, the summary
line with the same line per running trial, never control characters.
"""

from __future__ import annotations

import sys
import threading
import time
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Literal, TextIO

if TYPE_CHECKING:
    from ablate.queue.outcomes import Summary
    from ablate.queue.policy import QueuePolicy

EventKind = Literal[
    "claimed",
    "progress",
    "epoch",
    "finished",
    "recovered",
    "note",
    "fatal",
    "beat",
    "expired",
    "process",
]


@dataclass(frozen=True)
class Event:
    """Something a worker did, small and picklable so it can cross process boundaries."""

    kind: EventKind
    worker: str
    label: str = ""  # the cell, as Cell.label
    replicate: int = 0
    epoch: int = 0
    epochs: int = 0
    images: int = 0  # training examples seen since the worker's last event
    status: str = ""  # for "finished": complete, failed, diverged, taken-over
    values: dict[str, float] = field(default_factory=dict)  # the response, the test loss
    seconds: float = 0.0
    message: str = ""
    error: str = ""  # for "finished": the trial's error, if it failed
    traceback: str = ""  # and where it was raised
    key: str = ""  # the trial key: a retried trial is one trial, however many attempts
    final: bool = True  # for "finished": no further attempt will follow
    pid: int = 0  # for "process": the process group a trial's program runs in (0: it ended)


@dataclass
class _WorkerLine:
    label: str = ""
    replicate: int = 0
    epoch: int = 0
    epochs: int = 0
    values: dict[str, float] = field(default_factory=dict)  # of the last epoch

    def describe(self, name: str) -> str:
        if not self.label:
            return f"  {name:<4} idle"
        epoch = f"epoch {self.epoch}/{self.epochs}" if self.epochs else ""
        return (
            f"  {name:<4} {self.label} r{self.replicate}  {epoch}  {_values(self.values)}".rstrip()
        )


class Progress:
    """Collects events and shows them; thread-safe, so a timer thread can redraw."""

    def __init__(
        self,
        study: str,
        total: int,
        done_before: int,
        stream: TextIO | None = None,
        live: bool | None = None,
        log_every: float = 30.0,
    ) -> None:
        self.study = study
        self.total = total
        self.done_before = done_before
        self.stream = stream or sys.stderr
        self.live = self.stream.isatty() if live is None else live
        self.log_every = log_every
        self.start = time.monotonic()
        self._final: dict[str, str] = {}  # trial key -> status, once no attempt follows
        self._retrying = 0  # attempts that failed and are tried again
        self.images = 0
        self.workers: dict[str, _WorkerLine] = {}
        self._lock = threading.Lock()
        self._drawn_lines = 0
        self._last_log = self.start

    # -- events -------------------------------------------------------------------------------

    def handle(self, event: Event) -> None:
        if event.kind in ("beat", "process"):  # a pulse, a program's pid: nothing to show
            return
        with self._lock:
            line = self.workers.setdefault(event.worker, _WorkerLine())
            if event.kind == "claimed":
                line.label, line.replicate = event.label, event.replicate
                line.epoch, line.epochs, line.values = 0, event.epochs, {}
            elif event.kind == "progress":
                self.images += event.images
            elif event.kind == "epoch":
                line.epoch, line.epochs, line.values = event.epoch, event.epochs, event.values
                self.images += event.images
            elif event.kind == "finished":
                self._count(event)
                line.label, line.epoch = "", 0
                self._print(self._finished_line(event))
            elif event.kind == "recovered":
                self._print(f"requeued {event.label}: {event.message}")
            elif event.kind == "note":
                self._print(f"{event.worker}: {event.message}")
            elif event.kind in ("fatal", "expired"):
                line.label = ""
                self._print(f"{event.worker}: {event.message}")
            if self.live:
                self._draw()

    def idle(self) -> None:
        """Every worker is gone (stopped): none is shown running any more."""
        with self._lock:
            for line in self.workers.values():
                line.label = ""

    def note(self, text: str) -> None:
        """A line for the reader that is not about one trial (workers starting, stopping)."""
        with self._lock:
            self._print(text)
            if self.live:
                self._draw()

    def _count(self, event: Event) -> None:
        """A trial counts once, when it is final: a failed attempt that will be tried again is
        not done, and the counters never exceed the study's trials."""
        if event.status not in ("complete", "failed", "diverged", "stalled", "timed out"):
            return  # taken over by another worker: that one reports it
        status = "failed" if event.status in ("stalled", "timed out") else event.status
        if not event.final:
            self._retrying += 1
        elif event.key not in self._final or not event.key:
            self._final[event.key or f"#{len(self._final)}"] = status

    def _number(self, status: str) -> int:
        return sum(1 for s in self._final.values() if s == status)

    @property
    def complete(self) -> int:
        return self._number("complete")

    @property
    def failed(self) -> int:
        return self._number("failed")

    @property
    def diverged(self) -> int:
        return self._number("diverged")

    # -- numbers ------------------------------------------------------------------------------

    @property
    def finished_now(self) -> int:
        return len(self._final)

    @property
    def done(self) -> int:
        return min(self.done_before + self.finished_now, self.total)

    def eta_seconds(self) -> float | None:
        """Remaining trials at this run's pace so far (None until a trial has finished)."""
        if self.finished_now == 0:
            return None
        elapsed = time.monotonic() - self.start
        return elapsed / self.finished_now * max(self.total - self.done, 0)

    def status_line(self) -> str:
        elapsed = time.monotonic() - self.start
        running = sum(1 for w in self.workers.values() if w.label)
        eta = self.eta_seconds()
        rate = self.images / elapsed if elapsed > 0 else 0.0
        parts = [
            f"{self.study}: {self.done}/{self.total} done",
            f"{running} running",
            f"{self.failed} failed",
            f"{self.diverged} diverged",
            *([f"{self._retrying} requeued after failing"] if self._retrying else []),
            f"elapsed {_clock(elapsed)}",
            f"ETA {_clock(eta) if eta is not None else '–'}",
            *([f"{rate:,.0f} img/s"] if self.images else []),  # none: a training function
        ]
        return " · ".join(parts)

    # -- output -------------------------------------------------------------------------------

    def _finished_line(self, event: Event) -> str:
        what = f"[{self.done}/{self.total}] {event.status:<8} {event.label} r{event.replicate}"
        if event.values:
            what += f"  {_values(event.values)}"
        what += f"  ({event.seconds:.1f} s, {event.worker})"
        if event.message:
            what += f"  {event.message}"
        return what

    def _print(self, text: str) -> None:
        if self.live:
            self._erase()
        self.stream.write(text + "\n")
        self.stream.flush()

    def tick(self) -> None:
        """Called periodically: redraw (terminal) or log a summary line (every log_every s)."""
        with self._lock:
            if self.live:
                self._draw()
            elif time.monotonic() - self._last_log >= self.log_every:
                self._last_log = time.monotonic()
                self._print("\n".join(self._lines(idle=False)))

    def close(self) -> None:
        with self._lock:
            if self.live:
                self._erase()
            self.stream.write(self.status_line() + "\n")
            self.stream.flush()

    def _lines(self, idle: bool = True) -> list[str]:
        """The status line, then one line per worker (busy ones only unless ``idle``)."""
        lines = [self.status_line()]
        for name in sorted(self.workers):
            w = self.workers[name]
            if w.label or idle:
                lines.append(w.describe(name))
        return lines

    def _draw(self) -> None:
        self._erase()
        lines = self._lines()
        self.stream.write("\n".join(lines) + "\n")
        self.stream.flush()
        self._drawn_lines = len(lines)

    def _erase(self) -> None:
        if self._drawn_lines:
            # cursor up one line and clear it, for each line drawn last time
            self.stream.write("\x1b[1A\x1b[2K" * self._drawn_lines)
            self._drawn_lines = 0


def describe_status(study: str, summary: Summary, policy: QueuePolicy) -> str:
    """``ablate status``: the counts, then every running trial with its worker, heartbeat and,
    for a trial that is overdue, what the next process to look at the queue does with it."""
    from ablate.queue.claims import overdue

    lines = [
        f"{study}: {summary.complete}/{summary.total} complete · {summary.failed} failed · "
        f"{summary.diverged} diverged · {len(summary.running)} running · "
        f"{summary.waiting} waiting"
    ]
    now = time.time()
    for run in summary.running:
        w, beat = run.worker, run.heartbeat
        age = now - beat["time"] if "time" in beat else None
        where = f"{w.get('host', '?')} pid {w.get('pid', '?')} ({w.get('name', '?')}"
        where += f", SLURM job {w['slurm']})" if w.get("slurm") else ")"
        epoch = f"epoch {beat.get('epoch', 0)}" + (f"/{beat['epochs']}" if beat.get("epochs")
                                                    else "")  # fmt: skip
        if beat.get("values"):
            epoch += f" ({_values(beat['values'])})"
        heard = "no heartbeat yet" if age is None else f"heartbeat {age:.0f} s ago"
        lines.append(f"  running {run.label}  on {where}  {epoch}  {heard}")
        why = overdue(policy, w, beat, beat.get("time"), now) if age is not None else None
        if why is not None:
            lines.append(f"    {why[0]}: {why[1]}; the next ablate process to look at the "
                         "queue (a worker between trials, ablate run or ablate worker starting) "
                         "takes it back")  # fmt: skip
    if summary.duplicates:
        lines.append(
            f"  warning: {summary.duplicates} trials have more than one complete run; "
            "the first is used"
        )
    return "\n".join(lines)


def _values(values: dict[str, float]) -> str:
    return "  ".join(f"{k}={v:.4g}" for k, v in values.items())


def _clock(seconds: float) -> str:
    h, rest = divmod(round(seconds), 3600)
    m, s = divmod(rest, 60)
    return f"{h}:{m:02d}:{s:02d}" if h else f"{m}:{s:02d}"
