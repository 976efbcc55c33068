"""Factorial effects: explicit one-hot design matrices fitted by statsmodels OLS.

The reference analysis regresses the response (the test loss) on a one-hot design matrix:
one 0/1 column per on/off factor and one 0/1 column per level of the categorical factor,
with no intercept, so the level columns of that factor play the intercept's part. With the
loss as response, a negative coefficient means the factor (or level) lowers the loss.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from ablate.errors import AblateError
from ablate.results import Results

if TYPE_CHECKING:
    import pandas as pd


@dataclass(frozen=True)
class FactorInfo:
    """A factor as the analysis sees it: its column and its levels in analysis order."""

    name: str
    kind: str  # "bool", "number" or "string"
    levels: tuple[Any, ...]


@dataclass(frozen=True)
class Analysis:
    """An OLS fit of the response on the design matrix, and what went into it."""

    response: str
    factors: tuple[FactorInfo, ...]
    n_used: int
    excluded: dict[str, int]  # status -> rows left out
    design: pd.DataFrame  # the exact matrix fitted, one named column per term
    coefficients: pd.DataFrame  # term, coef, std_err, t, p, ci_low, ci_high
    summary: str  # statsmodels' summary table
    notes: tuple[str, ...] = field(default=())

    def to_json(self) -> str:
        return json.dumps(
            self.coefficients.to_dict(orient="records"), indent=2, allow_nan=False, default=float
        )


def analyze(
    results: Results,
    *,
    response: str | None = None,
    factors: list[str] | None = None,
) -> Analysis:
    """Fit the reference analysis to a results folder or a bare table."""
    frame = results.trials
    study = results.study
    if study is not None:
        names = list(factors or study.factor_names)
        response = response or study.analysis.response
    else:
        if not factors:
            raise AblateError(
                f"{results.source} is a bare table: name its factor columns with "
                "--factors a,b,c (and the response with --response COLUMN)."
            )
        names = list(factors)
        response = response or "test_loss"
    _check_columns(frame, names, response, results)

    excluded: dict[str, int] = {}
    if "status" in frame.columns:
        statuses = frame["status"].astype("string")
        for status, count in statuses[statuses != "complete"].value_counts().items():
            excluded[str(status)] = int(count)
        frame = frame[statuses == "complete"]
    y = _numeric_response(frame, response)
    missing = y.isna()
    if missing.any():
        excluded["missing response"] = int(missing.sum())
        frame, y = frame[~missing], y[~missing]

    infos = tuple(factor_info(frame, name, results) for name in names)
    design, notes = design_matrix(frame, infos)
    if len(design) <= design.shape[1]:
        raise AblateError(
            f"{len(design)} usable rows are too few to fit {design.shape[1]} coefficients "
            "(a fit needs more rows than columns); run more trials or replicates, or analyse "
            "fewer factors."
        )
    import numpy as np
    from statsmodels.regression.linear_model import OLS

    if np.linalg.matrix_rank(design.to_numpy()) < design.shape[1]:
        raise AblateError(
            "the design matrix is singular: some factor columns are combinations of others "
            "(a factor that never varies among the usable rows, or two factors that always "
            "vary together). Check the factors with --factors, or run the missing cells."
        )
    fit = OLS(y.to_numpy(dtype=float), design.to_numpy(dtype=float)).fit()
    ci = fit.conf_int(alpha=0.05)
    import pandas as pd

    coefficients = pd.DataFrame(
        {
            "term": list(design.columns),
            "coef": fit.params,
            "std_err": fit.bse,
            "t": fit.tvalues,
            "p": fit.pvalues,
            "ci_low": ci[:, 0],
            "ci_high": ci[:, 1],
        }
    )
    summary = fit.summary(yname=response, xname=list(design.columns)).as_text()
    return Analysis(
        response=response,
        factors=infos,
        n_used=len(design),
        excluded=excluded,
        design=design,
        coefficients=coefficients,
        summary=summary,
        notes=tuple(notes),
    )


def factor_info(frame: pd.DataFrame, name: str, results: Results) -> FactorInfo:
    """Kind and ordered levels of a factor column (from the study when there is one)."""
    column = frame[name]
    if results.study is not None and name in results.study.factor_names:
        f = results.study.factor(name)
        present = set(column.dropna().tolist())
        levels = tuple(v for v in f.ordered_levels() if v in present)
        kind = f.kind
    else:
        values = column.dropna().unique().tolist()
        if column.dtype == bool or all(isinstance(v, bool) for v in values):
            kind, levels = "bool", tuple(sorted(values))
        elif all(isinstance(v, (int, float)) for v in values):
            kind, levels = "number", tuple(sorted(values))
        else:
            kind, levels = "string", tuple(sorted(str(v) for v in values))
    if len(levels) < 2:
        raise AblateError(
            f"factor '{name}' has {len(levels)} level among the usable rows, so it has no "
            "effect to estimate; leave it out of --factors (or run the cells that vary it)."
        )
    return FactorInfo(name, kind, levels)


def design_matrix(
    frame: pd.DataFrame, factors: tuple[FactorInfo, ...]
) -> tuple[pd.DataFrame, list[str]]:
    """The reference's one-hot matrix: 0/1 per on/off factor, per level of categoricals.

    The first categorical factor keeps a column for every level and stands in for the
    intercept; any further categorical factor drops its first level (its baseline), or the
    columns would be collinear. Without a categorical factor an intercept column is added.
    """
    import pandas as pd

    columns: dict[str, Any] = {}
    notes: list[str] = []
    has_full_set = False
    for f in factors:
        values = frame[f.name]
        if f.kind == "bool" and set(f.levels) == {False, True}:
            columns[f.name] = values.astype(bool).astype(float).to_numpy()
            continue
        levels = f.levels if not has_full_set else f.levels[1:]
        if has_full_set:
            notes.append(
                f"{f.name}: levels are measured against {f.name}[{f.levels[0]}] (its baseline)."
            )
        for level in levels:
            columns[f"{f.name}[{level}]"] = (values == level).astype(float).to_numpy()
        has_full_set = True
    if not has_full_set:
        columns = {"intercept": [1.0] * len(frame), **columns}
        notes.append(
            "no categorical factor has level columns that can stand in for the intercept, so "
            "an intercept column was added (it is the response with every factor off)."
        )
    return pd.DataFrame(columns, index=frame.index), notes


def _check_columns(frame: pd.DataFrame, names: list[str], response: str, results: Results) -> None:
    missing = [n for n in [*names, response] if n not in frame.columns]
    if missing:
        raise AblateError(
            f"{results.source} has no column {', '.join(repr(m) for m in missing)}; its columns "
            f"are {', '.join(map(str, frame.columns))}."
        )


def _numeric_response(frame: pd.DataFrame, response: str) -> pd.Series:
    import pandas as pd

    column = frame[response]
    if column.dtype == bool or not pd.api.types.is_numeric_dtype(column):
        raise AblateError(
            f"the response column '{response}' is not numeric (it holds {column.dtype} values); "
            "choose a numeric column with --response, such as test_loss."
        )
    return column.astype(float)


def format_table(analysis: Analysis) -> str:
    """The terminal report: what was fitted, then statsmodels' OLS summary."""
    lines = [
        f"Response: {analysis.response} (lower is better for a loss; a negative coefficient "
        "lowers it)",
        f"Trials used: {analysis.n_used}"
        + (
            "; left out: " + ", ".join(f"{n} {s}" for s, n in analysis.excluded.items())
            if analysis.excluded
            else ""
        ),
    ]
    lines += [f"Note: {n}" for n in analysis.notes]
    return "\n".join(lines) + "\n\n" + analysis.summary
