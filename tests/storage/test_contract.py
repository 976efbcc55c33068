"""The storage contract (:class:`ablate.storage.base.TrialStore`), one suite run on every
backend: the journal file, SQLite and PostgreSQL (where ``ABLATE_TEST_POSTGRES`` names a
server). What it tests is what the queue builds on: trials created WAITING in order with their
payloads, each claimed by exactly one caller -- threads of one process and separate processes
alike -- heartbeats and epochs while running and never after, a trial finished once, reads
that agree with Optuna's records, and what each method returns or raises."""

from __future__ import annotations

import multiprocessing
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from ablate.storage.base import NewTrial, TrialStore
from ablate.storage.opening import open_storage

BACKENDS = ["journal", "sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)]


def _new(i: int, attempt: int = 1) -> NewTrial:
    key = f"key{i:04d}"
    return NewTrial(
        user_attrs={"trial_key": key, "cell": f"cell {i % 4}", "attempt": attempt},
        params={"a": i % 2 == 0}, choices={"a": (False, True)}, key=key, cell=f"cell {i % 4}",
        attempt=attempt,
        payload={"cell": i % 4, "replicate": i // 4, "levels": [["a", i % 2 == 0]]},
    )  # fmt: skip


def _url(backend: str, root: Path, request: pytest.FixtureRequest) -> str | None:
    if backend == "journal":
        return None
    if backend == "sqlite":
        return f"sqlite:///{root / 'study.sqlite'}"
    return str(request.getfixturevalue("postgres_url"))


def _open(url: str | None, root: Path, create: bool = False) -> TrialStore:
    storage = open_storage(url, root)
    study_id = storage.study_id("contract")
    if study_id is None:
        study_id = storage.create_study("contract", maximize=False, attrs={"k": 1})
    return storage.trials(study_id)


@pytest.fixture(params=BACKENDS)
def backend(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[tuple[str | None, Path]]:
    url = _url(request.param, tmp_path, request)
    yield url, tmp_path


@pytest.fixture
def store(backend: tuple[str | None, Path]) -> Iterator[TrialStore]:
    url, root = backend
    opened = _open(url, root)
    try:
        yield opened
    finally:
        opened.close()


WORKER = {"name": "w1", "host": "h", "pid": 1}


def test_trials_are_created_waiting_in_order_with_their_payloads(store: TrialStore) -> None:
    ids = store.create([_new(i) for i in range(6)])
    assert len(ids) == len(set(ids)) == 6
    entries = sorted(store.entries(), key=lambda e: e.number)
    assert [e.number for e in entries] == list(range(6))
    assert [e.trial_id for e in entries] == ids
    assert all(e.state == "waiting" and e.attempt == 1 for e in entries)
    assert entries[5].payload == {"cell": 1, "replicate": 1, "levels": [["a", False]]}
    assert store.user_attrs(ids[2])["payload"] == entries[2].payload  # Optuna keeps it too
    trials = store.trials()
    assert [t.number for t in trials] == list(range(6)) and trials[0].state == "WAITING"


def test_claims_take_the_lowest_numbers_and_each_trial_once(store: TrialStore) -> None:
    store.create([_new(i) for i in range(5)])
    first = store.claim(WORKER, 2)
    assert [e.number for e in first] == [0, 1]
    assert all(e.state == "running" and e.worker == WORKER and e.payload for e in first)
    assert {e.trial_id for e in store.running()} == {e.trial_id for e in first}
    rest = store.claim({**WORKER, "name": "w2"}, 10)
    assert [e.number for e in rest] == [2, 3, 4]
    assert store.claim(WORKER, 1) == []  # none waits


def test_take_grants_a_waiting_trial_to_one_caller(store: TrialStore) -> None:
    store.create([_new(0)])
    entry = store.entries()[0]
    assert store.take(entry, WORKER) is True
    assert store.take(entry, {**WORKER, "name": "w2"}) is False
    assert store.claim(WORKER) == []


def test_heartbeats_and_epochs_while_running_never_after(store: TrialStore) -> None:
    (trial_id,) = store.create([_new(0)])
    (entry,) = store.claim(WORKER)
    assert store.heartbeat(trial_id, {"time": 1.0, "epoch": 1}) is True
    store.record_epoch(trial_id, 1, 0.5)
    (running,) = store.running()
    assert running.heartbeat["epoch"] == 1 and running.beat == 1.0
    assert store.finish(trial_id, True, {"result": {"status": "complete"}}, value=0.25,
                        outcome="complete", outputs=(entry.key, b"npz"))  # fmt: skip
    assert store.heartbeat(trial_id, {"time": 2.0}) is False  # finished: not its worker's
    store.record_epoch(trial_id, 2, 0.4)  # ignored, not raised
    assert store.running() == []
    assert store.outputs.keys() == {entry.key}


def test_a_trial_finishes_once(store: TrialStore) -> None:
    (trial_id,) = store.create([_new(0)])
    store.claim(WORKER)
    assert store.finish(trial_id, False, {"outcome": "lost"}, outcome="lost") is True
    late = store.finish(trial_id, True, {"result": {"status": "complete"}}, value=0.1,
                        outcome="complete")  # fmt: skip
    assert late is False  # a late result never overwrites the outcome
    (entry,) = store.entries_of(_new(0).key, confirm=True)
    assert entry.state == "fail" and entry.outcome == "lost"
    (trial,) = store.trials()
    assert trial.state == "FAIL" and "result" not in trial.user_attrs


def test_claims_from_threads_take_each_trial_once(store: TrialStore) -> None:
    store.create([_new(i) for i in range(60)])
    taken: list[int] = []
    lock = threading.Lock()
    errors: list[BaseException] = []

    def claim_all(name: str) -> None:
        try:
            while got := store.claim({**WORKER, "name": name}, 2):
                for e in got:  # a heartbeat thread writes while others claim
                    store.heartbeat(e.trial_id, {"time": 1.0})
                with lock:
                    taken.extend(e.trial_id for e in got)
        except BaseException as err:
            errors.append(err)

    threads = [threading.Thread(target=claim_all, args=(f"t{i}",)) for i in range(6)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors, errors
    assert sorted(taken) == sorted(e.trial_id for e in store.entries())  # each once


def _claim_in_process(url: str | None, root: str, name: str, out: Any) -> None:
    store = _open(url, Path(root))
    got = []
    while claimed := store.claim({**WORKER, "name": name}, 1):
        got += [e.trial_id for e in claimed]
    store.close()
    out.put(got)


def test_claims_from_processes_take_each_trial_once(
    backend: tuple[str | None, Path], store: TrialStore
) -> None:
    url, root = backend
    store.create([_new(i) for i in range(40)])
    ctx = multiprocessing.get_context("spawn")
    out = ctx.Queue()
    procs = [ctx.Process(target=_claim_in_process, args=(url, str(root), f"p{i}", out))
             for i in range(4)]  # fmt: skip
    for p in procs:
        p.start()
    got = [out.get(timeout=180) for _ in procs]
    for p in procs:
        p.join(timeout=60)
    taken = [i for part in got for i in part]
    assert sorted(taken) == sorted(e.trial_id for e in store.entries())
    assert len(taken) == len(set(taken)) == 40
    assert all(e.state == "running" for e in store.entries())


def test_reads_agree_with_optunas_records(store: TrialStore) -> None:
    ids = store.create([_new(i) for i in range(3)])
    store.claim(WORKER, 1)
    store.finish(ids[0], True, {"result": {"status": "complete"}}, value=1.0, outcome="complete")
    by_id = {t.trial_id: t for t in store.trials()}
    for e in store.entries():
        optuna_state = by_id[e.trial_id].state
        assert {"COMPLETE": "complete", "WAITING": "waiting"}.get(optuna_state, "fail") == e.state
    assert [e.trial_id for e in store.entries_of(_new(0).key, confirm=True)] == [ids[0]]
    assert store.entries_of("no-such-key") == []
