"""Opening Optuna storage: the study's journal file (with a crash-safe lock) or a database URL.

By default a study's trials live in an Optuna journal file in its results folder (no server;
its lock is an ``flock`` that the kernel releases if a process dies holding it); any
SQLAlchemy URL, typically PostgreSQL, lets workers on several machines share one study.
"""

from __future__ import annotations

import contextlib
import fcntl
import logging
import os
import time
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

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
            backend = optuna.storages.journal.JournalFileBackend(path, lock_obj=JournalLock(path))
            return optuna.storages.JournalStorage(backend)
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
    remember_secret(url)
    try:
        rdb = optuna.storages.RDBStorage(url, engine_kwargs={"pool_pre_ping": True})
        # Optuna's cache keeps finished trials in memory: each later read fetches only the
        # unfinished ones, so claiming stays cheap however many trials are done.
        return optuna.storages.get_storage(rdb)
    except ImportError as err:
        raise AblateError(
            f"the storage {mask_url(url)} needs a database driver that is not installed "
            f"({err}); for PostgreSQL: pip install 'ablate[postgres]' (psycopg)."
        ) from None
    except Exception as err:
        raise AblateError(
            f"cannot open the storage {mask_url(url)}: {first_line(err)}. Check that the "
            "database server is running and reachable and that the URL (user, host, port, "
            "database) is right."
        ) from None


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


@contextlib.contextmanager
def opened_queue(study: Study, url: str | None, *, create: bool = True) -> Iterator[TrialQueue]:
    """Open storage and the study's queue; closes RDB connections afterwards."""
    from ablate.engine.queue import TrialQueue

    storage = open_storage(url, study.results_dir)
    try:
        yield TrialQueue.open(study, storage, create=create)
    finally:
        rdb = getattr(storage, "_backend", storage)
        engine = getattr(rdb, "engine", None)
        if engine is not None:
            engine.dispose()
