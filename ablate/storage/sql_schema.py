"""ablate's own tables in a study's database, beside Optuna's: the queue's index, the outputs.

Optuna's tables stay the record of truth for trials (states, values, parameters, user
attributes, intermediate values), readable by Optuna's own tools. ablate adds two small
tables to the same database, created on first open and versioned in ``ablate_schema``:

- ``ablate_trials``: one narrow row per Optuna trial of an ablate study (trial key, state,
  attempt, outcome, worker, heartbeat), indexed so that a claim takes the next waiting trial
  with ``SELECT ... FOR UPDATE SKIP LOCKED`` and the duplicate and lost-worker checks read a
  few rows, whatever the size of the study;
- ``ablate_outputs``: each complete trial's saved model outputs (an .npz), by study and
  trial key, so that workers on any machine deliver them to every machine's export.
"""

from __future__ import annotations

import functools
from typing import TYPE_CHECKING, Any

import sqlalchemy as sa

from ablate.errors import AblateError

if TYPE_CHECKING:
    from sqlalchemy.dialects import postgresql, sqlite

#: Version of ablate's tables; a database with a newer one is refused, an older one upgraded
#: (version 2 added ``ablate_trials.payload``).
TABLES_VERSION = 2

METADATA = sa.MetaData()

SCHEMA = sa.Table(
    "ablate_schema",
    METADATA,
    sa.Column("name", sa.String(32), primary_key=True),
    sa.Column("version", sa.Integer, nullable=False),
)

TRIALS = sa.Table(
    "ablate_trials",
    METADATA,
    sa.Column("trial_id", sa.Integer, primary_key=True, autoincrement=False),  # Optuna's
    sa.Column("study_id", sa.Integer, nullable=False),  # Optuna's
    sa.Column("number", sa.Integer, nullable=False),  # the trial's number in its study
    sa.Column("trial_key", sa.String(64), nullable=False),
    sa.Column("cell", sa.Text, nullable=False),  # the cell's label, as progress shows it
    sa.Column("state", sa.String(16), nullable=False),  # waiting running complete fail
    sa.Column("attempt", sa.Integer, nullable=False),
    sa.Column("outcome", sa.String(16)),  # of a finished trial: complete failed lost ...
    sa.Column("worker", sa.Text),  # JSON: who holds or held it
    sa.Column("heartbeat", sa.Text),  # JSON: the last heartbeat (time, epoch, ...)
    sa.Column("beat", sa.Float),  # seconds since the epoch of the last sign of life
    sa.Column("payload", sa.Text),  # JSON: what the queue keeps to run the trial (its spec)
    # One index serves the claim (waiting, by number), the lost-worker check (running) and
    # the summary (by state); another the duplicate and retry checks (by key).
    sa.Index("ablate_trials_queue", "study_id", "state", "number"),
    sa.Index("ablate_trials_key", "study_id", "trial_key"),
)

OUTPUTS = sa.Table(
    "ablate_outputs",
    METADATA,
    sa.Column("study_id", sa.Integer, primary_key=True, autoincrement=False),
    sa.Column("trial_key", sa.String(64), primary_key=True),
    sa.Column("data", sa.LargeBinary, nullable=False),  # the .npz file's bytes
)

_LOCK_ID = 0x61626C617465  # "ablate": serialises creating the tables on PostgreSQL


def ensure_tables(engine: sa.Engine) -> None:
    """Create ablate's tables if missing; refuse newer ones."""
    with engine.begin() as conn:
        if conn.dialect.name == "postgresql":  # concurrent CREATE TABLE IF NOT EXISTS can fail
            conn.execute(sa.text("SELECT pg_advisory_xact_lock(:id)"), {"id": _LOCK_ID})
        METADATA.create_all(conn, checkfirst=True)
        version = conn.execute(
            sa.select(SCHEMA.c.version).where(SCHEMA.c.name == "tables")
        ).scalar()
        if version is None:
            conn.execute(sa.insert(SCHEMA).values(name="tables", version=TABLES_VERSION))
        elif version > TABLES_VERSION:
            raise AblateError(
                f"the database's ablate tables have version {version}, and this ablate reads "
                f"version {TABLES_VERSION}; upgrade ablate."
            )
        elif version < TABLES_VERSION:
            _upgrade(conn, version)


def _upgrade(conn: sa.Connection, version: int) -> None:
    """Bring older tables to :data:`TABLES_VERSION` (within the caller's transaction)."""
    columns = {c["name"] for c in sa.inspect(conn).get_columns("ablate_trials")}
    if version < 2 and "payload" not in columns:  # rows without one read their trial's attrs
        conn.execute(sa.text("ALTER TABLE ablate_trials ADD COLUMN payload TEXT"))
    conn.execute(sa.update(SCHEMA).where(SCHEMA.c.name == "tables").values(version=TABLES_VERSION))


def engines(storage_engine: sa.Engine) -> tuple[sa.Engine, sa.Engine]:
    """The engines ablate writes with, (fast, durable): same database as the storage's
    engine, a small pool each; on PostgreSQL the fast one's commits do not wait for the disk.

    A fast commit halves the disk flushes of a claim, and is safe for ablate's index rows and
    heartbeats because nothing a user keeps lives only there: a server crash can take back
    only the last fraction of a second of them, each corrected from Optuna: a reservation (the
    row waits again while Optuna's trial runs; the next claim of it fails in Optuna and
    corrects the row), a heartbeat (the next one), the rows of trials just enqueued (added
    when the study is next opened). What a user keeps (a claim's and a finish's change to
    Optuna's trial, the result, the saved outputs) is written on the durable one, whose
    commits wait for the disk, as Optuna's own writes do.
    """
    fast_options: dict[str, Any] = {"pool_pre_ping": False, "pool_size": 2}
    if storage_engine.dialect.name == "postgresql":
        fast_options["connect_args"] = {"options": "-c synchronous_commit=off"}
    fast = sa.create_engine(storage_engine.url, **fast_options)
    durable = sa.create_engine(storage_engine.url, pool_pre_ping=False, pool_size=2)
    return fast, durable


def upsert(
    conn: sa.Connection, table: sa.Table, keys: dict[str, Any], values: dict[str, Any]
) -> None:
    """Insert a row, or update ``values`` of the row with these ``keys`` (a unique key)."""
    dialect = conn.dialect.name
    if dialect in ("postgresql", "sqlite"):  # one statement
        conn.execute(_upsert_statement(dialect, table, tuple(keys), tuple(values)),
                     {**keys, **values})  # fmt: skip
        return
    where = sa.and_(*(table.c[name] == value for name, value in keys.items()))
    if conn.execute(sa.update(table).where(where).values(**values)).rowcount == 0:
        conn.execute(sa.insert(table).values(**keys, **values))


@functools.cache
def _upsert_statement(
    dialect: str, table: sa.Table, keys: tuple[str, ...], values: tuple[str, ...]
) -> sa.Executable:
    """INSERT ... ON CONFLICT (keys) DO UPDATE SET values, with a parameter per column (built
    once: building it took longer than executing it)."""
    statement = _insert(dialect, table).values({name: sa.bindparam(name) for name in keys + values})
    return statement.on_conflict_do_update(
        index_elements=list(keys), set_={name: statement.excluded[name] for name in values}
    )


def _insert(dialect: str, table: sa.Table) -> postgresql.Insert | sqlite.Insert:
    """The dialect's INSERT, which has ON CONFLICT (PostgreSQL or SQLite)."""
    if dialect == "postgresql":
        from sqlalchemy.dialects import postgresql

        return postgresql.insert(table)
    from sqlalchemy.dialects import sqlite

    return sqlite.insert(table)
