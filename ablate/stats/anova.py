"""Sums of squares: the ANOVA table (Type II or III) and the residual split by replicates into
lack of fit and pure error (the seed-to-seed spread within cells)."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
from numpy.typing import NDArray

from ablate.designs.matrix import Coding, FactorInfo, ModelMatrix, Term, build_matrix
from ablate.stats.options import Options


def rss(X: NDArray[np.float64], y: NDArray[np.float64]) -> float:
    beta, *_ = np.linalg.lstsq(X, y, rcond=None)
    r = y - X @ beta
    return float(r @ r)


def anova(
    frame: pd.DataFrame,
    y: NDArray[np.float64],
    factors: tuple[FactorInfo, ...],
    opts: Options,
    rss_full: float,
    df_resid: int,
    sst: float,
    exact: bool,
    notes: list[str],
) -> pd.DataFrame:
    """Type II (hierarchical) or Type III (marginal, sum coding) sums of squares per term.

    Computed from nested least-squares fits on a design with an explicit intercept: Type II
    SS(A) = RSS(without A and every term containing A) − RSS(without every term containing A
    but with A); Type III SS(A) = RSS(without A) − RSS(full).
    """
    coding: Coding = "sum" if opts.coding == "sum" else "treatment"
    design = build_matrix(frame, factors, coding, opts.interactions, opts.terms)
    terms = [t for t in design.terms if t.factors]
    ms_resid = rss_full / df_resid if df_resid > 0 else math.nan
    robust = opts.robust == "hc3" and df_resid > 0
    tested = df_resid > 0 and not exact
    rows = [_term_row(design, y, term, terms, opts, ms_resid, df_resid, tested, robust)
            for term in terms]  # fmt: skip
    rows.append({"term": "residual", "df": df_resid, "sum_sq": rss_full, "mean_sq": ms_resid,
                 "F": math.nan, "p": math.nan})  # fmt: skip
    rows.append({"term": "total", "df": len(y) - 1, "sum_sq": sst, "mean_sq": math.nan,
                 "F": math.nan, "p": math.nan})  # fmt: skip
    table = pd.DataFrame(rows)
    table["pct_ss"] = 100.0 * table["sum_sq"] / sst if sst > 0 else math.nan
    if robust:
        notes.append(
            "ANOVA F and p are Wald tests with HC3 covariance; sums of squares are classical."
        )
    explained = sum(r["sum_sq"] for r in rows if r["term"] not in ("residual", "total"))
    if opts.anova_type == 2 and abs(explained + rss_full - sst) > 1e-9 * max(sst, 1e-300):
        notes.append(
            "the design is unbalanced (cells with different numbers of trials, or runs whose "
            "terms are not orthogonal): Type II sums of squares do not add up to the total."
        )
    return table


def _term_row(
    design: ModelMatrix,
    y: NDArray[np.float64],
    term: Term,
    terms: list[Term],
    opts: Options,
    ms_resid: float,
    df_resid: int,
    tested: bool,
    robust: bool,
) -> dict[str, float | str]:
    """One term's sum of squares (from two nested fits), and its F test where there is one."""
    from scipy import stats
    from statsmodels.regression.linear_model import OLS

    X = design.matrix.to_numpy(dtype=float)
    index = {c: i for i, c in enumerate(design.columns)}
    drop_higher = {c for t in terms if set(term.factors) < set(t.factors) for c in t.columns}
    keep_with = [c for c in design.columns if opts.anova_type != 2 or c not in drop_higher]
    keep_without = [c for c in keep_with if c not in term.columns]
    X_with = X[:, [index[c] for c in keep_with]]
    ss = max(rss(X[:, [index[c] for c in keep_without]], y) - rss(X_with, y), 0.0)
    df = len(term.columns)
    row: dict[str, float | str] = {"term": term.label, "df": df, "sum_sq": ss, "mean_sq": ss / df,
                                   "F": math.nan, "p": math.nan}  # fmt: skip
    if tested and robust:
        R = np.zeros((df, X_with.shape[1]))
        for i, c in enumerate(term.columns):
            R[i, keep_with.index(c)] = 1.0
        test = OLS(y, X_with).fit(cov_type="HC3", use_t=True).f_test(R)
        row["F"], row["p"] = float(np.squeeze(test.fvalue)), float(test.pvalue)
    elif tested:
        row["F"] = (ss / df) / ms_resid
        row["p"] = float(stats.f.sf(row["F"], df, df_resid))
    return row


# ---------------------------------------------------------------------------------------------
# Replicates: pure error, lack of fit, seed-to-seed spread


def replicates(
    frame: pd.DataFrame,
    y: NDArray[np.float64],
    factors: tuple[FactorInfo, ...],
    rss: float,
    df_resid: int,
    notes: list[str],
) -> tuple[pd.DataFrame | None, pd.DataFrame]:
    """The cells' spread (seed to seed), and the residual split into pure error and lack of
    fit where cells have replicates (None otherwise)."""
    from scipy import stats

    names = [f.name for f in factors]
    data = frame[names].copy()
    data["_y"] = y
    grouped = data.groupby(names, sort=False, observed=True)["_y"]
    cells = grouped.agg(n="size", mean="mean", sd="std").reset_index()
    cells["sd"] = cells["sd"].where(cells["n"] > 1)
    for f in factors:
        cells[f.name] = [f.level_label(v) for v in cells[f.name]]
    ss_pe = float(grouped.apply(lambda g: ((g - g.mean()) ** 2).sum()).sum())
    df_pe = len(y) - len(cells)
    if df_pe == 0:
        notes.append(
            "one trial per cell: no pure-error estimate (add replicates to test lack of fit)."
        )
        return None, cells
    df_lof = df_resid - df_pe
    ms_pe = ss_pe / df_pe
    rows = []
    if df_lof > 0:
        ss_lof = max(rss - ss_pe, 0.0)
        f_lof = (ss_lof / df_lof) / ms_pe if ms_pe > 0 else math.nan
        rows.append({"source": "lack of fit", "df": df_lof, "sum_sq": ss_lof,
                     "mean_sq": ss_lof / df_lof, "F": f_lof,
                     "p": float(stats.f.sf(f_lof, df_lof, df_pe))})  # fmt: skip
    else:
        notes.append("the model fits every cell mean exactly: the residual is all pure error.")
    rows.append({"source": "pure error", "df": df_pe, "sum_sq": ss_pe, "mean_sq": ms_pe,
                 "F": math.nan, "p": math.nan})  # fmt: skip
    notes.append(
        f"seed-to-seed standard deviation (pooled within cells): {math.sqrt(ms_pe):.4g} "
        f"({df_pe} df)."
    )
    return pd.DataFrame(rows), cells
