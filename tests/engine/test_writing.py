"""A database's plain-statement writes leave exactly what Optuna's own API would have written,
read back through Optuna's API: new trials and their numbers, states, times, values,
intermediate values, attributes."""

from __future__ import annotations

import math
import os
import time
from collections.abc import Iterator
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from ablate.engine.outputs import SqlOutputs
from ablate.engine.writing import ApiWriter, NewTrial, SqlWriter

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


def _storage_and_trials(url: str, n: int) -> tuple[Any, int, list[int]]:
    import optuna
    from optuna.trial import TrialState, create_trial

    storage = optuna.storages.RDBStorage(url)
    study_id = storage.create_new_study([optuna.study.StudyDirection.MINIMIZE], "s")
    template = create_trial(state=TrialState.WAITING, user_attrs={"trial_key": "k"})
    return storage, study_id, [storage.create_new_trial(study_id, template) for _ in range(n)]


def _same_changes(url: str) -> None:
    """The same changes through both writers, on trials side by side, read back alike."""
    from optuna.trial import TrialState

    storage, study_id, (a, b, c) = _storage_and_trials(url, 3)
    outputs = SqlOutputs(storage.engine, study_id)
    sql = SqlWriter(storage.engine, outputs)
    api = ApiWriter(storage, outputs)
    before = datetime.now() - timedelta(seconds=1)
    for writer, trial_id in ((sql, a), (api, b)):
        assert writer.start(trial_id)
        assert not writer.start(trial_id)  # running already: one start only
        for step, value in enumerate([0.5, float("nan"), float("inf"), 0.25, 0.125]):
            writer.intermediate(trial_id, step, value)
        writer.intermediate(trial_id, 4, 0.1)  # an epoch reported again replaces its value
        assert writer.finish(trial_id, True, {"result": RESULT, "n": 3}, value=0.1,
                             outcome="complete", outputs=(f"key{trial_id}", b"npz"))  # fmt: skip
        assert not writer.finish(trial_id, False, {"result": {}}, outcome="failed")
        writer.intermediate(trial_id, 9, 1.0)  # finished: ignored
    assert sql.finish(c, False, {"outcome": "duplicate"}, outcome="duplicate")  # from WAITING
    after = datetime.now() + timedelta(seconds=1)

    mine, theirs = storage.get_trial(a), storage.get_trial(b)
    assert mine.state == theirs.state == TrialState.COMPLETE
    assert mine.values == theirs.values == [0.1]
    assert mine.user_attrs == theirs.user_attrs == {"trial_key": "k", "result": RESULT, "n": 3}
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
    assert outputs.keys() == {f"key{a}", f"key{b}"}


def test_sqlite_writes_read_back_as_optunas_own(tmp_path: Path, new_york: None) -> None:
    _same_changes(f"sqlite:///{tmp_path / 'optuna.db'}")


@pytest.mark.postgres
def test_postgresql_writes_read_back_as_optunas_own(postgres_url: str, new_york: None) -> None:
    _same_changes(postgres_url)


def test_a_finish_that_fails_leaves_nothing_behind(tmp_path: Path) -> None:
    """A finish is one transaction: if any part fails, neither the state, the result nor the
    outputs are recorded, and the trial can still be finished."""
    from optuna.trial import TrialState

    storage, study_id, (trial_id,) = _storage_and_trials(f"sqlite:///{tmp_path / 'o.db'}", 1)
    outputs = SqlOutputs(storage.engine, study_id)
    writer = SqlWriter(storage.engine, outputs)
    assert writer.start(trial_id)
    with pytest.raises(TypeError):  # a result that is not JSON fails after the state change
        writer.finish(trial_id, True, {"result": object()}, value=1.0, outcome="complete",
                      outputs=("k", b"npz"))  # fmt: skip
    trial = storage.get_trial(trial_id)
    assert trial.state == TrialState.RUNNING and "result" not in trial.user_attrs
    assert outputs.keys() == set()
    assert writer.finish(trial_id, True, {"result": RESULT}, value=1.0, outcome="complete")
    assert storage.get_trial(trial_id).state == TrialState.COMPLETE


def _same_creation(url: str) -> None:
    """Trials created in bulk read back as those Optuna creates one by one, numbered on."""
    import sqlalchemy as sa
    from optuna.trial import TrialState

    from ablate.engine.tables import TRIALS

    storage, study_id, _ = _storage_and_trials(url, 0)
    outputs = SqlOutputs(storage.engine, study_id)
    sql, api = SqlWriter(storage.engine, outputs), ApiWriter(storage, outputs)
    new = [
        NewTrial({"trial_key": f"k{i}", "levels": {"a": i}}, {"fixed_params": {"a": i}},
                 f"k{i}", f"a={i}", 1)
        for i in range(1203)
    ]  # fmt: skip
    ids = api.create(study_id, new[:2]) + sql.create(study_id, new[2:])
    trials = storage.get_all_trials(study_id)
    assert [t._trial_id for t in trials] == ids and [t.number for t in trials] == list(range(1203))
    for trial, made in zip(trials, new, strict=True):
        assert trial.state == TrialState.WAITING and trial.datetime_start is None
        assert trial.user_attrs == made.user_attrs and trial.system_attrs == made.system_attrs
        assert trial.params == {} and trial.values is None
    with storage.engine.connect() as conn:
        rows = conn.execute(sa.select(TRIALS.c.trial_id, TRIALS.c.number, TRIALS.c.trial_key,
                                      TRIALS.c.state).order_by(TRIALS.c.number)).all()  # fmt: skip
    assert rows == [(i, n + 2, f"k{n + 2}", "waiting") for n, i in enumerate(ids[2:])]
    api.create(study_id, new[:1])  # and Optuna numbers on after them
    assert storage.get_all_trials(study_id)[-1].number == 1203


def test_sqlite_bulk_creation_reads_back_as_optunas_own(tmp_path: Path) -> None:
    _same_creation(f"sqlite:///{tmp_path / 'optuna.db'}")


@pytest.mark.postgres
def test_postgresql_bulk_creation_reads_back_as_optunas_own(postgres_url: str) -> None:
    _same_creation(postgres_url)


def test_bulk_creation_without_returning_numbers_the_same(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A database that cannot return the ids of many inserted rows (MySQL) gets them one by
    one: the same trials, numbers and rows (played on SQLite by turning the ability off)."""
    from sqlalchemy.dialects.sqlite.base import SQLiteDialect

    monkeypatch.setattr(SQLiteDialect, "insert_executemany_returning_sort_by_parameter_order",
                        False)  # fmt: skip
    _same_creation(f"sqlite:///{tmp_path / 'optuna.db'}")
