"""The OLS fit itself: coefficients and their covariance, and what describes the fit.

The fit is statsmodels' OLS on the explicit model matrix, with HC3 robust covariance on
request. A fit whose residuals are zero to rounding (a constant response, or one the factors
determine without noise) is *exact*: its estimates are snapped to what they are, and it has
no standard errors, tests or intervals.
"""

from __future__ import annotations

import math
import warnings
from dataclasses import dataclass

import numpy as np
import pandas as pd
from numpy.typing import NDArray

from ablate.designs.matrix import FactorInfo, ModelMatrix
from ablate.errors import AblateError, option
from ablate.stats.estimates import leverage as leverage_of
from ablate.stats.options import Options
from ablate.stats.result import FitSummary, Goal


@dataclass(frozen=True)
class Fitted:
    """An OLS fit: the coefficients, what is left of the response, and what tests need."""

    beta: NDArray[np.float64]
    residual: NDArray[np.float64]
    leverage: NDArray[np.float64]
    cov: NDArray[np.float64] | None  # None: no tests (saturated, or an exact fit)
    rss: float
    sst: float
    df_resid: int
    t_crit: float
    exact: bool
    summary: str  # statsmodels' summary table


def ols(
    y: NDArray[np.float64], design: ModelMatrix, label: str, opts: Options, notes: list[str]
) -> Fitted:
    """Fit OLS to ``y`` on ``design``'s matrix (HC3 robust if asked); notes what it did."""
    from scipy import stats
    from statsmodels.regression.linear_model import OLS

    X = design.matrix.to_numpy(dtype=float)
    df_resid = X.shape[0] - X.shape[1]
    leverage = leverage_of(X)
    robust = opts.robust == "hc3" and df_resid > 0
    if robust and np.any(leverage > 1 - 1e-10):
        raise AblateError(
            "HC3 robust errors are undefined here: some trials have leverage 1 (a cell with a "
            f"single trial that only its own coefficient fits). Drop {option('robust')}, lower "
            f"{option('interactions')}, or add replicates."
        )
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # small-sample and saturated-fit warnings: handled here
        fitted = OLS(y, X).fit(cov_type="HC3", use_t=True) if robust else OLS(y, X).fit()
        summary = fitted.summary(yname=label, xname=design.columns, alpha=opts.alpha).as_text()
    beta = np.asarray(fitted.params, dtype=float)
    residual = y - X @ beta
    rss = float(residual @ residual) if df_resid > 0 else 0.0  # saturated: exact fit
    sst = float(((y - y.mean()) ** 2).sum())
    exact = df_resid > 0 and (np.ptp(y) == 0 or rss <= _EXACT * sst)  # no noise to test
    if exact:  # what is left is rounding: make it zero
        rss, scale = 0.0, float(np.abs(y).max()) or 1.0
        beta = np.round(beta / scale, 12) * scale
        residual = y - X @ beta
        summary = "(left out: the fit is exact, so statsmodels' tests have no meaning here)"
        notes.append(exact_note(label, y, sst))
    cov = np.asarray(fitted.cov_params(), dtype=float) if df_resid > 0 and not exact else None
    t_crit = float(stats.t.ppf(1 - opts.alpha / 2, df_resid)) if df_resid > 0 else math.nan
    if robust:
        notes.append("standard errors, intervals and tests use HC3 robust covariance.")
    return Fitted(beta, residual, leverage, cov, rss, sst, df_resid, t_crit, exact, summary)


def statistics(
    fit: Fitted, y: NDArray[np.float64], label: str, design: ModelMatrix, opts: Options,
    cells: pd.DataFrame, goal: Goal | None, notes: list[str],
) -> FitSummary:  # fmt: skip
    """R², adjusted and predicted R² (PRESS), the residual SD, the formula and the options;
    ``cells``: the trials per cell (column ``n``); ``goal``: the response's better direction."""
    n, p = len(y), len(design.columns)
    mse = fit.rss / fit.df_resid if fit.df_resid > 0 else math.nan
    high = fit.leverage >= 1 - 1e-10
    press = None if np.any(high) else float(((fit.residual / (1 - fit.leverage)) ** 2).sum())
    if press is None:
        notes.append(
            "predicted R² is undefined: some trial has leverage 1 (its cell is fitted exactly)."
        )
    if fit.df_resid == 0:
        notes.append(
            "the model is saturated (as many coefficients as trials): no t tests are possible, "
            "so active effects are judged by Lenth's pseudo standard error (screening table)."
        )
    sst = fit.sst
    return FitSummary(
        response=label, response_column=str(opts.response), n_used=n, n_params=p,
        df_resid=fit.df_resid, r2=1 - fit.rss / sst if sst > 0 else math.nan,
        adj_r2=1 - mse / (sst / (n - 1)) if fit.df_resid > 0 and sst > 0 else math.nan,
        pred_r2=1 - press / sst if press is not None and sst > 0 else math.nan,
        resid_sd=math.sqrt(mse) if fit.df_resid > 0 else math.nan, rss=fit.rss,
        formula=f"{label} ~ {design.formula}", coding=opts.coding,
        interactions=opts.interactions, anova_type=opts.anova_type,
        robust=opts.robust or "none", adjust=opts.adjust, alpha=opts.alpha,
        mean=float(y.mean()), range=float(np.ptp(y)),
        replicates_min=int(cells["n"].min()), replicates_max=int(cells["n"].max()),
        cells=len(cells), exact=fit.exact, goal=goal,
    )  # fmt: skip


def residuals(
    frame: pd.DataFrame, factors: tuple[FactorInfo, ...], design: ModelMatrix, fit: Fitted
) -> pd.DataFrame:
    """Every trial's fitted value, residual, leverage, studentized residual and normal
    quantile (Blom), for the residual charts."""
    from scipy import stats

    n = len(fit.residual)
    mse = fit.rss / fit.df_resid if fit.df_resid > 0 else math.nan
    out = frame[[f.name for f in factors]].copy()
    out["fitted"] = design.matrix.to_numpy(dtype=float) @ fit.beta
    out["residual"] = fit.residual
    out["leverage"] = fit.leverage
    with np.errstate(divide="ignore", invalid="ignore"):
        out["studentized"] = (
            math.nan if fit.exact else fit.residual / (math.sqrt(mse) * np.sqrt(1 - fit.leverage))
        )
    ranks = stats.rankdata(out["studentized"].fillna(0.0), method="ordinal")
    out["normal_q"] = stats.norm.ppf((ranks - 0.375) / (n + 0.25))
    return out.reset_index(drop=True)


#: A residual sum of squares below this share of the total is rounding: the fit is exact.
_EXACT = 1e-20


def exact_note(label: str, y: NDArray[np.float64], sst: float) -> str:
    if sst == 0:
        return (
            f"{label} is the same for every trial used ({y[0]:.6g}): no factor changes it, so "
            "every effect is zero and there is nothing to test or rank."
        )
    return (
        f"the model fits every trial exactly (the residuals are zero to rounding): {label} is "
        "a function of the factors without noise, so the effects are exact and there are no "
        "standard errors, tests or intervals."
    )
