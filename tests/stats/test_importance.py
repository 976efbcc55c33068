"""Importance three ways: the linear model's shares against statsmodels' ANOVA, Optuna's
evaluators against Optuna called directly on the same trials, and the chart."""

from __future__ import annotations

import itertools
from pathlib import Path

import numpy as np
import optuna
import pandas as pd
import pytest
import statsmodels.formula.api as smf
from optuna.distributions import CategoricalDistribution
from optuna.importance import (
    FanovaImportanceEvaluator,
    PedAnovaImportanceEvaluator,
    get_param_importances,
)
from statsmodels.stats.anova import anova_lm

from ablate.results import Results
from ablate.stats.analysis import analyze
from ablate.stats.importance import ped_quantile
from ablate.views.importance import importance_chart
from ablate.views.tables import render

OPT = {"sgd": 0.030, "adam": 0.0, "adamw": -0.010, "rmsprop": 0.020}


def _trials() -> pd.DataFrame:
    """32 trials, 2×2×2×4: batch_norm and the optimizer matter, dropout does not."""
    rng = np.random.default_rng(0)
    rows = []
    for bn, aug, do, opt in itertools.product([False, True], [False, True], [False, True], OPT):
        loss = 0.30 - 0.020 * bn + 0.005 * aug + OPT[opt] + rng.normal(0, 0.005)
        rows.append({"batch_norm": bn, "augment": aug, "dropout": do, "optimizer": opt,
                     "test_loss": loss})  # fmt: skip
    return pd.DataFrame(rows)


@pytest.mark.slow  # a few seconds (the fast part stays under 3 minutes)
def test_three_readings_of_the_same_trials() -> None:
    frame = _trials()
    names = ["batch_norm", "augment", "dropout", "optimizer"]
    a = analyze(Results(frame, None, None, Path("t.csv")), factors=names)  # seed 0
    table = a.importance.set_index("factor")
    # linear: Type II sums of squares as shares, from statsmodels' formula API
    fit = smf.ols("test_loss ~ C(batch_norm) + C(augment) + C(dropout) + C(optimizer)",
                  frame).fit()  # fmt: skip
    ss = anova_lm(fit, typ=2)["sum_sq"].drop("Residual")
    expected = (ss / ss.sum()).rename(lambda t: t[2:-1])
    assert table["linear"].to_dict() == pytest.approx(expected.to_dict(), rel=1e-9)
    assert table["linear"].sum() == pytest.approx(1.0)
    # Optuna's evaluators, called directly on a study of the same trials (the levels in the
    # analysis's order: false < true, a bare table's strings sorted)
    dists = {n: CategoricalDistribution(sorted(frame[n].unique().tolist())) for n in names}
    study = optuna.create_study(direction="minimize")
    for row in frame.to_dict(orient="records"):
        study.add_trial(optuna.trial.create_trial(
            params={n: row[n] for n in names}, distributions=dists, value=row["test_loss"]
        ))  # fmt: skip
    fanova = get_param_importances(study, evaluator=FanovaImportanceEvaluator(seed=0))
    ped = get_param_importances(
        study, evaluator=PedAnovaImportanceEvaluator(target_quantile=ped_quantile(32))
    )
    assert table["fanova"].to_dict() == pytest.approx(fanova, abs=1e-9)
    assert table["ped_anova"].to_dict() == pytest.approx(ped, abs=1e-9)
    assert ped_quantile(32) == 0.25 and ped_quantile(200) == 0.1 and ped_quantile(10) == 0.5
    # the readings agree on what matters most here
    assert set(table["linear"].nlargest(2).index) == {"batch_norm", "optimizer"}
    assert set(table["fanova"].nlargest(2).index) == {"batch_norm", "optimizer"}
    text = render(a)
    assert "linear model  fANOVA  PED-ANOVA" in text
    fig = importance_chart(a)
    bars = [p for p in fig.axes[0].patches]
    assert len(bars) == 3 * 4
    assert [t.get_text() for t in fig.axes[0].get_yticklabels()][-1] == table["linear"].idxmax()


def test_importance_can_be_left_out_and_ped_anova_needs_trials() -> None:
    frame = _trials().iloc[[0, 5, 10, 15, 16, 21, 26, 31]]  # 8 trials, every level
    a = analyze(Results(frame, None, None, Path("t.csv")),
                factors=["optimizer", "batch_norm"], importance=True)  # fmt: skip
    assert a.importance["ped_anova"].isna().all()
    assert any("PED-ANOVA importance needs at least 10 trials" in n for n in a.notes)
    none = analyze(Results(frame, None, None, Path("t.csv")), factors=["optimizer"],
                   importance=False)  # fmt: skip
    assert none.importance is None
