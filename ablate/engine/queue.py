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

Storage backends: by default an Optuna journal file in the results folder (no server; its
lock is an ``flock`` that the kernel releases if a process dies holding it); or any
SQLAlchemy URL, typically PostgreSQL, that workers on several machines share.
"""

from __future__ import annotations

import base64
import contextlib
import dataclasses
import fcntl
import json
import logging
import os
import re
import socket
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

from ablate.config import Study
from ablate.errors import AblateError
from ablate.grid import Cell, TrialSpec
from ablate.training import TrialResult

SCHEMA_VERSION = 1
JOURNAL_FILE = "optuna.journal"

_log = logging.getLogger("ablate.storage")
T = TypeVar("T")


# ---------------------------------------------------------------------------------------------
# Opening storage


_SECRETS: set[str] = set()  # passwords of storage URLs opened by this process
_PASSWORD_RE = re.compile(r"://[^/@:\s]*:([^@\s]+)@")


def mask_url(url: str) -> str:
    """The URL with any password replaced by ***, safe for logs, messages and files."""
    remember_secret(url)
    try:
        from sqlalchemy.engine import make_url

        return make_url(url).render_as_string(hide_password=True)
    except Exception:
        return "<storage URL>" if "@" in url else url


def remember_secret(url: str | None) -> None:
    """Note a URL's password so that no message of this process ever shows it."""
    if not url:
        return
    match = _PASSWORD_RE.search(url)
    if match:
        _SECRETS.add(match.group(1))
        with contextlib.suppress(Exception):
            from urllib.parse import unquote

            _SECRETS.add(unquote(match.group(1)))


def scrub(text: str) -> str:
    """``text`` with every known storage password replaced by ***."""
    for secret in sorted(_SECRETS, key=len, reverse=True):
        if secret:
            text = text.replace(secret, "***")
    return text


def open_storage(url: str | None, results_dir: Path) -> Any:
    """Optuna storage: the study's journal file (url None) or an RDB URL."""
    import optuna

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    if url is None:
        try:
            results_dir.mkdir(parents=True, exist_ok=True)
            path = str(results_dir / JOURNAL_FILE)
            cut = cut_incomplete_record(Path(path))
            if cut is not None:
                _log.warning(
                    "the journal's last record was cut short (a crash or a full disk while "
                    "writing); it was never applied, so it was removed (the whole file was "
                    "first copied to %s)",
                    cut,
                )
            backend = optuna.storages.journal.JournalFileBackend(path, lock_obj=JournalLock(path))
            return optuna.storages.JournalStorage(backend)
        except (ValueError, KeyError, TypeError) as err:  # a line that is not a journal record
            raise AblateError(
                f"the study's journal {results_dir / JOURNAL_FILE} is damaged ({_first_line(err)}"
                f"); `ablate doctor {results_dir} --repair` checks it and, if only its last "
                "record was cut short (a crash or a full disk while writing), repairs it."
            ) from None
        except OSError as err:
            raise AblateError(
                f"cannot open the study's journal in {results_dir} ({err.strerror or err}); check "
                "that the folder exists, is writable and that the disk is not full."
            ) from None
    remember_secret(url)
    try:
        rdb = optuna.storages.RDBStorage(url, engine_kwargs={"pool_pre_ping": True})
        # Optuna's cache keeps finished trials in memory: each later read fetches only the
        # unfinished ones, so claiming stays cheap however many trials are done.
        return optuna.storages.get_storage(rdb)
    except ImportError as err:
        raise AblateError(
            f"the storage {mask_url(url)} needs a database driver that is not installed "
            f"({err}); for PostgreSQL: pip install 'ablate[postgres]' (psycopg)."
        ) from None
    except Exception as err:
        raise AblateError(
            f"cannot open the storage {mask_url(url)}: {_first_line(err)}. Check that the "
            "database server is running and reachable and that the URL (user, host, port, "
            "database) is right."
        ) from None


def cut_incomplete_record(path: Path) -> Path | None:
    """Remove a journal's last record if a crash cut it short; returns the backup, if any.

    Optuna never applies a record without its newline, but the next one appended would be
    glued onto it and damage the file. Under the journal's lock no write is in progress, so a
    missing final newline means a dead writer; the whole file is copied aside first.
    """
    if not path.exists() or path.stat().st_size == 0:
        return None
    lock = JournalLock(str(path))
    lock.acquire()
    try:
        with open(path, "rb") as f:
            f.seek(-1, os.SEEK_END)
            if f.read(1) == b"\n":
                return None
            data = path.read_bytes()
        keep = data.rfind(b"\n") + 1
        backup = path.with_name(f"{path.name}.damaged-{time.strftime('%Y%m%d-%H%M%S')}")
        backup.write_bytes(data)
        with open(path, "r+b") as f:
            f.truncate(keep)
            f.flush()
            os.fsync(f.fileno())
        return backup
    finally:
        lock.release()


class JournalLock:
    """A journal lock the kernel releases when its holder dies (Optuna's lock-file API)."""

    def __init__(self, path: str) -> None:
        self._path = path + ".flock"
        self._fd: int | None = None

    def acquire(self) -> bool:
        fd = os.open(self._path, os.O_CREAT | os.O_RDWR, 0o644)
        fcntl.flock(fd, fcntl.LOCK_EX)
        self._fd = fd
        return True

    def release(self) -> None:
        if self._fd is not None:
            fd, self._fd = self._fd, None
            fcntl.flock(fd, fcntl.LOCK_UN)
            os.close(fd)


# ---------------------------------------------------------------------------------------------
# Workers and what the queue hands them


@dataclass(frozen=True)
class WorkerIdentity:
    """Who holds a trial: enough to tell, from the same machine, whether it is still alive."""

    name: str  # "w1", "w2"... as shown in progress
    host: str = field(default_factory=socket.gethostname)
    boot: str = field(default_factory=lambda: _boot_id())
    pid: int = field(default_factory=os.getpid)
    start_ticks: int | None = field(default_factory=lambda: _start_ticks(os.getpid()))
    gpu: str | None = None

    def to_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "host": self.host,
            "boot": self.boot,
            "pid": self.pid,
            "start_ticks": self.start_ticks,
            "gpu": self.gpu,
        }


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
            try:
                study_id = storage.create_new_study(
                    [optuna.study.StudyDirection.MINIMIZE], study_name=name
                )
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
            changes = _differences(attrs.get("ablate_experiment", {}), self.study.experiment())
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
                    [result.test_loss],
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
        me_host, me_boot = socket.gethostname(), _boot_id()
        lost = []
        for trial in self._trials(states=(TrialState.RUNNING,)):
            worker = trial.user_attrs.get("worker") or {}
            beat = (trial.user_attrs.get("heartbeat") or {}).get("time")
            if beat is None:
                start = trial.datetime_start
                beat = start.timestamp() if start is not None else now
            local = worker.get("host") == me_host and worker.get("boot") == me_boot
            dead = local and not _process_alive(worker.get("pid"), worker.get("start_ticks"))
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


def spool_result(
    spool: Path, queue: TrialQueue, claim: Claim, result: TrialResult, worker: WorkerIdentity
) -> Path:
    """Keep a result the storage could not take, for :meth:`TrialQueue.import_spool`."""
    spec = claim.spec
    entry = {
        "schema_version": SCHEMA_VERSION,
        "study": queue.study.name,
        "fingerprint": queue.study.fingerprint(),
        "attrs": {
            "trial_key": spec.key, "levels": spec.cell.as_dict(), "cell_index": spec.cell.index,
            "replicate": spec.replicate, "seed": spec.seed, "attempt": claim.attempt,
        },
        "worker": worker.to_dict(),
        "result": result.to_dict(),
        "outputs": base64.b64encode(result.outputs).decode("ascii") if result.outputs else None,
    }  # fmt: skip
    spool.mkdir(parents=True, exist_ok=True)
    path = spool / f"{spec.key}-{os.getpid()}-{claim.trial_id}.json"
    tmp = path.with_suffix(".tmp")
    tmp.write_text(json.dumps(entry))
    os.replace(tmp, path)
    return path


def call_with_retry(
    fn: Callable[..., T], *args: Any, timeout: float | None = None, **kwargs: Any
) -> T:
    """Call a storage function, retrying with backoff while the database is unreachable.

    Gives up after ``timeout`` seconds (default: ABLATE_STORAGE_TIMEOUT, or 300) with a
    message naming the problem; nothing already recorded in storage is affected.
    """
    limit = float(os.environ.get("ABLATE_STORAGE_TIMEOUT", "300")) if timeout is None else timeout
    deadline = time.monotonic() + limit
    delay = 0.5
    while True:
        try:
            return fn(*args, **kwargs)
        except Exception as err:
            cause = _connection_cause(err)
            if cause is None:
                raise
            reason = _first_line(getattr(cause, "orig", None) or cause)
            left = deadline - time.monotonic()
            if left <= 0:
                raise AblateError(
                    f"the storage database has been unreachable for {limit:.0f} s "
                    f"({reason}). Every result recorded before remains in storage; start the "
                    "database again and rerun the same command to carry on."
                ) from None
            _log.warning("storage unreachable (%s); retrying in %.0f s", reason, min(delay, left))
            time.sleep(min(delay, left))
            delay = min(delay * 2, 15.0)


def _is_connection_error(err: BaseException) -> bool:
    """A lost or refused database connection (as opposed to a bug or a rejected update)."""
    return _connection_cause(err) is not None


def _connection_cause(err: BaseException) -> BaseException | None:
    """The database-connection failure behind ``err``, following its causes, if any.

    Optuna wraps SQLAlchemy's errors in StorageInternalError, and a connection cut in the
    middle of a transaction surfaces as PendingRollbackError over an OperationalError.
    """
    try:
        import sqlalchemy.exc as sa_exc
    except ImportError:  # pragma: no cover
        return None
    kinds = (
        sa_exc.OperationalError,
        sa_exc.InterfaceError,
        sa_exc.PendingRollbackError,
        sa_exc.DisconnectionError,
    )
    seen: set[int] = set()
    current: BaseException | None = err
    found = None
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        if isinstance(current, kinds) or (
            isinstance(current, sa_exc.DBAPIError) and current.connection_invalidated
        ):
            found = current  # keep going: the innermost one says what happened
        current = current.__cause__ or current.__context__
    return found


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


def _differences(old: dict[str, Any], new: dict[str, Any], prefix: str = "") -> list[str]:
    out = []
    for key in sorted(set(old) | set(new)):
        a, b = old.get(key), new.get(key)
        if isinstance(a, dict) and isinstance(b, dict):
            out.extend(_differences(a, b, f"{prefix}{key}."))
        elif a != b:
            out.append(f"{prefix}{key}: {a!r} then, {b!r} now")
    return out


def _first_line(err: BaseException) -> str:
    text = str(err).strip().splitlines()
    return scrub((text[0] if text else type(err).__name__)[:300])


def _boot_id() -> str:
    with contextlib.suppress(OSError):
        return Path("/proc/sys/kernel/random/boot_id").read_text().strip()
    return ""


def _start_ticks(pid: int) -> int | None:
    """A process's start time in clock ticks since boot (tells a reused PID apart)."""
    with contextlib.suppress(OSError, IndexError, ValueError):
        stat = Path(f"/proc/{pid}/stat").read_text()
        return int(stat.rsplit(")", 1)[1].split()[19])
    return None


def _process_alive(pid: int | None, start_ticks: int | None) -> bool:
    """Whether the process still runs (a zombie or a reused PID counts as gone)."""
    if pid is None:
        return True  # unknown: leave it to the heartbeat
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        pass
    with contextlib.suppress(OSError, IndexError):
        stat = Path(f"/proc/{pid}/stat").read_text()
        if stat.rsplit(")", 1)[1].split()[0] == "Z":
            return False
    return start_ticks is None or _start_ticks(pid) in (None, start_ticks)


@contextlib.contextmanager
def opened_queue(study: Study, url: str | None, *, create: bool = True) -> Iterator[TrialQueue]:
    """Open storage and the study's queue; closes RDB connections afterwards."""
    storage = open_storage(url, study.results_dir)
    try:
        yield TrialQueue.open(study, storage, create=create)
    finally:
        rdb = getattr(storage, "_backend", storage)
        engine = getattr(rdb, "engine", None)
        if engine is not None:
            engine.dispose()
