"""The factorial analysis against numbers computed independently of it.

- Montgomery, Design and Analysis of Experiments, Example 6.2 (filtration rate, an
  unreplicated 2^4): its published effects, and Lenth's PSE worked by hand.
- Montgomery Example 6.1 (a 2^2 with three replicates): its published ANOVA.
- A simulated 2x2x2x4 grid with known coefficients: intervals cover the truth.
- statsmodels' formula API (patsy designs, anova_lm, HC3), statsmodels' Tukey HSD and
  leave-one-out refits as independent computations of the same quantities.
"""

from __future__ import annotations

import itertools
import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
import statsmodels.formula.api as smf
from statsmodels.stats.anova import anova_lm
from statsmodels.stats.multicomp import pairwise_tukeyhsd

from ablate.errors import AblateError
from ablate.results import Results
from ablate.stats.analysis import Analysis
from ablate.stats.analysis import analyze as _analyze
from ablate.stats.screening import lenth_pse
from ablate.views.tables import render


def analyze(results: Results, **options: Any) -> Analysis:
    """The analysis without the importance evaluators, which tests/stats/test_importance.py
    and test_seeds.py check (here they would only cost time)."""
    return _analyze(results, **{"importance": False, **options})


ACTS = ["elu", "relu", "selu", "sigmoid"]
TRUE_COEF = {"batch_norm": -0.02, "dropout": -0.01, "spatial_attention": -0.005,
             "elu": 0.30, "relu": 0.31, "selu": 0.33, "sigmoid": 0.36}  # fmt: skip
FACTORS = ["batch_norm", "dropout", "spatial_attention", "activation"]


def _bare(frame: pd.DataFrame) -> Results:
    return Results(trials=frame, epochs=None, study=None, source=Path("table.parquet"))


def _grid(replicates: int = 3, noise: float = 0.002, seed: int = 0) -> pd.DataFrame:
    """A 2x2x2x4 design with known effects plus Gaussian noise."""
    rng = np.random.default_rng(seed)
    rows = []
    for r, (bn, do, sa, act) in itertools.product(
        range(replicates), itertools.product([True, False], [True, False], [True, False], ACTS)
    ):
        y = (
            TRUE_COEF[act]
            + TRUE_COEF["batch_norm"] * bn
            + TRUE_COEF["dropout"] * do
            + TRUE_COEF["spatial_attention"] * sa
            + rng.normal(0, noise)
        )
        rows.append(dict(batch_norm=bn, dropout=do, spatial_attention=sa, activation=act,
                         replicate=r, status="complete", test_loss=y))  # fmt: skip
    return pd.DataFrame(rows)


def _filtration() -> pd.DataFrame:
    """Montgomery Example 6.2: filtration rate of a 2^4 in standard order (A varies fastest)."""
    rate = [45, 71, 48, 65, 68, 60, 80, 65, 43, 100, 45, 104, 75, 86, 70, 96]
    rows = []
    for i, value in enumerate(rate):
        a, b, c, d = ((i >> k) & 1 == 1 for k in range(4))
        rows.append({"A": a, "B": b, "C": c, "D": d, "rate": value})
    return pd.DataFrame(rows)


def test_textbook_2x4_effects_and_lenths_method() -> None:
    a = analyze(
        _bare(_filtration()), factors=list("ABCD"), response="rate", coding="sum", interactions=4
    )
    # Published effects (Montgomery, Example 6.2, Table 6.11)
    published = {"A": 21.625, "B": 3.125, "C": 9.875, "D": 14.625, "A:B": 0.125,
                 "A:C": -18.125, "A:D": 16.625, "B:C": 2.375, "B:D": -0.375, "C:D": -1.125,
                 "A:B:C": 1.875, "A:B:D": 4.125, "A:C:D": -1.625, "B:C:D": -2.625,
                 "A:B:C:D": 1.375}  # fmt: skip
    effects = dict(zip(a.screening["term"], a.screening["effect"], strict=True))
    for term, value in published.items():
        assert effects[term] == pytest.approx(value, abs=1e-9), term
    assert a.saturated and a.fit.df_resid == 0
    # Lenth by hand: median |c| of the 15 effects is 2.625, s0 = 3.9375; the ten |c| below
    # 2.5 s0 = 9.84375 have median (1.625 + 1.875)/2 = 1.75, so PSE = 1.5 x 1.75 = 2.625.
    assert a.lenth.s0 == pytest.approx(3.9375)
    assert a.lenth.pse == pytest.approx(2.625)
    assert a.lenth.df == pytest.approx(5.0)
    assert a.lenth.me == pytest.approx(2.570582 * 2.625, rel=1e-5)  # t(0.975, 5) from tables
    active = set(a.screening.loc[a.screening["active"], "term"])
    assert active == {"A", "C", "D", "A:C", "A:D"}  # Montgomery's conclusion
    assert a.pareto_critical == pytest.approx(2.570582, rel=1e-5)
    # the effects table (averaged over the other factors) agrees for the main effects
    main = dict(zip(a.effects["factor"], a.effects["effect"], strict=True))
    assert main == pytest.approx({"A": 21.625, "B": 3.125, "C": 9.875, "D": 14.625})
    assert a.effects["std_err"].isna().all()  # no σ to speak of in a saturated model


def test_lenth_pse_function_on_a_hand_example() -> None:
    # |c| = 1..9 and 40: s0 = 1.5 x 5.5 = 8.25; below 20.625: 1..9, median 5, PSE = 7.5
    out = lenth_pse(np.array([1, -2, 3, -4, 5, 6, -7, 8, 9, 40.0]))
    assert out.s0 == pytest.approx(8.25) and out.pse == pytest.approx(7.5)


def _montgomery_61() -> pd.DataFrame:
    """Montgomery Example 6.1: a 2^2 (reactant concentration A, catalyst B), 3 replicates."""
    data = {(False, False): [28, 25, 27], (True, False): [36, 32, 32],
            (False, True): [18, 19, 23], (True, True): [31, 30, 29]}  # fmt: skip
    return pd.DataFrame([{"A": a, "B": b, "y": v} for (a, b), vs in data.items() for v in vs])


@pytest.mark.slow  # a few seconds (the fast part stays under 3 minutes)
def test_textbook_replicated_anova_and_pure_error() -> None:
    a = analyze(_bare(_montgomery_61()), factors=["A", "B"], response="y", interactions=2,
                coding="sum")  # fmt: skip
    anova = a.anova.set_index("term")
    # Published (Montgomery Table 6.3): SS 208.33, 75.00, 8.33, error 31.34 (8 df), total 323
    assert anova.loc["A", "sum_sq"] == pytest.approx(208.333, abs=1e-3)
    assert anova.loc["B", "sum_sq"] == pytest.approx(75.0)
    assert anova.loc["A:B", "sum_sq"] == pytest.approx(8.333, abs=1e-3)
    assert anova.loc["residual", "sum_sq"] == pytest.approx(31.333, abs=1e-3)
    assert anova.loc["residual", "df"] == 8 and anova.loc["total", "sum_sq"] == pytest.approx(323)
    assert anova.loc["A", "F"] == pytest.approx(53.19, abs=0.05)  # published 53.15 (rounded SS)
    assert anova.loc["B", "F"] == pytest.approx(19.15, abs=0.05)
    assert anova.loc["A", "pct_ss"] == pytest.approx(100 * 208.333 / 323, rel=1e-4)
    effects = dict(zip(a.effects["factor"], a.effects["effect"], strict=True))
    assert effects == pytest.approx({"A": 25 / 3, "B": -5.0})  # published 8.33 and -5.00
    # with the full model the residual is all pure error; seed-to-seed SD per cell
    assert list(a.lack_of_fit["source"]) == ["pure error"]
    assert a.cells["sd"].tolist() == pytest.approx(
        [np.std(v, ddof=1) for v in ([28, 25, 27], [36, 32, 32], [18, 19, 23], [31, 30, 29])]
    )
    # main effects only: the interaction becomes lack of fit, tested against pure error
    m = analyze(_bare(_montgomery_61()), factors=["A", "B"], response="y")
    lof = m.lack_of_fit.set_index("source")
    assert lof.loc["lack of fit", "df"] == 1 and lof.loc["pure error", "df"] == 8
    assert lof.loc["lack of fit", "sum_sq"] == pytest.approx(8.333, abs=1e-3)
    assert lof.loc["lack of fit", "F"] == pytest.approx(8.3333 / (31.3333 / 8), rel=1e-4)


@pytest.mark.slow  # a few seconds (the fast part stays under 3 minutes)
def test_simulated_grid_estimates_cover_the_truth() -> None:
    frame = _grid(replicates=3)
    a = analyze(_bare(frame), factors=FACTORS)
    table = a.coefficients.set_index("term")
    for term, truth in TRUE_COEF.items():
        row = table.loc[term if term in table.index else f"activation[{term}]"]
        assert row["ci_low"] <= truth <= row["ci_high"], term
    for _, e in a.effects.iterrows():
        assert e["ci_low"] <= TRUE_COEF[e["factor"]] <= e["ci_high"]
        assert (e["low"], e["high"]) == ("false", "true")
    # marginal mean of an activation: its own level plus the average of the other factors
    shift = sum(TRUE_COEF[f] for f in FACTORS[:3]) / 2
    mm = a.marginal_means[a.marginal_means["factor"] == "activation"].set_index("level")
    for act in ACTS:
        assert mm.loc[act, "ci_low"] <= TRUE_COEF[act] + shift <= mm.loc[act, "ci_high"]
    assert a.fit.replicates_min == a.fit.replicates_max == 3
    assert a.lack_of_fit is not None and a.lack_of_fit.iloc[0]["p"] > 0.001  # the model is right


@pytest.mark.parametrize(
    ("coding", "formula"),
    [
        ("reference", "test_loss ~ 0 + C(activation) + batch_norm + dropout + spatial_attention"),
        ("sum", "test_loss ~ C(activation, Sum) + C(batch_norm, Sum) + C(dropout, Sum) + "
                "C(spatial_attention, Sum)"),
    ],
)  # fmt: skip
def test_every_coding_fits_what_statsmodels_formula_api_fits(coding: str, formula: str) -> None:
    frame = _grid(replicates=2)
    a = analyze(_bare(frame), factors=FACTORS, coding=coding)
    direct = smf.ols(formula, data=frame).fit()
    np.testing.assert_allclose(a.residuals["fitted"], direct.fittedvalues, atol=1e-12)
    assert a.fit.r2 == pytest.approx(direct.rsquared, rel=1e-9)
    if coding == "reference":  # the level columns are means, labelled and left untested
        table = a.coefficients.set_index("term")
        assert table.loc["batch_norm", "coef"] == pytest.approx(direct.params["batch_norm[T.True]"])
        sigmoid = table.loc["activation[sigmoid]"]
        assert sigmoid["label"] == "mean at activation=sigmoid" and sigmoid["kind"] == "mean"
        assert np.isnan(sigmoid["t"]) and np.isnan(sigmoid["p"]) and not sigmoid["clear"]
        assert sigmoid["coef"] == pytest.approx(direct.params["C(activation)[sigmoid]"])
    if coding == "sum":  # patsy's Sum codes the last level -1; on minus off is -2x its coef
        table = a.coefficients.set_index("term")
        assert 2 * table.loc["batch_norm", "coef"] == pytest.approx(
            -2 * direct.params["C(batch_norm, Sum)[S.False]"]
        )


def _unbalanced() -> pd.DataFrame:
    frame = _grid(replicates=2, noise=0.01, seed=4)
    return frame.drop(index=[0, 1, 2, 9, 17, 40, 41]).reset_index(drop=True)


def test_type_ii_anova_of_an_unbalanced_design_matches_statsmodels() -> None:
    frame = _unbalanced()
    a = analyze(_bare(frame), factors=FACTORS, interactions=2)
    direct = smf.ols(
        "test_loss ~ (C(batch_norm) + C(dropout) + C(spatial_attention) + C(activation))**2",
        data=frame,
    ).fit()
    expected = anova_lm(direct, typ=2)
    ours = a.anova.set_index("term")
    names = {"batch_norm": "C(batch_norm)", "activation": "C(activation)",
             "batch_norm:activation": "C(batch_norm):C(activation)",
             "dropout:spatial_attention": "C(dropout):C(spatial_attention)"}  # fmt: skip
    for term, theirs in names.items():
        assert ours.loc[term, "sum_sq"] == pytest.approx(expected.loc[theirs, "sum_sq"], rel=1e-8)
        assert ours.loc[term, "F"] == pytest.approx(expected.loc[theirs, "F"], rel=1e-8)
        assert ours.loc[term, "p"] == pytest.approx(expected.loc[theirs, "PR(>F)"], rel=1e-6)
    assert any("unbalanced" in n for n in a.notes)


def test_type_iii_with_sum_coding_matches_statsmodels() -> None:
    frame = _unbalanced()
    a = analyze(_bare(frame), factors=FACTORS, interactions=2, coding="sum", anova_type=3)
    direct = smf.ols(
        "test_loss ~ (C(batch_norm, Sum) + C(dropout, Sum) + C(spatial_attention, Sum)"
        " + C(activation, Sum))**2",
        data=frame,
    ).fit()
    expected = anova_lm(direct, typ=3)
    ours = a.anova.set_index("term")
    names = {"dropout": "C(dropout, Sum)", "activation": "C(activation, Sum)",
             "batch_norm:dropout": "C(batch_norm, Sum):C(dropout, Sum)"}  # fmt: skip
    for term, theirs in names.items():
        assert ours.loc[term, "sum_sq"] == pytest.approx(expected.loc[theirs, "sum_sq"], rel=1e-8)
    with pytest.raises(AblateError, match="Type III"):
        analyze(_bare(frame), factors=FACTORS, anova_type=3)


def test_hc3_errors_equal_statsmodels_and_p_values_are_adjusted() -> None:
    frame = _grid(replicates=2, noise=0.01)
    a = analyze(_bare(frame), factors=FACTORS, coding="reference", robust="hc3")
    direct = smf.ols(
        "test_loss ~ C(activation) + batch_norm + dropout + spatial_attention", data=frame
    ).fit(cov_type="HC3")
    table = a.coefficients.set_index("term")
    assert table.loc["dropout", "std_err"] == pytest.approx(direct.bse["dropout[T.True]"])
    # Holm by hand over the contrasts (the level means are not tested): sorted p times (3, 2, 1)
    family = a.coefficients[a.coefficients["kind"] == "contrast"]
    assert len(family) == 3
    p = family["p"].to_numpy()
    order = np.argsort(p)
    holm = np.minimum(1, np.maximum.accumulate(p[order] * (len(p) - np.arange(len(p)))))
    np.testing.assert_allclose(family["p_adj"].to_numpy()[order], holm)
    none = analyze(_bare(frame), factors=FACTORS, adjust="none")
    assert none.coefficients["p_adj"].dropna().tolist() == pytest.approx(
        none.coefficients["p"][none.coefficients["p_adj"].notna()].tolist()
    )


def test_tukey_comparisons_match_statsmodels_for_a_one_factor_design() -> None:
    rng = np.random.default_rng(2)
    frame = pd.DataFrame({"act": np.repeat(ACTS, 6)})
    frame["y"] = frame["act"].map({"elu": 1.0, "relu": 1.2, "selu": 1.1, "sigmoid": 1.6})
    frame["y"] += rng.normal(0, 0.2, len(frame))
    a = analyze(_bare(frame), factors=["act"], response="y")
    theirs = pairwise_tukeyhsd(frame["y"], frame["act"])
    expected = pd.DataFrame(theirs.summary().data[1:], columns=theirs.summary().data[0])
    ours = a.pairwise
    assert len(ours) == 6
    for (_, o), (_, e) in zip(ours.iterrows(), expected.iterrows(), strict=True):
        assert (o["level_a"], o["level_b"]) == (e["group1"], e["group2"])
        assert o["diff"] == pytest.approx(float(e["meandiff"]), abs=1e-4)
        assert o["p_tukey"] == pytest.approx(float(e["p-adj"]), abs=1e-3)
        assert o["ci_low"] == pytest.approx(float(e["lower"]), abs=1e-3)


def test_predicted_r2_equals_leave_one_out_refits() -> None:
    frame = _grid(replicates=1, noise=0.01, seed=7)
    a = analyze(_bare(frame), factors=FACTORS)
    X = a.model_matrix.matrix.to_numpy()
    y = frame["test_loss"].to_numpy()
    press = 0.0
    for i in range(len(y)):
        keep = np.arange(len(y)) != i
        beta, *_ = np.linalg.lstsq(X[keep], y[keep], rcond=None)
        press += (y[i] - X[i] @ beta) ** 2
    assert a.fit.pred_r2 == pytest.approx(1 - press / ((y - y.mean()) ** 2).sum())


def test_log_response_reports_ratios() -> None:
    frame = _grid(replicates=2)
    a = analyze(_bare(frame), factors=FACTORS, log=True)
    assert a.response == "log(test_loss)"
    row = a.effects.set_index("factor").loc["batch_norm"]
    assert row["ratio"] == pytest.approx(np.exp(row["effect"]))
    assert row["ratio"] < 1  # batch norm lowers the loss
    frame.loc[0, "test_loss"] = -1.0
    with pytest.raises(AblateError, match="positive response"):
        analyze(_bare(frame), factors=FACTORS, log=True)


def test_failed_and_diverged_trials_are_left_out_and_counted() -> None:
    frame = _grid(replicates=1)
    frame.loc[[0, 5], "status"] = "failed"
    frame.loc[7, "status"] = "diverged"
    frame.loc[[0, 5, 7], "test_loss"] = np.nan
    a = analyze(_bare(frame), factors=FACTORS)
    assert a.n_used == 29 and a.excluded == {"failed": 2, "diverged": 1}
    assert any("2 failed trials" in n for n in a.notes)


def test_every_output_format() -> None:
    a = _analyze(_bare(_grid(replicates=2)), factors=FACTORS, interactions=2)
    data = json.loads(render(a, "json"))
    assert {"coefficients", "effects", "anova", "fit", "marginal_means", "pairwise"} <= set(data)
    first = data["coefficients"][0]
    assert {"term", "coef", "std_err", "t", "p", "ci_low", "ci_high", "p_adj", "effect"} <= set(
        first
    )
    assert data["fit"]["n_used"] == 64
    text = render(a, "text")
    assert max(len(line) for line in text.split("OLS summary")[0].splitlines()) <= 100
    assert "ANOVA (Type II" in text and "Tukey" in text
    md = render(a, "markdown")
    assert "| term | coef |" in md and "### ANOVA" in md
    tex = render(a, "latex")
    assert r"\begin{tabular}" in tex and r"batch\_norm" in tex
    csv = render(a, "csv", table="anova")
    assert csv.splitlines()[0].startswith("term,df,sum_sq")


@pytest.mark.parametrize(
    ("change", "kwargs", "message"),
    [
        (lambda f: f, {"factors": FACTORS, "response": "nope"}, "no column 'nope'"),
        (lambda f: f.assign(test_loss="x"), {"factors": FACTORS}, "not numeric"),
        (lambda f: f.assign(dropout=True), {"factors": FACTORS}, "'dropout' has 1 level"),
        (lambda f: f.iloc[::5], {"factors": FACTORS, "interactions": 2}, "too few"),
        (lambda f: f.assign(sa2=f["spatial_attention"]), {"factors": [*FACTORS, "sa2"]},
         "sa2 is aliased with spatial_attention"),
        (lambda f: f, {}, "factors=a,b,c"),
        (lambda f: f, {"factors": FACTORS, "baselines": (("activation", "gelu"),)},
         "not one of its levels"),
    ],
)  # fmt: skip
def test_bad_requests_get_clear_messages(
    change: Callable[[pd.DataFrame], pd.DataFrame], kwargs: dict[str, Any], message: str
) -> None:
    with pytest.raises(AblateError, match=message):
        analyze(_bare(change(_grid(replicates=1))), **kwargs)


# ---------------------------------------------------------------------------------------------
# Fractions, fold-overs and screening designs: Montgomery, Design and Analysis of Experiments,
# chapter 8. The book rounds to two decimals (and .xx5 upward), hence abs=0.01.


def _standard_order(k: int) -> np.ndarray:
    """The 2^k runs in standard (Yates) order, A varying fastest, coded ±1."""
    return np.array([[1 if (i >> j) & 1 else -1 for j in range(k)] for i in range(1 << k)])


def _coded_frame(x: np.ndarray, names: list[str], y: np.ndarray, column: str) -> pd.DataFrame:
    frame = pd.DataFrame(x > 0, columns=names)
    frame[column] = y
    return frame


def _example_8_1() -> pd.DataFrame:
    """Example 8.1 (Tables 8.3, 8.4): filtration rate in a 2^(4-1)_IV with D = ABC."""
    base = _standard_order(3)
    x = np.column_stack([base, base.prod(axis=1)])
    rate = np.array([45, 100, 45, 65, 75, 60, 80, 96.0])  # (1), ad, bd, ab, cd, ac, bc, abcd
    return _coded_frame(x, list("ABCD"), rate, "rate")


@pytest.mark.slow  # a few seconds (the fast part stays under 3 minutes)
def test_montgomery_8_1_effects_aliases_and_the_reduced_model() -> None:
    a = analyze(_bare(_example_8_1()), factors=list("ABCD"), response="rate", coding="sum")
    st = a.structure
    assert (st.kind, st.resolution, st.defining_relation()) == ("regular fraction", 4, "I = ABCD")
    assert st.chains == ("A×B = C×D", "A×C = B×D", "A×D = B×C")
    effects = a.effects.set_index("factor")
    published = {"A": 19.00, "B": 1.50, "C": 14.00, "D": 16.50}  # [A] → A + BCD, ...
    assert effects["effect"].to_dict() == pytest.approx(published, abs=1e-9)
    assert effects.loc["A", "aliases"] == "+ B×C×D" and effects.loc["D", "aliases"] == "+ A×B×C"
    text = render(a)
    assert "A (+ B×C×D)" in text and "Aliases of the estimated terms" in text
    assert "defining relation: I = ABCD" in text
    assert "### Aliases of the estimated terms" in render(a, "markdown")
    assert r"B$\times$C$\times$D" in render(a, "latex")
    assert json.loads(render(a, "json"))["structure"]["defining_relation"] == "I = ABCD"
    assert render(a, "csv", table="aliases").splitlines()[0] == "term,aliases,partial,label"
    # the book's model: 70.75 + 9.5 x1 + 7 x3 + 8.25 x4 - 9.25 x1x3 + 9.5 x1x4 (A, C, D project
    # to a full 2^3, so its AC and AD are estimable)
    reduced = analyze(_bare(_example_8_1()), factors=list("ACD"), response="rate", coding="sum",
                      terms=(("A", "C"), ("A", "D")))  # fmt: skip
    coef = reduced.coefficients.set_index("term")["coef"].to_dict()
    assert coef == pytest.approx({"intercept": 70.75, "A": 9.5, "C": 7.0, "D": 8.25,
                                  "A:C": -9.25, "A:D": 9.5})  # fmt: skip
    # the same two chains within the fraction: AC estimates AC + BD, AD estimates AD + BC
    full = analyze(_bare(_example_8_1()), factors=list("ABCD"), response="rate", coding="sum",
                   terms=(("A", "C"), ("A", "D")))  # fmt: skip
    aliases = full.aliases.set_index("term")["aliases"]
    assert aliases["A:C"] == "+ B×D" and aliases["A:D"] == "+ B×C"
    assert 2 * full.coefficients.set_index("term").loc["A:C", "coef"] == pytest.approx(-18.5)


def test_a_model_with_aliased_terms_is_refused_naming_the_alias() -> None:
    with pytest.raises(AblateError) as info:
        analyze(_bare(_example_8_1()), factors=list("ABCD"), response="rate", interactions=2)
    message = str(info.value)
    assert "B×C is aliased with A×D (B×C = A×D)" in message
    assert "2^(4-1) fraction, resolution IV" in message and "terms=a:b" in message
    assert "singular" not in message
    with pytest.raises(AblateError, match="C×D is aliased with A×B"):
        analyze(_bare(_example_8_1()), factors=list("ABCD"), response="rate",
                terms=(("A", "B"), ("C", "D")))  # fmt: skip


# Example 8.7 (Tables 8.19, 8.21, 8.22): eye focus time, 2^(7-4)_III with D = AB, E = AC,
# F = BC, G = ABC, then the full fold-over (every sign reversed).
FOCUS = np.array([85.5, 75.1, 93.2, 145.4, 83.7, 77.6, 95.0, 141.8])
FOCUS_FOLD = np.array([91.3, 136.7, 82.4, 73.4, 94.1, 143.8, 87.3, 71.9])


def _example_8_7() -> tuple[np.ndarray, np.ndarray]:
    a, b, c = _standard_order(3).T
    first = np.column_stack([a, b, c, a * b, a * c, b * c, a * b * c])
    return first, -first


@pytest.mark.slow  # a few seconds (the fast part stays under 3 minutes)
def test_montgomery_8_7_fraction_and_fold_over() -> None:
    first, folded = _example_8_7()
    names = list("ABCDEFG")
    one = analyze(_bare(_coded_frame(first, names, FOCUS, "y")), factors=names, response="y")
    assert one.saturated and one.lenth is not None  # 8 runs, 8 coefficients: Lenth's method
    assert one.structure.resolution == 3
    published = {"A": 20.63, "B": 38.38, "C": -0.28, "D": 28.88, "E": -0.28, "F": -0.63,
                 "G": -2.43}  # fmt: skip
    effects = one.effects.set_index("factor")
    assert effects["effect"].to_dict() == pytest.approx(published, abs=0.01)
    assert effects.loc["B", "aliases"].startswith("+ A×D + C×F + E×G")  # B + AD + CF + EG
    two = analyze(_bare(_coded_frame(folded, names, FOCUS_FOLD, "y")), factors=names,
                  response="y")  # fmt: skip
    published_fold = {"A": -17.68, "B": 37.73, "C": -3.33, "D": 29.88, "E": 0.53, "F": 1.63,
                      "G": 2.68}  # fmt: skip
    assert two.effects.set_index("factor")["effect"].to_dict() == pytest.approx(
        published_fold, abs=0.01
    )
    # both fractions together: main effects free of two-factor interactions
    both = _coded_frame(np.vstack([first, folded]), names, np.r_[FOCUS, FOCUS_FOLD], "y")
    combined = analyze(_bare(both), factors=names, response="y", coding="sum")
    st = combined.structure
    assert st.resolution == 4 and st.runs == 16
    words = set(st.defining_relation().removeprefix("I = ").split(" = "))
    assert words == {"ABCG", "BCDE", "ACDF", "ADEG", "BDFG", "ABEF", "CEFG"}
    de_aliased = {"A": 1.48, "B": 38.05, "C": -1.80, "D": 29.38, "E": 0.13, "F": 0.50,
                  "G": 0.13}  # fmt: skip
    e = combined.effects.set_index("factor")
    assert e["effect"].to_dict() == pytest.approx(de_aliased, abs=0.01)
    for aliases in e["aliases"]:  # only three-factor interactions are left: A + BCG + BEF + ...
        terms = aliases.removeprefix("+ ").split(" + ")
        assert len(terms) == 4 and all(t.count("×") == 2 for t in terms), aliases
    # and the two-factor interaction chains, one term per chain: BD + CE + FG = 19.15, ...
    chains = {("B", "D"): 19.15, ("A", "B"): -0.50, ("A", "C"): -0.40, ("B", "C"): -1.13,
              ("C", "D"): -2.55, ("A", "D"): 0.325, ("A", "E"): 1.525}  # fmt: skip
    model = analyze(_bare(both), factors=names, response="y", coding="sum", terms=tuple(chains))
    coef = model.coefficients.set_index("term")["coef"]
    for (f, g), value in chains.items():
        assert 2 * coef[f"{f}:{g}"] == pytest.approx(value, abs=0.01), (f, g)
    aliases = model.aliases.set_index("term")["aliases"]
    assert aliases["B:D"] == "+ C×E + F×G"


# Example 8.8 (Tables 8.25, 8.28): a 20-run Plackett–Burman design in 12 factors, analysed in
# JMP; its final model, with its published fit.
PB20 = """\
1 1 1 1 1 1 1 1 1 1 1 1 221.5032
-1 1 -1 -1 1 1 1 1 -1 1 -1 1 213.8037
-1 -1 1 -1 -1 1 1 1 1 -1 1 -1 167.5424
1 -1 -1 1 -1 -1 1 1 1 1 -1 1 232.2071
1 1 -1 -1 1 -1 -1 1 1 1 1 -1 186.3883
-1 1 1 -1 -1 1 -1 -1 1 1 1 1 210.6819
-1 -1 1 1 -1 -1 1 -1 -1 1 1 1 168.4163
-1 -1 -1 1 1 -1 -1 1 -1 -1 1 1 180.9365
-1 -1 -1 -1 1 1 -1 -1 1 -1 -1 1 172.5698
1 -1 -1 -1 -1 1 1 -1 -1 1 -1 -1 181.8605
-1 1 -1 -1 -1 -1 1 1 -1 -1 1 -1 202.4022
1 -1 1 -1 -1 -1 -1 1 1 -1 -1 1 186.0079
-1 1 -1 1 -1 -1 -1 -1 1 1 -1 -1 216.4375
1 -1 1 -1 1 -1 -1 -1 -1 1 1 -1 192.4121
1 1 -1 1 -1 1 -1 -1 -1 -1 1 1 224.4362
1 1 1 -1 1 -1 1 -1 -1 -1 -1 1 190.3312
1 1 1 1 -1 1 -1 1 -1 -1 -1 -1 228.3411
-1 1 1 1 1 -1 1 -1 1 -1 -1 -1 223.6747
-1 -1 1 1 1 1 -1 1 -1 1 -1 -1 163.5351
1 -1 -1 1 1 1 1 -1 1 -1 1 -1 236.5124"""


@pytest.mark.slow  # a few seconds (the fast part stays under 3 minutes)
def test_montgomery_8_8_plackett_burman_final_model() -> None:
    data = np.array([[float(v) for v in row.split()] for row in PB20.splitlines()])
    names = [f"X{i}" for i in range(1, 13)]
    frame = _coded_frame(data[:, :12], names, data[:, 12], "y")
    screening = analyze(_bare(frame), factors=names, response="y", coding="sum")
    assert screening.structure.kind == "orthogonal two-level"
    partial = screening.aliases.set_index("term")["partial"]
    assert "two-factor interactions at ±0.6" in partial["X1"]
    assert "two-factor interactions at ±0.2" in partial["X1"]
    final = analyze(_bare(frame), factors=["X1", "X2", "X4", "X5"], response="y", coding="sum",
                    terms=(("X1", "X2"), ("X1", "X4")))  # fmt: skip
    coef = final.coefficients.set_index("term")["coef"].to_dict()
    assert coef == pytest.approx({"intercept": 200.0, "X1": 8.0, "X2": 9.89242, "X4": 12.10758,
                                  "X5": 2.58190, "X1:X2": -12.53789, "X1:X4": 9.53789},
                                 abs=1e-4)  # fmt: skip
    residual = final.anova.set_index("term").loc["residual"]
    assert residual["sum_sq"] == pytest.approx(381.79, abs=0.01) and residual["df"] == 13
    assert final.fit.r2 == pytest.approx(0.9644, abs=1e-4)
    assert final.fit.adj_r2 == pytest.approx(0.9480, abs=1e-4)
    assert not final.correlations.empty  # X1:X2 and X1:X4 are not orthogonal to X5 here
    json_out = json.loads(render(screening, "json"))
    assert json_out["structure"]["kind"] == "orthogonal two-level"
    assert {r["term"] for r in json_out["aliases"]} >= set(names)
