"""Verdicts from named tests, one rule in every output: the grouping of levels against
statsmodels' Tukey HSD, a best level only where the tests separate it, blocks in the ANOVA as
Montgomery prints them, statistics left out where the data cannot support them, and the
first screen of ``ablate analyze`` within 100 columns on every shipped study."""

from __future__ import annotations

import itertools
import json
import re
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from statsmodels.stats.multicomp import pairwise_tukeyhsd

from ablate.results import Results
from ablate.stats.analysis import Analysis, analyze
from ablate.stats.verdicts import letters
from ablate.study import library, load_study
from ablate.views.tables import render, to_dict


def _bare(frame: pd.DataFrame) -> Results:
    return Results(trials=frame, epochs=None, study=None, source=Path("table.parquet"))


def _levels(means: dict[str, float], n: int, sd: float, seed: int) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    return pd.DataFrame([{"act": level, "y": m + rng.normal(0, sd)}
                         for level, m in means.items() for _ in range(n)])  # fmt: skip


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_the_grouping_is_statsmodels_tukey_hsd(seed: int) -> None:
    """One factor of five levels: our pairwise tests are statsmodels' pairwise_tukeyhsd (the
    same p values and decisions), and the letters join exactly the pairs it does not reject."""
    means = {"a": 1.0, "b": 1.0, "c": 1.15, "d": 1.3, "e": 1.32}
    frame = _levels(means, n=6, sd=0.08, seed=seed)
    a = analyze(_bare(frame), factors=("act",), response="y", importance=False)
    theirs = pairwise_tukeyhsd(frame["y"], frame["act"], alpha=0.05)
    table = pd.DataFrame(theirs._results_table.data[1:], columns=theirs._results_table.data[0])
    ours = a.pairwise.set_index(["level_a", "level_b"])
    for row in table.itertuples():
        mine = ours.loc[(row.group1, row.group2)]
        assert mine["p_tukey"] == pytest.approx(float(row._4), abs=2e-3)  # their p is rounded
        assert bool(mine["clear"]) == bool(row.reject)
    groups = {g.level: g.letters for g in a.verdict("act").groups}
    for row in table.itertuples():
        share = bool(set(groups[row.group1]) & set(groups[row.group2]))
        assert share == (not row.reject)


def test_letters_join_exactly_the_pairs_not_told_apart() -> None:
    order = ["relu", "elu", "selu", "sigmoid"]
    assert letters(order, [("relu", "sigmoid")]) == {"relu": "a", "elu": "ab", "selu": "ab",
                                                      "sigmoid": "b"}  # fmt: skip
    assert letters(order, []) == dict.fromkeys(order, "a")
    every = list(itertools.combinations(order, 2))
    assert sorted(letters(order, every).values()) == ["a", "b", "c", "d"]


def test_best_only_where_one_level_beats_every_other() -> None:
    """The quick study's case: sigmoid worse than one level only, no best level named; then a
    level clearly better than all the others is named best."""
    unclear = _levels({"elu": 0.209, "relu": 0.207, "selu": 0.210, "sigmoid": 0.2145}, 8,
                      0.002, 5)  # fmt: skip
    a = analyze(_bare(unclear), factors=("act",), response="y", importance=False)
    v = a.verdict("act")
    assert v.best is None and "best" not in v.text
    clear = _levels({"elu": 0.25, "relu": 0.20, "selu": 0.25, "sigmoid": 0.26}, 8, 0.004, 5)
    a = analyze(_bare(clear), factors=("act",), response="y", importance=False)
    v = a.verdict("act")
    # no goal is known for a bare column: "lower than", and no "best"
    assert (v.best is None and "is lower than" in v.text) or "are lower than" in v.text


def test_a_level_better_than_all_others_is_best_by_tukey(tmp_path: Path) -> None:
    frame = _levels({"elu": 0.25, "relu": 0.20, "selu": 0.25, "sigmoid": 0.26}, 8, 0.004, 5)
    frame = frame.rename(columns={"y": "test_loss"})  # a loss: lower is better
    a = analyze(_bare(frame), factors=("act",), importance=False)
    v = a.verdict("act")
    assert v.best == "relu" and v.text.startswith("act: relu is best: ")
    assert v.groups[0].level == "relu" and v.groups[0].letters == "a"
    assert "Tukey HSD" in v.text and "ANOVA" in v.text


def _montgomery_71() -> pd.DataFrame:
    """Montgomery Example 7.1: the 2^2 of Example 6.1 run in three blocks (one replicate each)."""
    data = {(False, False): [28, 25, 27], (True, False): [36, 32, 32],
            (False, True): [18, 19, 23], (True, True): [31, 30, 29]}  # fmt: skip
    return pd.DataFrame([{"A": a, "B": b, "block": i, "y": v}
                         for (a, b), vs in data.items() for i, v in enumerate(vs)])  # fmt: skip


@pytest.mark.slow  # a few seconds (the fast part stays under 3 minutes)
def test_blocks_in_the_anova_table_as_montgomery_prints_them() -> None:
    """Table 7.2: A 208.33, B 75.00, AB 8.33, blocks 6.50 on 2 df, error 24.83 on 6 df."""
    a = analyze(_bare(_montgomery_71()), factors=("A", "B"), response="y", interactions=2,
                block="block", importance=False)  # fmt: skip
    t = a.anova.set_index("term")
    assert t.loc["blocks", "sum_sq"] == pytest.approx(6.50, abs=0.005)
    assert t.loc["blocks", "df"] == 2
    assert t.loc["residual", "sum_sq"] == pytest.approx(24.83, abs=0.005)
    assert t.loc["residual", "df"] == 6
    for term, ss in (("A", 208.33), ("B", 75.00), ("A:B", 8.33)):
        assert t.loc[term, "sum_sq"] == pytest.approx(ss, abs=0.005)
        assert t.loc[term, "F"] == pytest.approx(ss / (24.8333 / 6), rel=1e-3)  # against MS_E
    assert t.loc["total", "sum_sq"] == pytest.approx(323.0)
    text = render(a, "text", full=False)
    assert re.search(r"^blocks \(block\) +2 +6\.5 ", text, re.M)
    assert re.search(r"^residual +6 +24\.83 ", text, re.M)
    assert "6 residual df with 3 blocks (block)" in text
    assert any(r["term"] == "blocks" and r["df"] == 2 for r in to_dict(a)["anova"])
    assert "blocks (block)" in render(a, "markdown") and "blocks (block)" in render(a, "latex")


def _replicated(replicates: int) -> pd.DataFrame:
    rng = np.random.default_rng(3)
    rows = []
    for bn, act, r in itertools.product([False, True], ["relu", "elu", "tanh"], range(replicates)):
        sd = 0.03 if bn else 0.01
        rows.append({"bn": bn, "act": act, "replicate": r, "test_loss": 0.5 - 0.05 * bn
                     + rng.normal(0, sd)})  # fmt: skip
    return pd.DataFrame(rows)


@pytest.mark.slow  # a few seconds (the fast part stays under 3 minutes)
def test_seed_sensitivity_and_the_bootstrap_wait_for_enough_replicates() -> None:
    two = analyze(_bare(_replicated(2)), factors=("bn", "act"), importance=False)
    assert two.dispersion is None and two.bootstrap is None
    assert {m.statistic for m in two.missing} == {"seed sensitivity",
                                                  "the cluster bootstrap beside OLS"}  # fmt: skip
    assert all(v.seed is None for v in two.verdicts)
    text = " ".join(render(two, "text", full=True).split())
    assert ("seed sensitivity: not shown; it needs 3 replicates per cell, and the leanest cell has "
            "2 trials") in text  # fmt: skip
    assert ("replicates: 4 in the study file, then run it again: supplies seed sensitivity (from "
            "3) and the cluster bootstrap beside OLS (from 4)") in text  # fmt: skip
    assert "SD ×" not in text and "disagrees" not in text
    three = analyze(_bare(_replicated(3)), factors=("bn", "act"), importance=False)
    assert three.dispersion is not None and three.bootstrap is None
    assert [m.needs for m in three.missing] == ["4 replicates per cell"]
    four = analyze(_bare(_replicated(4)), factors=("bn", "act"), importance=False)
    assert four.bootstrap is not None and not four.missing


def test_an_interval_wider_than_the_data_is_not_a_result() -> None:
    """Three replicates of two cells whose spreads differ by chance: the SD ratio's interval
    spans more than every value observed allows, so it is not shown or used."""
    rng = np.random.default_rng(0)
    frame = pd.DataFrame({"bn": [False] * 3 + [True] * 3, "act": ["a", "b", "a"] * 2,
                          "y": 1.0 + rng.normal(0, 0.01, 6)})  # fmt: skip
    a = analyze(_bare(frame.assign(act="a")), factors=("bn",), response="y", importance=False)
    row = a.dispersion.table.set_index("factor").loc["bn"]
    assert not row["ratio_shown"]
    assert "SD ×" not in a.verdict("bn").text and "SD ratio" not in render(a, "text")


def _synthetic(study_name: str) -> Analysis:
    """A shipped study's full grid with its replicates, a response with one real effect."""
    study = load_study(study_name)
    rng = np.random.default_rng(1)
    names = study.factor_names
    rows = []
    levels = [f.levels for f in study.factors]
    for r, combo in itertools.product(range(study.replicates), itertools.product(*levels)):
        row = dict(zip(names, combo, strict=True))
        row.update(replicate=r, status="complete", trial_key=f"k{len(rows)}", cell="c")
        row[study.analysis.response] = 0.5 + 0.05 * (combo[0] == levels[0][0]) + rng.normal(0, 0.02)
        rows.append(row)
    return analyze(Results(pd.DataFrame(rows), None, study, Path("r")))


@pytest.mark.slow  # a few seconds (the fast part stays under 3 minutes)
@pytest.mark.parametrize("name", library.names())
def test_the_first_screen_fits_one_screen_in_100_columns(name: str) -> None:
    a = _synthetic(name)
    first = render(a, "text", full=False)
    assert max(len(line) for line in first.splitlines()) <= 100, first
    assert len(first.splitlines()) <= 60, first
    assert "Findings" in first and "ANOVA" in first and "OLS summary" not in first
    full = render(a, "text", full=True)
    assert max(len(line) for line in full.splitlines()) <= 100
    # no column empty in every row, in any table shown
    assert "spread differs" not in full or "yes" in full


@pytest.mark.slow  # a few seconds (the fast part stays under 3 minutes)
def test_one_label_everywhere() -> None:
    """The verdict words of the findings are the effects table's, the JSON's, and the colour of
    the effects chart."""
    a = analyze(_bare(_replicated(5)), factors=("bn", "act"), importance=False)
    v = a.verdict("bn")
    assert v.kind == "helps" and v.text.startswith("bn: true helps")  # a loss that falls
    text = render(a, "text", full=False)
    effects_line = next(line for line in text.splitlines() if line.startswith("bn "))
    assert effects_line.rstrip().endswith("helps")
    data = json.loads(render(a, "json"))
    assert data["verdicts"][0]["kind"] == "helps" and data["effects"][0]["clear"] is True
