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

Opening the storage is :mod:`ablate.engine.storage`; riding out a database restart is
:mod:`ablate.engine.retry`; results kept on disk meanwhile are :mod:`ablate.engine.spool`.
"""

from __future__ import annotations

import base64
import contextlib
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

from ablate.engine.records import TrialResult
from ablate.engine.retry import call_with_retry
from ablate.engine.workers import WorkerIdentity, boot_id, process_alive
from ablate.errors import AblateError
from ablate.results.files import SCHEMA_VERSION
from ablate.study.grid import Cell, TrialSpec
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
    outputs: bytes | None = None  # what the model learned (an .npz), for complete trials


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

    def populate(self, specs: list[TrialSpec]) -> int:
        """Enqueue every spec whose key has no trial yet; returns how many were added."""
        existing = self.keys()
        added = 0
        for spec in specs:
            if spec.key not in existing:
                self._enqueue(spec, attempt=1)
                added += 1
        return added

    def _enqueue(self, spec: TrialSpec, attempt: int) -> int:
        from optuna.trial import TrialState, create_trial

        template = create_trial(
            state=TrialState.WAITING,
            system_attrs={"fixed_params": spec.cell.as_dict()},
            user_attrs={
                "trial_key": spec.key,
                "cell": spec.cell.label,
                "cell_index": spec.cell.index,
                "levels": spec.cell.as_dict(),
                "replicate": spec.replicate,
                "seed": spec.seed,
                "attempt": attempt,
            },
        )
        return self._retry(self.storage.create_new_trial, self.study_id, template)

    # -- claiming -----------------------------------------------------------------------------

    def claim(self, worker: WorkerIdentity) -> Claim | None:
        """Take the next waiting trial for this worker; None when none is waiting."""
        from optuna.exceptions import UpdateFinishedTrialError
        from optuna.trial import TrialState

        while True:
            waiting = self._trials(states=(TrialState.WAITING,))
            if not waiting:
                return None
            for trial in sorted(waiting, key=lambda t: t.number):
                try:
                    mine = self._retry(
                        self.storage.set_trial_state_values, trial._trial_id, TrialState.RUNNING
                    )
                except UpdateFinishedTrialError:
                    mine = False  # claimed and finished by another worker meanwhile
                if not mine:
                    continue
                if self._is_duplicate(trial):
                    self._set_outcome(trial._trial_id, "duplicate")
                    with contextlib.suppress(Exception):
                        self._retry(
                            self.storage.set_trial_state_values, trial._trial_id, TrialState.FAIL
                        )
                    continue
                self._retry(
                    self.storage.set_trial_user_attr,
                    trial._trial_id,
                    "worker",
                    worker.to_dict(),
                )
                return Claim(
                    trial_id=trial._trial_id,
                    number=trial.number,
                    spec=self._spec(trial.user_attrs),
                    attempt=int(trial.user_attrs.get("attempt", 1)),
                )
            # Everything listed was taken meanwhile; look again.

    def _is_duplicate(self, claimed: Any, trials: list[Any] | None = None) -> bool:
        """Whether a lower-numbered trial of the same key is waiting, running or complete."""
        from optuna.trial import TrialState

        key = claimed.user_attrs.get("trial_key")
        return any(
            t.user_attrs.get("trial_key") == key
            and t.number < claimed.number
            and t.state != TrialState.FAIL
            for t in (self._trials() if trials is None else trials)
        )

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
        from optuna.exceptions import UpdateFinishedTrialError

        value = values.get(self.study.analysis.response)
        if value is None or not math.isfinite(value):
            return
        with contextlib.suppress(UpdateFinishedTrialError):
            self._retry(self.storage.set_trial_intermediate_value, claim.trial_id, epoch, value)

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
        from optuna.exceptions import UpdateFinishedTrialError

        try:
            self._retry(
                self.storage.set_trial_user_attr,
                claim.trial_id,
                "heartbeat",
                {"time": time.time(), **progress},
            )
        except (UpdateFinishedTrialError, KeyError):
            return False
        return True

    # -- finishing ----------------------------------------------------------------------------

    def finish(self, claim: Claim, result: TrialResult) -> bool:
        """Record the result; False if the trial had meanwhile been declared lost."""
        from optuna.exceptions import UpdateFinishedTrialError
        from optuna.trial import TrialState

        try:
            self._retry(
                self.storage.set_trial_user_attr, claim.trial_id, "result", result.to_dict()
            )
            if result.outputs is not None:
                encoded = base64.b64encode(result.outputs).decode("ascii")
                self._retry(self.storage.set_trial_user_attr, claim.trial_id, "outputs", encoded)
            self._set_outcome(claim.trial_id, result.status)
            if result.status == "complete":
                self._retry(
                    self.storage.set_trial_state_values,
                    claim.trial_id,
                    TrialState.COMPLETE,
                    [self._objective(result)],
                )
            else:
                self._retry(self.storage.set_trial_state_values, claim.trial_id, TrialState.FAIL)
        except UpdateFinishedTrialError:
            return False
        if result.status != "complete":
            self._requeue(claim.spec)
        return True

    def release(self, claim: Claim) -> None:
        """Give an interrupted trial back to the queue (it does not count as a failure)."""
        if self._fail(claim.trial_id, "interrupted"):
            self._requeue(claim.spec)

    def recover_lost(self) -> list[str]:
        """Fail and requeue RUNNING trials whose worker is gone; returns their cell labels."""
        recovered = []
        for trial in self._lost():
            if self._fail(trial._trial_id, "lost"):
                self._requeue(self._spec(trial.user_attrs))
                recovered.append(str(trial.user_attrs.get("cell")))
        return recovered

    def lost_trials(self) -> list[str]:
        """Cell labels of RUNNING trials whose worker is gone (without touching them)."""
        return [str(t.user_attrs.get("cell")) for t in self._lost()]

    def _lost(self) -> list[Any]:
        """RUNNING trials whose worker died (same machine) or fell silent (anywhere)."""
        from optuna.trial import TrialState

        now = time.time()
        me_host, me_boot = socket.gethostname(), boot_id()
        lost = []
        for trial in self._trials(states=(TrialState.RUNNING,)):
            worker = trial.user_attrs.get("worker") or {}
            beat = (trial.user_attrs.get("heartbeat") or {}).get("time")
            if beat is None:
                start = trial.datetime_start
                beat = start.timestamp() if start is not None else now
            local = worker.get("host") == me_host and worker.get("boot") == me_boot
            dead = local and not process_alive(worker.get("pid"), worker.get("start_ticks"))
            if dead or now - beat > self.stale_after:
                lost.append(trial)
        return lost

    def duplicate_waiting(self) -> list[int]:
        """WAITING trials that a lower-numbered live trial of the same key makes redundant."""
        from optuna.trial import TrialState

        trials = self._trials()
        return [
            t._trial_id
            for t in trials
            if t.state == TrialState.WAITING and self._is_duplicate(t, trials)
        ]

    def drop_waiting(self, trial_id: int) -> None:
        """Set a redundant WAITING trial aside (FAIL, outcome "duplicate")."""
        from optuna.exceptions import UpdateFinishedTrialError
        from optuna.trial import TrialState

        self._set_outcome(trial_id, "duplicate")
        with contextlib.suppress(UpdateFinishedTrialError):
            self._retry(self.storage.set_trial_state_values, trial_id, TrialState.FAIL)

    def keys(self) -> set[str]:
        """Trial keys present in storage, whatever their state."""
        return {t.user_attrs.get("trial_key") for t in self._trials()}

    def _fail(self, trial_id: int, outcome: str) -> bool:
        """Move a RUNNING trial to FAIL with ``outcome``; False if someone else finished it."""
        from optuna.exceptions import UpdateFinishedTrialError
        from optuna.trial import TrialState

        try:
            self._set_outcome(trial_id, outcome)
            self._retry(self.storage.set_trial_state_values, trial_id, TrialState.FAIL)
        except UpdateFinishedTrialError:
            return False
        return True

    def _requeue(self, spec: TrialSpec) -> bool:
        """Enqueue another attempt at ``spec`` unless one is pending or done, or retries ran out."""
        from optuna.trial import TrialState

        mine = [t for t in self._trials() if t.user_attrs.get("trial_key") == spec.key]
        if any(t.state != TrialState.FAIL for t in mine):
            return False
        outcomes = [t.user_attrs.get("outcome") for t in mine]
        failures = sum(o in ("failed", "diverged") for o in outcomes)
        lost = outcomes.count("lost")
        if failures > self.retries or lost > self.lost_retries:
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
        from optuna.trial import TrialState

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
            mine = [t for t in self._trials() if t.user_attrs.get("trial_key") == spec.key]
            states = {t.state for t in mine}
            if TrialState.COMPLETE in states:
                path.unlink(missing_ok=True)  # recorded meanwhile
                continue
            if TrialState.RUNNING in states:
                continue  # being trained again right now; decide once that one has finished
            waiting = [t for t in mine if t.state == TrialState.WAITING]
            trial_id = waiting[0]._trial_id if waiting else self._enqueue(spec, len(mine) + 1)
            try:
                taken = self._retry(
                    self.storage.set_trial_state_values, trial_id, TrialState.RUNNING
                )
            except Exception:
                taken = False
            if not taken:
                continue  # a worker claimed it this very moment: try again next time
            number = self._retry(self.storage.get_trial, trial_id).number
            claim = Claim(trial_id, number, spec, int(entry["attrs"].get("attempt", 1)))
            self._retry(self.storage.set_trial_user_attr, trial_id, "worker", entry["worker"])
            if self.finish(claim, dataclasses.replace(result, outputs=outputs)):
                path.unlink(missing_ok=True)
                recorded.append(spec.cell.label)
        return recorded

    def _set_outcome(self, trial_id: int, outcome: str) -> None:
        self._retry(self.storage.set_trial_user_attr, trial_id, "outcome", outcome)

    # -- reading ------------------------------------------------------------------------------

    def _trials(self, states: tuple[Any, ...] | None = None) -> list[Any]:
        return self._retry(
            self.storage.get_all_trials, self.study_id, deepcopy=False, states=states
        )

    def summary(self) -> Summary:
        """Counts per (cell, replicate), and the trials running now."""
        from optuna.trial import TrialState

        by_key = _group_by_key(self._trials())
        complete = failed = diverged = waiting = duplicates = 0
        running: list[Running] = []
        for trials in by_key.values():
            states = [t.state for t in trials]
            n_complete = states.count(TrialState.COMPLETE)
            duplicates += n_complete > 1
            if n_complete:
                complete += 1
                continue
            run = [t for t in trials if t.state == TrialState.RUNNING]
            if run:
                attrs = run[0].user_attrs
                running.append(
                    Running(
                        key=attrs.get("trial_key", ""),
                        label=attrs.get("cell", ""),
                        worker=attrs.get("worker") or {},
                        heartbeat=attrs.get("heartbeat") or {},
                    )
                )
            elif TrialState.WAITING in states:
                waiting += 1
            else:
                outcome = _final_attempt(trials).user_attrs.get("outcome")
                if outcome == "diverged":
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

        out = []
        for key, trials in _group_by_key(self._trials()).items():
            done = [t for t in trials if t.state == TrialState.COMPLETE]
            if done:
                chosen = min(done, key=lambda t: t.number)
            elif any(t.state in (TrialState.WAITING, TrialState.RUNNING) for t in trials):
                continue  # still to be decided
            else:
                chosen = _final_attempt(trials)
            attrs = chosen.user_attrs
            result = _result_of(chosen)
            attempts = sum(
                t.user_attrs.get("outcome") not in ("duplicate", "interrupted") for t in trials
            )
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
                    worker=attrs.get("worker") or {},
                    started=chosen.datetime_start,
                    finished=chosen.datetime_complete,
                    outputs=_decode(attrs.get("outputs")),
                )
            )
        return sorted(out, key=lambda r: (r.replicate, r.cell_index))

    # -- resilience ---------------------------------------------------------------------------

    def _retry(self, fn: Callable[..., T], *args: Any, **kwargs: Any) -> T:
        return call_with_retry(fn, *args, **kwargs)


# ---------------------------------------------------------------------------------------------
# Helpers


def _group_by_key(trials: list[Any]) -> dict[str, list[Any]]:
    by_key: dict[str, list[Any]] = {}
    for t in trials:
        key = t.user_attrs.get("trial_key")
        if key is not None:
            by_key.setdefault(key, []).append(t)
    return by_key


def _final_attempt(trials: list[Any]) -> Any:
    """The last attempt that counts (not a duplicate nor an interruption) of a given-up key."""
    counted = [t for t in trials if t.user_attrs.get("outcome") not in ("duplicate", "interrupted")]
    return max(counted or trials, key=lambda t: t.number)


def _decode(encoded: str | None) -> bytes | None:
    if not encoded:
        return None
    try:
        return base64.b64decode(encoded, validate=True)
    except (ValueError, TypeError):
        return None


def _result_of(trial: Any) -> TrialResult:
    stored = trial.user_attrs.get("result")
    if stored is not None:
        return TrialResult.from_dict(stored)
    outcome = trial.user_attrs.get("outcome")
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
