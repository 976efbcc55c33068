"""Running a study: check it, fill the trial queue, run worker processes over it, export.

``run_study`` is what ``ablate run`` (and, joining an existing study, ``ablate worker``) does:

1. make the checks before a run (:mod:`~ablate.execution.preflight`): a mistake in what the
   user supplies costs seconds, not a study of failed trials;
2. save the resolved study beside its results and open the study's storage;
3. hand back trials that a killed earlier run left RUNNING, enqueue the missing ones (and one
   more attempt at each failed one), record results kept in the spool;
4. start the worker processes planned for this machine (:mod:`~ablate.execution.planning`)
   and supervise them (:mod:`~ablate.execution.pool`) until the queue is empty;
5. on Ctrl-C, stop the workers (each hands its unfinished trial back) and export.
"""

from __future__ import annotations

import contextlib
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ablate.errors import AblateError
from ablate.execution.planning import describe_slots, plan_workers
from ablate.execution.pool import WorkerPool, export_queue
from ablate.execution.preflight import checked_before_run
from ablate.execution.progress import Progress
from ablate.execution.watch import stopped_tally
from ablate.queue.claims import TrialQueue, opened_queue
from ablate.queue.outcomes import Summary
from ablate.queue.spool import import_spool
from ablate.results.files import SPOOL_DIR, prepare_results_dir, write_baselines
from ablate.secrets import mask_url
from ablate.study.grid import expand_trials
from ablate.study.runs import with_table
from ablate.study.settings import Study


@dataclass(frozen=True)
class RunSummary:
    """What a run did and where the study stands afterwards."""

    study: str
    directory: Path
    total: int
    complete: int
    failed: int
    diverged: int
    trained: int  # trials finished by this run's workers
    seconds: float
    workers: int = 0
    interrupted: bool = False

    @property
    def missing(self) -> int:
        return self.total - self.complete - self.failed - self.diverged


def run_study(
    study: Study,
    *,
    storage_url: str | None = None,
    workers: int | None = None,
    workers_per_gpu: int | None = None,
    join: bool = False,
    stream: Any = None,
    live: bool | None = None,
) -> RunSummary:
    """Run every unfinished trial of the study with worker processes, and export the results.

    ``join``: work on a study created elsewhere (``ablate worker``): do not create or fill it.
    """
    start = time.monotonic()
    if join:  # a study that was never started: say so before checking anything else
        with opened_queue(study, storage_url, create=False):
            pass
    directory = _checked_folder(study, storage_url)
    with opened_queue(study, storage_url, create=not join) as queue:
        progress = _prepare(study, queue, directory, join, stream, live)
        pool, interrupted = _supervise(study, queue, storage_url, workers, workers_per_gpu,
                                       progress)  # fmt: skip
        stopped = pool.fatal or pool.tripped
        if stopped and not interrupted:
            with contextlib.suppress(AblateError):  # the storage may be what failed
                export_queue(study, queue, directory)
            if pool.tripped:
                left = queue.summary()
                raise AblateError(stopped + stopped_tally(left.failed, left.waiting),
                                  pool.watch.detail)  # fmt: skip
            raise AblateError(stopped)
        export_queue(study, queue, directory)
        after = queue.summary()
    return RunSummary(
        study=study.name, directory=directory, total=after.total, complete=after.complete,
        failed=after.failed, diverged=after.diverged, trained=progress.finished_now,
        seconds=time.monotonic() - start, workers=len(pool.slots), interrupted=interrupted,
    )  # fmt: skip


def enqueue_study(study: Study, storage_url: str | None = None) -> tuple[Path, Summary]:
    """Everything ``ablate run`` does before its workers start, for workers elsewhere
    (``ablate submit``): the checks, the results folder, and every unfinished trial in the
    queue (failed ones once more). Returns the folder and where the study stands."""
    directory = _checked_folder(study, storage_url)
    with opened_queue(study, storage_url, create=True) as queue:
        queue.populate(expand_trials(study), retry_failed=True)
        return directory, queue.summary()


def _checked_folder(study: Study, storage_url: str | None) -> Path:
    """The checks before a run (a mistake costs seconds, not a study), then the results
    folder with the study as run (the design's runs listed) and its baselines."""
    checked = checked_before_run(study)
    directory = prepare_results_dir(with_table(study), storage_url)
    write_baselines(directory, checked.data, checked.baselines)
    return directory


def _prepare(
    study: Study, queue: TrialQueue, directory: Path, join: bool, stream: Any, live: bool | None
) -> Progress:
    """The queue made ready for this run's workers; the progress display, started."""
    queue.recover_lost()  # trials left RUNNING by a killed earlier run on this machine
    if not join:  # and a rerun tries each failed trial once more (its cause may be fixed)
        queue.populate(expand_trials(study), retry_failed=True)
    kept = import_spool(queue, directory / SPOOL_DIR)  # results the storage missed before
    before = queue.summary()
    progress = Progress(study.name, before.total, before.finished, stream=stream, live=live)
    for label in kept:
        progress.note(f"recorded {label} from {directory / SPOOL_DIR} (kept while the "
                      "storage was unreachable)")  # fmt: skip
    return progress


def _supervise(
    study: Study,
    queue: TrialQueue,
    storage_url: str | None,
    workers: int | None,
    workers_per_gpu: int | None,
    progress: Progress,
) -> tuple[WorkerPool, bool]:
    """Start this machine's workers and watch them until the queue is empty; returns the
    pool and whether the run was interrupted (Ctrl-C)."""
    before = queue.summary()
    remaining = before.waiting or (1 if before.running else 0)
    slots = (
        plan_workers(study, workers=workers, workers_per_gpu=workers_per_gpu, remaining=remaining)
        if remaining
        else []
    )
    pool = WorkerPool(study, storage_url, slots, study.results_dir, progress, queue)
    try:
        if slots:
            where = f" on {mask_url(storage_url)}" if storage_url else ""
            progress.note(
                f"{study.name}: {before.finished}/{before.total} done; starting {len(slots)} "
                f"worker{'s' if len(slots) > 1 else ''} ({describe_slots(slots)}){where}"
            )
            pool.run()
    except KeyboardInterrupt:
        pool.stop()
        return pool, True
    finally:
        progress.close()
    return pool, False
