"""Writing trials to a database: plain statements on Optuna's own tables, one transaction each.

Each change -- trials created, a claim's start, an epoch's value, a finish -- is one short
transaction of plain statements on Optuna's tables, their definitions taken from Optuna's
models (same columns, enums and value conversions, so what Optuna's tools read is what its
API would have written), together with the ablate rows that go with it. A finish records the
outputs, the result, the value, the state and the queue's row in one commit: all of it or
none. New trials are created 500 to a transaction, with their parameters.

Why not Optuna's API: its RDB storage opens an ORM session per call; a claim, three epochs'
values and a finish took ten commits and ~14 ms of Python per trial, so with 8 workers
sharing two cores a claim + finish took 60-80 ms (``bench/scale.py``; now about 6 ms and
20-25 ms). The checks are Optuna's: a finished trial is never changed, and a start needs a
WAITING trial.
"""

from __future__ import annotations

import functools
import json
from collections.abc import Callable
from datetime import datetime
from typing import Any

import sqlalchemy as sa

from ablate.storage._optuna import distributions
from ablate.storage.base import NewTrial
from ablate.storage.sql_schema import TRIALS, upsert

#: Trials created per transaction.
CHUNK = 500


@functools.cache
def optuna_tables() -> dict[str, Any]:
    """Optuna's tables and value conversions as its installed version declares them, and the
    statements on them that take no statement's building per call (``:id``, ``:now`` ...)."""
    from optuna.storages._rdb import models
    from optuna.trial import TrialState

    trials = models.TrialModel.__table__
    this = trials.c.trial_id == sa.bindparam("id")
    unfinished = trials.c.state.in_([TrialState.WAITING, TrialState.RUNNING])
    return {
        "models": models,
        "studies": models.StudyModel.__table__,
        "trials": trials,
        "params": models.TrialParamModel.__table__,
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


def stored_now(column: str) -> Any:
    """Now, as Optuna's trial model stores it in ``column`` (naive UTC since Optuna 5, naive
    local time before): set through the model's own attribute, read back from its column."""
    probe = optuna_tables()["models"].TrialModel()
    setattr(probe, column, datetime.now())
    return getattr(probe, _column_attribute(column))


@functools.cache
def _column_attribute(column: str) -> str:
    """The trial model's attribute that maps ``column`` (``_datetime_start_utc`` in Optuna 5)."""
    model = optuna_tables()["models"].TrialModel
    return str(sa.inspect(model).get_property_by_column(model.__table__.c[column]).key)


def create(conn: sa.Connection, study_id: int, trials: list[NewTrial]) -> list[int]:
    """Create ``trials`` WAITING in one transaction on ``conn``: Optuna's rows (numbered as
    Optuna numbers them, under a lock on the study's row), their parameters and user
    attributes, and the queue's rows; returns their ids."""
    from optuna.distributions import distribution_to_json
    from optuna.trial import TrialState

    optuna = optuna_tables()
    studies, table = optuna["studies"], optuna["trials"]
    conn.execute(
        sa.select(studies.c.study_id).where(studies.c.study_id == study_id).with_for_update()
    )
    count = sa.select(sa.func.count()).where(table.c.study_id == study_id)
    first = conn.execute(count).scalar_one()
    rows = [
        {"study_id": study_id, "number": first + i, "state": TrialState.WAITING,
         "datetime_start": None, "datetime_complete": None}
        for i in range(len(trials))
    ]  # fmt: skip
    if conn.dialect.insert_executemany_returning_sort_by_parameter_order:
        insert = sa.insert(table).returning(table.c.trial_id, sort_by_parameter_order=True)
        ids = [row.trial_id for row in conn.execute(insert, rows)]
    else:  # MySQL: no RETURNING, one INSERT per trial
        ids = [_inserted_id(conn, table, row) for row in rows]
    pairs = list(zip(ids, trials, strict=True))
    attrs = [{"trial_id": i, "key": k, "value_json": json.dumps(v)}
             for i, new in pairs for k, v in new.attributes().items()]  # fmt: skip
    params = [
        {"trial_id": i, "param_name": name, "param_value": dist.to_internal_repr(new.params[name]),
         "distribution_json": distribution_to_json(dist)}
        for i, new in pairs for name, dist in distributions(new).items()
    ]  # fmt: skip
    for name, values in (("attrs", attrs), ("params", params)):
        if values:
            conn.execute(sa.insert(optuna[name]), values)
    conn.execute(
        sa.insert(TRIALS),
        [{"trial_id": i, "study_id": study_id, "number": first + n, "trial_key": new.key,
          "cell": new.cell, "state": "waiting", "attempt": new.attempt,
          "payload": json.dumps(new.payload) if new.payload else None}
         for n, (i, new) in enumerate(pairs)],
    )  # fmt: skip
    return ids


def _inserted_id(conn: sa.Connection, table: sa.Table, row: dict[str, Any]) -> int:
    """The id of the trial this one-row INSERT creates (where RETURNING cannot say)."""
    key = conn.execute(sa.insert(table).values(**row)).inserted_primary_key
    assert key is not None  # a one-row INSERT has a primary key
    return int(key[0])


def start(conn: sa.Connection, trial_id: int) -> bool:
    """Optuna's WAITING -> RUNNING; False if the trial is not WAITING."""
    now = stored_now("datetime_start")
    return conn.execute(optuna_tables()["start"], {"id": trial_id, "now": now}).rowcount == 1


def intermediate(conn: sa.Connection, trial_id: int, step: int, value: float) -> None:
    """An epoch's value, unless the trial has finished."""
    optuna = optuna_tables()
    convert = optuna["models"].TrialIntermediateValueModel.intermediate_value_to_stored_repr
    stored, kind = convert(value)
    state = conn.execute(optuna["state"], {"id": trial_id}).scalar()
    if state is None or state.is_finished():
        return
    upsert(conn, optuna["intermediate"], {"trial_id": trial_id, "step": step},
           {"intermediate_value": stored, "intermediate_value_type": kind})  # fmt: skip


def finish(
    conn: sa.Connection,
    trial_id: int,
    complete: bool,
    attrs: dict[str, Any],
    *,
    value: float | None,
    outcome: str,
    put_outputs: Callable[[sa.Connection], None] | None,
) -> bool:
    """The state first (which locks the trial's row until the commit: a trial finished
    meanwhile, declared lost say, is left as it is), then the outputs, attributes, value and
    the queue's row; False if the trial had already finished."""
    from optuna.trial import TrialState

    optuna = optuna_tables()
    state = TrialState.COMPLETE if complete else TrialState.FAIL
    now = stored_now("datetime_complete")
    if conn.execute(optuna["finish"], {"id": trial_id, "state": state, "now": now}).rowcount != 1:
        return False
    if put_outputs is not None:
        put_outputs(conn)
    for name, attr in attrs.items():
        upsert(conn, optuna["attrs"], {"trial_id": trial_id, "key": name},
               {"value_json": json.dumps(attr)})  # fmt: skip
    if complete and value is not None:
        stored, kind = optuna["models"].TrialValueModel.value_to_stored_repr(value)
        upsert(conn, optuna["values"], {"trial_id": trial_id, "objective": 0},
               {"value": stored, "value_type": kind})  # fmt: skip
    row_state = "complete" if complete else "fail"
    conn.execute(optuna["finish_row"], {"id": trial_id, "outcome": outcome, "row_state": row_state})
    return True
