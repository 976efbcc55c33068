"""The trial queue on Optuna storage: each trial created once, claimed atomically, finished once.

Every (cell, replicate) of a study is an Optuna trial with fixed parameters, enqueued as
WAITING with its stable trial key. A worker claims one by moving it to RUNNING, which the
storage grants to exactly one process; it then sends heartbeats, and finally records its
result and moves it to COMPLETE or FAIL. The storage is the record of truth; the parquet
files are exported from it (``ablate.results``).

Failure handling, all through the storage so that it works across machines:

- a trial whose worker died (same machine: its process is gone; elsewhere: no heartbeat for
  ``stale_after`` seconds) is failed as ``lost`` and enqueued again, up to ``lost_retries``;
- a trial that raised or diverged is enqueued again up to ``retries`` times;
- an attempt interrupted by Ctrl-C is enqueued again without counting as a failure;
- if two WAITING trials of one key ever exist (two coordinators populating at once, a
  retry racing another), the one with the higher number is marked ``duplicate`` when
  claimed, so a key is never trained twice at once and never completes twice.

What claims and checks read comes from the queue's index (:mod:`ablate.engine.index`), so
that their cost does not grow with the study; a trial's saved model outputs are kept beside
the storage, not in it (:mod:`ablate.engine.outputs`). Opening the storage is
:mod:`ablate.engine.storage`; riding out a database restart is :mod:`ablate.engine.retry`;
results kept on disk meanwhile are :mod:`ablate.engine.spool`.
"""

from __future__ import annotations

import base64
import dataclasses
import json
import logging
import math
import socket
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

from ablate.engine.index import Entry, TrialIndex, open_index, outcome_of
from ablate.engine.outputs import OutputStore, legacy_outputs, open_outputs
from ablate.engine.reading import read_trials
from ablate.engine.records import TrialResult
from ablate.engine.retry import call_with_retry
from ablate.engine.storage import journal_batch
from ablate.engine.workers import WorkerIdentity, boot_id, process_alive
from ablate.engine.writing import NewTrial, TrialWriter, open_writer
from ablate.errors import AblateError
from ablate.results.files import SCHEMA_VERSION
from ablate.study.grid import Cell, TrialSpec, expand_trials
from ablate.study.settings import Study
from ablate.tasks import goal_of

_log = logging.getLogger("ablate.storage")
T = TypeVar("T")


@dataclass(frozen=True)
class Claim:
    """A trial this worker holds: run it, then finish it."""

    trial_id: int
    number: int
    spec: TrialSpec
    attempt: int


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
    started: Any  # datetime or None
    finished: Any
    #: what the model learned (an .npz) where an older ablate kept it inside the storage;
    #: now it is in the queue's output store (:attr:`TrialQueue.outputs`)
    outputs: bytes | None = None


@dataclass(frozen=True)
class Recorded:
    """A result the queue recorded; ``retried``: another attempt at its trial was enqueued."""

    retried: bool = False


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


# ---------------------------------------------------------------------------------------------
# The queue


class TrialQueue:
    """A study's trials in Optuna storage, with the claim/heartbeat/finish protocol above."""

    def __init__(
        self,
        storage: Any,
        study: Study,
        study_id: int,
        *,
        retries: int | None = None,
        lost_retries: int | None = None,
        stale_after: float | None = None,
    ) -> None:
        self.storage = storage
        self.study = study
        self.study_id = study_id
        self.retries = study.run.retries if retries is None else retries
        self.lost_retries = study.run.lost_retries if lost_retries is None else lost_retries
        self.stale_after = (
            max(5.0 * study.run.heartbeat_seconds, 1.0) if stale_after is None else stale_after
        )
        self.index: TrialIndex = open_index(storage, study_id)
        self.outputs: OutputStore = open_outputs(storage, study_id, study.results_dir)
        self.writer: TrialWriter = open_writer(storage, self.outputs)
        self._grid: dict[str, TrialSpec] | None = None  # trial key -> spec, built when needed

    # -- opening ------------------------------------------------------------------------------

    @classmethod
    def open(cls, study: Study, storage: Any, *, create: bool = True) -> TrialQueue:
        """Open the study's queue, creating it if ``create``; refuse a different experiment."""
        import optuna

        name = study.name
        try:
            study_id = storage.get_study_id_from_name(name)
        except KeyError:
            if not create:
                raise AblateError(
                    f"the storage has no study named '{name}'. Start it first with "
                    f"`ablate run STUDY.yaml --storage URL` on one machine, then join it."
                ) from None
            response = study.analysis.response
            direction = (
                optuna.study.StudyDirection.MAXIMIZE
                if goal_of(response, study.task_spec) == "max"
                else optuna.study.StudyDirection.MINIMIZE
            )
            try:
                study_id = storage.create_new_study([direction], study_name=name)
                storage.set_study_user_attr(study_id, "ablate_response", response)
                storage.set_study_user_attr(study_id, "ablate_schema_version", SCHEMA_VERSION)
                storage.set_study_user_attr(study_id, "ablate_experiment", study.experiment())
                storage.set_study_user_attr(study_id, "ablate_fingerprint", study.fingerprint())
            except optuna.exceptions.DuplicatedStudyError:  # created meanwhile by another
                study_id = storage.get_study_id_from_name(name)
        queue = cls(storage, study, study_id)
        queue._check_same_experiment()
        return queue

    def _check_same_experiment(self) -> None:
        attrs = self._retry(self.storage.get_study_user_attrs, self.study_id)
        version = attrs.get("ablate_schema_version")
        if version is None:
            # Being created by another process right now: give it a moment.
            for _ in range(50):
                time.sleep(0.1)
                attrs = self.storage.get_study_user_attrs(self.study_id)
                version = attrs.get("ablate_schema_version")
                if version is not None:
                    break
        if version is None:
            raise AblateError(
                f"the storage has a study named '{self.study.name}' that ablate did not create; "
                "give the study another name."
            )
        if version != SCHEMA_VERSION:
            newer = isinstance(version, int) and version > SCHEMA_VERSION
            raise AblateError(
                f"the study '{self.study.name}' in storage has schema version {version}, and "
                f"this ablate reads version {SCHEMA_VERSION}; "
                + ("upgrade ablate." if newer else "use the ablate that wrote it.")
            )
        if attrs.get("ablate_fingerprint") != self.study.fingerprint():
            changes = _differences(
                attrs.get("ablate_experiment", {}),
                self.study.experiment(),
                self.study.experiment_defaults(),
            )
            if not changes:  # recorded before some settings existed, with their defaults
                return
            raise AblateError(
                f"the study '{self.study.name}' in storage was run with different settings "
                f"({'; '.join(changes[:5]) or 'unknown differences'}), so its results would not "
                "mix with these. Give the study a new name, or remove its results folder (and "
                "its study in storage) to start over."
            )

    # -- filling ------------------------------------------------------------------------------

    def populate(self, specs: list[TrialSpec], *, retry_failed: bool = False) -> int:
        """Enqueue every spec whose key has no trial yet, and the retry of a key whose attempts
        all failed where a worker stopped before enqueuing it (if retries are left); returns
        how many were added. ``retry_failed`` (a new run of the study): each key whose last
        attempt failed gets one more, whatever its retries -- its cause may have been fixed
        since (a diverged trial is a result, and is not tried again)."""
        by_key = _group_by_key(self.index.entries())
        missing = [spec for spec in specs if spec.key not in by_key]
        # Filling a journal syncs it to disk once, at the end: a trial lost to a power cut
        # meanwhile is enqueued again by the next run, as any missing one is.
        with journal_batch(self.storage):
            self._enqueue_all(missing, attempt=1)
        stranded = [
            spec
            for spec in specs
            if spec.key in by_key and all(e.state == "fail" for e in by_key[spec.key])
        ]
        again = 0
        for spec in stranded:
            last = _final_attempt(by_key[spec.key]).outcome
            again += self._requeue(spec, force=retry_failed and last == "failed")
        return len(missing) + again

    def _enqueue(self, spec: TrialSpec, attempt: int) -> int:
        return self._enqueue_all([spec], attempt)[0]

    def _enqueue_all(self, specs: list[TrialSpec], attempt: int) -> list[int]:
        """Create these trials WAITING (Optuna's fixed parameters, ablate's attributes);
        returns their ids."""
        return self.writer.create(
            self.study_id,
            [
                NewTrial(
                    user_attrs={
                        "trial_key": spec.key,
                        "cell": spec.cell.label,
                        "cell_index": spec.cell.index,
                        "levels": spec.cell.as_dict(),
                        "replicate": spec.replicate,
                        "seed": spec.seed,
                        "attempt": attempt,
                    },
                    system_attrs={"fixed_params": spec.cell.as_dict()},
                    key=spec.key,
                    cell=spec.cell.label,
                    attempt=attempt,
                )
                for spec in specs
            ],
        )

    # -- claiming -----------------------------------------------------------------------------

    def claim(self, worker: WorkerIdentity) -> Claim | None:
        """Take the next waiting trial for this worker; None when none is waiting."""
        who = worker.to_dict()
        while True:
            entry = self.index.take(who, self._start)
            if entry is None:
                return None
            if self._is_duplicate(entry):
                self.drop_waiting(entry.trial_id)
                continue
            return Claim(
                trial_id=entry.trial_id,
                number=entry.number,
                spec=self._spec_of(entry),
                attempt=entry.attempt,
            )

    def _start(self, entry: Entry) -> bool:
        """Optuna's atomic WAITING -> RUNNING; False if another process had it first."""
        return self.writer.start(entry.trial_id)

    def _is_duplicate(self, entry: Entry) -> bool:
        """Whether a lower-numbered trial of the same key is waiting, running or complete.

        (In a database, a second coordinator filling the queue writes a trial's index row just
        after creating it; a claim in between misses it, and the key may then complete twice,
        which ``ablate doctor`` reports; the first result is the one used.)
        """
        if entry.earlier is False:
            return False  # looked at when it was taken

        def earlier(confirm: bool) -> bool:
            return any(
                e.number < entry.number and e.state != "fail"
                for e in self.index.of_key(entry.key, confirm=confirm)
            )

        return earlier(False) and earlier(True)  # confirmed against Optuna only if it matters

    def _spec_of(self, entry: Entry) -> TrialSpec:
        """The trial's spec: from the study's grid, else from the trial's own attributes (a
        replicate this study file does not list)."""
        if self._grid is None:
            self._grid = {spec.key: spec for spec in expand_trials(self.study)}
        spec = self._grid.get(entry.key)
        if spec is None:
            spec = self._spec(self._retry(self.storage.get_trial, entry.trial_id).user_attrs)
        return spec

    def _spec(self, attrs: dict[str, Any]) -> TrialSpec:
        levels = attrs["levels"]
        ordered = tuple((name, levels[name]) for name in self.study.factor_names)
        cell = Cell(int(attrs["cell_index"]), ordered)
        spec = TrialSpec(cell, int(attrs["replicate"]), int(attrs["seed"]))
        if spec.key != attrs["trial_key"]:
            raise AblateError(
                f"trial {attrs['trial_key']} in storage does not match this study's factors; "
                "the study file differs from the one the study was started with."
            )
        return spec

    # -- while running ------------------------------------------------------------------------

    def report_epoch(self, claim: Claim, epoch: int, values: dict[str, Any]) -> None:
        """An epoch's value of the study's response, as an Optuna intermediate value, so
        that Optuna's own tools (optuna-dashboard) show live learning curves."""
        value = values.get(self.study.analysis.response)
        if value is not None and math.isfinite(value):
            self.writer.intermediate(claim.trial_id, epoch, float(value))

    def _objective(self, result: TrialResult) -> float:
        """The value Optuna records for a complete trial: the study's response, or the task's
        default response (then the test loss) where the response is not measured."""
        task = self.study.task_spec
        for column in (self.study.analysis.response, task.default_response, "test_loss"):
            value = result.value(column)
            if value is not None and math.isfinite(value):
                return float(value)
        return 0.0  # a complete trial has a finite test loss; never reached in practice

    def heartbeat(self, claim: Claim, progress: dict[str, Any]) -> bool:
        """Record that the trial is alive; False if it is no longer this worker's."""
        return self.index.heartbeat(claim.trial_id, {"time": time.time(), **progress})

    # -- finishing ----------------------------------------------------------------------------

    def finish(self, claim: Claim, result: TrialResult) -> Recorded | None:
        """Record the result; None if the trial had meanwhile been declared lost.

        A recorded complete trial always has its outputs (kept first, or in the same
        transaction: :mod:`ablate.engine.writing`); the result's status is its outcome. A
        failure is tried again (up to ``retries``) unless it is one that comes back every
        time (:mod:`ablate.engine.failures`); a divergence always is.
        """
        complete = result.status == "complete"
        outputs = (claim.spec.key, result.outputs) if result.outputs is not None else None
        value = self._objective(result) if complete else None
        if not self.writer.finish(claim.trial_id, complete, {"result": result.to_dict()},
                                  value=value, outcome=result.status, outputs=outputs):  # fmt: skip
            self.index.sync(claim.trial_id)  # declared lost meanwhile
            return None
        worth_retrying = result.status == "diverged" or result.transient
        retried = not complete and worth_retrying and self._requeue(claim.spec)
        return Recorded(retried=retried)

    def release(self, claim: Claim) -> None:
        """Give an interrupted trial back to the queue (it does not count as a failure)."""
        if self._fail(claim.trial_id, "interrupted"):
            self._requeue(claim.spec)

    def recover_lost(self) -> list[str]:
        """Fail and requeue RUNNING trials whose worker is gone; returns their cell labels."""
        recovered = []
        for entry in self._lost():
            failed = self._fail(entry.trial_id, "lost")
            # requeued also where the trial had already failed (a row behind its trial)
            self._requeue(self._spec_of(entry))
            if failed:
                recovered.append(entry.cell)
        return recovered

    def lost_trials(self) -> list[str]:
        """Cell labels of RUNNING trials whose worker is gone (without touching them)."""
        return [e.cell for e in self._lost()]

    def _lost(self) -> list[Entry]:
        """RUNNING trials whose worker died (same machine) or fell silent (anywhere)."""
        now = time.time()
        me_host, me_boot = socket.gethostname(), boot_id()
        lost = []
        for entry in self.index.running():
            worker = entry.worker
            beat = entry.beat if entry.beat is not None else now
            local = worker.get("host") == me_host and worker.get("boot") == me_boot
            dead = local and not process_alive(worker.get("pid"), worker.get("start_ticks"))
            if dead or now - beat > self.stale_after:
                lost.append(entry)
        return lost

    def busy(self) -> bool:
        """Whether any trial is running (somewhere)."""
        return bool(self.index.running())

    def duplicate_waiting(self) -> list[int]:
        """WAITING trials that a lower-numbered live trial of the same key makes redundant."""
        by_key = _group_by_key(self.index.entries())
        return [
            e.trial_id
            for entries in by_key.values()
            for e in entries
            if e.state == "waiting"
            and any(o.number < e.number and o.state != "fail" for o in entries)
        ]

    def drop_waiting(self, trial_id: int) -> None:
        """Set a redundant trial aside (FAIL, outcome "duplicate")."""
        self._fail(trial_id, "duplicate")

    def keys(self) -> set[str]:
        """Trial keys present in storage, whatever their state."""
        return {e.key for e in self.index.entries()}

    def _fail(self, trial_id: int, outcome: str) -> bool:
        """Move a trial to FAIL with ``outcome``; False if someone else finished it."""
        if self.writer.finish(trial_id, False, {"outcome": outcome}, outcome=outcome):
            return True
        self.index.sync(trial_id)
        return False

    def _requeue(self, spec: TrialSpec, *, force: bool = False) -> bool:
        """Enqueue another attempt at ``spec`` unless one is pending or done, or retries ran
        out (``force``: whatever the retries)."""
        mine = self.index.of_key(spec.key, confirm=True)
        if any(e.state != "fail" for e in mine):
            return False
        outcomes = [e.outcome for e in mine]
        failures = sum(o in ("failed", "diverged") for o in outcomes)
        lost = outcomes.count("lost")
        if not force and (failures > self.retries or lost > self.lost_retries):
            return False
        self._enqueue(spec, attempt=len(mine) + 1)
        return True

    # -- results that could not be recorded at the time -------------------------------------

    def import_spool(self, spool: Path) -> list[str]:
        """Record results a worker kept in ``spool`` while the storage was unreachable.

        A spooled result is recorded on a pending trial of its key (or a new one) unless the key
        is complete already; it stays in the spool while another worker is training its key.
        Returns the cell labels recorded.
        """
        recorded = []
        for path in sorted(spool.glob("*.json")) if spool.is_dir() else []:
            try:
                entry = json.loads(path.read_text())
                spec = self._spec(entry["attrs"])
                result = TrialResult.from_dict(entry["result"])
                outputs = _decode(entry.get("outputs"))
            except (OSError, ValueError, KeyError, TypeError, AblateError) as err:
                _log.warning("%s cannot be read (%s); it stays where it is", path, err)
                continue
            if entry.get("fingerprint") != self.study.fingerprint():
                continue  # another study's, or another version of this one
            mine = self.index.of_key(spec.key, confirm=True)
            states = {e.state for e in mine}
            if "complete" in states:
                path.unlink(missing_ok=True)  # recorded meanwhile
                continue
            if "running" in states:
                continue  # being trained again right now; decide once that one has finished
            waiting = sorted((e for e in mine if e.state == "waiting"), key=lambda e: e.number)
            trial_id = waiting[0].trial_id if waiting else self._enqueue(spec, len(mine) + 1)
            target = next((e for e in self.index.of_key(spec.key) if e.trial_id == trial_id), None)
            worker = entry["worker"]
            if target is None or not self.index.reserve(target, worker):
                continue  # a worker claimed it this very moment: try again next time
            if not self._start(target):
                self.index.sync(trial_id)
                continue
            claim = Claim(trial_id, target.number, spec, int(entry["attrs"].get("attempt", 1)))
            if self.finish(claim, dataclasses.replace(result, outputs=outputs)):
                path.unlink(missing_ok=True)
                recorded.append(spec.cell.label)
        return recorded

    # -- reading ------------------------------------------------------------------------------

    def _trials(self, states: tuple[Any, ...] | None = None) -> list[Any]:
        """Every Optuna trial of the study (reads them all: for exports, not for claims)."""
        return self._retry(
            self.storage.get_all_trials, self.study_id, deepcopy=False, states=states
        )

    def summary(self) -> Summary:
        """Counts per (cell, replicate), and the trials running now (from the index)."""
        complete = failed = diverged = waiting = duplicates = 0
        running: list[Running] = []
        by_key = _group_by_key(self.index.entries())
        for key, entries in by_key.items():
            states = [e.state for e in entries]
            n_complete = states.count("complete")
            duplicates += n_complete > 1
            if n_complete:
                complete += 1
                continue
            run = [e for e in entries if e.state == "running"]
            if run:
                running.append(
                    Running(key=key, label=run[0].cell, worker=run[0].worker,
                            heartbeat=run[0].heartbeat)
                )  # fmt: skip
            elif "waiting" in states:
                waiting += 1
            elif _final_attempt(entries).outcome == "diverged":
                diverged += 1
            else:
                failed += 1
        return Summary(
            total=len(by_key),
            complete=complete,
            failed=failed,
            diverged=diverged,
            waiting=waiting,
            running=tuple(running),
            duplicates=duplicates,
        )

    def records(self) -> list[Record]:
        """The final outcome of every finished (cell, replicate), in grid order."""
        from optuna.trial import TrialState

        workers = {e.trial_id: e.worker for e in self.index.entries()}
        by_key: dict[str, list[Any]] = {}
        for t in read_trials(self.storage, self.study_id):
            key = t.user_attrs.get("trial_key")
            if key is not None:
                by_key.setdefault(key, []).append(t)
        out = []
        for key, trials in by_key.items():
            done = [t for t in trials if t.state == TrialState.COMPLETE]
            if done:
                chosen = min(done, key=lambda t: t.number)
            elif any(t.state in (TrialState.WAITING, TrialState.RUNNING) for t in trials):
                continue  # still to be decided
            else:
                chosen = max(
                    [t for t in trials if outcome_of(t.user_attrs) not in _NOT_COUNTED] or trials,
                    key=lambda t: t.number,
                )
            attrs = chosen.user_attrs
            result = _result_of(chosen)
            attempts = sum(outcome_of(t.user_attrs) not in _NOT_COUNTED for t in trials)
            out.append(
                Record(
                    key=key,
                    levels=attrs["levels"],
                    cell_index=int(attrs["cell_index"]),
                    replicate=int(attrs["replicate"]),
                    seed=int(attrs["seed"]),
                    status=result.status,
                    attempts=attempts,
                    trial_number=chosen.number,
                    result=result,
                    worker=workers.get(chosen._trial_id) or attrs.get("worker") or {},
                    started=chosen.datetime_start,
                    finished=chosen.datetime_complete,
                    outputs=legacy_outputs(attrs),
                )
            )
        return sorted(out, key=lambda r: (r.replicate, r.cell_index))

    # -- resilience ---------------------------------------------------------------------------

    def _retry(self, fn: Callable[..., T], *args: Any, **kwargs: Any) -> T:
        return call_with_retry(fn, *args, **kwargs)


# ---------------------------------------------------------------------------------------------
# Helpers


def _group_by_key(entries: list[Entry]) -> dict[str, list[Entry]]:
    by_key: dict[str, list[Entry]] = {}
    for e in entries:
        by_key.setdefault(e.key, []).append(e)
    return by_key


#: Outcomes of attempts that do not count as attempts: set aside, or handed back.
_NOT_COUNTED = ("duplicate", "interrupted")


def _final_attempt(entries: list[Entry]) -> Entry:
    """The last attempt that counts (not a duplicate nor an interruption) of a given-up key."""
    counted = [e for e in entries if e.outcome not in _NOT_COUNTED]
    return max(counted or entries, key=lambda e: e.number)


def _decode(encoded: str | None) -> bytes | None:
    if not encoded:
        return None
    try:
        return base64.b64decode(encoded, validate=True)
    except (ValueError, TypeError):
        return None


def _result_of(trial: Any) -> TrialResult:
    stored = trial.user_attrs.get("result")
    outcome = trial.user_attrs.get("outcome")
    # A complete result on a trial that did not complete: its worker was declared lost while
    # recording it. The trial failed (as lost); its result was refused.
    refused = stored is not None and stored.get("status") == "complete"
    if stored is not None and not (refused and trial.state.name != "COMPLETE"):
        return TrialResult.from_dict(stored)
    if outcome == "lost":
        return TrialResult(status="failed", error="its worker process died (killed or crashed)")
    return TrialResult(status="failed", error=f"no result recorded (outcome: {outcome})")


def _differences(
    old: dict[str, Any], new: dict[str, Any], defaults: dict[str, Any], prefix: str = ""
) -> list[str]:
    """What differs between a stored experiment and this one.

    A key the stored experiment lacks was recorded before that setting existed, so it ran
    with the setting's default: only a value other than the default is a difference.
    """
    out = []
    for key in sorted(set(old) | set(new)):
        a, b, default = old.get(key), new.get(key), defaults.get(key)
        if key not in old and key in defaults and not isinstance(default, dict):
            a = default
        if isinstance(b, dict) and (isinstance(a, dict) or key not in old):
            sub_defaults = default if isinstance(default, dict) else {}
            out.extend(_differences(a or {}, b, sub_defaults, f"{prefix}{key}."))
        elif a != b:
            out.append(f"{prefix}{key}: {a!r} then, {b!r} now")
    return out
