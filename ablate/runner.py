"""Running a study: fill the trial queue, work through it, show progress, export the results.

``run_study`` is what ``ablate run`` does. The unit of work is :func:`work`, one worker's
loop: load the data once, then claim a trial, train it with heartbeats, record its result,
and repeat until the queue is empty. A second run of a finished study trains nothing; an
interrupted one carries on with exactly the trials that are missing.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ablate import backend
from ablate.config import Study
from ablate.grid import expand_trials
from ablate.progress import Event, Progress
from ablate.results import export, prepare_results_dir
from ablate.storage import Claim, TrialQueue, WorkerIdentity, opened_queue

Reporter = Callable[[Event], None]


@dataclass(frozen=True)
class RunSummary:
    """What a run did and where the study stands afterwards."""

    study: str
    directory: Path
    total: int
    complete: int
    failed: int
    diverged: int
    trained: int  # trials finished by this run
    seconds: float
    interrupted: bool = False

    @property
    def missing(self) -> int:
        return self.total - self.complete - self.failed - self.diverged


def run_study(
    study: Study,
    *,
    storage_url: str | None = None,
    stream: Any = None,
    live: bool | None = None,
) -> RunSummary:
    """Run every trial of the study that is not finished yet, and export the results."""
    start = time.monotonic()
    backend.configure_process()
    directory = prepare_results_dir(study, storage_url)
    with opened_queue(study, storage_url) as queue:
        queue.recover_lost()  # trials left RUNNING by a killed earlier run
        queue.populate(expand_trials(study))
        before = queue.summary()
        progress = Progress(study.name, before.total, before.finished, stream=stream, live=live)
        exporter = _ThrottledExport(queue, directory)
        interrupted = False
        trained = 0
        try:
            if before.waiting or before.running:
                trained = work(study, queue, WorkerIdentity("w1"), progress.handle, exporter)
        except KeyboardInterrupt:
            interrupted = True
        finally:
            export(queue, directory)
            progress.close()
        after = queue.summary()
    return RunSummary(
        study=study.name,
        directory=directory,
        total=after.total,
        complete=after.complete,
        failed=after.failed,
        diverged=after.diverged,
        trained=trained,
        seconds=time.monotonic() - start,
        interrupted=interrupted,
    )


def work(
    study: Study,
    queue: TrialQueue,
    identity: WorkerIdentity,
    report: Reporter,
    on_finish: Callable[[], None] | None = None,
    stop: threading.Event | None = None,
) -> int:
    """One worker: claim, train and record trials until none is left; returns how many.

    While trials are still running elsewhere, the worker waits instead of leaving, so that
    it can take over any of them whose worker dies.
    """
    from ablate.data import load_dataset

    backend.import_keras()  # once per worker, so that no trial's time includes it
    dataset = load_dataset(study.data)  # once per worker, not per trial
    trained = 0
    while stop is None or not stop.is_set():
        for label in queue.recover_lost():
            report(Event("recovered", identity.name, label=label, message="its worker died"))
        claim = queue.claim(identity)
        if claim is None:
            if not queue.summary().running:
                break
            time.sleep(min(study.run.heartbeat_seconds, 5.0))
            continue
        _run_claim(study, queue, claim, dataset, identity, report)
        trained += 1
        if on_finish is not None:
            on_finish()
    return trained


def _run_claim(
    study: Study,
    queue: TrialQueue,
    claim: Claim,
    dataset: Any,
    identity: WorkerIdentity,
    report: Reporter,
) -> None:
    """Train one claimed trial with heartbeats, record it, and report it."""
    from ablate.training import train_trial

    spec = claim.spec
    epochs = study.training.epochs
    report(Event("claimed", identity.name, spec.cell.label, spec.replicate, epochs=epochs))
    beat = _Heartbeat(queue, claim, study.run.heartbeat_seconds, epochs)
    n_train = len(dataset.x_train)

    def on_epoch(record: Any) -> None:
        beat.progress["epoch"] = record.epoch
        report(
            Event(
                "epoch", identity.name, spec.cell.label, spec.replicate,
                epoch=record.epoch, epochs=epochs, images=n_train,
            )
        )  # fmt: skip

    beat.start()
    try:
        result = train_trial(study, spec, dataset, on_epoch=on_epoch)
    except BaseException:  # Ctrl-C or a kill signal: hand the trial back untouched
        beat.stop()
        queue.release(claim)
        raise
    beat.stop()
    recorded = queue.finish(claim, result)
    message = "" if recorded else "another worker had taken it over; result discarded"
    if result.error and recorded:
        message = result.error
    report(
        Event(
            "finished", identity.name, spec.cell.label, spec.replicate,
            status=result.status if recorded else "taken-over",
            test_loss=result.test_loss, seconds=result.seconds, message=message,
        )
    )  # fmt: skip


class _Heartbeat:
    """A daemon thread that tells the storage, every interval, that the trial is alive."""

    def __init__(self, queue: TrialQueue, claim: Claim, interval: float, epochs: int) -> None:
        self.progress: dict[str, Any] = {"epoch": 0, "epochs": epochs}
        self._queue = queue
        self._claim = claim
        self._interval = interval
        self._stopped = threading.Event()
        self._thread = threading.Thread(target=self._run, name="ablate-heartbeat", daemon=True)

    def start(self) -> None:
        self._queue.heartbeat(self._claim, dict(self.progress))
        self._thread.start()

    def _run(self) -> None:
        while not self._stopped.wait(self._interval):
            try:
                self._queue.heartbeat(self._claim, dict(self.progress))
            except Exception:  # a missed beat is retried at the next interval
                continue

    def stop(self) -> None:
        self._stopped.set()
        self._thread.join()


class _ThrottledExport:
    """Export the parquet files after a trial finishes, at most every ``every`` seconds."""

    def __init__(self, queue: TrialQueue, directory: Path, every: float = 5.0) -> None:
        self._queue = queue
        self._directory = directory
        self._every = every
        self._last = 0.0

    def __call__(self) -> None:
        if time.monotonic() - self._last >= self._every:
            export(self._queue, self._directory)
            self._last = time.monotonic()
