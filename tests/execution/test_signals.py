"""A worker asked to stop at any moment hands its trial back: never a trial left RUNNING because
the request came while the storage was marking it claimed (seen in .ci/run as a trial the
coordinator then had to recover as lost)."""

from __future__ import annotations

import os
import signal
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from ablate.execution.signals import StopRequests
from ablate.execution.worker import work
from ablate.queue.claims import open_queue
from ablate.queue.workers import WorkerIdentity
from ablate.study import parse_study
from ablate.study.grid import expand_trials

STUDY = """
name: stops
trainer: {{function: "tests.user_trainers:seeds"}}
responses: {{score: max, loss: min}}
factors: {{wide: [false, true], deep: [false, true]}}
results: {results}
run: {{heartbeat_seconds: 0.5, retries: 0}}
"""


@pytest.fixture
def stops() -> Iterator[StopRequests]:
    """A StopRequests installed as this process's SIGTERM/SIGINT handler, then uninstalled."""
    before = signal.getsignal(signal.SIGTERM), signal.getsignal(signal.SIGINT)
    requests = StopRequests()
    requests.install()
    yield requests
    signal.signal(signal.SIGTERM, before[0])
    signal.signal(signal.SIGINT, before[1])


def test_a_deferred_stop_waits_and_acts_on_resume(stops: StopRequests) -> None:
    stops.defer()
    os.kill(os.getpid(), signal.SIGTERM)  # handled at once, in this (the main) thread
    assert stops.requested_at is not None  # noted, not acted on
    with pytest.raises(KeyboardInterrupt):
        stops.resume()
    stops.defer()
    stops.resume(act=False)  # unwinding already: the request is not raised a second time
    with pytest.raises(KeyboardInterrupt):  # not deferred: the request acts at once
        os.kill(os.getpid(), signal.SIGTERM)
        time.sleep(1.0)  # (the handler runs as soon as the signal arrives)


def test_a_stop_that_comes_while_a_trial_is_claimed_hands_it_back(
    tmp_path: Path, stops: StopRequests
) -> None:
    """The request is already there when the claim returns (as when SIGTERM lands inside the
    storage's claim): the worker trains nothing, and the trial is back in the queue."""
    study = parse_study(STUDY.format(results=tmp_path))
    queue = open_queue(study, None)
    queue.populate(expand_trials(study))
    stops.defer()  # as work() defers while it claims ...
    os.kill(os.getpid(), signal.SIGTERM)  # ... and the request lands meanwhile
    events: list[str] = []
    with pytest.raises(KeyboardInterrupt):
        work(study, queue, WorkerIdentity("w1"), lambda e: events.append(e.kind), stops)
    entries = queue.store.entries()
    assert not [e for e in entries if e.state == "running"]
    started = [e for e in entries if e.state != "waiting"]
    assert [(e.state, e.outcome) for e in started] == [("fail", "interrupted")]
    assert queue.summary().waiting == 4 and queue.summary().complete == 0
    assert "finished" not in events
