"""The probability of improvement, paired by seed, against direct counts written out here: a
hand-made 2 x 2 table with 4 replicates, a three-level factor, a half fraction that has no
pairs, and bootstrap intervals checked against a plain NumPy bootstrap of per-seed outcomes."""

from __future__ import annotations

import itertools
import math
from fractions import Fraction
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from ablate.errors import AblateError
from ablate.results import Results
from ablate.stats.analysis import analyze
from ablate.stats.improvement import COLUMNS, probability_of_improvement, tells_more

#: test_loss by replicate, then (a, b): a in (False, True), b in ("x", "y").
_HAND = {
    0: {(False, "x"): 1.0, (True, "x"): 2.0, (False, "y"): 3.0, (True, "y"): 3.0},
    1: {(False, "x"): 2.0, (True, "x"): 1.5, (False, "y"): 2.5, (True, "y"): 4.0},
    2: {(False, "x"): 1.0, (True, "x"): 1.0, (False, "y"): 2.0, (True, "y"): 1.0},
    3: {(False, "x"): 0.5, (True, "x"): 3.0, (False, "y"): 1.0, (True, "y"): 2.0},
}


def _hand() -> pd.DataFrame:
    rows = [{"a": a, "b": b, "replicate": r, "cell": f"{a}-{b}", "status": "complete", "y": y}
            for r, cells in _HAND.items() for (a, b), y in cells.items()]  # fmt: skip
    return pd.DataFrame(rows)


def _direct(frame: pd.DataFrame, factor: str, low: object, high: object, goal: str) -> Fraction:
    """P(high better than low) by looping over every pair of rows that differ only in factor."""
    others = [c for c in ("a", "b", "c") if c in frame.columns and c != factor]
    total, n = Fraction(0), 0
    for _, h in frame[frame[factor] == high].iterrows():
        for _, lo in frame[frame[factor] == low].iterrows():
            if h["replicate"] != lo["replicate"] or any(h[o] != lo[o] for o in others):
                continue
            diff = h["y"] - lo["y"] if goal == "max" else lo["y"] - h["y"]
            total += Fraction(1) if diff > 0 else Fraction(1, 2) if diff == 0 else Fraction(0)
            n += 1
    return total / n


def _row(table: pd.DataFrame, factor: str, high: str | None = None) -> pd.Series:
    rows = table[table["factor"] == factor]
    return rows[rows["high"] == high].iloc[0] if high is not None else rows.iloc[0]


def test_exact_probability_with_ties_and_goal() -> None:
    frame = _hand()
    up = probability_of_improvement(frame, ["a", "b"], "y", "max")
    down = probability_of_improvement(frame, ["a", "b"], "y", "min")
    assert list(up.columns) == list(COLUMNS)
    a, b = _row(up, "a"), _row(up, "b")
    assert (a["low"], a["high"], a["pairs"]) == ("false", "true", 8)
    assert (b["low"], b["high"], b["pairs"]) == ("x", "y", 8)
    # By hand: a wins 4, ties 2, loses 2 of 8 -> 5/8; b wins 7, ties 1 -> 13/16.
    assert a["p_improve"] == pytest.approx(5 / 8)
    assert b["p_improve"] == pytest.approx(13 / 16)
    assert a["p_improve"] == pytest.approx(float(_direct(frame, "a", False, True, "max")))
    assert b["p_improve"] == pytest.approx(float(_direct(frame, "b", "x", "y", "max")))
    # Lower is better: wins and losses swap, ties stay 1/2, so P becomes 1 - P.
    assert _row(down, "a")["p_improve"] == pytest.approx(3 / 8)
    assert _row(down, "b")["p_improve"] == pytest.approx(3 / 16)
    assert _row(down, "b")["p_improve"] == pytest.approx(
        float(_direct(frame, "b", "x", "y", "min"))
    )
    assert (up["missing"] == "").all()


@pytest.mark.slow  # a few seconds (the fast part stays under 3 minutes)
def test_contrasts_match_the_analysis_effects() -> None:
    frame = _hand()
    results = Results(trials=frame, epochs=None, study=None, source=Path("t.parquet"),
                      baselines={})  # fmt: skip
    effects = analyze(results, factors=("a", "b"), response="y", importance=False).effects
    table = probability_of_improvement(frame, ["a", "b"], "y", "min")
    assert table[["factor", "low", "high"]].values.tolist() == (
        effects[["factor", "low", "high"]].values.tolist()
    )


def _three_levels() -> pd.DataFrame:
    rng = np.random.default_rng(3)
    rows = [{"c": c, "b": b, "replicate": r, "y": float(rng.integers(0, 4))}
            for r in range(5) for c in ("relu", "elu", "gelu") for b in ("x", "y")]  # fmt: skip
    return pd.DataFrame(rows)


def test_multi_level_factor_one_row_per_other_level() -> None:
    frame = _three_levels()
    table = probability_of_improvement(frame, ["c", "b"], "y", "max")
    contrasts = table[table["factor"] == "c"]
    # Strings of a bare table sort; the baseline is the first: elu.
    assert contrasts[["low", "high"]].values.tolist() == [["elu", "gelu"], ["elu", "relu"]]
    for high in ("gelu", "relu"):
        row = _row(table, "c", high)
        assert row["pairs"] == 10
        assert row["p_improve"] == pytest.approx(float(_direct(frame, "c", "elu", high, "max")))
    chosen = probability_of_improvement(frame, ["c", "b"], "y", "max", baselines={"c": "relu"})
    chosen_c = chosen[chosen["factor"] == "c"]
    assert chosen_c[["low", "high"]].values.tolist() == [["relu", "elu"], ["relu", "gelu"]]
    assert _row(chosen, "c", "gelu")["p_improve"] == pytest.approx(
        float(_direct(frame, "c", "relu", "gelu", "max"))
    )
    declared = {"c": ("string", ("relu", "gelu", "elu"))}
    in_study_order = probability_of_improvement(frame, ["c", "b"], "y", "max", declared=declared)
    assert in_study_order["high"].tolist()[:2] == ["gelu", "elu"]


def _seeded(replicates: int, settings: int = 2, seed: int = 1) -> pd.DataFrame:
    """Factor a adds 0.3 to a noise of SD 1 with a seed's shared luck: P(win) about 0.6."""
    rng = np.random.default_rng(seed)
    rows = []
    for r in range(replicates):
        luck = rng.normal()
        for a, b in itertools.product((False, True), range(settings)):
            rows.append({"a": a, "b": b, "replicate": r,
                         "y": 0.3 * a + 0.5 * luck * a + rng.normal()})  # fmt: skip
    return pd.DataFrame(rows)


def test_bootstrap_interval_contains_estimate_reproduces_and_narrows() -> None:
    few, many = _seeded(8), _seeded(128)
    first = probability_of_improvement(few, ["a", "b"], "y", "max", seed=7)
    again = probability_of_improvement(few, ["a", "b"], "y", "max", seed=7)
    pd.testing.assert_frame_equal(first, again)
    other = probability_of_improvement(few, ["a", "b"], "y", "max", seed=8)
    assert not np.allclose(first["ci_low"], other["ci_low"]) or not np.allclose(
        first["ci_high"], other["ci_high"]
    )
    for table in (first, probability_of_improvement(many, ["a", "b"], "y", "max")):
        assert (table["ci_low"] <= table["p_improve"]).all()
        assert (table["p_improve"] <= table["ci_high"]).all()
    wide = _row(first, "a")
    narrow = _row(probability_of_improvement(many, ["a", "b"], "y", "max"), "a")
    assert narrow["ci_high"] - narrow["ci_low"] < 0.5 * (wide["ci_high"] - wide["ci_low"])
    # A contrast's interval does not depend on the other contrasts (here, their order).
    alone = probability_of_improvement(few, ["b", "a"], "y", "max", seed=7)
    assert _row(alone, "b")["ci_low"] == _row(first, "b")["ci_low"]


def test_bootstrap_resamples_seeds_not_pairs() -> None:
    """Each seed wins all its 10 pairs or loses all: the interval is that of 8 seeds' outcomes,
    as a plain bootstrap of those 8 numbers gives it, not of 80 independent pairs."""
    outcomes = np.array([1, 1, 0, 1, 0, 1, 1, 0], dtype=float)
    rows = [{"a": a, "b": b, "replicate": r, "y": float(a == bool(won))}
            for r, won in enumerate(outcomes) for a in (False, True)
            for b in range(10)]  # fmt: skip
    table = probability_of_improvement(pd.DataFrame(rows), ["a", "b"], "y", "max",
                                       resamples=4000)  # fmt: skip
    row = _row(table, "a")
    assert row["pairs"] == 80 and row["p_improve"] == pytest.approx(5 / 8)
    rng = np.random.default_rng(123)
    means = outcomes[rng.integers(0, 8, (20000, 8))].mean(axis=1)
    low, high = np.percentile(means, [2.5, 97.5])
    assert row["ci_low"] == pytest.approx(low, abs=0.07)
    assert row["ci_high"] == pytest.approx(high, abs=0.07)


def test_half_fraction_has_no_pairs() -> None:
    rows = []
    for r in range(3):
        for a, b in itertools.product((-1, 1), (-1, 1)):
            rows.append({"a": a, "b": b, "c": a * b, "replicate": r, "y": float(a + 2 * b + r)})
    table = probability_of_improvement(pd.DataFrame(rows), ["a", "b", "c"], "y", "max")
    assert table["pairs"].tolist() == [0, 0, 0]
    assert table["p_improve"].isna().all() and table["ci_low"].isna().all()
    why = _row(table, "a")["missing"]
    assert "differ only in a" in why and "same seed" in why and "b, c" in why
    assert "none" in why


def test_left_out_trials_do_not_count() -> None:
    clean = _hand()
    spoiled = pd.concat([clean, pd.DataFrame([
        # a failed trial with a value, and a complete one with no value: both would pair.
        {"a": True, "b": "x", "replicate": 2, "cell": "x", "status": "failed", "y": 99.0},
        {"a": True, "b": "y", "replicate": 3, "cell": "x", "status": "complete", "y": np.nan},
        {"a": False, "b": "x", "replicate": 4, "cell": "x", "status": "complete", "y": 5.0},
        {"a": True, "b": "x", "replicate": 4, "cell": "x", "status": "running", "y": 9.0},
    ])], ignore_index=True)  # fmt: skip
    expected = probability_of_improvement(clean, ["a", "b"], "y", "max")
    got = probability_of_improvement(spoiled, ["a", "b"], "y", "max")
    pd.testing.assert_frame_equal(got, expected)


def test_one_seed_has_no_interval_and_goal_is_checked() -> None:
    one = _hand()[lambda f: f["replicate"] == 0]
    row = _row(probability_of_improvement(one, ["a", "b"], "y", "max"), "b")
    assert row["p_improve"] == 1.0 and math.isnan(row["ci_low"])
    assert "two or more seeds" in row["missing"]
    with pytest.raises(AblateError, match="higher or lower"):
        probability_of_improvement(_hand(), ["a", "b"], "y", "best")  # type: ignore[arg-type]
    with pytest.raises(AblateError, match="no column 'seed'"):
        probability_of_improvement(_hand(), ["a", "b"], "y", "max", replicate="seed")


@pytest.mark.parametrize(
    ("p", "ci", "clear", "improves", "expected"),
    [
        (0.8, (0.6, 0.95), False, None, True),  # the mean is unclear, the pairs are not
        (0.2, (0.05, 0.4), False, None, True),
        (0.6, (0.3, 0.9), False, None, False),  # neither says anything
        (0.55, (0.3, 0.8), True, None, True),  # clear mean, coin-flip pairs
        (0.75, (0.45, 0.95), True, None, False),  # P leans the effect's way, just imprecise
        (0.9, (0.8, 1.0), True, True, False),  # both agree
        (0.3, (0.15, 0.45), True, True, True),  # the mean improves, most pairs lose
        (0.3, (0.15, 0.45), True, False, False),  # both say worse
        (math.nan, (math.nan, math.nan), False, None, False),
    ],
)
def test_tells_more(
    p: float, ci: tuple[float, float], clear: bool, improves: bool | None, expected: bool
) -> None:
    assert tells_more(p, ci, clear, improves) is expected


def test_a_setting_with_several_trials_counts_once() -> None:
    """Two trials at a=true in one setting (a column outside the factors varies): they are
    each compared with the one at a=false and the setting scores their mean, 1/2."""
    rows = [
        {"a": False, "replicate": 0, "y": 1.0}, {"a": True, "replicate": 0, "y": 2.0},
        {"a": True, "replicate": 0, "y": 0.0},
        {"a": False, "replicate": 1, "y": 1.0}, {"a": True, "replicate": 1, "y": 3.0},
    ]  # fmt: skip
    row = _row(probability_of_improvement(pd.DataFrame(rows), ["a"], "y", "max"), "a")
    assert row["pairs"] == 2 and row["p_improve"] == pytest.approx((0.5 + 1.0) / 2)
