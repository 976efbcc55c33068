"""Equivalence: is an effect too small to matter? Two one-sided tests against a margin.

A difference that is not significant is not shown to be absent: its interval may still hold
effects that matter. With a margin D (in the response's units: the smallest difference the
user cares about), each estimate gets a verdict:

- *different*: its (1 − α) confidence interval excludes 0 (the analysis's usual interval);
- *equivalent within ±D*: both one-sided tests (TOST, Schuirmann 1987) reject at α, that is
  its (1 − 2α) interval lies inside (−D, D);
- *different, within ±D*: both at once (a real effect smaller than the margin);
- *inconclusive*: neither -- with the replicates per run that would decide it if the estimate
  were the true value (its standard error shrinks as 1/√r).

The tests are on the OLS fit's t distribution (``df_resid`` degrees of freedom), the same
standard errors as the effects table; for one two-level factor they are statsmodels'
``ttost_ind`` with a pooled variance.
"""

from __future__ import annotations

import math

import numpy as np
import pandas as pd

from ablate.stats.precision import replicates_for

#: More replicates than this are not worth naming: the verdict is out of reach.
_MOST = 1000


def verdicts(
    estimates: pd.DataFrame, column: str, margin: float, alpha: float, df_resid: int,
    replicates: int, runs: int,
) -> pd.DataFrame:  # fmt: skip
    """``estimates`` (with ``column``, ``std_err``, ``ci_low``, ``ci_high``) with the TOST
    p value, the (1 − 2α) interval, the verdict and the replicates per run that would decide
    it (``replicates`` now, over ``runs`` distinct runs)."""
    from scipy import stats

    out = estimates.copy()
    est = out[column].to_numpy(float)
    se = out["std_err"].to_numpy(float)
    ok = np.isfinite(se) & (se > 0) & (df_resid > 0)
    t1 = float(stats.t.ppf(1 - alpha, df_resid)) if df_resid > 0 else math.nan
    with np.errstate(divide="ignore", invalid="ignore"):
        p_low = stats.t.sf((est + margin) / se, df_resid)  # H0: effect <= -D
        p_high = stats.t.cdf((est - margin) / se, df_resid)  # H0: effect >= +D
    out["p_tost"] = np.where(ok, np.maximum(p_low, p_high), np.nan)
    out["ci_tost_low"] = np.where(ok, est - t1 * se, np.nan)
    out["ci_tost_high"] = np.where(ok, est + t1 * se, np.nan)
    differs = (out["ci_low"] > 0) | (out["ci_high"] < 0)
    within = out["p_tost"] < alpha
    out["verdict"] = [
        _verdict(bool(d), bool(w), bool(o), margin) for d, w, o in zip(differs, within, ok,
                                                                         strict=True)
    ]  # fmt: skip
    out["replicates_to_decide"] = [
        _to_decide(e, s, margin, alpha, (df_resid, replicates, runs))
        if v == "inconclusive"
        else None
        for e, s, v in zip(est, se, out["verdict"], strict=True)
    ]
    return out


def _verdict(differs: bool, within: bool, testable: bool, margin: float) -> str:
    if not testable:
        return "untestable"
    if differs and within:
        return f"different, within ±{margin:g}"
    if differs:
        return "different"
    if within:
        return f"equivalent within ±{margin:g}"
    return "inconclusive"


def _to_decide(
    est: float, se: float, margin: float, alpha: float, now: tuple[int, int, int]
) -> int | None:
    """Replicates per run at which the estimate, were it the true value, would be decided:
    shown different (its interval clear of 0) or equivalent (its 1 − 2α interval inside ±D),
    whichever comes first. ``now``: the residual df, the replicates per run and the runs; the
    t quantiles use the degrees of freedom the added trials bring (``runs`` per replicate)."""
    from scipy import stats

    df_resid, replicates, _ = now
    if not (math.isfinite(se) and se > 0 and replicates >= 1 and df_resid > 0):
        return None
    found = []
    for gap, q in ((abs(est), 1 - alpha / 2), (margin - abs(est), 1 - alpha)):  # (distance, level)
        if gap > 0:

            def critical(df: float, q: float = q) -> float:
                return float(stats.t.ppf(q, df))

            found.append(replicates_for(critical(df_resid) * se, critical, now, gap, _MOST))
    return min((r for r in found if r is not None), default=None)


def summary_line(name: str, row: pd.Series, alpha: float) -> str:
    """One estimate's verdict in words, e.g. ``attention: equivalent within ±0.01 (90% CI
    [-0.004, 0.009])``."""
    level = f"{100 * (1 - 2 * alpha):g}"
    ci = f"{level}% CI [{row['ci_tost_low']:.3g}, {row['ci_tost_high']:.3g}]"
    p = row["p_tost"]
    test = f"two one-sided tests, p = {p:.3f}" if p >= 0.001 else "two one-sided tests, p < 0.001"
    verdict = row["verdict"]
    if verdict == "inconclusive":
        r = row["replicates_to_decide"]
        more = f"; about {int(r)} replicates per run would decide it" if _known(r) else ""
        return f"{name}: inconclusive ({ci}; {test}{more})"
    return f"{name}: {verdict} ({ci}; {test})"


def _known(value: object) -> bool:
    return value is not None and not (isinstance(value, float) and math.isnan(value))


def table(
    effects: pd.DataFrame, pairwise: pd.DataFrame, margin: float, alpha: float, df_resid: int,
    replicates: int, runs: int,
) -> pd.DataFrame:  # fmt: skip
    """Every two-level factor's effect and every pairwise difference of a factor's levels
    (with its Tukey interval for "different"), with the TOST verdicts."""
    columns = ["term", "estimate", "std_err", "ci_low", "ci_high"]
    parts = [
        effects.rename(columns={"factor": "term", "effect": "estimate"})[columns],
        pd.DataFrame({
            "term": [f"{f}: {b} − {a}" for f, a, b in
                     zip(pairwise["factor"], pairwise["level_a"], pairwise["level_b"],
                         strict=True)],
            "estimate": pairwise["diff"], "std_err": pairwise["std_err"],
            "ci_low": pairwise["ci_low"], "ci_high": pairwise["ci_high"],
        }),
    ]  # fmt: skip
    rows = pd.concat([p for p in parts if len(p)], ignore_index=True) if any(
        len(p) for p in parts
    ) else pd.DataFrame(columns=columns)  # fmt: skip
    out = verdicts(rows, "estimate", margin, alpha, df_resid, replicates, runs)
    out.insert(5, "margin", margin)
    return out
