"""Claiming in a database: the next waiting trial, reserved by exactly one worker.

A claim reserves the lowest waiting row of ``ablate_trials`` that no other claim holds
(``FOR UPDATE SKIP LOCKED``: concurrent workers skip each other's rows instead of queueing
for them), marks it running for the worker, and says whether a lower-numbered live trial of
the same key exists (a duplicate); the store then moves Optuna's trial to RUNNING. On
PostgreSQL that is one statement; elsewhere a short transaction of three.
"""

from __future__ import annotations

import functools
import json
import time
from typing import Any

import sqlalchemy as sa

from ablate.storage.sql_schema import TRIALS

#: A reserved row and whether an earlier live trial of its key exists; None when no trial
#: waits; False when another claim took the row between two statements (try again).
Reserved = tuple[Any, bool] | None | bool


def reserve_next(engine: sa.Engine, study_id: int, worker: dict[str, Any]) -> Reserved:
    """Reserve the next waiting row for ``worker`` (see the module)."""
    if engine.dialect.name == "postgresql":
        with engine.begin() as conn:
            row = conn.execute(
                _statement_pg(study_id), {"worker": json.dumps(worker), "beat": time.time()}
            ).first()
        return None if row is None else (row, bool(row.earlier))
    return _reserve_portable(engine, study_id, worker)


@functools.cache  # built once: building it took longer than running it
def _statement_pg(study_id: int) -> sa.Executable:
    """UPDATE the lowest waiting row no other claim holds to running (``:worker``, ``:beat``),
    RETURNING it and whether a lower-numbered live trial of its key exists."""
    other = TRIALS.alias("other")
    following = (
        sa.select(TRIALS.c.trial_id)
        .where(TRIALS.c.study_id == study_id, TRIALS.c.state == "waiting")
        .order_by(TRIALS.c.number)
        .limit(1)
        .with_for_update(skip_locked=True)
        .scalar_subquery()
    )
    earlier = (
        sa.exists()
        .where(
            other.c.study_id == TRIALS.c.study_id,
            other.c.trial_key == TRIALS.c.trial_key,
            other.c.number < TRIALS.c.number,
            other.c.state != "fail",
        )
        .label("earlier")
    )
    return (
        sa.update(TRIALS)
        .where(TRIALS.c.trial_id == following)
        .values(state="running", worker=sa.bindparam("worker"), beat=sa.bindparam("beat"),
                heartbeat=None)
        .returning(*TRIALS.c, earlier)
    )  # fmt: skip


def _reserve_portable(engine: sa.Engine, study_id: int, worker: dict[str, Any]) -> Reserved:
    with engine.begin() as conn:
        row = conn.execute(
            sa.select(TRIALS)
            .where(TRIALS.c.study_id == study_id, TRIALS.c.state == "waiting")
            .order_by(TRIALS.c.number)
            .limit(1)
            .with_for_update(skip_locked=True)
        ).first()
        if row is None:
            return None
        taken = conn.execute(
            sa.update(TRIALS)
            .where(TRIALS.c.trial_id == row.trial_id, TRIALS.c.state == "waiting")
            .values(state="running", worker=json.dumps(worker), beat=time.time(), heartbeat=None)
        ).rowcount
        if taken != 1:
            return False
        earlier = conn.execute(
            sa.select(TRIALS.c.trial_id)
            .where(
                TRIALS.c.study_id == study_id,
                TRIALS.c.trial_key == row.trial_key,
                TRIALS.c.number < row.number,
                TRIALS.c.state != "fail",
            )
            .limit(1)
        ).first()
        return row, earlier is not None


def reserve(engine: sa.Engine, trial_id: int, worker: dict[str, Any]) -> bool:
    """Reserve this waiting row for ``worker``; False if it is not waiting."""
    statement = (
        sa.update(TRIALS)
        .where(TRIALS.c.trial_id == trial_id, TRIALS.c.state == "waiting")
        .values(state="running", worker=json.dumps(worker), beat=time.time(), heartbeat=None)
    )
    with engine.begin() as conn:
        return conn.execute(statement).rowcount == 1
