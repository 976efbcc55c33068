"""Effect screening: effects on a common scale for the Pareto and half-normal charts, with t
values, or Lenth's pseudo standard error where a saturated model leaves no residual."""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import pandas as pd
from numpy.typing import NDArray

from ablate.designs.matrix import FactorInfo, build_matrix
from ablate.stats.options import Options


@dataclass(frozen=True)
class Screened:
    """Effects on a common scale, the standard error of one, and the |t| beyond which a term
    is active (Lenth's numbers where the model is saturated)."""

    table: pd.DataFrame  # term, effect, abs_effect, half_normal_q, t_or_pseudo_t, active
    se: float | None
    critical: float | None
    lenth: dict[str, float] | None  # pse, me, sme, df


def screening(
    frame: pd.DataFrame,
    y: NDArray[np.float64],
    factors: tuple[FactorInfo, ...],
    opts: Options,
    df_resid: int,
    rss: float,
    exact: bool,
    notes: list[str],
) -> Screened:
    """Effects on a common scale, for the Pareto and half-normal charts.

    The sum-coded columns are orthogonalised (QR, in term order) so that every effect has the
    same variance; an effect is then 2·γ/√n, which for a balanced two-level column is exactly
    its high − low difference. With residual degrees of freedom each gets a t value; in a
    saturated model, Lenth's pseudo standard error (PSE) stands in for the missing σ.
    """
    from scipy import stats

    design = build_matrix(frame, factors, "sum", opts.interactions, opts.terms)
    X = design.matrix.to_numpy(dtype=float)
    n = len(y)
    q, r = np.linalg.qr(X)
    signs = np.sign(np.diag(r))
    signs[signs == 0] = 1.0
    gamma = (q * signs).T @ y  # coordinates of y in the orthonormal basis, intercept first
    effects = 2.0 * gamma[1:] / math.sqrt(n)
    terms = design.columns[1:]
    m = len(effects)
    table = pd.DataFrame({"term": terms, "effect": effects, "abs_effect": np.abs(effects)})
    order = np.argsort(table["abs_effect"].to_numpy(), kind="stable")
    ranks = np.empty(m)
    ranks[order] = np.arange(1, m + 1)
    table["half_normal_q"] = stats.norm.ppf(0.5 + 0.5 * (ranks - 0.5) / m)
    lenth = None
    if exact:  # nothing to test against: an effect is there or not (beyond rounding)
        scale = float(np.abs(y).max()) or 1.0
        table["effect"] = np.round(effects / scale, 12) * scale
        table["abs_effect"] = table["effect"].abs()
        table["t_or_pseudo_t"] = math.nan
        table["active"] = table["abs_effect"] > 0
        se, critical = None, None
    elif df_resid > 0:
        sigma = math.sqrt(rss / df_resid)
        se: float | None = 2.0 * sigma / math.sqrt(n)
        table["t_or_pseudo_t"] = gamma[1:] / sigma
        critical = float(stats.t.ppf(1 - opts.alpha / 2, df_resid))
        table["active"] = table["t_or_pseudo_t"].abs() > critical
    else:
        lenth = lenth_pse(effects, opts.alpha)
        se = lenth["pse"] if lenth["pse"] > 0 else None
        table["t_or_pseudo_t"] = effects / lenth["pse"] if lenth["pse"] > 0 else math.nan
        critical = lenth["me"] / lenth["pse"] if lenth["pse"] > 0 else None
        table["active"] = table["abs_effect"] > lenth["me"]
        table["active_simultaneous"] = table["abs_effect"] > lenth["sme"]
        if any(not f.two_level for f in factors):
            notes.append(
                "multi-level factors enter the screening as orthogonalised contrasts, so that "
                "all effects share one variance (Lenth's method assumes it)."
            )
    table = table.sort_values("abs_effect", ascending=False, ignore_index=True)
    return Screened(table, se, critical, lenth)


def lenth_pse(effects: NDArray[np.float64], alpha: float = 0.05) -> dict[str, float]:
    """Lenth's (1989) pseudo standard error, margin of error and simultaneous margin of error.

    s0 = 1.5·median|c|; PSE = 1.5·median of the |c| below 2.5·s0; with d = m/3 degrees of
    freedom, ME = t(1 − α/2, d)·PSE and SME = t(γ, d)·PSE, γ = (1 + (1 − α)^(1/m))/2.
    """
    from scipy import stats

    c = np.abs(np.asarray(effects, dtype=float))
    m = len(c)
    s0 = 1.5 * float(np.median(c))
    pse = 1.5 * float(np.median(c[c < 2.5 * s0])) if np.any(c < 2.5 * s0) else s0
    d = m / 3.0
    gamma = (1 + (1 - alpha) ** (1 / m)) / 2
    return {
        "s0": s0,
        "pse": pse,
        "df": d,
        "me": float(stats.t.ppf(1 - alpha / 2, d)) * pse,
        "sme": float(stats.t.ppf(gamma, d)) * pse,
    }
