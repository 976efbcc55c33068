"""A study's trials in an Optuna journal file: one machine, or a filesystem shared by several.

Writes go through Optuna's storage API (a call per change), so the file is Optuna's own
journal, readable by Optuna's tools. What claims and checks read comes from an index in
memory that follows the journal record by record (:meth:`JournalFile.observe`): a refresh
re-reads only the trials that changed, so a claim costs the same at 100 trials as at
100,000. Claims take turns (:meth:`JournalFile.claiming`): the lowest waiting trial seen is
still waiting when the claim's record is written. Saved model outputs are files named by
trial key in ``stored-outputs/`` beside the journal, written before the result is recorded.
"""

from __future__ import annotations

import contextlib
import heapq
import os
from collections import deque
from dataclasses import replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ablate.fileio import write_atomic
from ablate.storage._optuna import stored, template
from ablate.storage.base import Entry, NewTrial, OutputStore, StoredTrial, TrialStore, entry_of
from ablate.storage.journal_file import JournalFile
from ablate.storage.retry import call_with_retry

if TYPE_CHECKING:
    from optuna.storages import BaseStorage

#: Beside the journal: the saved model outputs of its complete trials.
STORED_OUTPUTS_DIR = "stored-outputs"


class JournalStore(TrialStore):
    """Every trial's entry in memory, current through the journal's records (see the module)."""

    def __init__(self, storage: BaseStorage, study_id: int, journal: JournalFile) -> None:
        self._storage = storage  # Optuna's JournalStorage over ``journal``
        self._study_id = study_id
        self._journal = journal
        self.outputs = FileOutputs(journal.path.parent / STORED_OUTPUTS_DIR)
        self._changes: deque[int] = deque()  # ids of trials records have touched, to re-read
        self._entries: dict[int, Entry] = {}
        self._ids: set[int] = set()  # every trial of the study, ablate's or not
        self._known = 0  # the study's trials seen: numbers 0 .. _known - 1
        self._by_key: dict[str, list[int]] = {}
        self._waiting: list[tuple[int, int]] = []  # heap of (number, trial_id); stale skipped
        self._running: set[int] = set()
        self.rereads = 0  # trials re-read since opened: what following the journal costs
        journal.observe(self._note)
        self._load()

    # -- following the journal ----------------------------------------------------------------

    def _note(self, log: dict[str, Any]) -> None:
        trial_id = log.get("trial_id")
        if trial_id is not None:
            self._changes.append(trial_id)  # thread-safe: heartbeats read from another thread

    def _load(self) -> None:
        self._changes.clear()  # what was read before is in the read below
        trials = self.trials()
        for trial in trials:
            self._put(trial)
        self._known = len(trials)

    def _put(self, trial: StoredTrial) -> None:
        self.rereads += 1
        self._ids.add(trial.trial_id)
        entry = entry_of(trial)
        if entry is None:
            return
        old = self._entries.get(trial.trial_id)
        self._entries[trial.trial_id] = entry
        if old is None:
            self._by_key.setdefault(entry.key, []).append(trial.trial_id)
        if entry.state == "waiting" and (old is None or old.state != "waiting"):
            heapq.heappush(self._waiting, (entry.number, trial.trial_id))
        if entry.state == "running":
            self._running.add(trial.trial_id)
        else:
            self._running.discard(trial.trial_id)

    def _refresh(self) -> None:
        """Bring the index up to date: new trials, and the trials records touched since."""
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
            self._put(stored(storage.get_trial(trial_id)))
        touched = set()
        while self._changes:
            touched.add(self._changes.popleft())
        for trial_id in touched:
            if trial_id in self._ids:
                self._put(stored(storage.get_trial(trial_id)))

    def _first_waiting(self) -> Entry | None:
        while self._waiting:
            entry = self._entries.get(self._waiting[0][1])
            if entry is not None and entry.state == "waiting":
                return entry
            heapq.heappop(self._waiting)
        return None

    # -- writing ------------------------------------------------------------------------------

    def create(self, trials: list[NewTrial]) -> list[int]:
        create = self._storage.create_new_trial  # the index reads them from the journal
        return [call_with_retry(create, self._study_id, template(new)) for new in trials]

    def claim(self, worker: dict[str, Any], n: int = 1) -> list[Entry]:
        # One claim at a time: the lowest waiting trial seen after the refresh is still
        # waiting when this claim's record is written (unless a spooled result is recorded on
        # it that very moment: then the next one is taken).
        taken: list[Entry] = []
        with self._journal.claiming():
            self._refresh()
            while len(taken) < n and (entry := self._first_waiting()) is not None:
                if self.take(entry, worker):
                    taken.append(replace(entry, state="running", worker=worker))
                heapq.heappop(self._waiting)  # taken now, or meanwhile by a storage shared
                self._refresh()
        return taken

    def take(self, entry: Entry, worker: dict[str, Any]) -> bool:
        # Who holds it, written before the claim (a waiting trial takes attributes): if the
        # claim then fails, the next claimant's own record replaces it. Optuna's WAITING ->
        # RUNNING decides; both records reach the disk with one sync.
        from optuna.exceptions import UpdateFinishedTrialError
        from optuna.trial import TrialState

        with self._journal.batch():
            call_with_retry(self._storage.set_trial_user_attr, entry.trial_id, "worker", worker)
            try:
                return bool(
                    call_with_retry(
                        self._storage.set_trial_state_values, entry.trial_id, TrialState.RUNNING
                    )
                )
            except UpdateFinishedTrialError:
                return False  # claimed and finished by another worker meanwhile

    def heartbeat(self, trial_id: int, payload: dict[str, Any]) -> bool:
        from optuna.exceptions import UpdateFinishedTrialError

        try:
            call_with_retry(self._storage.set_trial_user_attr, trial_id, "heartbeat", payload)
        except (UpdateFinishedTrialError, KeyError):
            return False
        return True

    def record_epoch(self, trial_id: int, step: int, value: float) -> None:
        from optuna.exceptions import UpdateFinishedTrialError

        with contextlib.suppress(UpdateFinishedTrialError):
            call_with_retry(self._storage.set_trial_intermediate_value, trial_id, step, value)

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
        from optuna.exceptions import UpdateFinishedTrialError
        from optuna.trial import TrialState

        try:
            if outputs is not None:  # first, so that a recorded complete trial has them
                self.outputs.put(*outputs)
            with self._journal.batch():
                for name, attr in attrs.items():
                    call_with_retry(self._storage.set_trial_user_attr, trial_id, name, attr)
                state = TrialState.COMPLETE if complete else TrialState.FAIL
                values = [value] if complete and value is not None else None
                call_with_retry(self._storage.set_trial_state_values, trial_id, state, values)
        except (UpdateFinishedTrialError, KeyError):
            return False
        return True  # the index reads the change from the journal

    def sync(self, trial_id: int, holder: bool = False) -> None:
        pass  # the index follows the journal: it is never behind it

    def batch(self) -> contextlib.AbstractContextManager[None]:
        return self._journal.batch()

    # -- reading ------------------------------------------------------------------------------

    def entries(self) -> list[Entry]:
        self._refresh()
        return list(self._entries.values())

    def running(self) -> list[Entry]:
        self._refresh()
        return [self._entries[i] for i in self._running]

    def entries_of(self, key: str, confirm: bool = False) -> list[Entry]:
        self._refresh()
        return [self._entries[i] for i in self._by_key.get(key, ())]

    def trials(self) -> list[StoredTrial]:
        frozen = call_with_retry(self._storage.get_all_trials, self._study_id, deepcopy=False)
        return sorted((stored(t) for t in frozen), key=lambda t: t.number)

    def user_attrs(self, trial_id: int) -> dict[str, Any]:
        return call_with_retry(self._storage.get_trial, trial_id).user_attrs


class FileOutputs(OutputStore):
    """One ``<key>.npz`` per trial in a folder."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder

    def put(self, key: str, data: bytes) -> None:
        self.folder.mkdir(parents=True, exist_ok=True)
        write_atomic(self.folder / f"{key}.npz", data)

    def keys(self) -> set[str]:
        if not self.folder.is_dir():
            return set()
        return {p.stem for p in self.folder.glob("*.npz")}

    def copy_into(self, folder: Path, keys: list[str]) -> int:
        written = 0
        for key in keys:
            source = self.folder / f"{key}.npz"
            if not source.is_file():
                continue
            target = folder / source.name
            tmp = folder / f".{source.name}.{os.getpid()}.link"
            with contextlib.suppress(FileNotFoundError):
                tmp.unlink()
            try:  # a hard link: no second copy on disk; atomic through the rename
                os.link(source, tmp)
                os.replace(tmp, target)
            except OSError:  # another filesystem, or links not allowed
                with contextlib.suppress(OSError):
                    tmp.unlink()
                write_atomic(target, source.read_bytes(), sync=False)
            written += 1
        return written
