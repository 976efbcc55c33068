"""The trial queue: each (cell, replicate) created once, claimed by one worker, finished once.

Every (cell, replicate) of a study is an Optuna trial with its factor levels as Optuna
parameters, its stable trial key and its spec (the payload a worker runs it from: no worker
rebuilds the study's design), enqueued WAITING. A worker claims one (or a group, for fused
training) by moving it to RUNNING, which the store grants to exactly one process; it then
sends heartbeats, and finally records its result and moves it to COMPLETE or FAIL. The store
(:mod:`ablate.storage.base`) keeps the trials; this module is the policy on top, configured by
a :class:`~ablate.queue.policy.QueuePolicy`:

- a trial whose worker died (same machine: its process is gone; elsewhere: no heartbeat for
  ``stale_after`` seconds) is failed as ``lost`` and enqueued again, up to ``lost_retries``;
- a trial that shows no progress for ``stall_timeout`` seconds, or runs past
  ``trial_timeout``, is failed as ``stalled`` or ``timed out`` (by its own worker, or by any
  process that looks at the queue) and enqueued again up to ``retries`` times;
- a trial that diverged, or failed in a way trying again may cure, is enqueued again up to
  ``retries`` times (:mod:`ablate.training.failures` says which failures those are); a new
  run of the study tries each failed trial once more;
- an attempt interrupted by Ctrl-C is enqueued again without counting as a failure;
- if two live trials of one key ever exist (two coordinators populating at once, a retry
  racing another), the one with the higher number is marked ``duplicate`` when claimed, so a
  key is never trained twice at once and never completes twice.
"""

from __future__ import annotations

import contextlib
import math
import socket
import time
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

from ablate.errors import AblateError
from ablate.queue.experiment import open_study
from ablate.queue.outcomes import Record, Summary, by_key, final, final_attempt, summarize
from ablate.queue.policy import QueuePolicy, policy_of
from ablate.queue.workers import WorkerIdentity, boot_id, process_alive
from ablate.storage.base import Entry, NewTrial, OutputStore, TrialStore
from ablate.storage.opening import open_storage
from ablate.study.grid import Cell, TrialSpec
from ablate.study.settings import Study
from ablate.training.records import TrialResult


@dataclass(frozen=True)
class Claim:
    """A trial this worker holds: run it, then finish it."""

    trial_id: int
    number: int
    spec: TrialSpec
    attempt: int


#: Why a running trial is taken back from its worker: its outcome.
LOST, STALLED, TIMED_OUT = "lost", "stalled", "timed out"
#: Outcomes that count against ``retries`` (a lost worker counts against ``lost_retries``).
FAILURES = ("failed", "diverged", STALLED, TIMED_OUT)


@dataclass(frozen=True)
class TakenBack:
    """A trial taken back from its worker: why (its outcome), in words, and whether another
    attempt was enqueued."""

    label: str
    key: str
    outcome: str
    detail: str
    retried: bool


@dataclass(frozen=True)
class Recorded:
    """A result the queue recorded; ``retried``: another attempt at its trial was enqueued."""

    retried: bool = False


class TrialQueue:
    """A study's trials in a store, with the claim/heartbeat/finish protocol above."""

    def __init__(self, store: TrialStore, policy: QueuePolicy) -> None:
        self.store = store
        self.policy = policy

    @property
    def stale_after(self) -> float:
        """Seconds without a heartbeat after which a trial's worker is lost."""
        return self.policy.stale_after

    def close(self) -> None:
        """Release the storage's connections; the queue is not used afterwards."""
        self.store.close()

    @property
    def outputs(self) -> OutputStore:
        """The store of the trials' saved model outputs."""
        return self.store.outputs

    # -- filling ------------------------------------------------------------------------------

    def populate(self, specs: list[TrialSpec], *, retry_failed: bool = False) -> int:
        """Enqueue every spec whose key has no trial yet, and the retry of a key whose attempts
        all failed where a worker stopped before enqueuing it (if retries are left); returns
        how many were added. ``retry_failed`` (a new run of the study): each key whose last
        attempt failed gets one more, whatever its retries -- its cause may have been fixed
        since (a diverged trial is a result, and is not tried again)."""
        grouped = by_key(self.store.entries())
        missing = [spec for spec in specs if spec.key not in grouped]
        # Filling a journal syncs it to disk once, at the end: a trial lost to a power cut
        # meanwhile is enqueued again by the next run, as any missing one is.
        with self.store.batch():
            self.enqueue(missing, attempt=1)
        again = 0
        for spec in specs:
            mine = grouped.get(spec.key)
            if mine and all(e.state == "fail" for e in mine):
                last = final_attempt(mine).outcome
                again += self._requeue(spec, force=retry_failed and last == "failed")
        return len(missing) + again

    def enqueue(self, specs: list[TrialSpec], attempt: int) -> list[int]:
        """Create these trials WAITING, their levels as Optuna parameters; returns their ids."""
        choices = self.policy.levels
        return self.store.create([_new_trial(spec, attempt, choices) for spec in specs])

    # -- claiming -----------------------------------------------------------------------------

    def claim(self, worker: WorkerIdentity) -> Claim | None:
        """Take the next waiting trial for this worker; None when none is waiting."""
        claims = self.claim_group(worker, 1)
        return claims[0] if claims else None

    def claim_group(self, worker: WorkerIdentity, n: int) -> list[Claim]:
        """Take up to ``n`` waiting trials at once (a fused group); [] when none is waiting."""
        who = worker.to_dict()
        claims: list[Claim] = []
        while len(claims) < n:
            taken = self.store.claim(who, n - len(claims))
            if not taken:
                break
            for entry in taken:
                if self._is_duplicate(entry):
                    self._fail(entry.trial_id, "duplicate")
                else:
                    spec = self.spec_of(entry)
                    claims.append(Claim(entry.trial_id, entry.number, spec, entry.attempt))
        return claims

    def _is_duplicate(self, entry: Entry) -> bool:
        """Whether a lower-numbered trial of the same key is waiting, running or complete.

        (In a database, a second coordinator filling the queue writes a trial's row just
        after creating it; a claim in between misses it, and the key may then complete twice,
        which ``ablate doctor`` reports; the first result is the one used.)
        """
        if entry.earlier is False:
            return False  # looked at when it was taken

        def earlier(confirm: bool) -> bool:
            return any(
                e.number < entry.number and e.state != "fail"
                for e in self.store.entries_of(entry.key, confirm=confirm)
            )

        return earlier(False) and earlier(True)  # confirmed against Optuna only if it matters

    def spec_of(self, entry: Entry) -> TrialSpec:
        """The trial's spec, from the payload stored with it (from its attributes for a trial
        stored before payloads were kept); refused if it is not one of this study's."""
        if entry.payload:
            return self.checked(TrialSpec.from_payload(entry.payload), entry.key)
        return self.spec(self.store.user_attrs(entry.trial_id))

    def spec(self, attrs: dict[str, Any]) -> TrialSpec:
        """A trial's spec from its attributes (its payload, else its levels, replicate and
        seed), refused if it is not one of this study's."""
        if attrs.get("payload"):
            return self.checked(TrialSpec.from_payload(attrs["payload"]), str(attrs["trial_key"]))
        levels = attrs["levels"]
        ordered = tuple((name, levels[name]) for name in self.policy.factors if name in levels)
        spec = TrialSpec(Cell(int(attrs["cell_index"]), ordered), int(attrs["replicate"]),
                         int(attrs["seed"]))  # fmt: skip
        return self.checked(spec, str(attrs["trial_key"]))

    def checked(self, spec: TrialSpec, stored_key: str) -> TrialSpec:
        """``spec``, if it is the trial stored under ``stored_key`` and has this study's
        factors."""
        names = tuple(name for name, _ in spec.cell.levels)
        if spec.key != stored_key or names != self.policy.factors:
            raise AblateError(
                f"trial {stored_key} in storage does not match this study's factors; the "
                "study file differs from the one the study was started with."
            )
        return spec

    # -- while running ------------------------------------------------------------------------

    def report_epoch(self, claim: Claim, epoch: int, values: dict[str, Any]) -> None:
        """An epoch's value of the study's response, as an Optuna intermediate value, so
        that Optuna's own tools (optuna-dashboard) show live learning curves."""
        value = values.get(self.policy.response)
        if value is not None and math.isfinite(value):
            self.store.record_epoch(claim.trial_id, epoch, float(value))

    def heartbeat(self, claim: Claim, progress: dict[str, Any]) -> bool:
        """Record that the trial is alive (with ``progress``: its epoch, and the wall times it
        ``started`` and last ``progressed``, which the time limits read); False if it is no
        longer this worker's."""
        return self.store.heartbeat(claim.trial_id, {"time": time.time(), **progress})

    # -- finishing ----------------------------------------------------------------------------

    def finish(self, claim: Claim, result: TrialResult) -> Recorded | None:
        """Record the result; None if the trial had meanwhile been declared lost.

        A recorded complete trial always has its outputs (kept first, or in the same
        transaction); the result's status is its outcome. A failure is tried again (up to
        ``retries``) unless it is one that comes back every time; a divergence always is.
        """
        complete = result.status == "complete"
        outputs = (claim.spec.key, result.outputs) if result.outputs is not None else None
        value = self._objective(result) if complete else None
        if not self.store.finish(claim.trial_id, complete, {"result": result.to_dict()},
                                 value=value, outcome=result.status, outputs=outputs):  # fmt: skip
            self.store.sync(claim.trial_id)  # declared lost meanwhile
            return None
        worth_retrying = result.status == "diverged" or result.transient
        retried = not complete and worth_retrying and self._requeue(claim.spec)
        return Recorded(retried=retried)

    def _objective(self, result: TrialResult) -> float:
        """The value Optuna records for a complete trial: the study's response, or the task's
        default response (then the test loss) where the response is not measured."""
        for column in self.policy.objective:
            value = result.value(column)
            if value is not None and math.isfinite(value):
                return float(value)
        return 0.0  # a complete trial has a finite test loss; never reached in practice

    def release(self, claim: Claim) -> None:
        """Give an interrupted trial back to the queue (it does not count as a failure)."""
        if self._fail(claim.trial_id, "interrupted"):
            self._requeue(claim.spec)

    def recover_lost(self) -> list[str]:
        """Take back every overdue trial (see :meth:`take_back`); returns their cell labels."""
        return [t.label for t in self.take_back()]

    def take_back(self) -> list[TakenBack]:
        """Fail and requeue (per the policy's retries) every RUNNING trial that is overdue:
        its worker died or fell silent (``lost``), it showed no progress for the stall limit
        (``stalled``), or it ran past the trial limit (``timed out``). Whoever notices first
        does it; a late result of the trial is refused (it is no longer running)."""
        out = []
        now = time.time()
        for entry in self.store.running():
            why = self.overdue(entry, now)
            if why is not None:
                taken = self._take(entry, self.spec_of(entry), *why)
                out += [taken] if taken is not None else []
        return out

    def expire(self, claim: Claim, outcome: str, detail: str) -> TakenBack | None:
        """Take this worker's own trial back as ``outcome`` (it overran a limit); None if it
        had already finished."""
        entry = next((e for e in self.store.entries_of(claim.spec.key)
                      if e.trial_id == claim.trial_id), None)  # fmt: skip
        if entry is None:
            return None
        return self._take(entry, claim.spec, outcome, detail)

    def _take(self, entry: Entry, spec: TrialSpec, outcome: str, detail: str) -> TakenBack | None:
        failed = self._fail(entry.trial_id, outcome, detail)
        # requeued also where the trial had already failed (a row behind its trial)
        retried = self._requeue(spec)
        return TakenBack(entry.cell, entry.key, outcome, detail, retried) if failed else None

    def lost_trials(self) -> list[str]:
        """Cell labels of RUNNING trials that are overdue (without touching them)."""
        now = time.time()
        return [e.cell for e in self.store.running() if self.overdue(e, now) is not None]

    def overdue(self, entry: Entry, now: float) -> tuple[str, str] | None:
        """Why a RUNNING trial must be taken back -- (outcome, detail) -- or None (see
        :func:`overdue`)."""
        return overdue(self.policy, entry.worker, entry.heartbeat, entry.beat, now)

    def busy(self) -> bool:
        """Whether any trial is running (somewhere)."""
        return bool(self.store.running())

    def duplicate_waiting(self) -> list[int]:
        """WAITING trials that a lower-numbered live trial of the same key makes redundant."""
        return [
            e.trial_id
            for entries in by_key(self.store.entries()).values()
            for e in entries
            if e.state == "waiting"
            and any(o.number < e.number and o.state != "fail" for o in entries)
        ]

    def drop_waiting(self, trial_id: int) -> None:
        """Set a redundant trial aside (FAIL, outcome "duplicate")."""
        self._fail(trial_id, "duplicate")

    def keys(self) -> set[str]:
        """Trial keys present in storage, whatever their state."""
        return {e.key for e in self.store.entries()}

    def _fail(self, trial_id: int, outcome: str, detail: str = "") -> bool:
        """Move a trial to FAIL with ``outcome`` (and ``detail``, what the export says of it);
        False if someone else finished it."""
        attrs = {"outcome": outcome, **({"error": detail} if detail else {})}
        if self.store.finish(trial_id, False, attrs, outcome=outcome):
            return True
        self.store.sync(trial_id)
        return False

    def _requeue(self, spec: TrialSpec, *, force: bool = False) -> bool:
        """Enqueue another attempt at ``spec`` unless one is pending or done, or retries ran
        out (``force``: whatever the retries)."""
        mine = self.store.entries_of(spec.key, confirm=True)
        if any(e.state != "fail" for e in mine):
            return False
        outcomes = [e.outcome for e in mine]
        failures = sum(o in FAILURES for o in outcomes)
        lost = outcomes.count("lost")
        policy = self.policy
        if not force and (failures > policy.retries or lost > policy.lost_retries):
            return False
        self.enqueue([spec], attempt=len(mine) + 1)
        return True

    # -- reading ------------------------------------------------------------------------------

    def summary(self) -> Summary:
        """Counts per (cell, replicate), and the trials running now (from narrow entries)."""
        return summarize(self.store.entries())

    def records(self) -> list[Record]:
        """The final outcome of every finished (cell, replicate), in grid order (reads every
        trial: for exports, not for claims)."""
        workers = {e.trial_id: e.worker for e in self.store.entries()}
        return final(self.store.trials(), workers)


def overdue(
    policy: QueuePolicy, worker: dict[str, Any], beat: dict[str, Any], last: float | None,
    now: float,
) -> tuple[str, str] | None:  # fmt: skip
    """Why a running trial must be taken back -- (outcome, detail) -- or None: its worker died
    (same machine) or fell silent (anywhere: no heartbeat since ``last``), or the trial overran
    a time limit of the policy (read from the wall times its heartbeat ``beat`` carries)."""
    local = worker.get("host") == socket.gethostname() and worker.get("boot") == boot_id()
    if local and not process_alive(worker.get("pid"), worker.get("start_ticks")):
        return LOST, "its worker process died (killed or crashed)"
    last = last if last is not None else now
    if now - last > policy.stale_after:
        return LOST, (f"its worker fell silent: no heartbeat for {now - last:.0f} s (stopped, "
                      "hung or cut off)")  # fmt: skip
    limit, started = policy.trial_timeout, beat.get("started")
    if limit is not None and started is not None and now - started > limit:
        return TIMED_OUT, f"it ran {now - started:.0f} s, past run.trial_timeout ({limit:g} s)"
    limit, progressed = policy.stall_timeout, beat.get("progressed")
    if limit is not None and progressed is not None and now - progressed > limit:
        return STALLED, (f"no sign of progress for {now - progressed:.0f} s, past "
                         f"run.stall_timeout ({limit:g} s)")  # fmt: skip
    return None


def _new_trial(spec: TrialSpec, attempt: int, choices: dict[str, tuple[Any, ...]]) -> NewTrial:
    """A trial to create for ``spec``: its attributes, its levels as Optuna parameters, and
    its spec as the payload it is run from."""
    levels = spec.cell.as_dict()
    attrs = {
        "trial_key": spec.key, "cell": spec.cell.label, "cell_index": spec.cell.index,
        "levels": levels, "replicate": spec.replicate, "seed": spec.seed, "attempt": attempt,
    }  # fmt: skip
    return NewTrial(attrs, levels, choices, spec.key, spec.cell.label, attempt,
                    payload=spec.to_payload())  # fmt: skip


def open_queue(study: Study, url: str | None, *, create: bool = True) -> TrialQueue:
    """Open the study's storage and queue (creating the study if ``create``); the caller
    closes it (:meth:`TrialQueue.close`, or :func:`opened_queue`)."""
    storage = open_storage(url, study.results_dir)
    try:
        return TrialQueue(storage.trials(open_study(study, storage, create=create)),
                          policy_of(study))  # fmt: skip
    except BaseException:
        storage.close()
        raise


@contextlib.contextmanager
def opened_queue(study: Study, url: str | None, *, create: bool = True) -> Iterator[TrialQueue]:
    """:func:`open_queue`, closed afterwards."""
    queue = open_queue(study, url, create=create)
    try:
        yield queue
    finally:
        queue.close()
