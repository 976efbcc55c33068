"""Running a study: fill the trial queue, run worker processes over it, show progress, export.

``run_study`` is what ``ablate run`` (and, joining an existing study, ``ablate worker``) does:

1. save the resolved study beside its results and open the study's storage;
2. hand back trials that a killed earlier run left RUNNING, and enqueue the missing ones;
3. start the worker processes planned for this machine (:func:`plan_workers`): each is pinned
   to one GPU, or shares the CPU cores with a fixed thread count, and runs :func:`work`;
4. supervise them: show their progress, export the parquet files as trials finish, and when
   a worker dies (killed, crashed), return its trial to the queue and start a replacement;
5. on Ctrl-C, stop the workers (each hands its unfinished trial back) and export.

Workers talk to the coordinator through one pipe each, never a shared lock, so a worker
killed at any moment cannot block the others; they talk to each other only through the
storage, which is what lets workers on other machines join the same study.
"""

from __future__ import annotations

import contextlib
import ctypes
import logging
import multiprocessing
import multiprocessing.connection
import os
import signal
import sys
import threading
import time
import traceback
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ablate.designs.build import with_table
from ablate.engine import backend
from ablate.engine.failures import FailureWatch
from ablate.engine.planning import WorkerSlot, describe_slots, plan_workers
from ablate.engine.preflight import checked_before_run
from ablate.engine.progress import Event, Progress
from ablate.engine.queue import Claim, TrialQueue
from ablate.engine.secrets import mask_url, scrub
from ablate.engine.spool import spool_result
from ablate.engine.storage import opened_queue
from ablate.engine.workers import WorkerIdentity
from ablate.errors import AblateError
from ablate.results import export, prepare_results_dir
from ablate.results.files import SPOOL_DIR, write_baselines
from ablate.study.grid import expand_trials
from ablate.study.settings import Study

Reporter = Callable[[Event], None]

# A worker's exit codes, besides 0 (the queue is empty).
_EXIT_INTERRUPTED = 130
_EXIT_USER_ERROR = 2
_EXIT_BUG = 1


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
    checked = checked_before_run(study)  # before any worker starts: a mistake costs seconds
    directory = prepare_results_dir(with_table(study), storage_url)  # the design's runs listed
    write_baselines(directory, checked.data, checked.baselines)
    with opened_queue(study, storage_url, create=not join) as queue:
        queue.recover_lost()  # trials left RUNNING by a killed earlier run on this machine
        if not join:  # and a rerun tries each failed trial once more (its cause may be fixed)
            queue.populate(expand_trials(study), retry_failed=True)
        kept = queue.import_spool(directory / SPOOL_DIR)  # results the storage missed before
        before = queue.summary()
        progress = Progress(study.name, before.total, before.finished, stream=stream, live=live)
        for label in kept:
            progress.note(f"recorded {label} from {directory / SPOOL_DIR} (kept while the "
                          "storage was unreachable)")  # fmt: skip
        remaining = before.waiting or (1 if before.running else 0)
        slots = (
            plan_workers(
                study, workers=workers, workers_per_gpu=workers_per_gpu, remaining=remaining
            )
            if remaining
            else []
        )
        pool = _WorkerPool(study, storage_url, slots, directory, progress, queue)
        pool.watch = FailureWatch(before.waiting)
        interrupted = False
        try:
            if slots:
                where = f" on {mask_url(storage_url)}" if storage_url else ""
                progress.note(
                    f"{study.name}: {before.finished}/{before.total} done; starting "
                    f"{len(slots)} worker{'s' if len(slots) > 1 else ''} "
                    f"({describe_slots(slots)}){where}"
                )
                pool.run()
        except KeyboardInterrupt:
            interrupted = True
            pool.stop()
        finally:
            progress.close()
        stopped = pool.fatal or pool.tripped
        if stopped and not interrupted:
            with contextlib.suppress(AblateError):  # the storage may be what failed
                export(queue, directory)
            raise AblateError(stopped, pool.watch.detail if pool.tripped and pool.watch else "")
        export(queue, directory)
        after = queue.summary()
    return RunSummary(
        study=study.name,
        directory=directory,
        total=after.total,
        complete=after.complete,
        failed=after.failed,
        diverged=after.diverged,
        trained=progress.finished_now,
        seconds=time.monotonic() - start,
        workers=len(slots),
        interrupted=interrupted,
    )


# ---------------------------------------------------------------------------------------------
# The coordinator's side


class _WorkerPool:
    """Starts, watches, replaces and stops the worker processes of one run."""

    def __init__(
        self,
        study: Study,
        storage_url: str | None,
        slots: list[WorkerSlot],
        directory: Path,
        progress: Progress,
        queue: TrialQueue,
    ) -> None:
        self.study = study
        self.storage_url = storage_url
        self.slots = slots
        self.logs = directory / "logs"
        self.progress = progress
        self.queue = queue
        self.exporter = _ThrottledExport(queue, directory, progress)
        self.ctx = multiprocessing.get_context("spawn")  # never fork a process that holds locks
        self.procs: dict[str, Any] = {}
        self.pipes: dict[str, multiprocessing.connection.Connection] = {}
        self.replacements = 0
        self.fatal: str | None = None  # a worker's own error that stops the run
        self.watch: FailureWatch | None = None
        self.tripped: str | None = None  # why the watch stopped the run: trials fail alike

    def start(self, slot: WorkerSlot) -> None:
        self.logs.mkdir(parents=True, exist_ok=True)
        receive, send = self.ctx.Pipe(duplex=False)
        proc = self.ctx.Process(
            target=_worker_main,
            args=(self.study, self.storage_url, slot, send, os.getpid(), self.logs),
            name=f"ablate-{slot.name}",
            daemon=False,
        )
        proc.start()
        send.close()  # the child holds the only writing end: EOF when it exits
        self.procs[slot.name] = proc
        self.pipes[slot.name] = receive

    def run(self) -> None:
        for slot in self.slots:
            self.start(slot)
        while self.procs:
            self._drain(timeout=1.0)
            if self.tripped:
                self.progress.note(f"stopping: {self.tripped.split(': ', 1)[0]}")
                self.stop()
                return
            self.progress.tick()
            for name, proc in list(self.procs.items()):
                if proc.exitcode is not None:
                    self._drain(timeout=0)  # its last words
                    self._exited(name, proc.exitcode)

    def _drain(self, timeout: float) -> None:
        """Pass every pending worker event to the progress display (waits up to timeout)."""
        ready = multiprocessing.connection.wait(list(self.pipes.values()), timeout=timeout)
        for conn in ready:
            name = next(n for n, c in self.pipes.items() if c is conn)
            try:
                while conn.poll():
                    event = conn.recv()
                    self.progress.handle(event)
                    if event.kind == "finished":
                        self.exporter()
                        self._watch(event)
                    elif event.kind == "fatal":
                        self.fatal = self.fatal or event.message
            except (EOFError, OSError):  # the worker is gone; its exit code tells the rest
                self.pipes.pop(name).close()

    def _watch(self, event: Event) -> None:
        if self.watch is None or self.tripped or event.status == "taken-over":
            return
        self.tripped = self.watch.observe(
            event.key, event.label, event.status, event.error, event.traceback
        )

    def _exited(self, name: str, code: int) -> None:
        proc = self.procs.pop(name)
        proc.join()
        with contextlib.suppress(KeyError):
            self.pipes.pop(name).close()
        if code in (0, _EXIT_USER_ERROR, _EXIT_BUG, _EXIT_INTERRUPTED):
            return  # done, or stopped for a reason its last message gave
        # Killed (a negative code is the signal) or crashed: its trial goes back to the queue.
        how = f"killed by signal {-code}" if code < 0 else f"exited with code {code}"
        for label in self.queue.recover_lost():
            self.progress.handle(Event("recovered", name, label=label, message=f"worker {how}"))
        summary = self.queue.summary()
        if summary.waiting and self.replacements < 3 * len(self.slots):
            self.replacements += 1
            self.progress.note(f"{name} {how}; starting a replacement")
            self.start(next(s for s in self.slots if s.name == name))
        else:
            self.progress.note(f"{name} {how}")

    def stop(self) -> None:
        """Stop every worker: each hands its unfinished trial back to the queue."""
        self.progress.note("stopping the workers (their unfinished trials go back to the queue)")
        deadline = time.monotonic() + 60
        next_signal = 0.0
        try:
            while self.procs and time.monotonic() < deadline:
                if time.monotonic() >= next_signal:  # again every 2 s: one may be swallowed
                    for proc in self.procs.values():
                        with contextlib.suppress(ProcessLookupError, ValueError):
                            os.kill(proc.pid, signal.SIGTERM)
                    next_signal = time.monotonic() + 2.0
                self._drain(timeout=0.5)
                for name, proc in list(self.procs.items()):
                    if proc.exitcode is not None:
                        self.procs.pop(name).join()
        except KeyboardInterrupt:
            pass  # a second Ctrl-C: stop waiting
        for proc in self.procs.values():
            proc.kill()
            proc.join()
        self.procs.clear()
        self.progress.idle()
        self.queue.recover_lost()  # trials of any worker that had to be killed


class _ThrottledExport:
    """Export the parquet files after a trial finishes, at most every ``every`` seconds, and
    at most a tenth of the time (a large study's export takes seconds: the workers share the
    cores with it).

    A failed export (a full disk, say) does not stop the run: every result is in the storage,
    and the next export, at the latest at the end of the run, writes the files again.
    """

    def __init__(
        self, queue: TrialQueue, directory: Path, progress: Progress, every: float = 5.0
    ) -> None:
        self._queue = queue
        self._directory = directory
        self._progress = progress
        self._every = every
        self._next = 0.0  # monotonic time of the next export allowed
        self._failing = False

    def __call__(self) -> None:
        if time.monotonic() < self._next:
            return
        start = time.monotonic()
        try:
            export(self._queue, self._directory)
        except AblateError as err:
            if not self._failing:
                self._progress.note(f"{err} (the run goes on; results are safe in storage)")
            self._failing = True
        else:
            self._failing = False
        finally:
            took = time.monotonic() - start
            self._next = start + max(self._every, 10 * took)


# ---------------------------------------------------------------------------------------------
# The worker's side


def _worker_main(
    study: Study,
    storage_url: str | None,
    slot: WorkerSlot,
    conn: multiprocessing.connection.Connection,
    parent: int,
    logs: Path,
) -> None:
    """Entry point of a worker process (spawned): set up the backend, then :func:`work`."""
    _die_with_parent(parent)
    signal.signal(signal.SIGTERM, _interrupt)
    signal.signal(signal.SIGINT, _interrupt)
    _redirect_output(logs / f"{slot.name}.log")
    backend.configure_process(threads=slot.threads, gpu=slot.gpu)

    def report(event: Event) -> None:
        with contextlib.suppress(OSError):  # the coordinator is gone: carry on regardless
            conn.send(event)

    _forward_warnings(slot.name, report)
    code = 0
    try:
        with opened_queue(study, storage_url, create=False) as queue:
            work(study, queue, WorkerIdentity(slot.name, gpu=slot.gpu or None), report)
    except KeyboardInterrupt:
        code = _EXIT_INTERRUPTED
    except AblateError as err:
        report(Event("fatal", slot.name, message=str(err)))
        code = _EXIT_USER_ERROR
    except Exception as err:
        sys.stderr.write(traceback.format_exc())  # into the worker's log file
        report(
            Event(
                "fatal",
                slot.name,
                message=f"worker {slot.name} stopped on an unexpected error "
                f"({type(err).__name__}: {scrub(str(err).splitlines()[0] if str(err) else '')}); "
                f"its traceback is in {logs / (slot.name + '.log')}",
            )
        )
        code = _EXIT_BUG
    finally:
        sys.stdout.flush()
        sys.stderr.flush()
        conn.close()
    os._exit(code)  # skip interpreter teardown: TensorFlow's can hang or print


def work(
    study: Study,
    queue: TrialQueue,
    identity: WorkerIdentity,
    report: Reporter,
) -> int:
    """One worker: claim, train and record trials until none is left; returns how many.

    While trials are still running elsewhere, the worker waits instead of leaving, so that
    it can take over any of them whose worker dies.
    """
    from ablate.data import load_dataset

    backend.import_keras()  # once per worker, so that no trial's time includes it
    dataset = load_dataset(study.data, study.seed)  # once per worker, not per trial
    return serve(
        queue,
        identity,
        report,
        lambda claim: _run_claim(study, queue, claim, dataset, identity, report),
        idle=min(study.run.heartbeat_seconds, 5.0),
    )


def serve(
    queue: TrialQueue,
    identity: WorkerIdentity,
    report: Reporter,
    run: Callable[[Claim], None],
    idle: float,
) -> int:
    """Claim trials and ``run`` each (train and record it) until none is left; returns how
    many. Trials whose worker is gone are handed back at most every ``idle`` seconds (they are
    declared lost only after seconds of silence anyway), and while waiting for trials running
    elsewhere, every ``idle`` seconds."""
    trained = 0
    next_check = 0.0
    while True:
        if time.monotonic() >= next_check:
            for label in queue.recover_lost():
                report(Event("recovered", identity.name, label=label, message="its worker died"))
            next_check = time.monotonic() + idle
        claim = queue.claim(identity)
        if claim is None:
            if not queue.busy():
                return trained
            time.sleep(idle)
            next_check = 0.0
            continue
        run(claim)
        trained += 1


def _run_claim(
    study: Study,
    queue: TrialQueue,
    claim: Claim,
    dataset: Any,
    identity: WorkerIdentity,
    report: Reporter,
) -> None:
    """Train one claimed trial with heartbeats, record it, and report it."""
    from ablate.engine.training import train_trial

    spec = claim.spec
    epochs = study.training.epochs
    report(Event("claimed", identity.name, spec.cell.label, spec.replicate, epochs=epochs))
    beat = _Heartbeat(queue, claim, study.run.heartbeat_seconds, epochs)
    n_train = len(dataset.x_train)
    seen = [0]  # training examples reported within the current epoch

    def on_progress(images: int) -> None:
        seen[0] += images
        report(Event("progress", identity.name, spec.cell.label, spec.replicate, images=images))

    def on_epoch(record: Any) -> None:
        shown = _shown_values(study, record.values)
        beat.progress.update(epoch=record.epoch, values=shown)
        with contextlib.suppress(Exception):  # a live curve point is not worth a trial
            queue.report_epoch(claim, record.epoch, record.values)
        report(
            Event(
                "epoch", identity.name, spec.cell.label, spec.replicate, epoch=record.epoch,
                epochs=epochs, images=max(n_train - seen[0], 0), values=shown,
            )
        )  # fmt: skip
        seen[0] = 0

    beat.start()
    try:
        result = train_trial(study, spec, dataset, on_epoch=on_epoch, on_progress=on_progress)
    except BaseException:  # Ctrl-C or a stop signal: hand the trial back untouched
        _handing_back.append(True)  # a second stop signal must not cut the hand-back short
        try:
            beat.stop()
            queue.release(claim)
        finally:
            _handing_back.clear()
        raise
    beat.stop()
    try:
        recorded = queue.finish(claim, result)
    except AblateError as err:  # the storage stayed unreachable: keep the result on disk
        kept = spool_result(study.results_dir / SPOOL_DIR, queue, claim, result, identity)
        raise AblateError(
            f"{err} The result of {spec.cell.label} r{spec.replicate}, which finished "
            f"meanwhile, is kept in {kept}; the next `ablate run` records it."
        ) from None
    message = "" if recorded else "another worker had taken it over; result discarded"
    if result.error and recorded:
        message = result.error.splitlines()[0] + ("; tried again" if recorded.retried else "")
    report(
        Event(
            "finished", identity.name, spec.cell.label, spec.replicate,
            status=result.status if recorded else "taken-over",
            values=_shown_values(study, result.values), seconds=result.seconds,
            message=message, error=result.error or "", traceback=result.traceback or "",
            key=spec.key,
            final=bool(recorded) and not recorded.retried,
        )
    )  # fmt: skip


def _shown_values(study: Study, values: dict[str, Any]) -> dict[str, float]:
    """The few values progress displays show: the study's response, and the test loss."""
    shown = {}
    for column in dict.fromkeys((study.analysis.response, "test_loss")):
        value = values.get(column)
        if value is not None:
            shown[column] = float(value)
    return shown


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
            with contextlib.suppress(Exception):  # a missed beat is retried next interval
                self._queue.heartbeat(self._claim, dict(self.progress))

    def stop(self) -> None:
        self._stopped.set()
        self._thread.join()


class _ForwardHandler(logging.Handler):
    """Warnings of a worker (storage retries) shown by the coordinator, as notes."""

    def __init__(self, name: str, report: Reporter) -> None:
        super().__init__(logging.WARNING)
        self._name = name
        self._report = report

    def emit(self, record: logging.LogRecord) -> None:
        self._report(Event("note", self._name, message=scrub(record.getMessage())))


def _forward_warnings(name: str, report: Reporter) -> None:
    logger = logging.getLogger("ablate")
    logger.setLevel(logging.WARNING)
    logger.addHandler(_ForwardHandler(name, report))
    logger.propagate = False


_stop_requested: list[float] = []  # when this worker was first asked to stop (monotonic)
_handing_back: list[bool] = []  # non-empty while a stopping worker hands its trial back
_GRACE = 20.0  # seconds a stopping worker gets to hand its trial back before it is ended


def _interrupt(signum: int, frame: Any) -> None:
    """SIGTERM or SIGINT in a worker: unwind (handing the trial back) and exit.

    The KeyboardInterrupt can land where Python swallows exceptions (a garbage-collector
    callback, a finalizer); the watchdog then ends the worker after a grace period, so that a
    stop request is never lost.
    """
    if not _stop_requested:
        _stop_requested.append(time.monotonic())
    if _handing_back:  # already stopping: the signal the kernel, the watchdog or the
        return  # coordinator repeats would cut short the trial's hand-back (failed, not requeued)
    raise KeyboardInterrupt


def _die_with_parent(parent: int) -> None:
    """Make sure a worker never outlives its coordinator, even one killed with SIGKILL.

    On Linux the kernel sends SIGTERM when the parent dies (PR_SET_PDEATHSIG); elsewhere, or if
    that signal is lost, a watchdog thread notices that the parent changed. A worker asked to
    stop that has not exited within the grace period is ended by the watchdog.
    """
    with contextlib.suppress(OSError, AttributeError):
        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(1, signal.SIGTERM)  # 1 = PR_SET_PDEATHSIG
    if os.getppid() != parent:  # the parent died before prctl took effect
        os._exit(_EXIT_INTERRUPTED)

    def watch() -> None:
        orphaned = False
        while True:
            time.sleep(1.0)
            if os.getppid() != parent and not orphaned:
                orphaned = True
                os.kill(os.getpid(), signal.SIGTERM)
            if _stop_requested and time.monotonic() - _stop_requested[0] > _GRACE:
                os._exit(_EXIT_INTERRUPTED)  # its trial is requeued as lost

    threading.Thread(target=watch, name="ablate-watchdog", daemon=True).start()


def _redirect_output(path: Path) -> None:
    """Send this process's stdout and stderr (also the C++ libraries') to a log file."""
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)
    sys.stdout.flush()
    sys.stderr.flush()
    os.dup2(fd, 1)
    os.dup2(fd, 2)
    os.close(fd)
