"""Effects over training time against OLS fitted epoch by epoch with statsmodels directly.

- A 2x3 grid with three replicates and three epochs, effects that change with the epoch plus
  noise: every epoch's effects, intervals and p values equal statsmodels' treatment-coded OLS
  (Tukey's interval, from scipy's studentized range, for the three-level factor), the last
  epoch equals ``analyze`` of the final values, and the change over the last step equals OLS
  on each trial's difference.
- A grid built so that the answer is known: an effect that flips sign at epoch 2 and stays,
  one that still grows at the end, one that is never there.
- What is missing is said, not raised: no epochs table, a response no epoch records, a single
  epoch; an epoch with too few trials is skipped with analyze's reason.
- The chart draws and saves a PNG; a real study run by the command trainer, end to end.
"""

from __future__ import annotations

import itertools
import math
import os
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import statsmodels.formula.api as smf
from scipy import stats

from ablate.results import Results, load_results
from ablate.stats.analysis import analyze
from ablate.stats.options import Options
from ablate.stats.over_epochs import OverEpochs, effects_over_epochs
from ablate.views.epochs_chart import effects_over_epochs_chart
from tests.helpers import ROOT, command_study_text, function_study_text

OPTIONS = Options(factors=("a", "b"), response="test_loss", importance=False)
LEVELS_B = ("x", "y", "z")
EPOCHS = (1, 2, 3)


def _grid(value: Callable[[bool, str, int, int], float], replicates: int = 3) -> Results:
    """A bare 2x3 table (a: False/True, b: x/y/z) whose epochs table holds ``value(a, b,
    replicate, epoch)`` at every epoch, and whose trials table holds the last epoch's."""
    trials, epochs = [], []
    cells = itertools.product(range(replicates), (False, True), LEVELS_B)
    for i, (r, a, b) in enumerate(cells):
        key = f"k{i:02d}"
        for e in EPOCHS:
            epochs.append({"trial_key": key, "replicate": r, "epoch": e,
                           "test_loss": value(a, b, r, e)})  # fmt: skip
        trials.append({"trial_key": key, "replicate": r, "status": "complete", "a": a, "b": b,
                       "test_loss": value(a, b, r, EPOCHS[-1])})  # fmt: skip
    return Results(pd.DataFrame(trials), pd.DataFrame(epochs), None, Path("table.parquet"))


@pytest.fixture(scope="module")
def noisy() -> Results:
    """Effects that change over the epochs (a: 0.3 − 0.1·epoch; y: 0.05·epoch; z: −0.2 +
    0.02·epoch²) plus independent noise per trial and epoch."""
    rng = np.random.default_rng(7)
    noise = {(a, b, r, e): rng.normal(0, 0.02) for a in (False, True) for b in LEVELS_B
             for r in range(3) for e in EPOCHS}  # fmt: skip
    shift = {"x": lambda e: 0.0, "y": lambda e: 0.05 * e, "z": lambda e: -0.2 + 0.02 * e * e}
    return _grid(lambda a, b, r, e: 1.0 + (0.3 - 0.1 * e) * a + shift[b](e) + noise[a, b, r, e])


def _ols(results: Results, y: pd.Series) -> dict[tuple[str, str], dict[str, float]]:
    """statsmodels' OLS of ``y`` (by trial key) on the factors, treatment-coded: a's effect
    with its t interval, each level of b against x with Tukey's simultaneous interval."""
    data = results.trials[["trial_key", "a", "b"]].assign(y=results.trials["trial_key"].map(y))
    data = data.dropna()
    fit = smf.ols("y ~ C(a) + C(b)", data=data).fit()
    ci = fit.conf_int(0.05)
    out = {("a", "true"): {"effect": fit.params["C(a)[T.True]"], "p": fit.pvalues["C(a)[T.True]"],
                           "ci_low": ci.loc["C(a)[T.True]", 0],
                           "ci_high": ci.loc["C(a)[T.True]", 1]}}  # fmt: skip
    q = stats.studentized_range.ppf(0.95, 3, fit.df_resid)
    for level in ("y", "z"):
        name = f"C(b)[T.{level}]"
        est, se = fit.params[name], fit.bse[name]
        half = q / math.sqrt(2) * se
        p = stats.studentized_range.sf(abs(est / se) * math.sqrt(2), 3, fit.df_resid)
        out["b", level] = {"effect": est, "p": p, "ci_low": est - half, "ci_high": est + half}
    return out


def _values(results: Results, epoch: int) -> pd.Series:
    e = results.epochs
    assert e is not None
    return e[e["epoch"] == epoch].set_index("trial_key")["test_loss"]


def _row(over: OverEpochs, epoch: int, factor: str, high: str) -> pd.Series:
    t = over.table
    return t[(t["epoch"] == epoch) & (t["factor"] == factor) & (t["high"] == high)].iloc[0]


@pytest.fixture(scope="module")
def noisy_over(noisy: Results) -> OverEpochs:
    return effects_over_epochs(noisy, OPTIONS)


def test_every_epoch_equals_ols_fitted_at_that_epoch(
    noisy: Results, noisy_over: OverEpochs
) -> None:
    over = noisy_over
    assert over.missing is None and over.epochs == EPOCHS and over.goal == "min"
    for epoch in EPOCHS:
        for (factor, high), want in _ols(noisy, _values(noisy, epoch)).items():
            got = _row(over, epoch, factor, high)
            assert got["low"] == ("false" if factor == "a" else "x")
            assert got["n"] == 18
            for column in ("effect", "ci_low", "ci_high", "p"):
                assert got[column] == pytest.approx(want[column], abs=1e-8), (epoch, factor)


def test_last_epoch_is_analyze_of_the_final_values(noisy: Results, noisy_over: OverEpochs) -> None:
    final = analyze(noisy, OPTIONS)
    last = noisy_over.table[noisy_over.table["epoch"] == 3]
    two = final.effects.iloc[0]
    assert tuple(last.iloc[0][["effect", "ci_low", "ci_high", "p"]]) == pytest.approx(
        (two["effect"], two["ci_low"], two["ci_high"], two["p"]), abs=1e-12
    )
    pairs = final.pairwise[final.pairwise["level_a"] == "x"]
    assert list(last["effect"].iloc[1:]) == pytest.approx(list(pairs["diff"]), abs=1e-12)
    assert list(last["ci_high"].iloc[1:]) == pytest.approx(list(pairs["ci_high"]), abs=1e-12)


def test_the_last_change_is_ols_on_each_trials_difference(
    noisy: Results, noisy_over: OverEpochs
) -> None:
    want = _ols(noisy, _values(noisy, 3) - _values(noisy, 2))
    for trend in noisy_over.effects:
        w = want[trend.factor, trend.high]
        assert trend.previous_epoch == 2 and trend.last_epoch == 3
        got = (trend.change, trend.change_ci_low, trend.change_ci_high, trend.change_p)
        assert got == pytest.approx((w["effect"], w["ci_low"], w["ci_high"], w["p"]), abs=1e-8)
        assert trend.moving == (w["ci_low"] > 0 or w["ci_high"] < 0)
        # with the same trials at both epochs, it is the difference of the two epochs' effects
        step = _row(noisy_over, 3, trend.factor, trend.high)["effect"]
        step -= _row(noisy_over, 2, trend.factor, trend.high)["effect"]
        assert trend.change == pytest.approx(step, abs=1e-10)


def _known(a: bool, b: str, r: int, e: int) -> float:
    """a: +0.5 at epoch 1, −0.5 from epoch 2 on; z − x = 0.1·epoch; y − x = 0; each cell's
    replicates sit at −0.01, 0, +0.01 around its mean times 1, −1, 2 at epochs 1, 2, 3 (so
    the cell means are exact and every trial's change between two epochs has a spread)."""
    offset = (-0.01, 0.0, 0.01)[r] * {1: 1, 2: -1, 3: 2}[e]
    return 1.0 + (0.5 if e == 1 else -0.5) * a + (0.1 * e if b == "z" else 0.0) + offset


@pytest.fixture(scope="module")
def known_over() -> OverEpochs:
    return effects_over_epochs(_grid(_known), OPTIONS)


def test_settled_from_and_the_last_change_where_the_answer_is_known(
    known_over: OverEpochs,
) -> None:
    by = {(t.factor, t.high): t for t in known_over.effects}
    flips, grows, never = by["a", "true"], by["b", "z"], by["b", "y"]
    assert _row(known_over, 1, "a", "true")["effect"] == pytest.approx(0.5)
    assert (flips.settled_from, flips.word) == (2, "helps")  # a lower loss from epoch 2 on
    assert flips.effect == pytest.approx(-0.5)
    assert flips.change == pytest.approx(0.0, abs=1e-12) and not flips.moving
    assert flips.trend is None
    assert (grows.settled_from, grows.word) == (1, "hurts")
    assert grows.change == pytest.approx(0.1) and grows.moving and grows.trend == "growing"
    assert grows.change_ci_low is not None and grows.change_ci_low > 0
    assert (never.settled_from, never.word, never.moving) == (None, None, False)


def test_a_shrinking_effect_and_a_gap_in_the_epochs() -> None:
    """z − x falls from 0.4 by 0.1 an epoch (shrinking); epoch 2, recorded by two trials only,
    is skipped with analyze's reason and breaks the run of clear epochs; the change is
    measured from epoch 1 to 3, per epoch."""

    def value(a: bool, b: str, r: int, e: int) -> float:
        return _known(a, b, r, e) + (0.5 - 0.2 * e if b == "z" else 0.0)  # z − x = 0.5 − 0.1·e

    results = _grid(value)
    assert results.epochs is not None
    epochs = results.epochs
    gap = (epochs["epoch"] == 2) & ~epochs["trial_key"].isin(["k00", "k01"])
    over = effects_over_epochs(Results(results.trials, epochs[~gap], None, results.source),
                               OPTIONS)  # fmt: skip
    assert [s.epoch for s in over.skipped] == [2] and over.skipped[0].reason
    assert over.epochs == (1, 3)
    shrinks = next(t for t in over.effects if t.high == "z")
    assert _row(over, 1, "b", "z")["clear"]  # clear at every fitted epoch, but 2 is unknown
    assert (shrinks.settled_from, shrinks.effect) == (3, pytest.approx(0.2))
    assert shrinks.previous_epoch == 1 and shrinks.change == pytest.approx(-0.1)
    assert shrinks.moving and shrinks.trend == "shrinking"


def test_final_values_other_than_the_last_epochs_are_noted(noisy: Results) -> None:
    """A trainer whose final values are not its last epoch's (the best epoch's, say): the
    course is still the epochs', and a note says the last epoch is not the final analysis."""
    trials = noisy.trials.assign(test_loss=noisy.trials["trial_key"].map(_values(noisy, 2)))
    over = effects_over_epochs(Results(trials, noisy.epochs, None, noisy.source), OPTIONS)
    assert any("18 trials' final test_loss differs" in n for n in over.notes)
    assert over.epochs == EPOCHS


def test_no_epochs_table_says_so(noisy: Results) -> None:
    bare = Results(noisy.trials, None, None, Path("table.parquet"))
    over = effects_over_epochs(bare, OPTIONS)
    assert over.missing is not None and "without epochs" in over.missing
    assert over.table.empty and over.effects == ()


def test_a_response_no_epoch_records_names_what_the_function_must_report(
    tmp_path: Path,
) -> None:
    from ablate.study import parse_study

    study = parse_study(function_study_text(tmp_path / "results", "noisy"))
    trials = pd.DataFrame({
        "trial_key": ["k0", "k1", "k2", "k3"], "status": "complete",
        "wide": [False, True, False, True], "deep": [False, False, True, True],
        "score": [0.5, 0.7, 0.4, 0.6], "loss": [0.5, 0.3, 0.6, 0.4],
    })  # fmt: skip
    epochs = pd.DataFrame({"trial_key": ["k0", "k0"], "replicate": 0, "epoch": [1, 2],
                           "train_loss": [1.0, 0.5]})  # fmt: skip
    over = effects_over_epochs(Results(trials, epochs, study, tmp_path), Options(response="score"))
    assert over.missing is not None
    assert "a training function must report score each epoch" in over.missing


def test_a_single_epoch_says_so(noisy: Results) -> None:
    assert noisy.epochs is not None
    one = Results(noisy.trials, noisy.epochs[noisy.epochs["epoch"] == 2], None, noisy.source)
    over = effects_over_epochs(one, OPTIONS)
    assert over.missing is not None and "one epoch only (epoch 2)" in over.missing


def test_the_chart_draws_and_saves_a_png(known_over: OverEpochs, tmp_path: Path) -> None:
    fig = effects_over_epochs_chart(known_over, margin=0.2)
    assert len([ax for ax in fig.axes if ax.get_visible()]) == len(known_over.effects) == 3
    assert "helps from epoch 2 on" in fig.axes[0].get_title(loc="left")
    path = tmp_path / "over.png"
    fig.savefig(path, dpi=60)
    assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    missing = effects_over_epochs(Results(_grid(_known).trials, None, None, Path("t.csv")),
                                  OPTIONS)  # fmt: skip
    assert missing.missing is not None
    effects_over_epochs_chart(missing).savefig(tmp_path / "missing.png", dpi=60)


@pytest.mark.slow
def test_a_study_run_by_the_command_trainer(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """tests/command_program.py writes its score to its epochs file at epochs 1 and 2 (the
    same value both times): each epoch's effects are the final analysis's, and the change,
    zero in every trial, has nothing to fit."""
    from ablate.execution.runner import run_study
    from ablate.study import parse_study

    study = parse_study(command_study_text(tmp_path / "results", replicates=2))
    path = os.environ.get("PYTHONPATH")
    monkeypatch.setenv("PYTHONPATH", os.pathsep.join([str(ROOT), *([path] if path else [])]))
    summary = run_study(study, workers=1, live=False)
    assert (summary.complete, summary.total) == (8, 8)
    results = load_results(study.results_dir)
    options = Options(response="score", importance=False)
    over = effects_over_epochs(results, options)
    final = analyze(results, options).effects.set_index("factor")
    assert over.missing is None and over.epochs == (1, 2) and over.goal == "max"
    for trend in over.effects:
        for epoch in (1, 2):
            assert _row(over, epoch, trend.factor, "true")["effect"] == pytest.approx(
                final.loc[trend.factor, "effect"], abs=1e-12
            )
        assert (trend.settled_from, trend.word) == (1, "helps")
        assert trend.change is None and trend.change_missing is not None
