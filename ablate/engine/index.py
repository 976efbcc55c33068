"""The queue's index of a study's trials: what claims and checks read, at a cost that does not
grow with the study.

Optuna storage stays the record of truth: a claim is still Optuna's atomic WAITING → RUNNING
change, and results, states and values are written there. Claiming and checking, though,
only need a few facts per trial (key, state, number, attempt, outcome, worker, heartbeat), and
reading every trial of a large study for them made each claim cost as much as the study
(770 ms per claim at 1,000 trials on PostgreSQL). The index answers from those facts:

- :class:`MemoryIndex` (the journal): the trials in memory, kept current by following the
  journal's records as they are read (:meth:`JournalFile.observe`), so that a refresh re-reads
  only the trials that changed; claims take turns (:meth:`JournalFile.claiming`) to pick the
  lowest waiting trial and record the claim, so that concurrent workers do not collide. With
  any other Optuna storage it re-reads every trial (correct, not fast).
- :class:`SqlIndex` (a database): ablate's ``ablate_trials`` table beside Optuna's
  (:mod:`ablate.engine.tables`): a claim reserves the next waiting row with
  ``FOR UPDATE SKIP LOCKED``, then moves the trial to RUNNING in Optuna (so that only one
  worker tries each trial); a finish changes the row in the same transaction as Optuna's
  trial (:mod:`ablate.engine.writing`), and every other change to a row is written after
  the Optuna change it mirrors. Where a crash left a row behind, the next look at it (a
  failed claim, a lost-worker check, a retry) corrects it from Optuna, and trials without a
  row (created by an older ablate, or cut off by a crash) get one when the study is opened.
"""

from __future__ import annotations

import contextlib
import functools
import heapq
import json
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from typing import Any, Protocol

from ablate.engine.retry import call_with_retry
from ablate.engine.storage import journal_file, rdb_engine

#: Optuna trial state name -> the index's state.
_STATES = {"WAITING": "waiting", "RUNNING": "running", "COMPLETE": "complete"}


@dataclass(frozen=True)
class Entry:
    """What the queue knows of one Optuna trial of the study."""

    trial_id: int
    number: int
    key: str
    cell: str  # the cell's label
    state: str  # waiting, running, complete, fail
    attempt: int
    outcome: str | None = None  # a finished trial's: complete, failed, diverged, lost, ...
    worker: dict[str, Any] = field(default_factory=dict)
    heartbeat: dict[str, Any] = field(default_factory=dict)
    beat: float | None = None  # time of the last sign of life: heartbeat, else start
    #: whether a lower-numbered live trial of the same key was seen when it was taken (None:
    #: not looked at then)
    earlier: bool | None = None


def outcome_of(attrs: dict[str, Any]) -> str | None:
    """A finished trial's outcome: its ``outcome`` attribute, else its result's status."""
    outcome = attrs.get("outcome")
    if outcome:
        return str(outcome)
    result = attrs.get("result")
    return str(result["status"]) if isinstance(result, dict) and "status" in result else None


def entry_of(trial: Any) -> Entry | None:
    """An Optuna trial as an index entry; None if it is not one of ablate's."""
    attrs = trial.user_attrs
    key = attrs.get("trial_key")
    if key is None:
        return None
    heartbeat = attrs.get("heartbeat") or {}
    beat = heartbeat.get("time")
    if beat is None and trial.datetime_start is not None:
        beat = trial.datetime_start.timestamp()
    return Entry(
        trial_id=trial._trial_id,
        number=trial.number,
        key=str(key),
        cell=str(attrs.get("cell", "")),
        state=_STATES.get(trial.state.name, "fail"),
        attempt=int(attrs.get("attempt", 1)),
        outcome=outcome_of(attrs),
        worker=attrs.get("worker") or {},
        heartbeat=heartbeat,
        beat=beat,
    )


#: Moves a reserved trial to RUNNING in Optuna; False if it is not WAITING there.
Starter = Callable[[Entry], bool]


class TrialIndex(Protocol):
    """What the queue reads and writes besides Optuna's own records."""

    def take(self, worker: dict[str, Any], start: Starter) -> Entry | None:
        """The next waiting trial, reserved for ``worker`` and started; None if none waits."""

    def reserve(self, entry: Entry, worker: dict[str, Any]) -> bool:
        """Reserve one waiting trial for ``worker`` (then ``start`` it); False if taken."""

    def sync(self, trial_id: int) -> None:
        """Correct what the index says of a trial from Optuna."""

    def heartbeat(self, trial_id: int, payload: dict[str, Any]) -> bool:
        """Record that a running trial is alive; False if it is no longer running."""

    def of_key(self, key: str, confirm: bool = False) -> list[Entry]:
        """The trials of one key; ``confirm``: checked against Optuna where it matters."""

    def running(self) -> list[Entry]:
        """The trials running now."""

    def entries(self) -> list[Entry]:
        """Every trial of the study."""


def open_index(storage: Any, study_id: int) -> TrialIndex:
    """The index that suits the storage: a table for a database, memory otherwise."""
    engine = rdb_engine(storage)
    if engine is not None:
        return SqlIndex(storage, study_id, engine)
    return MemoryIndex(storage, study_id)


# ---------------------------------------------------------------------------------------------
# In memory, following the journal


class MemoryIndex:
    """Every trial's entry in memory; current through the journal's records (see the module)."""

    def __init__(self, storage: Any, study_id: int) -> None:
        self._storage = storage
        self._study_id = study_id
        self._journal = journal_file(storage)
        self._changes: deque[int] = deque()  # ids of trials records have touched, to re-read
        self._entries: dict[int, Entry] = {}
        self._ids: set[int] = set()  # every trial of the study, ablate's or not
        self._known = 0  # the study's trials seen: numbers 0 .. _known - 1
        self._by_key: dict[str, list[int]] = {}
        self._waiting: list[tuple[int, int]] = []  # heap of (number, trial_id); stale skipped
        self._running: set[int] = set()
        if self._journal is not None:
            self._journal.observe(self._note)
        self._load()

    def _note(self, log: dict[str, Any]) -> None:
        trial_id = log.get("trial_id")
        if trial_id is not None:
            self._changes.append(trial_id)  # thread-safe: heartbeats read from another thread

    def _load(self) -> None:
        self._changes.clear()  # what was read before is in the read below
        self._entries.clear()
        self._ids.clear()
        self._by_key.clear()
        self._waiting.clear()
        self._running.clear()
        trials = call_with_retry(
            self._storage.get_all_trials, self._study_id, deepcopy=False, states=None
        )
        for trial in trials:
            self._put(trial)
        self._known = len(trials)

    def _put(self, trial: Any) -> None:
        trial_id = trial._trial_id
        self._ids.add(trial_id)
        entry = entry_of(trial)
        if entry is None:
            return
        old = self._entries.get(trial_id)
        self._entries[trial_id] = entry
        if old is None:
            self._by_key.setdefault(entry.key, []).append(trial_id)
        if entry.state == "waiting" and (old is None or old.state != "waiting"):
            heapq.heappush(self._waiting, (entry.number, trial_id))
        if entry.state == "running":
            self._running.add(trial_id)
        else:
            self._running.discard(trial_id)

    def refresh(self) -> None:
        """Bring the index up to date: new trials, and the trials records touched since."""
        if self._journal is None:
            self._load()
            return
        storage = self._storage
        # New trials of the study (numbers are 0, 1, 2 ... in creation order); the first
        # look also reads the journal's new records, which note the trials they touch.
        while True:
            try:
                trial_id = storage.get_trial_id_from_study_id_trial_number(
                    self._study_id, self._known
                )
            except KeyError:
                break
            self._known += 1
            self._put(storage.get_trial(trial_id))
        touched = set()
        while self._changes:
            touched.add(self._changes.popleft())
        for trial_id in touched:
            if trial_id in self._ids:
                self._put(storage.get_trial(trial_id))

    def _first_waiting(self) -> Entry | None:
        while self._waiting:
            entry = self._entries.get(self._waiting[0][1])
            if entry is not None and entry.state == "waiting":
                return entry
            heapq.heappop(self._waiting)
        return None

    def take(self, worker: dict[str, Any], start: Starter) -> Entry | None:
        # One claim at a time: the lowest waiting trial seen after the refresh is still
        # waiting when this claim's record is written (unless a spooled result is recorded on
        # it that very moment: then the next one is taken).
        hold = self._journal.claiming() if self._journal else contextlib.nullcontext()
        with hold:
            self.refresh()
            while (entry := self._first_waiting()) is not None:
                with self._batch():  # who holds it, then the claim: one sync to disk
                    started = self.reserve(entry, worker) and start(entry)
                if started:
                    return replace(entry, state="running", worker=worker)
                heapq.heappop(self._waiting)  # taken meanwhile (a storage shared otherwise)
                self.refresh()
        return None

    def _batch(self) -> contextlib.AbstractContextManager[None]:
        return self._journal.batch() if self._journal else contextlib.nullcontext()

    def reserve(self, entry: Entry, worker: dict[str, Any]) -> bool:
        # Who holds it, written before the claim (a waiting trial takes attributes): if the
        # claim then fails, the next claimant's own record replaces it. Optuna's WAITING ->
        # RUNNING decides.
        call_with_retry(self._storage.set_trial_user_attr, entry.trial_id, "worker", worker)
        return True

    def sync(self, trial_id: int) -> None:
        pass

    def heartbeat(self, trial_id: int, payload: dict[str, Any]) -> bool:
        from optuna.exceptions import UpdateFinishedTrialError

        try:
            call_with_retry(self._storage.set_trial_user_attr, trial_id, "heartbeat", payload)
        except (UpdateFinishedTrialError, KeyError):
            return False
        return True

    def of_key(self, key: str, confirm: bool = False) -> list[Entry]:
        self.refresh()
        return [self._entries[i] for i in self._by_key.get(key, ())]

    def running(self) -> list[Entry]:
        self.refresh()
        return [self._entries[i] for i in self._running]

    def entries(self) -> list[Entry]:
        self.refresh()
        return list(self._entries.values())


# ---------------------------------------------------------------------------------------------
# In ablate's table beside Optuna's


class SqlIndex:
    """Entries as rows of ``ablate_trials`` in the study's database (see the module)."""

    def __init__(self, storage: Any, study_id: int, engine: Any) -> None:
        from ablate.engine.tables import ensure_tables, tables_engine

        self._storage = storage
        self._study_id = study_id
        self._engine = tables_engine(engine)
        call_with_retry(ensure_tables, self._engine)
        call_with_retry(self._add_missing)

    # -- writing ------------------------------------------------------------------------------

    def _execute(self, statement: Any) -> Any:
        def run() -> Any:
            with self._engine.begin() as conn:
                return conn.execute(statement).rowcount

        return call_with_retry(run)

    def _add_missing(self) -> None:
        """Rows for the study's trials that have none: written by an older ablate, or created
        by a process that stopped before writing their rows."""
        import sqlalchemy as sa

        from ablate.engine.tables import TRIALS

        where = TRIALS.c.study_id == self._study_id
        with self._engine.connect() as conn:
            count, top = conn.execute(
                sa.select(sa.func.count(), sa.func.max(TRIALS.c.number)).where(where)
            ).one()
        top = -1 if top is None else top
        try:  # a trial numbered after the last row, or fewer rows than numbers
            self._storage.get_trial_id_from_study_id_trial_number(self._study_id, top + 1)
            complete = False
        except KeyError:
            complete = count == top + 1
        if complete:
            return
        with self._engine.connect() as conn:
            have = set(conn.execute(sa.select(TRIALS.c.trial_id).where(where)).scalars())
        trials = self._storage.get_all_trials(self._study_id, deepcopy=False)
        rows = [_row(e, self._study_id) for t in trials if (e := entry_of(t)) is not None]
        rows = [r for r in rows if r["trial_id"] not in have]
        if rows:
            self._insert(rows)

    def _insert(self, rows: list[dict[str, Any]]) -> None:
        import sqlalchemy as sa

        from ablate.engine.tables import TRIALS

        def run() -> None:
            try:
                with self._engine.begin() as conn:
                    conn.execute(sa.insert(TRIALS), rows)
            except sa.exc.IntegrityError:  # another process added some meanwhile: one by one
                for row in rows:
                    with contextlib.suppress(sa.exc.IntegrityError), self._engine.begin() as c:
                        c.execute(sa.insert(TRIALS), [row])

        call_with_retry(run)

    def take(self, worker: dict[str, Any], start: Starter) -> Entry | None:
        if self._engine.dialect.name == "postgresql":
            reserve_next = self._reserve_next_pg(worker)
        else:
            reserve_next = self._reserve_next_portable(worker)

        while True:
            taken = call_with_retry(reserve_next)
            if taken is None:
                return None
            if taken is False:
                continue  # taken by another between the two statements (no SKIP LOCKED here)
            row, earlier = taken
            entry = replace(
                _entry(row), state="running", worker=worker, beat=time.time(), earlier=earlier
            )
            if start(entry):
                return entry
            # Not WAITING in Optuna: the row was behind (a reservation that a server crash
            # took back while Optuna's claim survived). Its holder is not this worker.
            self.sync(entry.trial_id, holder=True)

    def _reserve_next_pg(self, worker: dict[str, Any]) -> Callable[[], Any]:
        """One statement: reserve the lowest waiting row that no other claim holds
        (``FOR UPDATE SKIP LOCKED``), and say whether a lower-numbered live trial of its key
        exists."""
        statement, who = _reserve_statement_pg(self._study_id), json.dumps(worker)

        def run() -> Any:
            with self._engine.begin() as conn:
                row = conn.execute(statement, {"worker": who, "beat": time.time()}).first()
            return None if row is None else (row, bool(row.earlier))

        return run

    def _reserve_next_portable(self, worker: dict[str, Any]) -> Callable[[], Any]:
        import sqlalchemy as sa

        from ablate.engine.tables import TRIALS

        def reserve_next() -> Any:
            with self._engine.begin() as conn:
                row = conn.execute(
                    sa.select(TRIALS)
                    .where(TRIALS.c.study_id == self._study_id, TRIALS.c.state == "waiting")
                    .order_by(TRIALS.c.number)
                    .limit(1)
                    .with_for_update(skip_locked=True)
                ).first()
                if row is None:
                    return None
                taken = conn.execute(
                    sa.update(TRIALS)
                    .where(TRIALS.c.trial_id == row.trial_id, TRIALS.c.state == "waiting")
                    .values(state="running", worker=json.dumps(worker), beat=time.time(),
                            heartbeat=None)
                ).rowcount  # fmt: skip
                if taken != 1:
                    return False
                earlier = conn.execute(
                    sa.select(TRIALS.c.trial_id)
                    .where(
                        TRIALS.c.study_id == self._study_id,
                        TRIALS.c.trial_key == row.trial_key,
                        TRIALS.c.number < row.number,
                        TRIALS.c.state != "fail",
                    )
                    .limit(1)
                ).first()
                return row, earlier is not None

        return reserve_next

    def reserve(self, entry: Entry, worker: dict[str, Any]) -> bool:
        import sqlalchemy as sa

        from ablate.engine.tables import TRIALS

        claim = {"state": "running", "worker": json.dumps(worker), "beat": time.time()}
        statement = (
            sa.update(TRIALS)
            .where(TRIALS.c.trial_id == entry.trial_id, TRIALS.c.state == "waiting")
            .values(heartbeat=None, **claim)
        )
        return self._execute(statement) == 1

    def sync(self, trial_id: int, holder: bool = False) -> None:
        """Correct the row from Optuna; ``holder``: its worker too (Optuna's, else none),
        where the row's is a failed claimant's."""
        import sqlalchemy as sa

        from ablate.engine.tables import TRIALS

        entry = entry_of(call_with_retry(self._storage.get_trial, trial_id))
        if entry is None:
            return
        values: dict[str, Any] = {"state": entry.state, "outcome": entry.outcome}
        if entry.worker or holder:
            values["worker"] = json.dumps(entry.worker) if entry.worker else None
        self._execute(sa.update(TRIALS).where(TRIALS.c.trial_id == trial_id).values(**values))

    def heartbeat(self, trial_id: int, payload: dict[str, Any]) -> bool:
        import sqlalchemy as sa

        from ablate.engine.tables import TRIALS

        return (
            self._execute(
                sa.update(TRIALS)
                .where(TRIALS.c.trial_id == trial_id, TRIALS.c.state == "running")
                .values(heartbeat=json.dumps(payload), beat=payload.get("time", time.time()))
            )
            == 1
        )

    # -- reading ------------------------------------------------------------------------------

    def _select(self, *conditions: Any) -> list[Entry]:
        import sqlalchemy as sa

        from ablate.engine.tables import TRIALS

        def run() -> list[Any]:
            with self._engine.connect() as conn:
                return list(
                    conn.execute(
                        sa.select(TRIALS).where(TRIALS.c.study_id == self._study_id, *conditions)
                    )
                )

        return [_entry(row) for row in call_with_retry(run)]

    def of_key(self, key: str, confirm: bool = False) -> list[Entry]:
        from ablate.engine.tables import TRIALS

        entries = self._select(TRIALS.c.trial_key == key)
        if not confirm:
            return entries
        out = []
        for e in entries:  # a row not finished may be behind Optuna (a crash between them)
            if e.state in ("waiting", "running"):
                fresh = entry_of(call_with_retry(self._storage.get_trial, e.trial_id))
                if fresh is not None and fresh.state != e.state:
                    self.sync(e.trial_id)
                    e = replace(e, state=fresh.state, outcome=fresh.outcome)
            out.append(e)
        return out

    def running(self) -> list[Entry]:
        from ablate.engine.tables import TRIALS

        return self._select(TRIALS.c.state == "running")

    def entries(self) -> list[Entry]:
        return self._select()


@functools.cache  # built once: building it took longer than running it
def _reserve_statement_pg(study_id: int) -> Any:
    """UPDATE the lowest waiting row no other claim holds to running (``:worker``, ``:beat``),
    RETURNING it and whether a lower-numbered live trial of its key exists."""
    import sqlalchemy as sa

    from ablate.engine.tables import TRIALS

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


def _row(entry: Entry, study_id: int) -> dict[str, Any]:
    return {
        "trial_id": entry.trial_id,
        "study_id": study_id,
        "number": entry.number,
        "trial_key": entry.key,
        "cell": entry.cell,
        "state": entry.state,
        "attempt": entry.attempt,
        "outcome": entry.outcome,
        "worker": json.dumps(entry.worker) if entry.worker else None,
        "heartbeat": json.dumps(entry.heartbeat) if entry.heartbeat else None,
        "beat": entry.beat,
    }


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
    )
