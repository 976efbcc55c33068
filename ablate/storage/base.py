"""The storage seam: what the trial queue needs from where a study's trials are kept.

A study's trials are Optuna trials, kept in Optuna storage so that Optuna's own tools read
them. Two implementations keep them -- :class:`~ablate.storage.journal.JournalStore` (an
Optuna journal file: one machine, or a shared filesystem) and
:class:`~ablate.storage.sql.SqlStore` (a database through SQLAlchemy, typically PostgreSQL:
many machines) -- and :func:`ablate.storage.opening.open_storage` is the one place that
chooses between them, from the storage URL. Nothing outside those modules touches Optuna's
private attributes or modules.

:class:`TrialStore` states the contract, as Optuna's ``BaseStorage`` states Optuna's:

- ``create`` trials WAITING, in bulk and numbered in order, with their Optuna parameters;
- ``claim`` up to N waiting trials for a worker, atomically (each goes to exactly one worker,
  however many processes and machines claim at once);
- ``heartbeat``, ``record_epoch`` while a trial runs;
- ``finish`` it: the result, the value, the state, the saved outputs and the queue's row
  together (all or nothing where the backend allows, the outputs first otherwise);
- read what the queue needs at a cost that does not grow with the study (``entries_of``,
  ``running``), and every trial for an export (``trials``);
- ``sync`` an entry from Optuna's record where a crash left the queue's view behind.

Retry, duplicates, lost workers and spooled results are policy: the queue
(:mod:`ablate.queue.claims`) keeps them on top of this seam.
"""

from __future__ import annotations

import contextlib
from abc import ABC, abstractmethod
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any, Literal

#: The journal file in a study's results folder, when it keeps no database.
JOURNAL_FILE = "optuna.journal"

#: A trial's state as the queue sees it (Optuna's WAITING, RUNNING, COMPLETE; FAIL or PRUNED).
State = Literal["waiting", "running", "complete", "fail"]

#: Optuna trial state name -> the queue's state.
STATES: dict[str, State] = {"WAITING": "waiting", "RUNNING": "running", "COMPLETE": "complete"}


@dataclass(frozen=True)
class Entry:
    """What the queue knows of one Optuna trial of the study."""

    trial_id: int
    number: int
    key: str
    cell: str  # the cell's label
    state: State
    attempt: int
    outcome: str | None = None  # a finished trial's: complete, failed, diverged, lost, ...
    worker: dict[str, Any] = field(default_factory=dict)
    heartbeat: dict[str, Any] = field(default_factory=dict)
    beat: float | None = None  # time of the last sign of life: heartbeat, else start
    #: whether a lower-numbered live trial of the same key was seen when it was claimed (None:
    #: not looked at then)
    earlier: bool | None = None
    #: what the queue keeps with the trial to run it (its spec), as it was created; {} for a
    #: trial created before payloads were kept
    payload: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class NewTrial:
    """A trial to create, WAITING: its user attributes, its factor levels (Optuna parameters,
    each categorical over its factor's levels), its queue row's facts and its payload (kept
    as the user attribute ``payload`` and returned with every entry of the trial)."""

    user_attrs: dict[str, Any]
    params: dict[str, Any]
    choices: dict[str, tuple[Any, ...]]  # parameter -> every level of its factor
    key: str
    cell: str  # the cell's label
    attempt: int
    payload: dict[str, Any] = field(default_factory=dict)

    def attributes(self) -> dict[str, Any]:
        """The user attributes the trial is created with: the payload among them."""
        return {**self.user_attrs, "payload": self.payload} if self.payload else self.user_attrs


@dataclass(frozen=True)
class StoredTrial:
    """A trial as exports read it: its id, number, Optuna state name, times, user attributes."""

    trial_id: int
    number: int
    state: str  # Optuna's state name: WAITING, RUNNING, COMPLETE, FAIL, PRUNED
    datetime_start: datetime | None
    datetime_complete: datetime | None
    user_attrs: dict[str, Any]


def outcome_of(attrs: dict[str, Any]) -> str | None:
    """A finished trial's outcome: its ``outcome`` attribute, else its result's status."""
    outcome = attrs.get("outcome")
    if outcome:
        return str(outcome)
    result = attrs.get("result")
    return str(result["status"]) if isinstance(result, dict) and "status" in result else None


def entry_of(trial: StoredTrial) -> Entry | None:
    """A stored trial as the queue's entry; None if it is not one of ablate's."""
    attrs = trial.user_attrs
    key = attrs.get("trial_key")
    if key is None:
        return None
    heartbeat = attrs.get("heartbeat") or {}
    beat = heartbeat.get("time")
    if beat is None and trial.datetime_start is not None:
        beat = trial.datetime_start.timestamp()
    return Entry(
        trial_id=trial.trial_id,
        number=trial.number,
        key=str(key),
        cell=str(attrs.get("cell", "")),
        state=STATES.get(trial.state, "fail"),
        attempt=int(attrs.get("attempt", 1)),
        outcome=outcome_of(attrs),
        worker=attrs.get("worker") or {},
        heartbeat=heartbeat,
        beat=beat,
        payload=attrs.get("payload") or {},
    )


class OutputStore(ABC):
    """A study's saved model outputs (an .npz per complete trial), by trial key, kept beside
    the storage and never in Optuna's rows."""

    @abstractmethod
    def put(self, key: str, data: bytes) -> None:
        """Keep a trial's outputs (replacing an earlier attempt's)."""

    @abstractmethod
    def keys(self) -> set[str]:
        """Trial keys with outputs kept."""

    @abstractmethod
    def copy_into(self, folder: Path, keys: list[str]) -> int:
        """Write these keys' outputs into ``folder`` as ``<key>.npz``, each atomically (keys
        without outputs are skipped); returns how many were written."""


class TrialStore(ABC):
    """One study's trials in Optuna storage: the contract the queue is built on (see the
    module). ``outputs`` is the store of the trials' saved model outputs."""

    outputs: OutputStore

    # -- writing ------------------------------------------------------------------------------

    @abstractmethod
    def create(self, trials: list[NewTrial]) -> list[int]:
        """Create these trials, WAITING, numbered in this order; returns their ids."""

    @abstractmethod
    def claim(self, worker: dict[str, Any], n: int = 1) -> list[Entry]:
        """Move up to ``n`` waiting trials, lowest numbers first, to RUNNING for ``worker``;
        each is claimed by exactly one caller. Returns them as now running ([] if none)."""

    @abstractmethod
    def take(self, entry: Entry, worker: dict[str, Any]) -> bool:
        """Claim this one waiting trial for ``worker``; False if another had it first."""

    @abstractmethod
    def heartbeat(self, trial_id: int, payload: dict[str, Any]) -> bool:
        """Record a sign of life; False if the trial is no longer running."""

    @abstractmethod
    def record_epoch(self, trial_id: int, step: int, value: float) -> None:
        """An epoch's value of the response (Optuna's intermediate value); ignored once the
        trial has finished."""

    @abstractmethod
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
        """Record ``attrs`` (user attributes), ``value`` and COMPLETE (else FAIL) with the
        saved ``outputs`` (trial key, bytes); False if the trial had already finished."""

    @abstractmethod
    def sync(self, trial_id: int, holder: bool = False) -> None:
        """Correct the queue's entry of a trial from Optuna's record (a crash may have left it
        behind); ``holder``: its worker too."""

    def batch(self) -> contextlib.AbstractContextManager[None]:
        """Writes made meanwhile reach the disk together (where the backend can)."""
        return contextlib.nullcontext()

    # -- reading ------------------------------------------------------------------------------

    @abstractmethod
    def entries(self) -> list[Entry]:
        """Every trial of the study, narrow (what counts and summaries need)."""

    @abstractmethod
    def running(self) -> list[Entry]:
        """The running trials."""

    @abstractmethod
    def entries_of(self, key: str, confirm: bool = False) -> list[Entry]:
        """The trials of one key; ``confirm``: unfinished ones checked against Optuna."""

    @abstractmethod
    def trials(self) -> list[StoredTrial]:
        """Every trial of the study, in number order (for exports: reads them all)."""

    @abstractmethod
    def user_attrs(self, trial_id: int) -> dict[str, Any]:
        """One trial's user attributes."""

    def close(self) -> None:  # noqa: B027 (optional: what a backend holds open)
        """Release connections; the store is not used afterwards."""

    @contextlib.contextmanager
    def closing(self) -> Iterator[TrialStore]:
        try:
            yield self
        finally:
            self.close()
