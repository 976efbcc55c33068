"""The trainer seam: a user's own training function, called once per trial.

Each documented outcome is produced by a real function (tests/user_trainers.py): a response
returned as declared (complete), an exception (failed, with the function's traceback), NaN
(diverged), a declared response missing or an undeclared one returned (failed, naming the
key), a stop request during ``report`` (the trial handed back), and a bad ``trainer:`` that
exits 2 before anything trains. The study then runs end to end in real worker processes and
its effects come out as the function's known truth.
"""

from __future__ import annotations

import io
import random
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from ablate.cli import main
from ablate.execution.runner import run_study
from ablate.results import load_results
from ablate.stats.analysis import analyze
from ablate.study import parse_study
from ablate.study.grid import expand_trials
from ablate.training.user import TrialStopped, train_with_function
from tests.user_trainers import TRUTH

STUDY = """
name: {name}
trainer: {{function: "tests.user_trainers:{function}", options: {options}}}
responses:
  score: {{goal: max, low: -1, high: 2, baseline: 0.0, baseline_what: a score of nothing}}
  loss: min
factors: {{wide: [false, true], deep: [false, true]}}
replicates: {replicates}
results: {results}
run: {{heartbeat_seconds: 0.5, retries: 0}}
"""


def _study(tmp_path: Path, function: str, options: str = "{}", replicates: int = 1,
           name: str = "fn") -> object:  # fmt: skip
    text = STUDY.format(name=name, function=function, options=options, replicates=replicates,
                        results=tmp_path)  # fmt: skip
    return parse_study(text)


def _first(study: object) -> object:
    return next(iter(expand_trials(study)))


def test_a_function_that_returns_its_responses_completes_with_its_epochs(tmp_path: Path) -> None:
    study = _study(tmp_path, "noisy")
    seen = []
    result = train_with_function(study, _first(study), on_epoch=seen.append)
    assert result.status == "complete"
    assert set(result.values) == {"score", "loss"}
    assert [e.epoch for e in result.history] == [1, 2, 3] == [e.epoch for e in seen]
    assert result.history[1].values == {"train_loss": 0.5}
    arrays = np.load(io.BytesIO(result.outputs))
    assert arrays["weights"].tolist() == [768.0] * 3  # the trial's seed, passed by name


def test_the_seed_sets_pythons_and_numpys_generators(tmp_path: Path) -> None:
    study = _study(tmp_path, "seeds")
    result = train_with_function(study, _first(study))
    random.seed(768)
    np.random.seed(768)
    assert result.values == {"score": random.random(), "loss": np.random.random()}


@pytest.mark.parametrize(
    ("function", "status", "words"),
    [
        ("raises", "failed", "ValueError: no data for wide=False"),
        ("nan", "diverged", "non-finite score"),
        ("omits", "failed", "returned no loss, which responses: declares"),
        ("extra", "failed", "returned accuracy, which responses: does not declare"),
        ("not_a_mapping", "failed", "returned float, not a mapping"),
    ],
)
def test_each_way_a_function_fails_gets_its_documented_outcome(
    tmp_path: Path, function: str, status: str, words: str
) -> None:
    study = _study(tmp_path, function)
    result = train_with_function(study, _first(study))
    assert result.status == status
    assert words in result.error
    if function == "raises":  # the user's own frames, not ablate's
        assert "user_trainers.py" in result.traceback and "ablate/" not in result.traceback
        assert not result.transient  # a deterministic failure is not retried


def test_a_file_returned_is_kept_as_an_output(tmp_path: Path) -> None:
    study = _study(tmp_path, "keeps_a_file", options=f"{{tmp: '{tmp_path}'}}")
    result = train_with_function(study, _first(study))
    assert result.status == "complete"
    assert np.load(io.BytesIO(result.outputs))["notes"].tobytes() == b"wide=False"


def test_report_hands_the_trial_back_when_the_worker_is_stopping(tmp_path: Path) -> None:
    study = _study(tmp_path, "noisy")
    with pytest.raises(TrialStopped):  # a KeyboardInterrupt: the worker releases the trial
        train_with_function(study, _first(study), stop_requested=lambda: True)
    assert issubclass(TrialStopped, KeyboardInterrupt)


@pytest.mark.parametrize(
    ("function", "words"),
    [
        ("noisi", "has no attribute noisi (did you mean tests.user_trainers:noisy?)"),
        ("narrow", "does not take the keyword argument 'deep' (a factor)"),
    ],
)
def test_a_bad_trainer_exits_2_before_anything_trains(
    tmp_path: Path, function: str, words: str, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / "study.yaml"
    path.write_text(STUDY.format(name="bad", function=function, options="{}", replicates=1,
                                 results=tmp_path))  # fmt: skip
    assert main(["run", str(path)]) == 2
    err = capsys.readouterr().err
    assert err.startswith("ablate: error: ") and words in err and "Traceback" not in err
    assert not (tmp_path / "bad" / "trials.parquet").exists()


@pytest.mark.slow  # worker processes (4 s): the fast part stays under 3 minutes
def test_a_study_of_a_function_runs_in_workers_and_finds_its_known_effects(
    tmp_path: Path,
) -> None:
    study = _study(tmp_path, "noisy", replicates=4, name="known")
    summary = run_study(study, workers=2, live=False)
    assert (summary.complete, summary.total) == (16, 16)
    results = load_results(summary.directory)
    trials = results.trials
    assert {"score", "loss"} <= set(trials.columns) and "train_loss" not in trials.columns
    epochs = pd.read_parquet(summary.directory / "epochs.parquet")
    assert len(epochs) == 16 * 3 and epochs["train_loss"].notna().all()
    a = analyze(results, importance=False)
    assert a.response == "score"
    effects = a.effects.set_index("factor")
    for name, truth in TRUTH.items():
        assert effects.loc[name, "ci_low"] < truth < effects.loc[name, "ci_high"]
    assert a.learned is not None and a.learned.not_learned == 0


def test_names_of_ablates_own_columns_are_refused_for_factors_and_responses(
    tmp_path: Path,
) -> None:
    from ablate.errors import StudyFileError
    from ablate.results.export import EPOCH_TIMES, PROVENANCE
    from ablate.study.reading import RESERVED_NAMES

    fixed = {"trial_key", "cell", "cell_index", "replicate", "seed", "status"}
    assert fixed | set(PROVENANCE) | set(EPOCH_TIMES) <= RESERVED_NAMES
    text = STUDY.format(name="r", function="noisy", options="{}", replicates=1,
                        results=tmp_path)  # fmt: skip
    with pytest.raises(StudyFileError, match="'residual' is a name ablate's own tables use"):
        parse_study(text.replace("wide: [false, true]", "residual: [false, true]"))
    with pytest.raises(StudyFileError, match="'seconds' is a name ablate's own tables use"):
        parse_study(text.replace("  loss: min", "  seconds: min"))
