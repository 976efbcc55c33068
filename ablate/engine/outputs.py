"""Where each complete trial's model outputs (an .npz, tens of kB) are kept: beside the storage,
never inside Optuna's rows, so that the storage stays lean and no worker holds them all.

- Journal storage (one machine, or a shared filesystem): files named by trial key in
  ``stored-outputs/`` beside the journal, written atomically by the worker that trained the
  trial, before its result is recorded (:class:`FileOutputs`).
- A database: ablate's ``ablate_outputs`` table in the same database, so that workers on any
  machine deliver them to every machine's export (:class:`SqlOutputs`).

``ablate export`` copies them into ``results/<study>/outputs/<key>.npz`` (hard links where it
can), and ``ablate doctor --repair`` restores a missing one from here. Studies recorded before
kept them base64-encoded in the trial's ``outputs`` user attribute; those are still read
(:func:`legacy_outputs`).
"""

from __future__ import annotations

import base64
import contextlib
import os
from pathlib import Path
from typing import Any, Protocol

from ablate.engine.retry import call_with_retry
from ablate.engine.storage import journal_file, rdb_engine
from ablate.results.files import write_atomic

#: Beside the journal: the outputs the journal storage keeps.
STORED_OUTPUTS_DIR = "stored-outputs"


class OutputStore(Protocol):
    """A study's saved model outputs, by trial key."""

    def put(self, key: str, data: bytes) -> None:
        """Keep a trial's outputs (replacing an earlier attempt's)."""

    def keys(self) -> set[str]:
        """Trial keys with outputs kept."""

    def copy_into(self, folder: Path, keys: list[str]) -> int:
        """Write these keys' outputs into ``folder`` as ``<key>.npz``, each atomically (keys
        without outputs are skipped); returns how many were written."""


def open_outputs(storage: Any, study_id: int, results_dir: Path) -> OutputStore:
    """The store that suits the storage: a table for a database, files beside a journal."""
    engine = rdb_engine(storage)
    if engine is not None:
        return SqlOutputs(engine, study_id)
    journal = journal_file(storage)
    folder = journal.path.parent if journal is not None else results_dir
    return FileOutputs(folder / STORED_OUTPUTS_DIR)


class FileOutputs:
    """One ``<key>.npz`` per trial in a folder."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder

    def put(self, key: str, data: bytes) -> None:
        self.folder.mkdir(parents=True, exist_ok=True)
        write_atomic(self.folder / f"{key}.npz", data)

    def keys(self) -> set[str]:
        if not self.folder.is_dir():
            return set()
        return {p.stem for p in self.folder.glob("*.npz")}

    def copy_into(self, folder: Path, keys: list[str]) -> int:
        written = 0
        for key in keys:
            source = self.folder / f"{key}.npz"
            if not source.is_file():
                continue
            target = folder / source.name
            tmp = folder / f".{source.name}.{os.getpid()}.link"
            with contextlib.suppress(FileNotFoundError):
                tmp.unlink()
            try:  # a hard link: no second copy on disk; atomic through the rename
                os.link(source, tmp)
                os.replace(tmp, target)
            except OSError:  # another filesystem, or links not allowed
                with contextlib.suppress(OSError):
                    tmp.unlink()
                write_atomic(target, source.read_bytes(), sync=False)
            written += 1
        return written


class SqlOutputs:
    """Rows of ``ablate_outputs`` in the study's database."""

    def __init__(self, engine: Any, study_id: int) -> None:
        from ablate.engine.tables import ensure_tables, tables_engine

        self._engine = tables_engine(engine)
        # Committed as Optuna's rows are, waiting for the disk: outputs acknowledged and then
        # lost to a server crash would leave the result recorded next without them.
        self._durable = tables_engine(engine, durable=True)
        self._study_id = study_id
        call_with_retry(ensure_tables, self._engine)

    def put(self, key: str, data: bytes) -> None:
        def run() -> None:
            with self._durable.begin() as conn:
                self.put_in(conn, key, data)

        call_with_retry(run)

    def put_in(self, conn: Any, key: str, data: bytes) -> None:
        """Keep a trial's outputs as part of the transaction on ``conn`` (a finish's)."""
        from ablate.engine.tables import OUTPUTS, upsert

        upsert(conn, OUTPUTS, {"study_id": self._study_id, "trial_key": key}, {"data": data})

    def keys(self) -> set[str]:
        import sqlalchemy as sa

        from ablate.engine.tables import OUTPUTS

        def run() -> set[str]:
            with self._engine.connect() as conn:
                query = sa.select(OUTPUTS.c.trial_key).where(OUTPUTS.c.study_id == self._study_id)
                return set(conn.execute(query).scalars())

        return call_with_retry(run)

    def copy_into(self, folder: Path, keys: list[str]) -> int:
        import sqlalchemy as sa

        from ablate.engine.tables import OUTPUTS

        def fetch(batch: list[str]) -> list[Any]:
            with self._engine.connect() as conn:
                query = sa.select(OUTPUTS.c.trial_key, OUTPUTS.c.data).where(
                    OUTPUTS.c.study_id == self._study_id, OUTPUTS.c.trial_key.in_(batch)
                )
                return list(conn.execute(query))

        written = 0
        for start in range(0, len(keys), 100):  # about 4 MB a query
            for key, data in call_with_retry(fetch, keys[start : start + 100]):
                write_atomic(folder / f"{key}.npz", bytes(data), sync=False)
                written += 1
        return written


def legacy_outputs(attrs: dict[str, Any]) -> bytes | None:
    """Outputs an older ablate kept inside the trial's user attributes (base64), if any."""
    encoded = attrs.get("outputs")
    if not encoded:
        return None
    try:
        return base64.b64decode(encoded, validate=True)
    except (ValueError, TypeError):
        return None
