"""A study's trials in a database (typically PostgreSQL): many machines share one study.

Optuna's tables are the record of truth, written with plain statements
(:mod:`~ablate.storage.sql_writes`); beside them, ablate's narrow ``ablate_trials`` rows
(:mod:`~ablate.storage.sql_schema`) are what claims and checks read, at a cost that does not
grow with the study. A claim reserves a row (:mod:`~ablate.storage.sql_claims`), then moves
Optuna's trial to RUNNING, so that only one worker tries each trial; a finish changes the
row in the same transaction as Optuna's trial, and every other change to a row is written
after the Optuna change it mirrors. Where a crash left a row behind, the next look at it (a
failed claim, a lost-worker check, a retry) corrects it from Optuna, and trials without a
row (cut off by a crash) get one when the study is opened. Saved outputs are rows of
``ablate_outputs`` in the same database, written in the finish's transaction.
"""

from __future__ import annotations

import contextlib
import json
import logging
import time
from dataclasses import replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

import sqlalchemy as sa

from ablate.fileio import write_atomic
from ablate.storage import sql_claims, sql_writes
from ablate.storage._optuna import stored
from ablate.storage.base import Entry, NewTrial, OutputStore, StoredTrial, TrialStore, entry_of
from ablate.storage.retry import call_with_retry
from ablate.storage.sql_schema import OUTPUTS, TRIALS, engines, ensure_tables, upsert

if TYPE_CHECKING:
    from optuna.storages import BaseStorage

_log = logging.getLogger("ablate.storage")


class SqlStore(TrialStore):
    """The study's trials in Optuna's tables, its queue in ``ablate_trials`` (see the module)."""

    def __init__(self, storage: BaseStorage, study_id: int) -> None:
        self._storage = storage  # Optuna's RDBStorage (cached): reads through its API
        self._study_id = study_id
        self._optuna_engine = _engine_of(storage)
        self._fast, self._durable = engines(self._optuna_engine)
        self.outputs: SqlOutputs = SqlOutputs(self._fast, self._durable, study_id)
        call_with_retry(ensure_tables, self._fast)
        call_with_retry(self._add_missing)

    def close(self) -> None:
        for engine in (self._fast, self._durable, self._optuna_engine):
            engine.dispose()

    # -- writing ------------------------------------------------------------------------------

    def create(self, trials: list[NewTrial]) -> list[int]:
        """In transactions of up to 500 trials (the API creates one at a time and counts the
        study's trials for each number: minutes for 10,000)."""

        def run(chunk: list[NewTrial]) -> list[int]:
            with self._durable.begin() as conn:
                return sql_writes.create(conn, self._study_id, chunk)

        ids: list[int] = []
        for first in range(0, len(trials), sql_writes.CHUNK):
            ids += call_with_retry(run, trials[first : first + sql_writes.CHUNK])
        return ids

    def claim(self, worker: dict[str, Any], n: int = 1) -> list[Entry]:
        taken: list[Entry] = []
        while len(taken) < n:
            reserved = call_with_retry(sql_claims.reserve_next, self._fast, self._study_id, worker)
            if reserved is None:
                break
            if reserved is False or reserved is True:
                continue  # taken by another between two statements (no SKIP LOCKED here)
            row, earlier = reserved
            entry = replace(
                _entry(row), state="running", worker=worker, beat=time.time(), earlier=earlier
            )
            if self._start(entry.trial_id):
                taken.append(entry)
            else:  # not WAITING in Optuna: the row was behind (a reservation that a server
                self.sync(entry.trial_id, holder=True)  # crash took back). Not ours.
        return taken

    def take(self, entry: Entry, worker: dict[str, Any]) -> bool:
        if not call_with_retry(sql_claims.reserve, self._fast, entry.trial_id, worker):
            return False
        if self._start(entry.trial_id):
            return True
        self.sync(entry.trial_id)
        return False

    def _start(self, trial_id: int) -> bool:
        def run() -> bool:
            with self._durable.begin() as conn:
                return sql_writes.start(conn, trial_id)

        return call_with_retry(run)

    def heartbeat(self, trial_id: int, payload: dict[str, Any]) -> bool:
        statement = (
            sa.update(TRIALS)
            .where(TRIALS.c.trial_id == trial_id, TRIALS.c.state == "running")
            .values(heartbeat=json.dumps(payload), beat=payload.get("time", time.time()))
        )
        return self._execute(statement) == 1

    def record_epoch(self, trial_id: int, step: int, value: float) -> None:
        def run() -> None:  # also in the result's history: it rides the fast engine
            with self._fast.begin() as conn:
                sql_writes.intermediate(conn, trial_id, step, value)

        call_with_retry(run)

    def finish(
        self,
        trial_id: int,
        complete: bool,
        attrs: dict[str, Any],
        *,
        value: float | None = None,
        outcome: str,
        outputs: tuple[str, bytes] | None = None,
    ) -> bool:
        put = (lambda conn: self.outputs.put_in(conn, *outputs)) if outputs else None

        def run() -> bool:
            with self._durable.begin() as conn:
                return sql_writes.finish(conn, trial_id, complete, attrs, value=value,
                                         outcome=outcome, put_outputs=put)  # fmt: skip

        return call_with_retry(run)

    def sync(self, trial_id: int, holder: bool = False) -> None:
        entry = entry_of(stored(call_with_retry(self._storage.get_trial, trial_id)))
        if entry is None:
            return
        values: dict[str, Any] = {"state": entry.state, "outcome": entry.outcome}
        if entry.worker or holder:
            values["worker"] = json.dumps(entry.worker) if entry.worker else None
        self._execute(sa.update(TRIALS).where(TRIALS.c.trial_id == trial_id).values(**values))

    def _execute(self, statement: sa.Executable) -> int:
        def run() -> int:
            with self._fast.begin() as conn:
                return conn.execute(statement).rowcount

        return call_with_retry(run)

    # -- the queue's rows ---------------------------------------------------------------------

    def _add_missing(self) -> None:
        """Rows for the study's trials that have none: created by a process that stopped
        before writing their rows."""
        where = TRIALS.c.study_id == self._study_id
        with self._fast.connect() as conn:
            count, top = conn.execute(
                sa.select(sa.func.count(), sa.func.max(TRIALS.c.number)).where(where)
            ).one()
        top = -1 if top is None else top
        try:  # a trial numbered after the last row, or fewer rows than numbers
            self._storage.get_trial_id_from_study_id_trial_number(self._study_id, top + 1)
        except KeyError:
            if count == top + 1:
                return
        with self._fast.connect() as conn:
            have = set(conn.execute(sa.select(TRIALS.c.trial_id).where(where)).scalars())
        rows = [_row(e, self._study_id) for t in self.trials() if (e := entry_of(t)) is not None]
        rows = [r for r in rows if r["trial_id"] not in have]
        if rows:
            try:
                with self._fast.begin() as conn:
                    conn.execute(sa.insert(TRIALS), rows)
            except sa.exc.IntegrityError:  # another process added some meanwhile: one by one
                for row in rows:
                    with contextlib.suppress(sa.exc.IntegrityError), self._fast.begin() as c:
                        c.execute(sa.insert(TRIALS), [row])

    # -- reading ------------------------------------------------------------------------------

    def _select(self, *conditions: sa.ColumnElement[bool]) -> list[Entry]:
        def run() -> list[Any]:
            with self._fast.connect() as conn:
                where = (TRIALS.c.study_id == self._study_id, *conditions)
                return list(conn.execute(sa.select(TRIALS).where(*where)))

        return [_entry(row) for row in call_with_retry(run)]

    def entries(self) -> list[Entry]:
        return self._select()

    def running(self) -> list[Entry]:
        return self._select(TRIALS.c.state == "running")

    def entries_of(self, key: str, confirm: bool = False) -> list[Entry]:
        entries = self._select(TRIALS.c.trial_key == key)
        if not confirm:
            return entries
        out = []
        for e in entries:  # a row not finished may be behind Optuna (a crash between them)
            if e.state in ("waiting", "running"):
                fresh = entry_of(stored(call_with_retry(self._storage.get_trial, e.trial_id)))
                if fresh is not None and fresh.state != e.state:
                    self.sync(e.trial_id)
                    e = replace(e, state=fresh.state, outcome=fresh.outcome)
            out.append(e)
        return out

    def trials(self) -> list[StoredTrial]:
        """One narrow read of Optuna's ``trials`` and ``trial_user_attributes`` (Optuna's API
        builds a full trial each, with every parameter and intermediate value: longer than
        the rest of an export together), through the API if those tables differ."""
        try:
            return call_with_retry(_read_tables, self._optuna_engine, self._study_id)
        except (sa.exc.ProgrammingError, sa.exc.NoSuchTableError) as err:
            _log.info("reading Optuna's tables failed (%s); reading through its API", err)
        frozen = call_with_retry(self._storage.get_all_trials, self._study_id, deepcopy=False)
        return sorted((stored(t) for t in frozen), key=lambda t: t.number)

    def user_attrs(self, trial_id: int) -> dict[str, Any]:
        return call_with_retry(self._storage.get_trial, trial_id).user_attrs


class SqlOutputs(OutputStore):
    """Rows of ``ablate_outputs`` in the study's database."""

    def __init__(self, fast: sa.Engine, durable: sa.Engine, study_id: int) -> None:
        self._engine = fast
        # Committed as Optuna's rows are, waiting for the disk: outputs acknowledged and then
        # lost to a server crash would leave the result recorded next without them.
        self._durable = durable
        self._study_id = study_id

    def put(self, key: str, data: bytes) -> None:
        def run() -> None:
            with self._durable.begin() as conn:
                self.put_in(conn, key, data)

        call_with_retry(run)

    def put_in(self, conn: sa.Connection, key: str, data: bytes) -> None:
        """Keep a trial's outputs as part of the transaction on ``conn`` (a finish's)."""
        upsert(conn, OUTPUTS, {"study_id": self._study_id, "trial_key": key}, {"data": data})

    def keys(self) -> set[str]:
        def run() -> set[str]:
            with self._engine.connect() as conn:
                query = sa.select(OUTPUTS.c.trial_key).where(OUTPUTS.c.study_id == self._study_id)
                return set(conn.execute(query).scalars())

        return call_with_retry(run)

    def copy_into(self, folder: Path, keys: list[str]) -> int:
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


def _engine_of(storage: BaseStorage) -> sa.Engine:
    """The SQLAlchemy engine of Optuna's RDB storage (behind its cache, if any)."""
    from optuna.storages import RDBStorage

    rdb = getattr(storage, "_backend", storage)
    assert isinstance(rdb, RDBStorage)  # opening.py makes no other SQL storage
    return rdb.engine


def dispose(storage: BaseStorage) -> None:
    """Close the connections of Optuna's RDB storage."""
    _engine_of(storage).dispose()


def _read_tables(engine: sa.Engine, study_id: int) -> list[StoredTrial]:
    """Every trial of the study from Optuna's tables, as its schema has had them since its
    first version: the columns an export needs, no more."""

    tables = sql_writes.optuna_tables()
    trials, attrs = tables["trials"], tables["attrs"]
    with engine.connect() as conn:
        rows = conn.execute(
            sa.select(trials.c.trial_id, trials.c.number, trials.c.state,
                      trials.c.datetime_start, trials.c.datetime_complete)
            .where(trials.c.study_id == study_id)
        ).all()  # fmt: skip
        values = conn.execute(
            sa.select(attrs.c.trial_id, attrs.c.key, attrs.c.value_json)
            .select_from(attrs.join(trials, trials.c.trial_id == attrs.c.trial_id))
            .where(trials.c.study_id == study_id)
        ).all()
    by_trial: dict[int, dict[str, Any]] = {row.trial_id: {} for row in rows}
    for trial_id, key, value in values:
        by_trial[trial_id][key] = json.loads(value)
    out = [
        StoredTrial(row.trial_id, row.number, str(getattr(row.state, "name", row.state)),
                    row.datetime_start, row.datetime_complete, by_trial[row.trial_id])
        for row in rows
    ]  # fmt: skip
    return sorted(out, key=lambda t: t.number)


def _row(entry: Entry, study_id: int) -> dict[str, Any]:
    return {
        "trial_id": entry.trial_id, "study_id": study_id, "number": entry.number,
        "trial_key": entry.key, "cell": entry.cell, "state": entry.state,
        "attempt": entry.attempt, "outcome": entry.outcome,
        "worker": json.dumps(entry.worker) if entry.worker else None,
        "heartbeat": json.dumps(entry.heartbeat) if entry.heartbeat else None, "beat": entry.beat,
        "payload": json.dumps(entry.payload) if entry.payload else None,
    }  # fmt: skip


def _entry(row: Any) -> Entry:
    return Entry(
        trial_id=row.trial_id,
        number=row.number,
        key=row.trial_key,
        cell=row.cell,
        state=row.state,
        attempt=row.attempt,
        outcome=row.outcome,
        worker=json.loads(row.worker) if row.worker else {},
        heartbeat=json.loads(row.heartbeat) if row.heartbeat else {},
        beat=row.beat,
        payload=json.loads(row.payload) if row.payload else {},
    )
