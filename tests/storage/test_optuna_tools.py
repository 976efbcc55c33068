"""A study ablate ran opens in Optuna as if Optuna had run it: every trial's factor levels are
its parameters, each categorical over its factor's declared levels, so Optuna's importance
evaluators (and optuna-dashboard's plots) work on it."""

from __future__ import annotations

from pathlib import Path

import pytest

from ablate.queue.claims import open_queue
from ablate.queue.workers import WorkerIdentity
from ablate.study import load_study, parse_study
from ablate.study.grid import expand_trials
from ablate.training.records import TrialResult
from tests.helpers import tiny_study_text


def _check(study_name: str, storage: object, levels: dict[str, tuple[object, ...]]) -> None:
    import optuna
    from optuna.distributions import CategoricalDistribution
    from optuna.importance import FanovaImportanceEvaluator, get_param_importances

    loaded = optuna.load_study(study_name=study_name, storage=storage)
    trials = loaded.get_trials(deepcopy=False)
    complete = [t for t in trials if t.state == optuna.trial.TrialState.COMPLETE]
    assert complete and len(complete) == len(trials)
    for trial in trials:
        assert trial.params == trial.user_attrs["levels"]
        for name, choices in levels.items():
            assert trial.distributions[name] == CategoricalDistribution(list(choices))
    evaluator = FanovaImportanceEvaluator(seed=0)
    importances = get_param_importances(loaded, evaluator=evaluator)
    assert set(importances) == set(levels)
    assert sum(importances.values()) == pytest.approx(1.0)


@pytest.mark.slow  # trains the session's tiny study (18 s): the fast part stays under 3 minutes
def test_a_trained_journal_study_opens_in_optuna_with_its_parameters(tiny_results: Path) -> None:
    from optuna.storages import JournalStorage
    from optuna.storages.journal import JournalFileBackend

    study = load_study(tiny_results)
    storage = JournalStorage(JournalFileBackend(str(tiny_results / "optuna.journal")))
    _check(study.name, storage, {f.name: f.levels for f in study.factors})


@pytest.mark.postgres
def test_a_postgresql_study_opens_in_optuna_with_its_parameters(
    tmp_path: Path, postgres_url: str
) -> None:
    study = parse_study(tiny_study_text(tmp_path / "results", replicates=3))
    queue = open_queue(study, postgres_url)
    queue.populate(expand_trials(study))  # in bulk: the database store's own statements
    me = WorkerIdentity("w1")
    while (claim := queue.claim(me)) is not None:
        levels = claim.spec.cell.as_dict()
        loss = 0.3 + 0.05 * levels["batch_norm"] + 0.01 * claim.spec.replicate
        queue.finish(claim, TrialResult(status="complete", values={"test_loss": loss}))
    queue.close()
    _check(study.name, postgres_url, {f.name: f.levels for f in study.factors})
