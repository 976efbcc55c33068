"""Seeds as blocks, equivalence, seed sensitivity, "did it learn", and the findings in words,
against numbers computed independently of ablate:

- Montgomery, Design and Analysis of Experiments (8th ed.), Example 5.6: a 3 x 2 factorial
  (ground clutter x filter type) run in 4 blocks (operators); its published ANOVA (Table 5.21)
  and statsmodels' MixedLM called directly, with the balanced-design closed form of the block
  variance, (MS_blocks - MS_E) / (cells per block);
- statsmodels' ``ttost_ind`` (pooled variance) for the two one-sided tests;
- scipy's ``binomtest`` for the exact binomial test, and ``levene(center="median")`` for the
  Brown-Forsythe test; hand sums for the ln(SD) dispersion effect.
"""

from __future__ import annotations

import itertools
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import statsmodels.formula.api as smf
from scipy import stats
from statsmodels.stats.weightstats import ttost_ind

from ablate.errors import AblateError
from ablate.results import Results
from ablate.stats.analysis import analyze
from ablate.stats.learned import judge
from ablate.tasks.base import Baseline
from ablate.views.tables import render, to_dict

#: Montgomery Example 5.6: intensity at which the target is detected, by ground clutter,
#: filter type (1, 2) and operator (the block), Table 5.20.
_RADAR = {
    "low": [(90, 86), (96, 84), (100, 92), (92, 81)],
    "medium": [(102, 87), (106, 90), (105, 97), (96, 80)],
    "high": [(114, 93), (112, 91), (108, 95), (98, 83)],
}


def _bare(frame: pd.DataFrame, **baselines: Baseline) -> Results:
    return Results(trials=frame, epochs=None, study=None, source=Path("table.parquet"),
                   baselines=dict(baselines))  # fmt: skip


def _radar() -> pd.DataFrame:
    rows = []
    for clutter, operators in _RADAR.items():
        for operator, (f1, f2) in enumerate(operators, start=1):
            for filter_type, y in (("1", f1), ("2", f2)):
                rows.append({"clutter": clutter, "filter": filter_type, "operator": operator,
                             "y": y})  # fmt: skip
    return pd.DataFrame(rows)


@pytest.mark.slow  # a few seconds (the fast part stays under 3 minutes)
def test_blocks_reproduce_montgomerys_blocked_factorial() -> None:
    frame = _radar()
    a = analyze(_bare(frame), factors=("clutter", "filter"), response="y", interactions=2,
                block="operator", importance=False)  # fmt: skip
    ss = dict(zip(a.anova["term"], a.anova["sum_sq"], strict=True))
    assert ss["clutter"] == pytest.approx(335.58, abs=0.01)  # Table 5.21
    assert ss["filter"] == pytest.approx(1066.67, abs=0.01)
    assert ss["clutter:filter"] == pytest.approx(77.08, abs=0.01)
    b = a.blocks
    assert b is not None and b.levels == 4
    assert b.anova["df"] == 3 and b.anova["sum_sq"] == pytest.approx(402.17, abs=0.01)
    assert b.df_resid == 15
    assert b.resid_sd**2 == pytest.approx(166.33 / 15, abs=0.001)  # MS_E = 11.09
    assert b.anova["F"] == pytest.approx((402.17 / 3) / (166.33 / 15), rel=1e-3)  # 12.09
    # Without blocks the operators' variation stays in the residual: 568.5 on 18 df.
    assert b.resid_sd_unblocked**2 == pytest.approx((402.1667 + 166.3333) / 18, rel=1e-6)
    # The random intercept: statsmodels' MixedLM on the same data, and the closed form.
    direct = smf.mixedlm("y ~ C(clutter) * C(filter)", frame, groups=frame["operator"]).fit(
        reml=True
    )
    assert b.mixed["block_var"] == pytest.approx(float(direct.cov_re.iloc[0, 0]), rel=1e-4)
    assert b.mixed["resid_var"] == pytest.approx(float(direct.scale), rel=1e-4)
    assert b.mixed["block_var"] == pytest.approx((402.1667 / 3 - 166.3333 / 15) / 6, rel=1e-4)
    icc = b.mixed["block_var"] / (b.mixed["block_var"] + b.mixed["resid_var"])
    assert b.mixed["icc"] == pytest.approx(icc)
    assert b.relative_efficiency > 1  # the operators differ: blocking paid off
    # The filter effect keeps its estimate and gains precision with blocks in the model.
    blocked = b.effects.set_index("factor").loc["filter"]
    plain = a.effects.set_index("factor").loc["filter"]
    assert blocked["effect"] == pytest.approx(plain["effect"])
    assert blocked["std_err"] < plain["std_err"]


@pytest.mark.slow  # a few seconds (the fast part stays under 3 minutes)
def test_a_block_that_is_a_factor_or_absent_is_refused() -> None:
    frame = _radar()
    with pytest.raises(AblateError, match="is a factor"):
        analyze(_bare(frame), factors=("clutter", "filter"), response="y", block="filter")
    with pytest.raises(AblateError, match="no such column"):
        analyze(_bare(frame), factors=("clutter", "filter"), response="y", block="seed")


def _two_groups(shift: float, n: int = 12, seed: int = 3) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    y = np.r_[rng.normal(0.5, 0.01, n), rng.normal(0.5 + shift, 0.01, n)]
    return pd.DataFrame({"attention": [False] * n + [True] * n, "y": y})


@pytest.mark.parametrize(("shift", "margin", "verdict"), [
    (0.0, 0.02, "equivalent within ±0.02"),
    (0.05, 0.02, "different"),
    (0.0, 0.002, "inconclusive"),
    (0.015, 0.03, "different, within ±0.03"),
])  # fmt: skip
def test_tost_verdicts_match_statsmodels(shift: float, margin: float, verdict: str) -> None:
    frame = _two_groups(shift)
    a = analyze(_bare(frame), factors=("attention",), response="y", margin=margin,
                importance=False)  # fmt: skip
    row = a.equivalence.set_index("term").loc["attention"]
    on, off = frame.loc[frame["attention"], "y"], frame.loc[~frame["attention"], "y"]
    p, _, _ = ttost_ind(on, off, -margin, margin, usevar="pooled")
    assert row["p_tost"] == pytest.approx(p, rel=1e-6)
    assert row["verdict"] == verdict
    if verdict == "inconclusive":
        assert row["replicates_to_decide"] is not None
    line = next(f.text for f in a.findings if f.text.startswith("attention"))
    assert ("equivalent" in line) == verdict.startswith("equivalent")


def test_replicates_to_decide_are_enough_by_the_planning_formula() -> None:
    """Were the estimate the truth, the named replicates shrink the 90% interval inside ±D."""
    frame = _two_groups(0.0, n=4, seed=5)
    margin = 0.012
    a = analyze(_bare(frame), factors=("attention",), response="y", margin=margin,
                importance=False)  # fmt: skip
    row = a.equivalence.set_index("term").loc["attention"]
    assert row["verdict"] == "inconclusive"
    r = int(row["replicates_to_decide"])

    def decided(reps: int) -> bool:  # 2 runs x reps trials, 2 coefficients
        se, df = row["std_err"] * np.sqrt(4 / reps), 2 * reps - 2
        equivalent = abs(row["estimate"]) + stats.t.ppf(0.95, df) * se < margin
        return equivalent or abs(row["estimate"]) > stats.t.ppf(0.975, df) * se

    assert r > 4 and decided(r) and not decided(r - 1)


def test_the_binomial_test_is_scipys_and_holm_adjusted() -> None:
    frame = pd.DataFrame({"units": [8, 8, 32, 32], "replicate": [0, 1, 0, 1],
                          "test_accuracy": [0.497, 0.516, 0.93, 0.95]})  # fmt: skip
    base = Baseline(0.4885, "always predicting the majority class (1)", examples=2000)
    verdict = judge(frame, ["units"], "test_accuracy", frame["test_accuracy"].to_numpy(), base,
                    "max", 0.05)  # fmt: skip
    assert verdict is not None
    for value, p in zip(frame["test_accuracy"], verdict.table["p"], strict=True):
        k = round(value * 2000)
        assert p == pytest.approx(stats.binomtest(k, 2000, 0.4885, "greater").pvalue, rel=1e-9)
    # 0.497 is 17 correct answers above the majority rate: chance (p = 0.23).
    assert verdict.table["learned"].tolist() == [False, True, True, True]
    assert verdict.not_learned == 1 and "units=8 #0" in verdict.note


@pytest.mark.slow  # a few seconds (the fast part stays under 3 minutes)
def test_losses_must_beat_their_baseline_by_the_margin_and_can_be_left_out() -> None:
    losses = [0.20, 0.21, 0.25, 0.19, 0.21, 0.2, 0.255, 0.2]
    frame = pd.DataFrame({"bn": [True, False] * 4, "test_loss": losses})
    results = _bare(frame, test_loss=Baseline(0.258, "the mean image"))
    a = analyze(results, factors=("bn",), importance=False)
    assert a.learned is not None and a.learned.not_learned == 2  # 0.25 and 0.255 > 0.2451
    assert a.learned.not_learned == 2
    kept = analyze(results, factors=("bn",), importance=False, exclude_unlearned=True)
    assert kept.n_used == 6 and kept.excluded["did not learn"] == 2
    assert any("did not learn" in f.text and "left out" in f.text for f in kept.findings)


def _spread_grid(seed: int = 0) -> pd.DataFrame:
    """bn changes the seed-to-seed SD eightfold; act does not change it."""
    rng = np.random.default_rng(seed)
    rows = []
    for bn, act, r in itertools.product([False, True], ["relu", "elu", "tanh"], range(6)):
        sd = 0.08 if bn else 0.01
        rows.append({"bn": bn, "act": act, "replicate": r, "y": 1.0 + rng.normal(0, sd)})
    return pd.DataFrame(rows)


@pytest.mark.slow  # a few seconds (the fast part stays under 3 minutes)
def test_dispersion_effects_against_hand_sums_and_scipy() -> None:
    frame = _spread_grid()
    a = analyze(_bare(frame), factors=("bn", "act"), response="y", importance=False)
    d = a.dispersion
    assert d is not None and d.cells_used == 6
    cells = frame.groupby(["bn", "act"])["y"].std()
    by_bn = np.log(cells).groupby(level="bn").mean()
    row = d.table.set_index("factor").loc["bn"]
    assert np.log(row["ratio"]) == pytest.approx(by_bn[True] - by_bn[False], rel=1e-9)
    assert row["seed_sensitive"] and row["ratio_low"] > 1
    # Brown-Forsythe of the within-cell deviations, by bn, is scipy's on the same groups.
    dev = frame["y"] - frame.groupby(["bn", "act"])["y"].transform("mean")
    expected = stats.levene(dev[~frame["bn"]], dev[frame["bn"]], center="median").pvalue
    assert row["bf_p"] == pytest.approx(expected, rel=1e-9)
    assert not d.table.set_index("factor").loc["act", "seed_sensitive"]
    assert any(f.text.startswith("bn:") and "seed-sensitive" in f.text for f in a.findings)
    assert a.verdict("bn").seed is not None and a.verdict("bn").seed.sensitive


def test_one_factor_brown_forsythe_is_levene_on_the_raw_groups() -> None:
    frame = _spread_grid()
    frame = frame[frame["act"] == "relu"]
    a = analyze(_bare(frame), factors=("bn",), response="y", importance=False)
    groups = [frame.loc[frame["bn"] == v, "y"] for v in (False, True)]
    expected = stats.levene(*groups, center="median").pvalue
    assert a.dispersion.table.loc[0, "bf_p"] == pytest.approx(expected, rel=1e-9)


@pytest.mark.slow  # a few seconds (the fast part stays under 3 minutes)
def test_lack_of_fit_is_warned_with_the_interaction_it_points_to() -> None:
    rng = np.random.default_rng(1)
    rows = []
    for a_, b_, c_, _ in itertools.product([0, 1], [0, 1], [0, 1], range(3)):
        y = 0.3 * a_ + 0.2 * b_ + 0.6 * (a_ == b_) + 0.1 * c_ + rng.normal(0, 0.02)
        rows.append({"a": a_, "b": b_, "c": c_, "y": y})
    frame = pd.DataFrame(rows)
    a = analyze(_bare(frame), factors=("a", "b", "c"), response="y", importance=False)
    warning = next(f.text for f in a.findings if f.kind == "warning" and "lack of fit" in f.text)
    assert "a×b" in warning and "b×c" not in warning and "a×c" not in warning


def test_intervals_outside_a_shares_range_are_flagged() -> None:
    rng = np.random.default_rng(2)
    frame = pd.DataFrame({"units": [8, 32] * 6, "test_accuracy": np.clip(
        np.tile([0.5, 0.99], 6) + rng.normal(0, 0.04, 12), 0, 1)})  # fmt: skip
    a = analyze(_bare(frame), factors=("units",), response="test_accuracy", importance=False)
    assert any("the values test_accuracy can take [0, 1]" in f.text for f in a.findings)


@pytest.mark.slow  # a few seconds (the fast part stays under 3 minutes)
def test_findings_come_first_and_every_format_carries_them() -> None:
    frame = _radar()
    a = analyze(_bare(frame), factors=("clutter", "filter"), response="y", block="operator",
                margin=1.0, importance=False)  # fmt: skip
    text = render(a, "text")
    assert text.startswith("Findings\n")
    for title in ("Equivalence within ±1", "Blocks: operator", "Seed sensitivity"):
        assert title in text
    data = to_dict(a)
    assert [f["text"] for f in data["findings"]] == [f.text for f in a.findings]
    assert [v["factor"] for v in data["verdicts"]] == ["clutter", "filter"]
    assert data["blocks"]["anova"]["df"] == 3 and data["equivalence"]
    assert "verdict" in render(a, "csv", "equivalence").splitlines()[0]
    assert "Findings" in render(a, "markdown") and "Findings" in render(a, "latex")


def _replicated(replicates: int, seed: int = 4) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    rows = []
    for bn, act, r in itertools.product([False, True], ["relu", "elu", "tanh"], range(replicates)):
        y = 0.5 - 0.03 * bn + {"relu": 0.0, "elu": 0.01, "tanh": 0.04}[act] + rng.normal(0, 0.01)
        rows.append({"bn": bn, "act": act, "replicate": r, "y": y})
    return pd.DataFrame(rows)


@pytest.mark.slow  # seconds: the fast part stays under 3 minutes
def test_the_cluster_bootstrap_matches_a_brute_force_one_and_ols() -> None:
    """Resampling trials within cells and refitting statsmodels' OLS on every trial gives the
    same interval (to Monte Carlo error) as ablate's resampling of cell means; with 10
    replicates both are close to the OLS interval."""
    frame = _replicated(10)
    a = analyze(_bare(frame), factors=("bn", "act"), response="y", importance=False)
    row = a.bootstrap.effects.set_index("factor").loc["bn"]
    rng = np.random.default_rng(9)
    cells = [g for _, g in frame.groupby(["bn", "act"])]
    effects = []
    for _ in range(400):
        sample = pd.concat([g.iloc[rng.integers(0, len(g), len(g))] for g in cells])
        fit = smf.ols("y ~ C(bn) + C(act)", sample).fit()
        effects.append(fit.params["C(bn)[T.True]"])
    low, high = np.percentile(effects, [2.5, 97.5])
    assert row["boot_high"] - row["boot_low"] == pytest.approx(high - low, rel=0.2)
    assert row["boot_low"] == pytest.approx(low, abs=0.003)
    assert row["agrees"] and (row["boot_high"] - row["boot_low"]) == pytest.approx(
        row["ci_high"] - row["ci_low"], rel=0.25
    )


@pytest.mark.slow  # a few seconds (the fast part stays under 3 minutes)
def test_linear_shares_on_cell_means_are_the_anovas_exactly() -> None:
    """The bootstrap's shortcut: Type II sums of squares from cell means weighted by counts
    equal the ones from every trial (the within-cell part cancels)."""
    from ablate.designs.matrix import build_matrix, factor_infos
    from ablate.stats.bootstrap import _linear_shares

    frame = _replicated(6).iloc[:-1]  # unequal cells too (5 and 6 trials: enough to bootstrap)
    a = analyze(_bare(frame), factors=("bn", "act"), response="y")
    cells = frame.groupby(["bn", "act"], sort=False)["y"].agg(["mean", "size"]).reset_index()
    factors = factor_infos(frame, ["bn", "act"])
    design = build_matrix(cells, factors, "treatment", 1, ())
    shares = _linear_shares(design, factors, cells["size"].to_numpy(),
                            cells[["mean"]].to_numpy())  # fmt: skip
    assert shares[:, 0] == pytest.approx(a.importance["linear"].to_numpy(), rel=1e-9)
    imp = a.importance.set_index("factor")
    assert ((imp["linear_low"] <= imp["linear"]) & (imp["linear"] <= imp["linear_high"])).all()


def _four_factors(seed: int = 6) -> pd.DataFrame:
    """16 cells x 4 replicates: a strong, b and c equal and weak, d nothing."""
    rng = np.random.default_rng(seed)
    rows = []
    for a, b, c, d, r in itertools.product([0, 1], [0, 1], [0, 1], [0, 1], range(4)):
        y = 1.0 * a + 0.2 * b + 0.2 * c + rng.normal(0, 0.1)
        rows.append({"a": a, "b": b, "c": c, "d": d, "replicate": r, "y": y})
    return pd.DataFrame(rows)


@pytest.mark.slow  # a few seconds (the fast part stays under 3 minutes)
def test_fanova_and_ped_anova_get_intervals_that_separate_signal_from_noise() -> None:
    """The strong factor's fANOVA interval lies above every other's; the two equal factors'
    intervals overlap (they are not ranked as if their order were signal)."""
    a = analyze(_bare(_four_factors()), factors=("a", "b", "c", "d"), response="y")
    imp = a.importance.set_index("factor")
    assert imp.loc["a", "fanova_low"] > imp.loc[["b", "c", "d"], "fanova_high"].max()
    assert imp.loc["b", "fanova_low"] < imp.loc["c", "fanova_high"]
    assert imp.loc["c", "fanova_low"] < imp.loc["b", "fanova_high"]
    assert imp.loc["d", "fanova_low"] < 0.02
    assert imp[["ped_anova_low", "ped_anova_high"]].notna().all().all()
    assert "bootstrap 95% CIs" in render(a, "text", "importance")


def test_model_intervals_evaluate_optunas_own_ped_anova_on_each_resample() -> None:
    """Resamples that all equal the cell means give a zero-width PED-ANOVA interval at
    exactly what Optuna's evaluator says of a study of those cell means."""
    import optuna
    from optuna.distributions import CategoricalDistribution
    from optuna.importance import PedAnovaImportanceEvaluator, get_param_importances
    from optuna.trial import create_trial

    from ablate.designs.matrix import factor_infos
    from ablate.stats.importance import model_intervals, ped_quantile

    frame = _four_factors()
    names = ["a", "b", "c", "d"]
    cells = frame.groupby(names, as_index=False)["y"].mean()
    means = np.repeat(cells[["y"]].to_numpy(), 12, axis=1)
    table = model_intervals(cells[names], means, factor_infos(frame, names), "min")
    study = optuna.create_study()
    dist = {n: CategoricalDistribution([0, 1]) for n in names}
    for row in cells.itertuples(index=False):
        params = {n: int(getattr(row, n)) for n in names}
        study.add_trial(create_trial(params=params, distributions=dist, value=row.y))
    evaluator = PedAnovaImportanceEvaluator(target_quantile=ped_quantile(len(cells)))
    expected = get_param_importances(study, evaluator=evaluator)
    table = table.set_index("factor")
    for n in names:
        assert table.loc[n, "ped_anova_low"] == pytest.approx(expected[n], abs=1e-12)
        assert table.loc[n, "ped_anova_high"] == pytest.approx(expected[n], abs=1e-12)


def test_box_meyer_finds_the_factor_that_widens_an_unreplicated_designs_spread() -> None:
    """A 2^5 run once: e quadruples the noise's SD. F* = ln(S²+/S²−) of statsmodels' own
    main-effects residuals (Box and Meyer 1986), and only e's spread differs."""
    rng = np.random.default_rng(11)
    rows = []
    for a_, b, c, d, e in itertools.product([0, 1], repeat=5):
        y = 2.0 * a_ - 1.0 * b + rng.normal(0, 0.1 * (4 if e else 1))
        rows.append({"a": a_, "b": b, "c": c, "d": d, "e": e, "y": y})
    frame = pd.DataFrame(rows)
    a = analyze(_bare(frame), factors=tuple("abcde"), response="y", importance=False)
    assert a.dispersion is None and a.box_meyer is not None
    resid = smf.ols("y ~ C(a) + C(b) + C(c) + C(d) + C(e)", frame).fit().resid
    table = a.box_meyer.set_index("factor")
    for f in "abcde":
        high, low = resid[frame[f] == 1], resid[frame[f] == 0]
        assert table.loc[f, "f_star"] == pytest.approx(np.log(high.var() / low.var()), rel=1e-9)
    assert table["spread_differs"].to_dict() == {f: f == "e" for f in "abcde"}
    assert any(f.text.startswith("e: no clear effect") and "Box-Meyer" in f.text
               for f in a.findings)  # fmt: skip
    assert "Dispersion effects from the residuals" in render(a)
    assert to_dict(a)["box_meyer"][4]["factor"] == "e"
    from ablate.views.seeds import spread_chart

    fig = spread_chart(a)
    assert [ax.get_title() for ax in fig.axes] == ["a", "b", "c", "d", "e (spread differs)"]
    heights = [p.get_height() for p in fig.axes[4].patches]
    assert heights == pytest.approx([resid[frame["e"] == 0].std(), resid[frame["e"] == 1].std()])


@pytest.mark.slow  # a few seconds (the fast part stays under 3 minutes)
def test_a_block_variance_at_its_boundary_is_found_not_left_at_the_start_values() -> None:
    """Seeds that shift nothing: REML puts the block variance at 0, where the residual
    variance is OLS's without blocks (statsmodels' OLS called directly). The gradient
    optimisers stop at their start values there (block and residual variance equal, an ICC
    of 0.5, seen on the sklearn example); the fit must not report that."""
    sk = Path(__file__).parents[2] / "examples" / "sklearn"
    del sk  # (the example's data is not needed: the same shape is made here)
    rng = np.random.default_rng(2)
    rows = []
    for a, b, r in itertools.product([0, 1], [0, 1, 2], range(4)):
        rows.append(
            {"a": a, "b": b, "replicate": r, "y": a * 0.05 + b * 0.01 + rng.normal(0, 0.01)}
        )
    frame = pd.DataFrame(rows)
    frame["y"] -= frame.groupby("replicate")["y"].transform("mean") - frame["y"].mean()  # no shift
    a = analyze(_bare(frame), factors=("a", "b"), response="y", block="replicate",
                importance=False)  # fmt: skip
    mixed = a.blocks.mixed
    ols = smf.ols("y ~ C(a) + C(b)", frame).fit()
    assert mixed["icc"] < 1e-6 and mixed["block_var"] < 1e-6 * mixed["resid_var"]
    assert mixed["resid_var"] == pytest.approx(ols.mse_resid, rel=1e-3)
    assert any("boundary" in note for note in a.notes)
