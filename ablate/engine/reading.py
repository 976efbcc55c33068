"""Reading every trial of a study at once, for exports: through Optuna's API, or from a
database with one narrow read of Optuna's tables.

Exporting needs, per trial, its number, state, start and end, and its user attributes;
Optuna's RDB storage builds a full ``FrozenTrial`` for each (parameters, values, system
attributes and every intermediate value, through its ORM), which took longer than the rest of
the export together for studies of thousands of trials. From a database ablate reads just
the columns it needs, of ``trials`` and ``trial_user_attributes``, as Optuna's schema has had
them since its first version; if they are not there (another schema), it falls back to the
API. Nothing is written this way.
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from ablate.engine.retry import call_with_retry
from ablate.engine.storage import rdb_engine

_log = logging.getLogger("ablate.storage")

#: The user attributes an export reads (``outputs``: where an older ablate kept them).
ATTRIBUTES = (
    "trial_key", "cell", "cell_index", "levels", "replicate", "seed", "attempt", "result",
    "outcome", "worker", "heartbeat", "outputs",
)  # fmt: skip


@dataclass(frozen=True)
class StoredTrial:
    """A trial as an export reads it: what ``FrozenTrial`` offers of it, no more."""

    _trial_id: int
    number: int
    state: Any  # optuna.trial.TrialState
    datetime_start: datetime | None
    datetime_complete: datetime | None
    user_attrs: dict[str, Any]


def read_trials(storage: Any, study_id: int) -> list[Any]:
    """Every trial of the study, in number order (``FrozenTrial`` or :class:`StoredTrial`)."""
    engine = rdb_engine(storage)
    if engine is not None:
        import sqlalchemy as sa

        try:
            return call_with_retry(_read_tables, engine, study_id)
        except (sa.exc.ProgrammingError, sa.exc.NoSuchTableError) as err:
            _log.info("reading Optuna's tables failed (%s); reading through its API", err)
    trials = call_with_retry(storage.get_all_trials, study_id, deepcopy=False)
    return sorted(trials, key=lambda t: t.number)


def _read_tables(engine: Any, study_id: int) -> list[StoredTrial]:
    import sqlalchemy as sa
    from optuna.trial import TrialState

    trials = sa.table(
        "trials",
        *(sa.column(c) for c in ("trial_id", "number", "study_id", "state")),
        *(sa.column(c) for c in ("datetime_start", "datetime_complete")),
    )
    attrs = sa.table(
        "trial_user_attributes", sa.column("trial_id"), sa.column("key"), sa.column("value_json")
    )
    with engine.connect() as conn:
        rows = conn.execute(
            sa.select(
                trials.c.trial_id, trials.c.number, trials.c.state, trials.c.datetime_start,
                trials.c.datetime_complete,
            ).where(trials.c.study_id == study_id)
        ).all()  # fmt: skip
        values = conn.execute(
            sa.select(attrs.c.trial_id, attrs.c.key, attrs.c.value_json)
            .select_from(attrs.join(trials, trials.c.trial_id == attrs.c.trial_id))
            .where(trials.c.study_id == study_id, attrs.c.key.in_(ATTRIBUTES))
        ).all()
    by_trial: dict[int, dict[str, Any]] = {row.trial_id: {} for row in rows}
    for trial_id, key, value in values:
        by_trial[trial_id][key] = json.loads(value)
    out = [
        StoredTrial(
            row.trial_id,
            row.number,
            TrialState[str(getattr(row.state, "name", row.state))],
            row.datetime_start,
            row.datetime_complete,
            by_trial[row.trial_id],
        )
        for row in rows
    ]
    return sorted(out, key=lambda t: t.number)
