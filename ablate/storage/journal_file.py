"""Optuna's journal file as ablate writes it: crash-safe locks, group commit, observers.

The journal is Optuna's own file format, written and read through :class:`JournalFile`,
which adds what ablate's queue needs to stay fast however long the journal grows: it hands
every record it reads to observers (the journal store's index follows the journal that way
instead of rescanning every trial), gives claims a lock of their own, syncs to disk outside
the lock (group commit), and lets the records of one step reach the disk with one sync. Its
locks are ``flock``s, which the kernel releases when a process dies holding one.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import threading
import time
import weakref
from collections.abc import Callable, Generator, Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any, cast

from optuna.storages.journal import JournalFileBackend

if TYPE_CHECKING:
    from optuna.storages.journal._file import BaseJournalFileLock


def cut_incomplete_record(path: Path) -> Path | None:
    """Remove a journal's last record if a crash cut it short; returns the backup, if any.

    Optuna never applies a record without its newline, but the next one appended would be
    glued onto it and damage the file. Under the journal's lock no write is in progress, so a
    missing final newline means a dead writer; the whole file is copied aside first.
    """
    if not path.exists() or path.stat().st_size == 0:
        return None
    lock = JournalLock(str(path))
    lock.acquire()
    try:
        with open(path, "rb") as f:
            f.seek(-1, os.SEEK_END)
            if f.read(1) == b"\n":
                return None
            data = path.read_bytes()
        keep = data.rfind(b"\n") + 1
        backup = path.with_name(f"{path.name}.damaged-{time.strftime('%Y%m%d-%H%M%S')}")
        backup.write_bytes(data)
        with open(path, "r+b") as f:
            f.truncate(keep)
            f.flush()
            os.fsync(f.fileno())
        return backup
    finally:
        lock.release()


class JournalLock:
    """A journal lock the kernel releases when its holder dies (Optuna's lock-file API)."""

    def __init__(self, path: str) -> None:
        self._path = path + ".flock"
        self._fd: int | None = None

    def acquire(self) -> bool:
        fd = os.open(self._path, os.O_CREAT | os.O_RDWR, 0o644)
        fcntl.flock(fd, fcntl.LOCK_EX)
        self._fd = fd
        return True

    def release(self) -> None:
        if self._fd is not None:
            fd, self._fd = self._fd, None
            fcntl.flock(fd, fcntl.LOCK_UN)
            os.close(fd)


class JournalFile(JournalFileBackend):
    """Optuna's journal file backend as ablate uses it (same file, same records).

    - :meth:`observe`: every record read from the file is also handed to a callback, in
      order and once, so that an index can follow the journal at the cost of what changed;
    - :meth:`claiming`: one claim at a time across processes (a lock file of its own, taken
      before Optuna's and the journal's locks, never while holding them), so that concurrent
      workers do not race for the same waiting trial;
    - :meth:`batch`: the records one thread appends meanwhile are synced to disk once, at
      the end (a claim's two records, a result and its state; a whole queue being filled);
    - :meth:`append_logs` syncs outside the lock (see there).
    """

    def __init__(self, path: str) -> None:
        self.path = Path(path)
        self.lock = JournalLock(path)
        # Optuna's signature names its private lock base class; it calls acquire and release
        super().__init__(path, lock_obj=cast("BaseJournalFileLock", self.lock))
        self._observers: list[weakref.WeakMethod[Callable[[dict[str, Any]], None]]] = []
        self._batch = threading.local()  # depth, unsynced: per thread (heartbeats sync alone)

    def observe(self, callback: Callable[[dict[str, Any]], None]) -> None:
        """Hand every record read from now on to ``callback`` (a bound method, held weakly:
        an index that is no longer used stops observing)."""
        self._observers.append(weakref.WeakMethod(callback))

    def read_logs(self, log_number_from: int) -> Generator[dict[str, Any], None, None]:
        for log in super().read_logs(log_number_from):
            for ref in self._observers:
                callback = ref()
                if callback is not None:
                    callback(log)
            yield log

    def append_logs(self, logs: list[dict[str, Any]]) -> None:
        """Append records; return once they, and every record before them, are on disk.

        The lock is held while writing, not while syncing (group commit): processes that
        append at the same time share the disk's flushes instead of queueing for one each,
        which made the lock, not the work, the limit of eight workers (about 8 records per
        trial, 4 ms per flush). Another process may read a record before its writer's sync
        returns; a record is never lost unless the machine itself stops (a power cut), and
        then neither is anything written after it in the file.
        """
        data = ("\n".join(json.dumps(log, separators=(",", ":")) for log in logs) + "\n").encode()
        with open(self.path, "ab") as f:
            self.lock.acquire()
            try:
                f.write(data)
                f.flush()
            finally:
                self.lock.release()
            if getattr(self._batch, "depth", 0):
                self._batch.unsynced = True
            else:
                os.fsync(f.fileno())

    @contextlib.contextmanager
    def claiming(self) -> Iterator[None]:
        lock = JournalLock(str(self.path) + ".claim")  # one per call: threads wait too
        lock.acquire()
        try:
            yield
        finally:
            lock.release()

    @contextlib.contextmanager
    def batch(self) -> Iterator[None]:
        """Sync this thread's records once, when the (outermost) batch ends, however it ends.

        Records of one step that only mean something together (a trial's result and its
        state) are then on disk together, or, after a power cut before the end, neither is.
        """
        depth = getattr(self._batch, "depth", 0)
        self._batch.depth = depth + 1
        try:
            yield
        finally:
            self._batch.depth = depth
            if not depth and getattr(self._batch, "unsynced", False):
                self._batch.unsynced = False
                with open(self.path, "ab") as f:
                    os.fsync(f.fileno())
