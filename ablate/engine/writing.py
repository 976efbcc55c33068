"""Writing trials: their creation, a claim's start, an epoch's value, a finish.

- :class:`ApiWriter` (the journal, any other storage): Optuna's storage API, a call per
  change, the saved outputs kept first.
- :class:`SqlWriter` (a database): each change is one short transaction of plain statements
  on Optuna's own tables, their definitions taken from Optuna's models (same columns, enums
  and value conversions, so what Optuna's tools read is what its API would have written),
  together with the ablate rows that go with it. A finish records the outputs, the result,
  the value, the state and the index row in one commit: all of it or none; new trials are
  created 500 to a transaction.

Why not Optuna's API on a database: its RDB storage opens an ORM session per call; a claim,
three epochs' values and a finish took ten commits and ~14 ms of Python per trial, so with
8 workers sharing two cores a claim + finish took 60-80 ms (``bench/scale.py``; now about
6 ms and 20-25 ms). The checks are Optuna's: a finished trial is never changed, and a start
needs a WAITING trial.
"""

from __future__ import annotations

import contextlib
import functools
import json
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING, Any, Protocol

from ablate.engine.retry import call_with_retry
from ablate.engine.storage import journal_batch, rdb_engine

if TYPE_CHECKING:
    from ablate.engine.outputs import OutputStore


@dataclass(frozen=True)
class NewTrial:
    """A trial to create, WAITING: Optuna's attributes of it, and its index row's facts."""

    user_attrs: dict[str, Any]
    system_attrs: dict[str, Any]
    key: str
    cell: str  # the cell's label
    attempt: int


class TrialWriter(Protocol):
    """The changes the queue makes to trials in Optuna storage."""

    def create(self, study_id: int, trials: list[NewTrial]) -> list[int]:
        """Create these trials, WAITING, numbered in this order; returns their ids."""

    def start(self, trial_id: int) -> bool:
        """Optuna's atomic WAITING -> RUNNING; False if the trial is not WAITING."""

    def intermediate(self, trial_id: int, step: int, value: float) -> None:
        """An epoch's value of the response (Optuna's intermediate value); ignored once the
        trial has finished."""

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
        """Record ``attrs`` (user attributes), ``value`` and COMPLETE (else FAIL), with the
        saved ``outputs`` (trial key, bytes) first; False if the trial had already finished."""


def open_writer(storage: Any, outputs: OutputStore) -> TrialWriter:
    """Plain statements for a database, Optuna's API otherwise."""
    from ablate.engine.outputs import SqlOutputs

    engine = rdb_engine(storage)
    if engine is not None and isinstance(outputs, SqlOutputs):
        return SqlWriter(engine, outputs)
    return ApiWriter(storage, outputs)


# ---------------------------------------------------------------------------------------------
# Through Optuna's API


class ApiWriter:
    """Optuna's storage API; a journal writes a finish's records to disk together."""

    def __init__(self, storage: Any, outputs: OutputStore) -> None:
        self._storage = storage
        self._outputs = outputs

    def create(self, study_id: int, trials: list[NewTrial]) -> list[int]:
        from optuna.trial import TrialState, create_trial

        ids = []
        for new in trials:  # the journal's index reads them from the journal
            template = create_trial(state=TrialState.WAITING, user_attrs=new.user_attrs,
                                    system_attrs=new.system_attrs)  # fmt: skip
            ids.append(call_with_retry(self._storage.create_new_trial, study_id, template))
        return ids

    def start(self, trial_id: int) -> bool:
        from optuna.exceptions import UpdateFinishedTrialError
        from optuna.trial import TrialState

        try:
            return bool(
                call_with_retry(self._storage.set_trial_state_values, trial_id, TrialState.RUNNING)
            )
        except UpdateFinishedTrialError:
            return False  # claimed and finished by another worker meanwhile

    def intermediate(self, trial_id: int, step: int, value: float) -> None:
        from optuna.exceptions import UpdateFinishedTrialError

        with contextlib.suppress(UpdateFinishedTrialError):
            call_with_retry(self._storage.set_trial_intermediate_value, trial_id, step, value)

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
        from optuna.exceptions import UpdateFinishedTrialError
        from optuna.trial import TrialState

        try:
            if outputs is not None:  # first, so that a recorded complete trial has them
                self._outputs.put(*outputs)
            with journal_batch(self._storage):
                for name, attr in attrs.items():
                    call_with_retry(self._storage.set_trial_user_attr, trial_id, name, attr)
                state = TrialState.COMPLETE if complete else TrialState.FAIL
                values = [value] if complete and value is not None else None
                call_with_retry(self._storage.set_trial_state_values, trial_id, state, values)
        except (UpdateFinishedTrialError, KeyError):
            return False
        return True  # the journal's index reads the change from the journal


# ---------------------------------------------------------------------------------------------
# Plain statements on Optuna's tables


@functools.cache
def _optuna_tables() -> dict[str, Any]:
    """Optuna's tables and value conversions as its installed version declares them, and the
    statements on them that take no statement's building per call (``:id``, ``:now`` ...)."""
    import sqlalchemy as sa
    from optuna.storages._rdb import models
    from optuna.trial import TrialState

    from ablate.engine.tables import TRIALS

    trials = models.TrialModel.__table__
    this = trials.c.trial_id == sa.bindparam("id")
    unfinished = trials.c.state.in_([TrialState.WAITING, TrialState.RUNNING])
    return {
        "models": models,
        "studies": models.StudyModel.__table__,
        "trials": trials,
        "system_attrs": models.TrialSystemAttributeModel.__table__,
        "attrs": models.TrialUserAttributeModel.__table__,
        "values": models.TrialValueModel.__table__,
        "intermediate": models.TrialIntermediateValueModel.__table__,
        "start": sa.update(trials)
        .where(this, trials.c.state == TrialState.WAITING)
        .values(state=TrialState.RUNNING, datetime_start=sa.bindparam("now")),
        "state": sa.select(trials.c.state).where(this),
        "finish": sa.update(trials)
        .where(this, unfinished)
        .values(state=sa.bindparam("state"), datetime_complete=sa.bindparam("now")),
        "finish_row": sa.update(TRIALS)
        .where(TRIALS.c.trial_id == sa.bindparam("id"))
        .values(state=sa.bindparam("row_state"), outcome=sa.bindparam("outcome")),
    }


def _stored_now(column: str) -> Any:
    """Now, as Optuna's trial model stores it in ``column`` (naive UTC since Optuna 5, naive
    local time before): set through the model's own attribute, read back from its column."""
    probe = _optuna_tables()["models"].TrialModel()
    setattr(probe, column, datetime.now())
    return getattr(probe, _column_attribute(column))


@functools.cache
def _column_attribute(column: str) -> str:
    """The trial model's attribute that maps ``column`` (``_datetime_start_utc`` in Optuna 5)."""
    import sqlalchemy as sa

    model = _optuna_tables()["models"].TrialModel
    return sa.inspect(model).get_property_by_column(model.__table__.c[column]).key


class SqlWriter:
    """One transaction of plain statements per change (see the module)."""

    def __init__(self, engine: Any, outputs: Any) -> None:
        from ablate.engine.tables import tables_engine

        # Durable: a start, a result and its outputs are what a user keeps. An epoch's value
        # is also in the result's history, so it rides the fast engine.
        self._durable = tables_engine(engine, durable=True)
        self._fast = tables_engine(engine)
        self._outputs = outputs

    def create(self, study_id: int, trials: list[NewTrial]) -> list[int]:
        """In transactions of up to 500 trials, each with its attributes and index row (the
        API creates one at a time and counts the study's trials for each number: minutes for
        10,000). Numbers are taken as Optuna takes them, under a lock on the study's row."""
        ids: list[int] = []
        for first in range(0, len(trials), 500):
            chunk = trials[first : first + 500]
            ids += call_with_retry(self._create, study_id, chunk)
        return ids

    def _create(self, study_id: int, trials: list[NewTrial]) -> list[int]:
        import sqlalchemy as sa
        from optuna.trial import TrialState

        from ablate.engine.tables import TRIALS

        optuna = _optuna_tables()
        studies, table = optuna["studies"], optuna["trials"]
        with self._durable.begin() as conn:
            conn.execute(
                sa.select(studies.c.study_id)
                .where(studies.c.study_id == study_id)
                .with_for_update()
            )
            count = sa.select(sa.func.count()).where(table.c.study_id == study_id)
            first = conn.execute(count).scalar_one()
            rows = [
                {"study_id": study_id, "number": first + i, "state": TrialState.WAITING,
                 "datetime_start": None, "datetime_complete": None}
                for i in range(len(trials))
            ]  # fmt: skip
            if conn.dialect.insert_executemany_returning_sort_by_parameter_order:
                insert = sa.insert(table).returning(table.c.trial_id,
                                                    sort_by_parameter_order=True)  # fmt: skip
                ids = [row.trial_id for row in conn.execute(insert, rows)]
            else:  # MySQL: no RETURNING, one INSERT per trial
                ids = [conn.execute(sa.insert(table).values(**row)).inserted_primary_key[0]
                       for row in rows]  # fmt: skip
            for name, attrs_of in (("attrs", lambda t: t.user_attrs),
                                   ("system_attrs", lambda t: t.system_attrs)):  # fmt: skip
                attrs = [
                    {"trial_id": trial_id, "key": key, "value_json": json.dumps(value)}
                    for trial_id, new in zip(ids, trials, strict=True)
                    for key, value in attrs_of(new).items()
                ]
                if attrs:
                    conn.execute(sa.insert(optuna[name]), attrs)
            conn.execute(
                sa.insert(TRIALS),
                [
                    {"trial_id": trial_id, "study_id": study_id, "number": first + i,
                     "trial_key": new.key, "cell": new.cell, "state": "waiting",
                     "attempt": new.attempt}
                    for i, (trial_id, new) in enumerate(zip(ids, trials, strict=True))
                ],
            )  # fmt: skip
        return ids

    def start(self, trial_id: int) -> bool:
        statement = _optuna_tables()["start"]

        def run() -> bool:
            now = _stored_now("datetime_start")
            with self._durable.begin() as conn:
                return conn.execute(statement, {"id": trial_id, "now": now}).rowcount == 1

        return call_with_retry(run)

    def intermediate(self, trial_id: int, step: int, value: float) -> None:
        from ablate.engine.tables import upsert

        optuna = _optuna_tables()
        table = optuna["intermediate"]
        convert = optuna["models"].TrialIntermediateValueModel.intermediate_value_to_stored_repr
        stored, kind = convert(value)

        def run() -> None:
            with self._fast.begin() as conn:
                state = conn.execute(optuna["state"], {"id": trial_id}).scalar()
                if state is None or state.is_finished():
                    return
                upsert(conn, table, {"trial_id": trial_id, "step": step},
                       {"intermediate_value": stored, "intermediate_value_type": kind})  # fmt: skip

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
        from optuna.trial import TrialState

        from ablate.engine.tables import upsert

        optuna = _optuna_tables()
        to_stored = optuna["models"].TrialValueModel.value_to_stored_repr
        state = TrialState.COMPLETE if complete else TrialState.FAIL

        def run() -> bool:
            now = _stored_now("datetime_complete")
            with self._durable.begin() as conn:
                # First the state, which locks the trial's row until the commit; a trial
                # finished meanwhile (declared lost, say) is left as it is.
                changed = conn.execute(optuna["finish"], {"id": trial_id, "state": state,
                                                          "now": now}).rowcount  # fmt: skip
                if changed != 1:
                    return False
                if outputs is not None:
                    self._outputs.put_in(conn, *outputs)
                for name, attr in attrs.items():
                    upsert(conn, optuna["attrs"], {"trial_id": trial_id, "key": name},
                           {"value_json": json.dumps(attr)})  # fmt: skip
                if complete and value is not None:
                    stored, kind = to_stored(value)
                    upsert(conn, optuna["values"], {"trial_id": trial_id, "objective": 0},
                           {"value": stored, "value_type": kind})  # fmt: skip
                row = {"id": trial_id, "outcome": outcome,
                       "row_state": "complete" if complete else "fail"}  # fmt: skip
                conn.execute(optuna["finish_row"], row)
            return True

        return call_with_retry(run)
