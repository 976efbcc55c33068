"""Opening a study's storage: its journal file (no URL) or a database URL, each checked.

:func:`open_storage` is the one place that decides which backend a study uses; everything
else talks to :class:`Storage` (studies by name, their attributes) and the
:class:`~ablate.storage.base.TrialStore` it returns for one study. A storage that cannot be
opened -- a damaged journal, an unwritable folder, a malformed URL, an unknown database or
driver, an unreachable server -- is refused with a message that names the problem and the
way out.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

from ablate.errors import AblateError, disk_full, option
from ablate.secrets import first_line, mask_url
from ablate.storage.base import JOURNAL_FILE, TrialStore
from ablate.storage.journal_file import JournalFile, cut_incomplete_record
from ablate.storage.retry import call_with_retry

if TYPE_CHECKING:
    from optuna.storages import BaseStorage, RDBStorage

_log = logging.getLogger("ablate.storage")
_EXAMPLE = "postgresql://user:password@host:5432/database"


@dataclass
class Storage:
    """An opened Optuna storage: a journal file or a database (see :func:`open_storage`).

    Studies are found, created and described through Optuna's public storage API; a study's
    trials through :meth:`trials`."""

    optuna: BaseStorage
    kind: Literal["journal", "sql"]
    journal: JournalFile | None = None

    def study_id(self, name: str) -> int | None:
        try:
            return int(call_with_retry(self.optuna.get_study_id_from_name, name))
        except KeyError:
            return None

    def create_study(self, name: str, maximize: bool, attrs: dict[str, Any]) -> int:
        """Create the study with its attributes; the existing one if another process created
        it meanwhile (then its attributes are that process's)."""
        import optuna

        direction = optuna.study.StudyDirection
        try:
            study_id = self.optuna.create_new_study(
                [direction.MAXIMIZE if maximize else direction.MINIMIZE], study_name=name
            )
        except optuna.exceptions.DuplicatedStudyError:
            return int(self.optuna.get_study_id_from_name(name))
        for key, value in attrs.items():
            self.optuna.set_study_user_attr(study_id, key, value)
        return int(study_id)

    def study_attrs(self, study_id: int) -> dict[str, Any]:
        return dict(call_with_retry(self.optuna.get_study_user_attrs, study_id))

    def close(self) -> None:
        """Release a database's connections (a store closes its own when it is closed)."""
        if self.kind == "sql":
            from ablate.storage.sql import dispose

            dispose(self.optuna)

    def trials(self, study_id: int) -> TrialStore:
        """The study's trials, in the store that suits this storage."""
        if self.kind == "journal":
            from ablate.storage.journal import JournalStore

            assert self.journal is not None
            return JournalStore(self.optuna, study_id, self.journal)
        from ablate.storage.sql import SqlStore

        return SqlStore(self.optuna, study_id)


def open_storage(url: str | None, results_dir: Path) -> Storage:
    """The study's journal in ``results_dir`` (url None), or the database at ``url``."""
    import optuna

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    if url is None:
        return _open_journal(results_dir)
    check_storage_url(url, connect=False)
    try:
        rdb = _rdb_storage(url)
        # Optuna's cache keeps finished trials in memory, so that exporting again fetches only
        # the unfinished ones; workers never read all trials (the queue has its own rows).
        return Storage(optuna.storages.get_storage(rdb), "sql")
    except ImportError as err:
        raise _driver_missing(url, err) from None
    except Exception as err:
        raise AblateError(
            f"cannot open the storage {mask_url(url)}: {first_line(err)}. Check that the "
            "database server is running and reachable and that the URL (user, host, port, "
            "database) is right."
        ) from None


def _rdb_storage(url: str) -> RDBStorage:
    """Optuna's storage of the database at ``url``. Optuna creates its tables on first open;
    processes that open a new database at once (a run and a status, workers starting) race
    to create them, and the losers' CREATE fails on PostgreSQL's catalogue ("duplicate key
    ... pg_type"): they open it again once the winner's tables are there."""
    import optuna
    import sqlalchemy.exc

    attempt = 0
    while True:
        try:
            return optuna.storages.RDBStorage(url, engine_kwargs={"pool_pre_ping": True})
        except (sqlalchemy.exc.IntegrityError, sqlalchemy.exc.ProgrammingError) as err:
            attempt += 1
            concurrent = "duplicate key" in str(err) or "already exists" in str(err)
            if not concurrent or attempt == 6:
                raise
            time.sleep(0.2 * attempt)


def _open_journal(results_dir: Path) -> Storage:
    import optuna

    try:
        results_dir.mkdir(parents=True, exist_ok=True)
        path = results_dir / JOURNAL_FILE
        cut = cut_incomplete_record(path)
        if cut is not None:
            _log.warning(
                "the journal's last record was cut short (a crash or a full disk while "
                "writing); it was never applied, so it was removed (the whole file was first "
                "copied to %s)",
                cut,
            )
        journal = JournalFile(str(path))
        return Storage(optuna.storages.JournalStorage(journal), "journal", journal)
    except (ValueError, KeyError, TypeError) as err:  # a line that is not a journal record
        raise AblateError(
            f"the study's journal {results_dir / JOURNAL_FILE} is damaged ({first_line(err)}); "
            f"`ablate doctor {results_dir}` with {option('repair', 'True')} checks it and, if only "
            "its last record "
            "was cut short (a crash or a full disk while writing), repairs it."
        ) from None
    except OSError as err:
        full = disk_full(err)
        if full is not None:
            raise full from None
        raise AblateError(
            f"cannot open the study's journal in {results_dir} ({err.strerror or err}); check "
            "that the folder exists and is writable."
        ) from None


def check_storage_url(url: str, *, connect: bool = True) -> None:
    """Refuse a storage URL that is malformed, names an unknown database or driver, or (with
    ``connect``) whose database cannot be reached, with a message for each; writes nothing."""
    import sqlalchemy as sa
    from sqlalchemy.engine import make_url

    try:
        parsed = make_url(url)
    except sa.exc.ArgumentError:
        raise AblateError(
            f"the storage URL {mask_url(url)} is not a database URL; write it as {_EXAMPLE} "
            f"(or leave {option('storage_url', '', '--storage')} and ABLATE_STORAGE out for a "
            "journal file in the results "
            "folder)."
        ) from None
    try:
        parsed.get_dialect()
    except sa.exc.NoSuchModuleError:
        raise AblateError(
            f"the storage URL {mask_url(url)} names the database type '{parsed.drivername}', "
            f"which SQLAlchemy does not know; PostgreSQL is written {_EXAMPLE}."
        ) from None
    except ImportError as err:
        raise _driver_missing(url, err) from None
    if connect:
        _connect(url, parsed)


def _connect(url: str, parsed: Any) -> None:
    import sqlalchemy as sa

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
