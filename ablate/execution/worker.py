"""A worker process: claim a trial, train it with heartbeats, record it; again, until none is left.

Workers talk to their coordinator through one pipe each (:class:`Event` objects: claimed,
progress, epoch, finished, notes), never a shared lock, so that a worker killed at any
moment cannot block the others; they talk to each other only through the storage, which is
what lets workers on other machines join the same study. A worker asked to stop hands its
trial back to the queue (:mod:`~ablate.execution.signals`).
"""

from __future__ import annotations

import contextlib
import logging
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

from ablate.errors import AblateError, disk_full
from ablate.execution.planning import WorkerSlot
from ablate.execution.progress import Event
from ablate.execution.signals import EXIT_INTERRUPTED, StopRequests, die_with_parent
from ablate.execution.tensorboard import EventFiles
from ablate.queue.claims import STALLED, TIMED_OUT, Claim, TrialQueue, opened_queue
from ablate.queue.spool import spool_result
from ablate.queue.workers import WorkerIdentity
from ablate.results.files import SPOOL_DIR
from ablate.secrets import scrub
from ablate.study.settings import Study
from ablate.training import backend
from ablate.training.base import Trainer
from ablate.training.records import EpochRecord, TrialResult
from ablate.training.trainers import trainer_for

Reporter = Callable[[Event], None]

#: A worker's exit codes besides 0 (the queue is empty) and EXIT_INTERRUPTED.
EXIT_USER_ERROR = 2
EXIT_BUG = 1


def worker_main(
    study: Study,
    storage_url: str | None,
    slot: WorkerSlot,
    conn: multiprocessing.connection.Connection,
    parent: int,
    logs: Path,
) -> None:
    """Entry point of a worker process (spawned): set up the backend, then :func:`work`."""
    stops = StopRequests()
    die_with_parent(parent, stops)
    stops.install()
    _redirect_output(logs / f"{slot.name}.log")
    sending = threading.Lock()  # the main thread, heartbeats and the pulse all send

    def report(event: Event) -> None:
        with sending, contextlib.suppress(OSError):  # the coordinator is gone: carry on
            conn.send(event)

    Pulse(slot.name, report, study.run.heartbeat_seconds).start()
    backend.configure_process(threads=slot.threads, gpu=slot.gpu)
    _forward_warnings(slot.name, report)
    code = 0
    try:
        with opened_queue(study, storage_url, create=False) as queue:
            identity = WorkerIdentity(slot.name, gpu=slot.gpu or None)
            work(study, queue, identity, report, stops)
    except KeyboardInterrupt:
        code = EXIT_INTERRUPTED
    except AblateError as err:
        report(Event("fatal", slot.name, message=err.raw))
        code = EXIT_USER_ERROR
    except Exception as err:
        code = _unexpected(err, slot.name, logs, report)
    finally:
        with contextlib.suppress(OSError):  # a full disk takes the log file's last words
            sys.stdout.flush()
            sys.stderr.flush()
        conn.close()
    os._exit(code)  # skip interpreter teardown: TensorFlow's can hang or print


def _unexpected(err: Exception, name: str, logs: Path, report: Reporter) -> int:
    """Report an error the worker did not expect; a full disk is the user's to fix (its
    message says how), anything else a bug, with its traceback in the worker's log."""
    full = disk_full(err)
    if full is not None:  # the log file would not take a traceback anyway
        report(Event("fatal", name, message=full.raw))
        return EXIT_USER_ERROR
    with contextlib.suppress(OSError):
        sys.stderr.write(traceback.format_exc())  # into the worker's log file
    first = scrub(str(err).splitlines()[0] if str(err) else "")
    report(Event("fatal", name, message=f"worker {name} stopped on an unexpected error "
                 f"({type(err).__name__}: {first}); its traceback is in "
                 f"{logs / (name + '.log')}"))  # fmt: skip
    return EXIT_BUG


class Pulse:
    """A daemon thread that tells the coordinator, every interval, that this worker process
    runs: a process that is stopped (SIGSTOP) or wedged falls silent, and the coordinator ends
    it. Apart from the heartbeat, which may wait on the storage."""

    def __init__(self, name: str, report: Reporter, interval: float) -> None:
        self._name, self._report, self._interval = name, report, interval
        self._thread = threading.Thread(target=self._run, name="ablate-pulse", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def _run(self) -> None:
        while True:
            self._report(Event("beat", self._name))
            time.sleep(self._interval)


def work(
    study: Study,
    queue: TrialQueue,
    identity: WorkerIdentity,
    report: Reporter,
    stops: StopRequests | None = None,
) -> int:
    """One worker: claim, train and record trials until none is left; returns how many.

    While trials are still running elsewhere, the worker waits instead of leaving, so that
    it can take over any of them whose worker dies.
    """

    trainer = trainer_for(study)
    trainer.prepare()  # once per worker (Keras imported, the data loaded): no trial's time
    stops = stops or StopRequests()
    trains = _Trains(study, trainer, queue, identity, report, stops)
    size = trainer.group_size()

    def claim() -> list[Claim]:
        stops.defer()  # a trial claimed now must reach _Trains.run, which hands it back
        try:
            claims = claim_fusable(queue, identity, trainer, size)
        except BaseException:
            stops.resume(act=False)
            raise
        if not claims:
            stops.resume()
        return claims

    return serve(queue, identity, report, trains.run, idle=min(study.run.heartbeat_seconds, 5.0),
                 claim=claim)  # fmt: skip


def claim_fusable(
    queue: TrialQueue, identity: WorkerIdentity, trainer: Trainer, size: int
) -> list[Claim]:
    """Up to ``size`` waiting trials that the trainer may train together (equal
    :meth:`~ablate.training.base.Trainer.group_key`: one compiled program, see
    :mod:`~ablate.training.fusion`): those that go with the first one claimed; the others
    are handed back at once."""
    if size == 1:
        return _claim_one(queue, identity)
    claims = queue.claim_group(identity, size)
    keys = [trainer.group_key(c.spec) for c in claims]
    for claim, key in zip(claims, keys, strict=True):
        if key != keys[0]:
            queue.release(claim)
    return [c for c, key in zip(claims, keys, strict=True) if key == keys[0]]


def _claim_one(queue: TrialQueue, identity: WorkerIdentity) -> list[Claim]:
    taken = queue.claim(identity)
    return [taken] if taken is not None else []


def serve(
    queue: TrialQueue,
    identity: WorkerIdentity,
    report: Reporter,
    run: Callable[[list[Claim]], None],
    idle: float,
    claim: Callable[[], list[Claim]] | None = None,
) -> int:
    """Claim trials (one at a time, or ``claim``'s groups) and ``run`` them (train and record)
    until none is left; returns how many. Trials whose worker is gone are handed back at most
    every ``idle`` seconds (they are declared lost only after seconds of silence anyway), and
    while waiting for trials running elsewhere, every ``idle`` seconds."""
    trained = 0
    next_check = 0.0
    take = claim or (lambda: _claim_one(queue, identity))
    while True:
        if time.monotonic() >= next_check:
            for taken in queue.take_back():
                report(Event("recovered", identity.name, label=taken.label,
                             message=f"{taken.outcome}: {taken.detail}"))  # fmt: skip
            next_check = time.monotonic() + idle
        claims = take()
        if not claims:
            if not queue.busy():
                return trained
            time.sleep(idle)
            next_check = 0.0
            continue
        run(claims)
        trained += len(claims)


@dataclass
class _Trains:
    """Has the study's trainer train one claimed trial (or group) after another for a worker,
    with heartbeats, and records each."""

    study: Study
    trainer: Trainer
    queue: TrialQueue
    identity: WorkerIdentity
    report: Reporter
    stops: StopRequests

    def run(self, claims: list[Claim]) -> None:
        """Train claimed trials -- one, or a fused group -- with heartbeats; record each."""
        name, epochs = self.identity.name, self.study.planned_epochs or 0
        beats: list[Heartbeat] = []
        lives: list[_Live] = []
        try:
            self.stops.resume()  # a stop asked for while claiming acts here: the trials go back
            for claim in claims:
                spec = claim.spec
                self.report(Event("claimed", name, spec.cell.label, spec.replicate, epochs=epochs))
            interval = self.study.run.heartbeat_seconds
            beats = [Heartbeat(self.queue, c, interval, epochs, self.report, name) for c in claims]
            lives = [_Live(self, c, b) for c, b in zip(claims, beats, strict=True)]
            for beat in beats:
                beat.start()
            stopping = lambda: self.stops.requested_at is not None  # noqa: E731
            results = self.trainer.train([c.spec for c in claims], lives, stopping)
        except BaseException:  # Ctrl-C or a stop signal: hand the trials back untouched
            with self.stops.handing_back():  # a second stop signal must wait for it
                for beat in beats:
                    beat.stop()
                for claim in claims:
                    self.queue.release(claim)
            raise
        finally:
            for live in lives:
                if live.events is not None:
                    live.events.close()
        for beat in beats:
            beat.stop()
        for claim, result in zip(claims, results, strict=True):
            self._record(claim, result)

    def _record(self, claim: Claim, result: TrialResult) -> None:
        spec = claim.spec
        try:
            recorded = self.queue.finish(claim, result)
        except AblateError as err:  # the storage stayed unreachable: keep the result on disk
            spool = self.study.results_dir / SPOOL_DIR
            kept = spool_result(spool, self.queue, claim, result, self.identity)
            raise AblateError(
                f"{err.raw} The result of {spec.cell.label} r{spec.replicate}, which finished "
                f"meanwhile, is kept in {kept}; the next `ablate run` records it."
            ) from None
        message = "" if recorded else "another worker had taken it over; result discarded"
        if result.error and recorded:
            message = result.error.splitlines()[0] + ("; tried again" if recorded.retried else "")
        self.report(
            Event(
                "finished", self.identity.name, spec.cell.label, spec.replicate,
                status=result.status if recorded else "taken-over",
                values=shown_values(self.study, result.values), seconds=result.seconds,
                message=message, error=result.error or "", traceback=result.traceback or "",
                key=spec.key, final=recorded is not None and not recorded.retried,
            )
        )  # fmt: skip


class _Live:
    """What a trial reports while it trains (:class:`~ablate.training.base.Live`): examples
    seen, each epoch's values (to the coordinator, the heartbeat and Optuna's intermediate
    values), the process group of a program it runs (to the coordinator)."""

    def __init__(self, trains: _Trains, claim: Claim, beat: Heartbeat) -> None:
        self._t, self._claim, self._beat = trains, claim, beat
        self._seen = 0  # training examples reported within the current epoch
        self._n_train = trains.trainer.examples_per_epoch()
        study = trains.study
        self.events = EventFiles(study, claim.spec) if study.run.tensorboard else None

    def progress(self, images: int) -> None:
        spec = self._claim.spec
        self._beat.touch()
        self._seen += images
        self._t.report(Event("progress", self._t.identity.name, spec.cell.label, spec.replicate,
                             images=images))  # fmt: skip

    def epoch(self, record: EpochRecord) -> None:
        t, spec = self._t, self._claim.spec
        shown = shown_values(t.study, record.values)
        self._beat.touch()
        self._beat.progress.update(epoch=record.epoch, values=shown)
        with contextlib.suppress(Exception):  # a live curve point is not worth a trial
            t.queue.report_epoch(self._claim, record.epoch, record.values)
        if self.events is not None:
            try:
                self.events.epoch(record)
            except OSError as err:  # nor is a TensorBoard file (a full disk, say)
                self.events = None
                t.report(Event("note", t.identity.name, message=f"{spec.cell.label}: no more "
                               f"TensorBoard events for this trial ({err})"))  # fmt: skip
        t.report(
            Event(
                "epoch", t.identity.name, spec.cell.label, spec.replicate, epoch=record.epoch,
                epochs=t.study.planned_epochs or 0, images=max(self._n_train - self._seen, 0),
                values=shown,
            )
        )  # fmt: skip
        self._seen = 0

    def process(self, pid: int | None) -> None:
        spec = self._claim.spec
        self._t.report(Event("process", self._t.identity.name, spec.cell.label, spec.replicate,
                             pid=pid or 0))  # fmt: skip


def shown_values(study: Study, values: dict[str, Any]) -> dict[str, float]:
    """The few values progress displays show: the study's response, and the test loss."""
    shown = {}
    for column in dict.fromkeys((study.analysis.response, "test_loss")):
        value = values.get(column)
        if value is not None:
            shown[column] = float(value)
    return shown


class Heartbeat:
    """A daemon thread that tells the storage, every interval, that the trial is alive, when it
    started and when it last showed progress (:meth:`touch`) -- and holds it to the policy's
    time limits: a trial past one is taken back (tried again per ``retries``) and the worker
    is stopped, as it is when the trial was taken back elsewhere. A stopped worker's trial
    training unwinds or, past its grace, the process ends (:mod:`~ablate.execution.signals`)."""

    def __init__(
        self, queue: TrialQueue, claim: Claim, interval: float, epochs: int, report: Reporter,
        worker: str,
    ) -> None:  # fmt: skip
        self.progress: dict[str, Any] = {"epoch": 0, "epochs": epochs}
        self.started = self.progressed = time.time()
        self._queue, self._claim, self._interval = queue, claim, interval
        self._report, self._worker = report, worker
        self._stopped = threading.Event()
        self._thread = threading.Thread(target=self._run, name="ablate-heartbeat", daemon=True)

    def touch(self) -> None:
        """The trial showed progress (a batch, an epoch, a report)."""
        self.progressed = time.time()

    def start(self) -> None:
        self._queue.heartbeat(self._claim, self._payload())
        self._thread.start()

    def _payload(self) -> dict[str, Any]:
        return {"started": self.started, "progressed": self.progressed, **self.progress}

    def _run(self) -> None:
        while not self._stopped.wait(self._interval):
            overdue = self._overdue(time.time())
            if overdue is not None:
                self._expire(*overdue)
                return
            try:
                alive = self._queue.heartbeat(self._claim, self._payload())
            except Exception:
                continue
            if not alive:  # taken back elsewhere: its result would be refused
                self._stop_worker(f"{self._claim.spec.cell.label} was taken back by another "
                                  "process; its training stops")  # fmt: skip
                return

    def _overdue(self, now: float) -> tuple[str, str] | None:
        policy = self._queue.policy
        if policy.trial_timeout is not None and now - self.started > policy.trial_timeout:
            return TIMED_OUT, (f"it ran {now - self.started:.0f} s, past run.trial_timeout "
                               f"({policy.trial_timeout:g} s)")  # fmt: skip
        if policy.stall_timeout is not None and now - self.progressed > policy.stall_timeout:
            return STALLED, (f"no sign of progress for {now - self.progressed:.0f} s, past "
                             f"run.stall_timeout ({policy.stall_timeout:g} s)")  # fmt: skip
        return None

    def _expire(self, outcome: str, detail: str) -> None:
        spec = self._claim.spec
        with contextlib.suppress(Exception):  # the storage away: others take it back later
            taken = self._queue.expire(self._claim, outcome, detail)
            if taken is not None:
                again = "; tried again" if taken.retried else ""
                self._report(Event("finished", self._worker, spec.cell.label, spec.replicate,
                                   status=outcome, seconds=time.time() - self.started,
                                   message=detail + again, error=detail, key=spec.key,
                                   final=not taken.retried))  # fmt: skip
        self._stop_worker(f"{spec.cell.label} {outcome}: {detail}; this worker is ended")

    def _stop_worker(self, why: str) -> None:
        self._report(Event("expired", self._worker, self._claim.spec.cell.label, message=why))
        os.kill(os.getpid(), signal.SIGTERM)  # the trial unwinds (or the process ends)

    def stop(self) -> None:
        self._stopped.set()
        if self._thread.ident is not None and self._thread is not threading.current_thread():
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


def _redirect_output(path: Path) -> None:
    """Send this process's stdout and stderr (also the C++ libraries') to a log file."""
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)
    sys.stdout.flush()
    sys.stderr.flush()
    os.dup2(fd, 1)
    os.dup2(fd, 2)
    os.close(fd)
