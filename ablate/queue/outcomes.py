"""Where a study stands, counted per (cell, replicate), and each one's final outcome.

A (cell, replicate) may take several Optuna trials: retries after a failure, a trial handed
back by an interrupted worker, another after its worker was lost, a duplicate set aside.
:func:`summarize` counts each trial key once, from the queue's narrow entries; :func:`final`
chooses the trial whose result stands for each finished key (the first complete one, else the
last attempt that counts), for exports.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from ablate.storage.base import Entry, StoredTrial, outcome_of
from ablate.training.records import TrialResult

#: Outcomes of attempts that do not count as attempts: set aside, or handed back.
NOT_COUNTED = ("duplicate", "interrupted")


@dataclass(frozen=True)
class Running:
    """A trial in progress, as progress displays show it."""

    key: str
    label: str
    worker: dict[str, Any]
    heartbeat: dict[str, Any]


@dataclass(frozen=True)
class Summary:
    """Where a study stands, counted per (cell, replicate)."""

    total: int
    complete: int
    failed: int
    diverged: int
    waiting: int
    running: tuple[Running, ...]
    duplicates: int  # keys with more than one COMPLETE trial (should stay 0)

    @property
    def finished(self) -> int:
        return self.complete + self.failed + self.diverged


@dataclass(frozen=True)
class Record:
    """The final outcome of one (cell, replicate), as exported to trials.parquet."""

    key: str
    levels: dict[str, Any]
    cell_index: int
    replicate: int
    seed: int
    status: str  # complete, failed, diverged
    attempts: int
    trial_number: int
    result: TrialResult
    worker: dict[str, Any]
    started: datetime | None
    finished: datetime | None
    streams: dict[str, int] = field(default_factory=dict)  # seed stream -> index, where crossed


def by_key(entries: list[Entry]) -> dict[str, list[Entry]]:
    out: dict[str, list[Entry]] = {}
    for e in entries:
        out.setdefault(e.key, []).append(e)
    return out


def final_attempt(entries: list[Entry]) -> Entry:
    """The last attempt that counts (not a duplicate nor an interruption) of a given-up key."""
    counted = [e for e in entries if e.outcome not in NOT_COUNTED]
    return max(counted or entries, key=lambda e: e.number)


def summarize(entries: list[Entry]) -> Summary:
    """Counts per (cell, replicate), and the trials running now."""
    complete = failed = diverged = waiting = duplicates = 0
    running: list[Running] = []
    grouped = by_key(entries)
    for key, mine in grouped.items():
        states = [e.state for e in mine]
        n_complete = states.count("complete")
        duplicates += n_complete > 1
        if n_complete:
            complete += 1
            continue
        run = [e for e in mine if e.state == "running"]
        if run:
            running.append(Running(key, run[0].cell, run[0].worker, run[0].heartbeat))
        elif "waiting" in states:
            waiting += 1
        elif final_attempt(mine).outcome == "diverged":
            diverged += 1
        else:
            failed += 1
    return Summary(len(grouped), complete, failed, diverged, waiting, tuple(running), duplicates)


def final(trials: list[StoredTrial], workers: dict[int, dict[str, Any]]) -> list[Record]:
    """The final outcome of every finished (cell, replicate), in grid order; ``workers``: who
    held each trial (by trial id), from the queue's entries."""
    grouped: dict[str, list[StoredTrial]] = {}
    for t in trials:
        key = t.user_attrs.get("trial_key")
        if key is not None:
            grouped.setdefault(key, []).append(t)
    out = []
    for key, mine in grouped.items():
        chosen = _chosen(mine)
        if chosen is None:
            continue  # still to be decided
        attrs = chosen.user_attrs
        result = _result_of(chosen)
        out.append(
            Record(
                key=key, levels=attrs["levels"], cell_index=int(attrs["cell_index"]),
                replicate=int(attrs["replicate"]), seed=int(attrs["seed"]),
                status=result.status,
                attempts=sum(outcome_of(t.user_attrs) not in NOT_COUNTED for t in mine),
                trial_number=chosen.number, result=result,
                worker=workers.get(chosen.trial_id) or attrs.get("worker") or {},
                started=chosen.datetime_start, finished=chosen.datetime_complete,
                streams={str(n): int(i) for n, i, _ in attrs.get("payload", {}).get("streams", ())},
            )
        )  # fmt: skip
    return sorted(out, key=lambda r: (r.replicate, r.cell_index))


def _chosen(trials: list[StoredTrial]) -> StoredTrial | None:
    """The first complete trial; else, once none waits or runs, the last that counts."""
    done = [t for t in trials if t.state == "COMPLETE"]
    if done:
        return min(done, key=lambda t: t.number)
    if any(t.state in ("WAITING", "RUNNING") for t in trials):
        return None
    counted = [t for t in trials if outcome_of(t.user_attrs) not in NOT_COUNTED]
    return max(counted or trials, key=lambda t: t.number)


def _result_of(trial: StoredTrial) -> TrialResult:
    stored = trial.user_attrs.get("result")
    outcome = trial.user_attrs.get("outcome")
    # A complete result on a trial that did not complete: its worker was declared lost while
    # recording it. The trial failed (as lost); its result was refused.
    refused = stored is not None and stored.get("status") == "complete"
    if stored is not None and not (refused and trial.state != "COMPLETE"):
        return TrialResult.from_dict(stored)
    detail = trial.user_attrs.get("error")
    if outcome == "lost":
        return TrialResult(status="failed", error=f"lost: {detail or 'its worker process died'}")
    if outcome in ("stalled", "timed out") and detail:
        return TrialResult(status="failed", error=f"{outcome}: {detail}")
    return TrialResult(status="failed", error=f"no result recorded (outcome: {outcome})")
