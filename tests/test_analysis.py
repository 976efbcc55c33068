"""The reference analysis: the one-hot design, and OLS equal to statsmodels called directly."""

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

from ablate.analysis import analyze, design_matrix, factor_info
from ablate.errors import AblateError
from ablate.results import Results

ACTS = ["elu", "relu", "selu", "sigmoid"]
TRUE_COEF = {"batch_norm": -0.02, "dropout": -0.01, "spatial_attention": -0.005,
             "elu": 0.30, "relu": 0.31, "selu": 0.33, "sigmoid": 0.36}  # fmt: skip


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


def _bare(frame: pd.DataFrame) -> Results:
    return Results(trials=frame, epochs=None, study=None, source=Path("grid.parquet"))


FACTORS = ["batch_norm", "dropout", "spatial_attention", "activation"]


def test_design_matrix_is_the_references_one_hot_without_intercept() -> None:
    frame = _grid(replicates=1)
    infos = tuple(factor_info(frame, n, _bare(frame)) for n in FACTORS)
    design, notes = design_matrix(frame, infos)
    assert list(design.columns) == [
        "batch_norm", "dropout", "spatial_attention",
        "activation[elu]", "activation[relu]", "activation[selu]", "activation[sigmoid]",
    ]  # fmt: skip
    assert notes == []
    assert set(np.unique(design.to_numpy())) == {0.0, 1.0}
    # the activation columns sum to one in every row: together they are the intercept
    assert (design.filter(like="activation[").sum(axis=1) == 1).all()
    assert design["batch_norm"].tolist() == frame["batch_norm"].astype(float).tolist()


def test_ols_equals_statsmodels_formula_api_and_covers_the_truth() -> None:
    frame = _grid()
    analysis = analyze(_bare(frame), factors=FACTORS, response="test_loss")
    direct = smf.ols(
        "test_loss ~ 0 + C(activation) + batch_norm + dropout + spatial_attention",
        data=frame.assign(**{c: frame[c].astype(float) for c in FACTORS[:3]}),
    ).fit()
    names = {
        "batch_norm": "batch_norm", "dropout": "dropout",
        "spatial_attention": "spatial_attention",
        **{f"activation[{a}]": f"C(activation)[{a}]" for a in ACTS},
    }  # fmt: skip
    table = analysis.coefficients.set_index("term")
    for ours, theirs in names.items():
        assert table.loc[ours, "coef"] == pytest.approx(direct.params[theirs], abs=1e-12)
        assert table.loc[ours, "std_err"] == pytest.approx(direct.bse[theirs], rel=1e-9)
        assert table.loc[ours, "p"] == pytest.approx(direct.pvalues[theirs], rel=1e-6, abs=1e-300)
        low, high = direct.conf_int().loc[theirs]
        assert table.loc[ours, "ci_low"] == pytest.approx(low, abs=1e-12)
        assert table.loc[ours, "ci_high"] == pytest.approx(high, abs=1e-12)
    for term, truth in TRUE_COEF.items():
        row = table.loc[term if term in table.index else f"activation[{term}]"]
        assert row["ci_low"] <= truth <= row["ci_high"], term
    assert analysis.n_used == 96


def test_failed_and_diverged_trials_are_left_out_and_counted() -> None:
    frame = _grid(replicates=1)
    frame.loc[[0, 5], "status"] = "failed"
    frame.loc[7, "status"] = "diverged"
    frame.loc[[0, 5, 7], "test_loss"] = np.nan
    analysis = analyze(_bare(frame), factors=FACTORS)
    assert analysis.n_used == 29
    assert analysis.excluded == {"failed": 2, "diverged": 1}


def test_without_a_categorical_factor_an_intercept_is_added_and_said() -> None:
    frame = _grid(replicates=1)
    analysis = analyze(_bare(frame), factors=FACTORS[:3])
    assert analysis.coefficients["term"].tolist()[0] == "intercept"
    assert any("intercept" in note for note in analysis.notes)


def test_json_lists_the_terms_with_their_statistics() -> None:
    terms = json.loads(analyze(_bare(_grid()), factors=FACTORS).to_json())
    assert len(terms) == 7
    assert set(terms[0]) == {"term", "coef", "std_err", "t", "p", "ci_low", "ci_high"}


@pytest.mark.parametrize(
    ("change", "kwargs", "message"),
    [
        (lambda f: f, {"factors": FACTORS, "response": "nope"}, "no column 'nope'"),
        (lambda f: f.assign(test_loss="x"), {"factors": FACTORS}, "not numeric"),
        (lambda f: f.assign(dropout=True), {"factors": FACTORS}, "'dropout' has 1 level"),
        (lambda f: f.iloc[::5], {"factors": FACTORS}, "too few to fit"),
        (lambda f: f.assign(sa2=f["spatial_attention"]), {"factors": [*FACTORS, "sa2"]},
         "singular"),
        (lambda f: f, {}, "--factors"),
    ],
)  # fmt: skip
def test_bad_analysis_requests_get_clear_messages(
    change: Callable[[pd.DataFrame], pd.DataFrame], kwargs: dict[str, Any], message: str
) -> None:
    with pytest.raises(AblateError, match=message):
        analyze(_bare(change(_grid(replicates=1))), **kwargs)
