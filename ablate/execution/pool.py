"""The coordinator's side of a run: start the workers, watch them, replace them, stop them.

Each worker is a spawned process (never forked: the coordinator holds locks and
connections) with a pipe of events to the coordinator. The pool passes the events to the
progress display, exports the parquet files as trials finish (throttled), stops the run when
its first trials all fail alike (:mod:`~ablate.execution.watch`) or a worker reports an error
the user must fix, and when a worker dies (killed, crashed) returns its trial to the queue
and starts a replacement.
"""

from __future__ import annotations

import contextlib
import multiprocessing
import multiprocessing.connection
import os
import signal
import time
from multiprocessing.process import BaseProcess
from pathlib import Path

from ablate.errors import AblateError
from ablate.execution.liveness import Liveness
from ablate.execution.planning import WorkerSlot
from ablate.execution.progress import Event, Progress
from ablate.execution.signals import EXIT_INTERRUPTED
from ablate.execution.watch import FailureWatch
from ablate.execution.worker import EXIT_BUG, EXIT_USER_ERROR, worker_main
from ablate.queue.claims import TrialQueue
from ablate.results import export
from ablate.study.settings import Study


def export_queue(study: Study, queue: TrialQueue, directory: Path) -> int:
    """Write the study's parquet files and outputs from its storage; returns the rows."""
    return export(study, queue.records(), queue.outputs, directory)


class WorkerPool:
    """Starts, watches, replaces and stops the worker processes of one run."""

    def __init__(
        self,
        study: Study,
        storage_url: str | None,
        slots: list[WorkerSlot],
        directory: Path,
        progress: Progress,
        queue: TrialQueue,
    ) -> None:
        self.study = study
        self.storage_url = storage_url
        self.slots = slots
        self.logs = directory / "logs"
        self.progress = progress
        self.queue = queue
        self.exporter = ThrottledExport(study, queue, directory, progress)
        self.ctx = multiprocessing.get_context("spawn")  # never fork a process that holds locks
        self.procs: dict[str, BaseProcess] = {}
        self.pipes: dict[str, multiprocessing.connection.Connection] = {}
        self.replacements = 0
        self.fatal: str | None = None  # a worker's own error that stops the run
        self.watch = FailureWatch(queue.summary().waiting)
        self.tripped: str | None = None  # why the watch stopped the run: trials fail alike
        idle = min(study.run.heartbeat_seconds, 5.0)
        self.liveness = Liveness(queue.stale_after, linger=max(3 * idle, 10.0))
        self.expired: set[str] = set()  # workers that ended themselves over a trial's limit
        self.programs: dict[str, int] = {}  # worker -> the process group its trial's program runs
        self._next_look = 0.0  # monotonic time the queue is next looked at

    def start(self, slot: WorkerSlot) -> None:
        self.logs.mkdir(parents=True, exist_ok=True)
        receive, send = self.ctx.Pipe(duplex=False)
        proc = self.ctx.Process(
            target=worker_main,
            args=(self.study, self.storage_url, slot, send, os.getpid(), self.logs),
            name=f"ablate-{slot.name}",
            daemon=False,
        )
        proc.start()
        send.close()  # the child holds the only writing end: EOF when it exits
        self.procs[slot.name] = proc
        self.pipes[slot.name] = receive
        self.liveness.started(slot.name)

    def run(self) -> None:
        for slot in self.slots:
            self.start(slot)
        while self.procs:
            self._drain(timeout=1.0)
            if self.tripped:
                self.progress.note(f"stopping: {self.tripped.split(': ', 1)[0]}")
                self.stop()
                return
            self.progress.tick()
            self._police()
            for name, proc in list(self.procs.items()):
                if proc.exitcode is not None:
                    self._drain(timeout=0)  # its last words
                    self._exited(name, proc.exitcode)

    def _police(self) -> None:
        """End silent workers, and workers left over once the queue has nothing left; kill
        those whose grace period is over (see :mod:`~ablate.execution.liveness`)."""
        live = self.liveness
        for name, silence in live.silent(list(self.procs)):
            self._end(name, f"fell silent for {silence:.0f} s (stopped or hung)")
        if time.monotonic() >= self._next_look:
            self._next_look = time.monotonic() + 2.0
            summary = self.queue.summary()
            nothing_left = not summary.waiting and not summary.running
            for name in live.lingering(list(self.procs), nothing_left):
                self._end(name, "outlived the study's last trial")
        for name in live.overdue():
            with contextlib.suppress(ProcessLookupError, ValueError, KeyError):
                os.kill(self._pid(name), signal.SIGKILL)

    def _pid(self, name: str) -> int:
        """A worker's process id (a process is kept once started: it has one)."""
        pid = self.procs[name].pid
        assert pid is not None
        return pid

    def _end(self, name: str, why: str) -> None:
        """Ask a worker to end (a stopped one is continued first, to take the signal)."""
        self.progress.note(f"{name} {why}; ending it")
        self.liveness.end(name)
        pid = self._pid(name)
        for sig in (signal.SIGCONT, signal.SIGTERM):
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, sig)

    def _drain(self, timeout: float) -> None:
        """Pass every pending worker event to the progress display (waits up to timeout)."""
        ready = multiprocessing.connection.wait(list(self.pipes.values()), timeout=timeout)
        for conn in ready:
            name = next(n for n, c in self.pipes.items() if c is conn)
            pipe = self.pipes[name]  # conn, as the worker's Connection
            try:
                while pipe.poll():
                    event: Event = pipe.recv()
                    self.liveness.hear(name)
                    self.progress.handle(event)
                    if event.kind == "finished":
                        self.exporter()
                        self._watch(event)
                    elif event.kind == "fatal":
                        self.fatal = self.fatal or event.message
                    elif event.kind == "expired":
                        self.expired.add(name)
                    elif event.kind == "process":
                        self._program(name, event.pid)
            except (EOFError, OSError):  # the worker is gone; its exit code tells the rest
                self.pipes.pop(name).close()

    def _program(self, name: str, pid: int) -> None:
        if pid:
            self.programs[name] = pid
        else:
            self.programs.pop(name, None)

    def _end_program(self, name: str) -> None:
        """Kill the process group of the program a gone worker's trial ran, if it still runs
        (a worker that is killed cannot end it; one that stops does, and says so)."""
        pgid = self.programs.pop(name, None)
        if pgid:
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.killpg(pgid, signal.SIGKILL)

    def _watch(self, event: Event) -> None:
        if self.watch is None or self.tripped or event.status == "taken-over":
            return
        self.tripped = self.watch.observe(
            event.key, event.label, event.status, event.error, event.traceback
        )

    def _exited(self, name: str, code: int) -> None:
        proc = self.procs.pop(name)
        proc.join()
        with contextlib.suppress(KeyError):
            self.pipes.pop(name).close()
        self._end_program(name)
        ended = self.liveness.forget(name) or name in self.expired
        self.expired.discard(name)
        if not ended and code in (0, EXIT_USER_ERROR, EXIT_BUG, EXIT_INTERRUPTED):
            return  # done, or stopped for a reason its last message gave
        # Ended here, over a trial's limit, killed (a negative code: the signal) or crashed:
        # its trial goes back to the queue, and a replacement takes its place.
        how = f"killed by signal {-code}" if code < 0 else f"exited with code {code}"
        for taken in self.queue.take_back():
            self.progress.handle(Event("recovered", name, label=taken.label,
                                       message=f"{taken.outcome}: {taken.detail}"))  # fmt: skip
        summary = self.queue.summary()
        budget = ended or self.replacements < 3 * len(self.slots)  # crashes: at most 3 each
        if summary.waiting and budget:
            self.replacements += not ended
            self.progress.note(f"{name} {how}; starting a replacement")
            self.start(next(s for s in self.slots if s.name == name))
        else:
            self.progress.note(f"{name} {how}")

    def stop(self) -> None:
        """Stop every worker: each hands its unfinished trial back to the queue."""
        self.progress.note("stopping the workers (their unfinished trials go back to the queue)")
        deadline = time.monotonic() + 60
        next_signal = 0.0
        try:
            while self.procs and time.monotonic() < deadline:
                if time.monotonic() >= next_signal:  # again every 2 s: one may be swallowed
                    for name in self.procs:
                        with contextlib.suppress(ProcessLookupError, ValueError):
                            os.kill(self._pid(name), signal.SIGTERM)
                    next_signal = time.monotonic() + 2.0
                self._drain(timeout=0.5)
                for name, proc in list(self.procs.items()):
                    if proc.exitcode is not None:
                        self.procs.pop(name).join()
                        self._end_program(name)
        except KeyboardInterrupt:
            pass  # a second Ctrl-C: stop waiting
        for name, proc in self.procs.items():
            proc.kill()
            proc.join()
            self._end_program(name)
        for name in list(self.programs):
            self._end_program(name)
        self.procs.clear()
        self.progress.idle()
        self.queue.recover_lost()  # trials of any worker that had to be killed


class ThrottledExport:
    """Export the parquet files after a trial finishes, at most every ``every`` seconds, and
    at most a tenth of the time (a large study's export takes seconds: the workers share the
    cores with it).

    A failed export (a full disk, say) does not stop the run: every result is in the storage,
    and the next export, at the latest at the end of the run, writes the files again.
    """

    def __init__(
        self, study: Study, queue: TrialQueue, directory: Path, progress: Progress,
        every: float = 5.0,
    ) -> None:  # fmt: skip
        self._study = study
        self._queue = queue
        self._directory = directory
        self._progress = progress
        self._every = every
        self._next = 0.0  # monotonic time of the next export allowed
        self._failing = False

    def __call__(self) -> None:
        if time.monotonic() < self._next:
            return
        start = time.monotonic()
        try:
            export_queue(self._study, self._queue, self._directory)
        except AblateError as err:
            if not self._failing:
                message = err.render(flags=True)
                self._progress.note(f"{message} (the run goes on; results are safe in storage)")
            self._failing = True
        else:
            self._failing = False
        finally:
            took = time.monotonic() - start
            self._next = start + max(self._every, 10 * took)
