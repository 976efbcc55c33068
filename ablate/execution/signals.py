"""Stopping a worker process cleanly, and never letting it outlive its coordinator.

A worker asked to stop (SIGTERM from its coordinator, Ctrl-C) unwinds with a
``KeyboardInterrupt``, handing its trial back to the queue; a second signal must not cut that
hand-back short. The request can land where Python swallows exceptions (a garbage-collector
callback, a finalizer), so a watchdog thread ends a worker that has not exited within a grace
period; the same thread notices a coordinator that died, even of SIGKILL.
"""

from __future__ import annotations

import contextlib
import ctypes
import os
import signal
import threading
import time
from collections.abc import Iterator
from typing import Any

#: A worker's exit code when it stopped on request (its trial handed back, or to be requeued).
EXIT_INTERRUPTED = 130


class StopRequests:
    """One worker's stop state: when it was first asked to stop, and whether a stop must wait
    (while a trial is being claimed, or handed back). Installed as the process's SIGTERM and
    SIGINT handler."""

    GRACE = 20.0  # seconds a stopping worker gets to hand its trial back before it is ended

    def __init__(self) -> None:
        self.requested_at: float | None = None  # monotonic time of the first request
        self._deferred = False  # a stop now would strand a claimed trial: it waits

    def install(self) -> None:
        signal.signal(signal.SIGTERM, self._interrupt)
        signal.signal(signal.SIGINT, self._interrupt)

    def _interrupt(self, signum: int, frame: Any) -> None:
        if self.requested_at is None:
            self.requested_at = time.monotonic()
        if self._deferred:  # claiming, or already handing back: the stop waits for resume()
            return
        raise KeyboardInterrupt

    def defer(self) -> None:
        """Stop requests wait from now until :meth:`resume`: a trial the storage has just
        marked RUNNING must reach the code that hands it back before the worker unwinds."""
        self._deferred = True

    def resume(self, act: bool = True) -> None:
        """Stop requests act again; one that arrived meanwhile acts now (unless ``act`` is
        false: the caller is already unwinding)."""
        self._deferred = False
        if act and self.requested_at is not None:
            raise KeyboardInterrupt

    @contextlib.contextmanager
    def handing_back(self) -> Iterator[None]:
        """While the trial goes back to the queue, further stop requests wait (the signal that
        the kernel, the watchdog or the coordinator repeats would cut the hand-back short)."""
        self._deferred = True
        try:
            yield
        finally:
            self._deferred = False

    def overdue(self) -> bool:
        """Asked to stop longer ago than the grace period."""
        return self.requested_at is not None and time.monotonic() - self.requested_at > self.GRACE


def die_with_parent(parent: int, stops: StopRequests) -> None:
    """Make sure a worker never outlives its coordinator, even one killed with SIGKILL.

    On Linux the kernel sends SIGTERM when the parent dies (PR_SET_PDEATHSIG); elsewhere, or if
    that signal is lost, a watchdog thread notices that the parent changed. A worker asked to
    stop that has not exited within the grace period is ended by the watchdog (its trial is
    then requeued as lost).
    """
    with contextlib.suppress(OSError, AttributeError):
        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(1, signal.SIGTERM)  # 1 = PR_SET_PDEATHSIG
    if os.getppid() != parent:  # the parent died before prctl took effect
        os._exit(EXIT_INTERRUPTED)

    def watch() -> None:
        orphaned = False
        while True:
            time.sleep(1.0)
            if os.getppid() != parent and not orphaned:
                orphaned = True
                os.kill(os.getpid(), signal.SIGTERM)
            if stops.overdue():
                os._exit(EXIT_INTERRUPTED)

    threading.Thread(target=watch, name="ablate-watchdog", daemon=True).start()
