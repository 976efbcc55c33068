"""A database store's plain-statement writes leave exactly what Optuna's own API would have
written, read back through Optuna's API: new trials and their numbers, parameters, states,
times, values, intermediate values, attributes."""

from __future__ import annotations

import math
import os
import time
from collections.abc import Iterator
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from ablate.storage.base import NewTrial
from ablate.storage.sql import SqlStore

RESULT = {"status": "complete", "values": {"test_loss": 0.25}, "history": [{"epoch": 1}]}


@pytest.fixture
def new_york() -> Iterator[None]:
    """A local time zone that is not UTC, so that a time stored in the wrong zone shows."""
    old = os.environ.get("TZ")
    os.environ["TZ"] = "America/New_York"
    time.tzset()
    try:
        yield
    finally:
        if old is None:
            os.environ.pop("TZ")
        else:
            os.environ["TZ"] = old
        time.tzset()


def _store(url: str, n: int) -> tuple[Any, SqlStore, int, list[int]]:
    """Optuna's storage at ``url``, ablate's store of a study in it, and ``n`` waiting trials
    of that study created through Optuna's API."""
    import optuna
    from optuna.trial import TrialState, create_trial

    storage = optuna.storages.RDBStorage(url)
    study_id = storage.create_new_study([optuna.study.StudyDirection.MINIMIZE], "s")
    ids = [
        storage.create_new_trial(study_id, create_trial(state=TrialState.WAITING,
                                                        user_attrs={"trial_key": f"k{i}"}))
        for i in range(n)
    ]  # fmt: skip
    return storage, SqlStore(storage, study_id), study_id, ids


def _through_optuna(storage: Any, trial_id: int) -> None:
    """What the store does to a trial, done through Optuna's own API."""
    from optuna.trial import TrialState

    assert storage.set_trial_state_values(trial_id, TrialState.RUNNING)
    for step, value in enumerate([0.5, float("nan"), float("inf"), 0.25, 0.125]):
        storage.set_trial_intermediate_value(trial_id, step, value)
    storage.set_trial_intermediate_value(trial_id, 4, 0.1)
    for name, value in {"result": RESULT, "n": 3}.items():
        storage.set_trial_user_attr(trial_id, name, value)
    storage.set_trial_state_values(trial_id, TrialState.COMPLETE, [0.1])


def _same_changes(url: str) -> None:
    """The same changes through the store and through Optuna, on trials side by side."""
    from optuna.trial import TrialState

    storage, store, _, (a, b, c) = _store(url, 3)
    before = datetime.now() - timedelta(seconds=1)
    (claimed,) = store.claim({"name": "w1"}, 1)  # the lowest waiting trial
    assert claimed.trial_id == a and not store.take(claimed, {"name": "w2"})  # one start only
    for step, value in enumerate([0.5, float("nan"), float("inf"), 0.25, 0.125]):
        store.record_epoch(a, step, value)
    store.record_epoch(a, 4, 0.1)  # an epoch reported again replaces its value
    assert store.finish(a, True, {"result": RESULT, "n": 3}, value=0.1, outcome="complete",
                        outputs=(f"key{a}", b"npz"))  # fmt: skip
    assert not store.finish(a, False, {"result": {}}, outcome="failed")
    store.record_epoch(a, 9, 1.0)  # finished: ignored
    _through_optuna(storage, b)
    assert store.finish(c, False, {"outcome": "duplicate"}, outcome="duplicate")  # from WAITING
    after = datetime.now() + timedelta(seconds=1)

    mine, theirs = storage.get_trial(a), storage.get_trial(b)
    assert mine.state == theirs.state == TrialState.COMPLETE
    assert mine.values == theirs.values == [0.1]
    assert mine.user_attrs == {"trial_key": "k0", "result": RESULT, "n": 3}
    assert theirs.user_attrs == {"trial_key": "k1", "result": RESULT, "n": 3}
    assert set(mine.intermediate_values) == set(theirs.intermediate_values) == {0, 1, 2, 3, 4}
    for step, value in theirs.intermediate_values.items():
        other = mine.intermediate_values[step]
        assert (math.isnan(value) and math.isnan(other)) or value == other
    assert mine.intermediate_values[4] == 0.1
    for trial in (mine, theirs):  # local times, as Optuna reads them, around now
        assert before <= trial.datetime_start <= trial.datetime_complete <= after
    dropped = storage.get_trial(c)
    assert dropped.state == TrialState.FAIL and dropped.user_attrs["outcome"] == "duplicate"
    assert dropped.datetime_start is None and dropped.values is None
    assert store.outputs.keys() == {f"key{a}"}
    store.close()


def test_sqlite_writes_read_back_as_optunas_own(tmp_path: Path, new_york: None) -> None:
    _same_changes(f"sqlite:///{tmp_path / 'optuna.db'}")


@pytest.mark.postgres
def test_postgresql_writes_read_back_as_optunas_own(postgres_url: str, new_york: None) -> None:
    _same_changes(postgres_url)


def test_a_finish_that_fails_leaves_nothing_behind(tmp_path: Path) -> None:
    """A finish is one transaction: if any part fails, neither the state, the result nor the
    outputs are recorded, and the trial can still be finished."""
    from optuna.trial import TrialState

    storage, store, _, (trial_id,) = _store(f"sqlite:///{tmp_path / 'o.db'}", 1)
    assert store.claim({"name": "w1"}, 1)
    with pytest.raises(TypeError):  # a result that is not JSON fails after the state change
        store.finish(trial_id, True, {"result": object()}, value=1.0, outcome="complete",
                     outputs=("k", b"npz"))  # fmt: skip
    trial = storage.get_trial(trial_id)
    assert trial.state == TrialState.RUNNING and "result" not in trial.user_attrs
    assert store.outputs.keys() == set()
    assert store.finish(trial_id, True, {"result": RESULT}, value=1.0, outcome="complete")
    assert storage.get_trial(trial_id).state == TrialState.COMPLETE
    store.close()


def _same_creation(url: str) -> None:
    """Trials created in bulk read back as those Optuna creates one by one, numbered on, with
    their parameters (each categorical over its factor's levels)."""
    import sqlalchemy as sa
    from optuna.distributions import CategoricalDistribution
    from optuna.trial import TrialState, create_trial

    from ablate.storage.sql_schema import TRIALS

    storage, store, study_id, _ = _store(url, 0)
    choices = {"a": tuple(range(1203)), "b": (False, True)}

    def template(i: int) -> Any:
        return create_trial(state=TrialState.WAITING, user_attrs={"trial_key": f"k{i}"},
                            params={"a": i, "b": i % 2 == 1},
                            distributions={k: CategoricalDistribution(v)
                                           for k, v in choices.items()})  # fmt: skip

    new = [NewTrial({"trial_key": f"k{i}"}, {"a": i, "b": i % 2 == 1}, choices, f"k{i}",
                    f"a={i}", 1) for i in range(2, 1203)]  # fmt: skip
    ids = [storage.create_new_trial(study_id, template(i)) for i in range(2)] + store.create(new)
    trials = storage.get_all_trials(study_id)
    assert [t.number for t in trials] == list(range(1203))
    for i, trial in enumerate(trials):
        assert trial.state == TrialState.WAITING and trial.datetime_start is None
        assert trial.user_attrs == {"trial_key": f"k{i}"} and trial.values is None
        assert trial.params == {"a": i, "b": i % 2 == 1}
        assert trial.distributions["a"] == CategoricalDistribution(choices["a"])
    engine = sa.create_engine(url)
    with engine.connect() as conn:  # the queue's rows: the bulk trials' (Optuna's have none)
        rows = conn.execute(sa.select(TRIALS.c.trial_id, TRIALS.c.number, TRIALS.c.trial_key,
                                      TRIALS.c.state).order_by(TRIALS.c.number)).all()  # fmt: skip
    engine.dispose()
    assert [tuple(r) for r in rows] == [
        (i, n + 2, f"k{n + 2}", "waiting") for n, i in enumerate(ids[2:])
    ]
    storage.create_new_trial(study_id, template(0))  # and Optuna numbers on after them
    assert storage.get_all_trials(study_id)[-1].number == 1203
    store.close()


@pytest.mark.slow  # moved out of the fast suite (3-minute budget); .ci/run runs it
def test_sqlite_bulk_creation_reads_back_as_optunas_own(tmp_path: Path) -> None:
    _same_creation(f"sqlite:///{tmp_path / 'optuna.db'}")


@pytest.mark.postgres
@pytest.mark.slow  # moved out of the fast suite (3-minute budget); .ci/run runs it
def test_postgresql_bulk_creation_reads_back_as_optunas_own(postgres_url: str) -> None:
    _same_creation(postgres_url)


@pytest.mark.slow  # moved out of the fast suite (3-minute budget); .ci/run runs it
def test_bulk_creation_without_returning_numbers_the_same(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A database that cannot return the ids of many inserted rows (MySQL) gets them one by
    one: the same trials, numbers and rows (played on SQLite by turning the ability off)."""
    from sqlalchemy.dialects.sqlite.base import SQLiteDialect

    monkeypatch.setattr(SQLiteDialect, "insert_executemany_returning_sort_by_parameter_order",
                        False)  # fmt: skip
    _same_creation(f"sqlite:///{tmp_path / 'optuna.db'}")
