"""Sums of squares: the ANOVA table (Type II or III) and the residual split by replicates into
lack of fit and pure error (the seed-to-seed spread within cells)."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
from numpy.typing import NDArray

from ablate.designs.matrix import Coding, FactorInfo, Term, build_matrix
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
    block: NDArray[np.generic] | None = None,
) -> pd.DataFrame:
    """Type II (hierarchical) or Type III (marginal, sum coding) sums of squares per term.

    Computed from nested least-squares fits on a design with an explicit intercept: Type II
    SS(A) = RSS(without A and every term containing A) − RSS(without every term containing A
    but with A); Type III SS(A) = RSS(without A) − RSS(full). With a ``block`` (the replicate,
    say), every fit has the blocks in it (absorbed: deviations from each block's means), the
    table gains the blocks' line and the residual is what the blocks leave, as a textbook's
    blocked factorial prints it (Montgomery, Example 7.1).
    """
    coding: Coding = "sum" if opts.coding == "sum" else "treatment"
    design = build_matrix(frame, factors, coding, opts.interactions, opts.terms)
    X = design.matrix.to_numpy(dtype=float)
    rows: list[dict[str, float | str]] = []
    target = y
    if block is not None:
        from ablate.stats.blocks import absorb

        X, target, rss_blocked, df_blocked = absorb(X, y, block)
        df_block = len(pd.unique(block)) - 1
        ss_block = max(rss_full - rss_blocked, 0.0)
        rss_full, df_resid = rss_blocked, df_blocked
        rows.append({"term": "blocks", "df": df_block, "sum_sq": ss_block,
                     "mean_sq": ss_block / df_block, "F": math.nan, "p": math.nan})  # fmt: skip
    terms = [t for t in design.terms if t.factors]
    ms_resid = rss_full / df_resid if df_resid > 0 else math.nan
    robust = opts.robust == "hc3" and df_resid > 0 and block is None
    tested = df_resid > 0 and not exact
    fits = _Nested(X, design.columns, target, opts.anova_type)
    factor_rows = [fits.row(term, terms, ms_resid, df_resid, tested, robust) for term in terms]
    rows = factor_rows + rows
    if block is not None and tested:
        _test(rows[-1], ms_resid, df_resid)
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
    explained = sum(float(r["sum_sq"]) for r in rows if r["term"] not in ("residual", "total"))
    if opts.anova_type == 2 and abs(explained + rss_full - sst) > 1e-9 * max(sst, 1e-300):
        notes.append(
            "the design is unbalanced (cells with different numbers of trials, or runs whose "
            "terms are not orthogonal): Type II sums of squares do not add up to the total."
        )
    return table


def _test(row: dict[str, float | str], ms_resid: float, df_resid: int) -> None:
    """An F test of a row against the residual."""
    from scipy import stats

    row["F"] = float(row["mean_sq"]) / ms_resid if ms_resid > 0 else math.nan
    row["p"] = float(stats.f.sf(row["F"], row["df"], df_resid)) if ms_resid > 0 else math.nan


class _Nested:
    """Nested least-squares fits of one response on subsets of a matrix's columns."""

    def __init__(self, X: NDArray[np.float64], columns: list[str], y: NDArray[np.float64],
                 anova_type: int) -> None:  # fmt: skip
        self.X, self.y, self.anova_type = X, y, anova_type
        self.columns = columns
        self.index = {c: i for i, c in enumerate(columns)}

    def row(
        self, term: Term, terms: list[Term], ms_resid: float, df_resid: int, tested: bool,
        robust: bool,
    ) -> dict[str, float | str]:  # fmt: skip
        """One term's sum of squares (from two nested fits), and its F test where there is one."""
        from statsmodels.regression.linear_model import OLS

        drop_higher = {c for t in terms if set(term.factors) < set(t.factors) for c in t.columns}
        keep_with = [c for c in self.columns if self.anova_type != 2 or c not in drop_higher]
        keep_without = [c for c in keep_with if c not in term.columns]
        X_with = self.X[:, [self.index[c] for c in keep_with]]
        X_without = self.X[:, [self.index[c] for c in keep_without]]
        ss = max(rss(X_without, self.y) - rss(X_with, self.y), 0.0)
        df = len(term.columns)
        row: dict[str, float | str] = {
            "term": term.label,
            "df": df,
            "sum_sq": ss,
            "mean_sq": ss / df,
            "F": math.nan,
            "p": math.nan,
        }
        if tested and robust:
            R = np.zeros((df, X_with.shape[1]))
            for i, c in enumerate(term.columns):
                R[i, keep_with.index(c)] = 1.0
            test = OLS(self.y, X_with).fit(cov_type="HC3", use_t=True).f_test(R)
            row["F"], row["p"] = float(np.squeeze(test.fvalue)), float(test.pvalue)
        elif tested:
            _test(row, ms_resid, df_resid)
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
