"""The linear model's estimates as tables: coefficients, effects of two-level factors, estimated
marginal means, pairwise comparisons (Tukey), observed interaction means.

Every estimate is a linear combination L·β of the coefficients, with its standard error from
their covariance (:func:`contrast`); an effect is a contrast of marginal means (the high level
against the low one, averaged over the other factors' levels on the reference grid), so it
means the same in every coding and with interactions.
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd

from ablate.designs.matrix import FactorInfo, ModelMatrix
from ablate.stats.options import Options
from ablate.stats.verdicts import clear_column

if TYPE_CHECKING:
    from numpy.typing import NDArray


def main_column(f: FactorInfo, design: ModelMatrix) -> str:
    """The column of a two-level factor's main effect."""
    term = next(t for t in design.terms if t.factors == (f.name,))
    return term.columns[0]


def leverage(X: NDArray[np.float64]) -> NDArray[np.float64]:
    """Diagonal of the hat matrix X (X'X)^-1 X', via a QR decomposition."""
    q, _ = np.linalg.qr(X)
    h: NDArray[np.float64] = (q * q).sum(axis=1)
    return np.clip(h, 0.0, 1.0)


def adjust(p: NDArray[np.float64], method: str) -> NDArray[np.float64]:
    from statsmodels.stats.multitest import multipletests

    out = np.full(len(p), np.nan)
    ok = ~np.isnan(p)
    if method == "none" or not ok.any():
        out[ok] = p[ok]
        return out
    out[ok] = multipletests(p[ok], method=method)[1]
    return out


def contrast(
    L: NDArray[np.float64],
    beta: NDArray[np.float64],
    cov: NDArray[np.float64] | None,
    df_resid: int,
    t_crit: float,
) -> dict[str, float]:
    """Estimate, standard error, t, p and interval of the linear combination L·β."""
    from scipy import stats

    est = float(L @ beta)
    if cov is None:
        return {"estimate": est, "std_err": math.nan, "t": math.nan, "p": math.nan,
                "ci_low": math.nan, "ci_high": math.nan}  # fmt: skip
    se = math.sqrt(max(float(L @ cov @ L), 0.0))
    t = est / se if se > 0 else math.nan
    p = float(2 * stats.t.sf(abs(t), df_resid)) if se > 0 else math.nan
    return {"estimate": est, "std_err": se, "t": t, "p": p,
            "ci_low": est - t_crit * se, "ci_high": est + t_crit * se}  # fmt: skip


def coefficients(
    design: ModelMatrix,
    beta: NDArray[np.float64],
    cov: NDArray[np.float64] | None,
    df_resid: int,
    t_crit: float,
    opts: Options,
) -> pd.DataFrame:
    """Every coefficient with its interval. Those that carry the overall level (the
    intercept, or the reference coding's level columns) are *means*, labelled as such and not
    tested against 0 (nobody asks whether the loss is zero); the rest are contrasts."""
    means = set(design.intercept_columns)
    rows = []
    for j, name in enumerate(design.columns):
        L = np.zeros(len(beta))
        L[j] = 1.0
        c = contrast(L, beta, cov, df_resid, t_crit)
        mean = name in means
        rows.append({"term": name, "label": _coefficient_label(name, design) if mean else name,
                     "kind": "mean" if mean else "contrast", "coef": c["estimate"],
                     "std_err": c["std_err"], "t": math.nan if mean else c["t"],
                     "p": math.nan if mean else c["p"], "ci_low": c["ci_low"],
                     "ci_high": c["ci_high"]})  # fmt: skip
    table = pd.DataFrame(rows)
    family = (table["kind"] == "contrast").to_numpy()
    p_adj = np.full(len(table), np.nan)
    p_adj[family] = adjust(table.loc[family, "p"].to_numpy(float), opts.adjust)
    table.insert(7, "p_adj", p_adj)
    table["clear"] = family & np.array(clear_column(table["ci_low"], table["ci_high"]), bool)
    return table


def _coefficient_label(column: str, design: ModelMatrix) -> str:
    """What a coefficient that carries the overall level is the mean of."""
    if column != "intercept":  # reference coding: a level column of the first categorical
        factor, _, level = column.partition("[")
        return f"mean at {factor}={level.rstrip(']')}"
    return "grand mean" if design.coding == "sum" else "mean at the baselines"


def grid_mean(
    grid: pd.DataFrame, rows: NDArray[np.float64], mask: pd.Series | NDArray[np.bool_]
) -> NDArray[np.float64]:
    """The mean of the reference grid's ``rows`` where ``mask`` holds."""
    mean: NDArray[np.float64] = rows[np.asarray(mask)].mean(axis=0)
    return mean


def effects(
    factors: tuple[FactorInfo, ...],
    grid: pd.DataFrame,
    rows: NDArray[np.float64],
    beta: NDArray[np.float64],
    cov: NDArray[np.float64] | None,
    df_resid: int,
    t_crit: float,
    opts: Options,
) -> pd.DataFrame:
    """High minus low of every two-level factor, averaged over the other factors' levels."""
    out = []
    for f in factors:
        if not f.two_level:
            continue
        L = grid_mean(grid, rows, grid[f.name] == f.high) - grid_mean(
            grid, rows, grid[f.name] == f.low
        )
        c = contrast(L, beta, cov, df_resid, t_crit)
        row = {"factor": f.name, "low": f.level_label(f.low), "high": f.level_label(f.high),
               "effect": c["estimate"], "std_err": c["std_err"], "t": c["t"], "p": c["p"],
               "ci_low": c["ci_low"], "ci_high": c["ci_high"]}  # fmt: skip
        if opts.log:
            row.update(ratio=math.exp(c["estimate"]), ratio_low=math.exp(c["ci_low"]),
                       ratio_high=math.exp(c["ci_high"]))  # fmt: skip
        out.append(row)
    columns = ["factor", "low", "high", "effect", "std_err", "t", "p", "ci_low", "ci_high"]
    if opts.log:
        columns += ["ratio", "ratio_low", "ratio_high"]
    table = pd.DataFrame(out, columns=columns)
    table.insert(7, "p_adj", adjust(table["p"].to_numpy(float), opts.adjust))
    table["clear"] = clear_column(table["ci_low"], table["ci_high"])
    return table


def effect_of_column(
    column: str, design: ModelMatrix, factors: tuple[FactorInfo, ...], effects: pd.DataFrame
) -> float:
    """The effect (high − low) belonging to a two-level factor's main-effect column."""
    for term in design.terms:
        if len(term.factors) == 1 and term.columns == (column,):
            row = effects[effects["factor"] == term.factors[0]]
            if len(row):
                return float(row["effect"].iloc[0])
    return math.nan


def marginal_means(
    frame: pd.DataFrame,
    y: NDArray[np.float64],
    factors: tuple[FactorInfo, ...],
    grid: pd.DataFrame,
    rows: NDArray[np.float64],
    beta: NDArray[np.float64],
    cov: NDArray[np.float64] | None,
    df_resid: int,
    t_crit: float,
) -> pd.DataFrame:
    """Estimated marginal means (equal weight to every combination of the other factors)."""
    out = []
    for f in factors:
        values = frame[f.name].to_numpy()
        for level in f.levels:
            L = grid_mean(grid, rows, grid[f.name] == level)
            c = contrast(L, beta, cov, df_resid, t_crit)
            observed = y[values == level]
            out.append({"factor": f.name, "level": f.level_label(level), "n": len(observed),
                        "observed_mean": float(observed.mean()), "emmean": c["estimate"],
                        "std_err": c["std_err"], "ci_low": c["ci_low"],
                        "ci_high": c["ci_high"]})  # fmt: skip
    return pd.DataFrame(out)


def pairwise(
    factors: tuple[FactorInfo, ...],
    grid: pd.DataFrame,
    rows: NDArray[np.float64],
    beta: NDArray[np.float64],
    cov: NDArray[np.float64] | None,
    df_resid: int,
    opts: Options,
) -> pd.DataFrame:
    """All pairs of levels of every factor with 3+ levels, Tukey-adjusted (studentized range)."""
    from scipy import stats

    out = []
    for f in factors:
        k = len(f.levels)
        if k < 3 or cov is None:
            continue
        q_crit = float(stats.studentized_range.ppf(1 - opts.alpha, k, df_resid))
        means = {v: grid_mean(grid, rows, grid[f.name] == v) for v in f.levels}
        for i, a in enumerate(f.levels):
            for b in f.levels[i + 1 :]:
                L = means[b] - means[a]
                est = float(L @ beta)
                se = math.sqrt(max(float(L @ cov @ L), 0.0))
                t = est / se if se > 0 else math.nan
                p = float(stats.studentized_range.sf(abs(t) * math.sqrt(2), k, df_resid))
                half = q_crit / math.sqrt(2) * se
                out.append({"factor": f.name, "level_a": f.level_label(a),
                            "level_b": f.level_label(b), "diff": est, "std_err": se, "t": t,
                            "p_tukey": p, "ci_low": est - half, "ci_high": est + half})  # fmt: skip
    columns = ["factor", "level_a", "level_b", "diff", "std_err", "t", "p_tukey", "ci_low",
               "ci_high"]  # fmt: skip
    table = pd.DataFrame(out, columns=columns)
    table["clear"] = clear_column(table["ci_low"], table["ci_high"])  # Tukey's interval
    return table


def interaction_means(
    frame: pd.DataFrame, y: NDArray[np.float64], factors: tuple[FactorInfo, ...]
) -> pd.DataFrame:
    """Observed mean response for every pair of factors and pair of levels (interaction plots)."""
    data = frame[[f.name for f in factors]].copy()
    data["_y"] = y
    out = []
    for i, fa in enumerate(factors):
        for fb in factors[i + 1 :]:
            for (a, b), group in data.groupby([fa.name, fb.name], sort=False):
                out.append({"factor_a": fa.name, "level_a": fa.level_label(a),
                            "factor_b": fb.name, "level_b": fb.level_label(b),
                            "n": len(group), "mean": float(group["_y"].mean())})  # fmt: skip
    columns = ["factor_a", "level_a", "factor_b", "level_b", "n", "mean"]
    return pd.DataFrame(out, columns=columns)
