"""Opening Optuna storage: the study's journal file (with a crash-safe lock) or a database URL.

By default a study's trials live in an Optuna journal file in its results folder (no server;
its lock is an ``flock`` that the kernel releases if a process dies holding it); any
SQLAlchemy URL, typically PostgreSQL, lets workers on several machines share one study.

The journal is Optuna's own file format, written and read through :class:`JournalFile`,
which adds what ablate's queue needs to stay fast however long the journal grows: it hands
every record it reads to observers (the queue's index follows the journal that way instead
of rescanning every trial), gives claims a lock of their own, syncs to disk outside the lock
(group commit), and lets the records of one step reach the disk with one sync.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import logging
import os
import threading
import time
import weakref
from collections.abc import Callable, Generator, Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

from optuna.storages.journal import JournalFileBackend

from ablate.engine.secrets import first_line, mask_url, remember_secret
from ablate.errors import AblateError

if TYPE_CHECKING:
    from ablate.engine.queue import TrialQueue
    from ablate.study import Study

JOURNAL_FILE = "optuna.journal"

_log = logging.getLogger("ablate.storage")


def open_storage(url: str | None, results_dir: Path) -> Any:
    """Optuna storage: the study's journal file (url None) or an RDB URL."""
    import optuna

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    if url is None:
        try:
            results_dir.mkdir(parents=True, exist_ok=True)
            path = str(results_dir / JOURNAL_FILE)
            cut = cut_incomplete_record(Path(path))
            if cut is not None:
                _log.warning(
                    "the journal's last record was cut short (a crash or a full disk while "
                    "writing); it was never applied, so it was removed (the whole file was "
                    "first copied to %s)",
                    cut,
                )
            return optuna.storages.JournalStorage(JournalFile(path))
        except (ValueError, KeyError, TypeError) as err:  # a line that is not a journal record
            raise AblateError(
                f"the study's journal {results_dir / JOURNAL_FILE} is damaged ({first_line(err)}"
                f"); `ablate doctor {results_dir} --repair` checks it and, if only its last "
                "record was cut short (a crash or a full disk while writing), repairs it."
            ) from None
        except OSError as err:
            raise AblateError(
                f"cannot open the study's journal in {results_dir} ({err.strerror or err}); check "
                "that the folder exists, is writable and that the disk is not full."
            ) from None
    check_storage_url(url, connect=False)
    try:
        rdb = optuna.storages.RDBStorage(url, engine_kwargs={"pool_pre_ping": True})
        # Optuna's cache keeps finished trials in memory, so that exporting again fetches only
        # the unfinished ones; workers never read all trials (the queue has its own index).
        return optuna.storages.get_storage(rdb)
    except ImportError as err:
        raise _driver_missing(url, err) from None
    except Exception as err:
        raise AblateError(
            f"cannot open the storage {mask_url(url)}: {first_line(err)}. Check that the "
            "database server is running and reachable and that the URL (user, host, port, "
            "database) is right."
        ) from None


def check_storage_url(url: str, *, connect: bool = True) -> None:
    """Refuse a storage URL that is malformed, names an unknown database or driver, or (with
    ``connect``) whose database cannot be reached, with a message for each; writes nothing."""
    import sqlalchemy as sa
    from sqlalchemy.engine import make_url

    remember_secret(url)
    example = "postgresql://user:password@host:5432/database"
    try:
        parsed = make_url(url)
    except sa.exc.ArgumentError:
        raise AblateError(
            f"the storage URL {mask_url(url)} is not a database URL; write it as {example} (or "
            "leave --storage and ABLATE_STORAGE out for a journal file in the results folder)."
        ) from None
    try:
        parsed.get_dialect()
    except sa.exc.NoSuchModuleError:
        raise AblateError(
            f"the storage URL {mask_url(url)} names the database type '{parsed.drivername}', "
            f"which SQLAlchemy does not know; PostgreSQL is written {example}."
        ) from None
    except ImportError as err:
        raise _driver_missing(url, err) from None
    if not connect:
        return
    try:
        engine = sa.create_engine(parsed, pool_pre_ping=False)
    except ImportError as err:
        raise _driver_missing(url, err) from None
    try:
        with engine.connect() as conn:
            conn.execute(sa.text("SELECT 1"))
    except Exception as err:
        raise AblateError(
            f"cannot reach the storage {mask_url(url)}: {first_line(err)}. Check that the "
            "database server is running and reachable and that the URL (user, password, host, "
            "port, database) is right."
        ) from None
    finally:
        engine.dispose()


def _driver_missing(url: str, err: ImportError) -> AblateError:
    return AblateError(
        f"the storage {mask_url(url)} needs a database driver that is not installed "
        f"({first_line(err)}); for PostgreSQL: pip install 'ablate[postgres]' (psycopg)."
    )


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
        super().__init__(path, lock_obj=self.lock)
        self._observers: list[weakref.WeakMethod[Callable[[dict[str, Any]], None]]] = []
        self._batch = threading.local()  # depth, unsynced: per thread (heartbeats sync alone)

    def observe(self, callback: Callable[[dict[str, Any]], None]) -> None:
        """Hand every record read from now on to ``callback`` (a bound method, held weakly:
        an index that is no longer used stops observing)."""
        self._observers.append(weakref.WeakMethod(callback))  # type: ignore[arg-type]

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


def rdb_engine(storage: Any) -> Any:
    """The SQLAlchemy engine of an RDB storage (cached or not); None for other storages."""
    return getattr(getattr(storage, "_backend", storage), "engine", None)


def journal_file(storage: Any) -> JournalFile | None:
    """ablate's journal backend of a journal storage; None for other storages."""
    backend = getattr(storage, "_backend", None)
    return backend if isinstance(backend, JournalFile) else None


def journal_batch(storage: Any) -> contextlib.AbstractContextManager[None]:
    """Records written meanwhile reach the disk together (the journal; a no-op else)."""
    journal = journal_file(storage)
    return journal.batch() if journal is not None else contextlib.nullcontext()


@contextlib.contextmanager
def opened_queue(study: Study, url: str | None, *, create: bool = True) -> Iterator[TrialQueue]:
    """Open storage and the study's queue; closes RDB connections afterwards."""
    from ablate.engine.queue import TrialQueue

    storage = open_storage(url, study.results_dir)
    try:
        yield TrialQueue.open(study, storage, create=create)
    finally:
        engine = rdb_engine(storage)
        if engine is not None:
            from ablate.engine.tables import dispose_tables_engine

            dispose_tables_engine(engine)
            engine.dispose()
