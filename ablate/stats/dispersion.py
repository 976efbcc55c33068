"""Seed sensitivity: which choices change how much results spread from seed to seed.

With two or more replicates per cell, each cell's standard deviation across seeds is a
response of its own. Its logarithm (Bartlett and Kendall 1946: ln s has nearly constant
variance, about 1/(2(n − 1)), whatever the cell's true spread) is fitted on the factors' main
effects over the cells, so a two-level factor's *dispersion effect* is the change in ln s
from its low to its high level and exp(effect) the ratio of the spreads, with an interval.
Beside it, for every factor, the Brown-Forsythe test (Levene's test on deviations from
medians) of the within-cell deviations grouped by the factor's levels: it asks the same
question without the log model, for factors of any number of levels. Each test's p values are
adjusted over the factors (the analysis's ``--adjust``, Holm by default), and a factor is
called *seed-sensitive* when either adjusted test rejects at α.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd

from ablate.designs.matrix import FactorInfo, build_matrix, reference_grid
from ablate.stats import estimates
from ablate.stats.options import Options

if TYPE_CHECKING:
    from numpy.typing import NDArray


@dataclass(frozen=True)
class Dispersion:
    """Dispersion effects, Brown-Forsythe tests and the spread at every level."""

    #: factor, low, high, ratio (of the SDs, high/low), ratio_low, ratio_high, ratio_shown, p,
    #: p_adj, bf_F, bf_p, bf_p_adj, seed_sensitive
    table: pd.DataFrame
    spread: pd.DataFrame  # factor, level, sd (pooled within cells), cells
    cells_used: int


def dispersion(
    frame: pd.DataFrame, y: NDArray[np.float64], factors: tuple[FactorInfo, ...],
    opts: Options, notes: list[str],
) -> Dispersion | None:  # fmt: skip
    """None where fewer than two cells have two or more replicates (the analysis asks for
    three per cell: :data:`ablate.stats.needs.SEED_SENSITIVITY`).

    A ratio's interval is a result only where it is finite and implies no spread larger than
    the response's range (``ratio_shown``); a factor is *seed-sensitive* when the Brown-Forsythe
    test, or the ln SD effect with a shown interval, rejects after adjustment."""
    names = [f.name for f in factors]
    data = frame[names].copy()
    data["_y"] = y
    grouped = data.groupby(names, sort=False, observed=True)["_y"]
    cells = grouped.agg(n="size", var="var").reset_index()
    usable = cells[(cells["n"] > 1) & (cells["var"] > 0)].reset_index(drop=True)
    if len(usable) < 2:
        return None
    deviation = y - grouped.transform("mean").to_numpy(float)
    log_effects = _log_sd_effects(usable, factors, opts, notes)
    rows = []
    for f in factors:
        row = {"factor": f.name, "low": "", "high": "", "ratio": math.nan,
               "ratio_low": math.nan, "ratio_high": math.nan, "p": math.nan}  # fmt: skip
        if f.name in log_effects.index:
            e = log_effects.loc[f.name]
            assert isinstance(e, pd.Series)  # the index holds each factor once
            row.update(low=e["low"], high=e["high"], ratio=_exp(e["effect"]),
                       ratio_low=_exp(e["ci_low"]), ratio_high=_exp(e["ci_high"]),
                       p=e["p"])  # fmt: skip
        row["bf_F"], row["bf_p"] = _brown_forsythe(frame[f.name].to_numpy(), deviation, f)
        rows.append(row)
    table = pd.DataFrame(rows)
    spread = _spread(usable, factors)
    table.insert(6, "ratio_shown", [_shown(r, spread, float(np.ptp(y))) for r in rows])
    table.insert(8, "p_adj", estimates.adjust(table["p"].to_numpy(float), opts.adjust))
    table["bf_p_adj"] = estimates.adjust(table["bf_p"].to_numpy(float), opts.adjust)
    by_ratio = table["ratio_shown"] & (table["p_adj"] < opts.alpha)
    sensitive = by_ratio | (table["bf_p_adj"] < opts.alpha)
    table["seed_sensitive"] = sensitive.fillna(False).astype(bool)
    return Dispersion(table, spread, len(usable))


def _shown(row: dict[str, object], spread: pd.DataFrame, span: float) -> bool:
    """Whether a ratio's interval is a result: finite, and implying neither level's spread
    wider than every value observed (an interval of absurd width is no finding)."""
    low, high = float(row["ratio_low"]), float(row["ratio_high"])  # type: ignore[arg-type]
    if not (math.isfinite(low) and math.isfinite(high) and low > 0):
        return False
    at = spread[spread["factor"] == row["factor"]].set_index("level")["sd"]
    sd_low, sd_high = float(at.get(row["low"], math.nan)), float(at.get(row["high"], math.nan))
    return bool(high * sd_low <= span and sd_high / low <= span)


def _exp(value: float) -> float:
    """exp, infinite rather than an overflow for an interval of absurd width (a table of a few
    cells whose spreads differ by orders of magnitude)."""
    return math.inf if value > 700 else math.exp(value)


def _log_sd_effects(
    cells: pd.DataFrame, factors: tuple[FactorInfo, ...], opts: Options, notes: list[str]
) -> pd.DataFrame:
    """Effects of the two-level factors on ln(cell SD), indexed by factor (empty where the
    cells leave no degrees of freedom for intervals)."""
    from scipy import stats
    from statsmodels.regression.linear_model import OLS

    z = 0.5 * np.log(cells["var"].to_numpy(float))  # ln s
    design = build_matrix(cells, factors, "sum", 1, ())
    X = design.matrix.to_numpy(dtype=float)
    df = len(z) - X.shape[1]
    if df < 1 or np.linalg.matrix_rank(X) < X.shape[1]:
        notes.append(
            f"dispersion effects: {len(cells)} cells with replicates are too few for a model of "
            "ln(SD) on every factor; the Brown-Forsythe tests stand alone."
        )
        return pd.DataFrame(columns=["low", "high", "effect", "ci_low", "ci_high", "p"])
    fitted = OLS(z, X).fit()
    grid = reference_grid(factors)
    t_crit = float(stats.t.ppf(1 - opts.alpha / 2, df))
    table = estimates.effects(factors, grid, design.rows(grid), np.asarray(fitted.params),
                              np.asarray(fitted.cov_params()), df, t_crit,
                              Options(alpha=opts.alpha, adjust="none"))  # fmt: skip
    return table.set_index("factor")


def _brown_forsythe(
    levels: np.ndarray, deviation: NDArray[np.float64], f: FactorInfo
) -> tuple[float, float]:
    """Levene's test (medians) of the within-cell deviations grouped by the factor's level."""
    from scipy import stats

    groups = [deviation[levels == v] for v in f.levels]
    groups = [g for g in groups if len(g) > 1]
    if len(groups) < 2 or all(np.ptp(g) == 0 for g in groups):
        return math.nan, math.nan
    with np.errstate(divide="ignore", invalid="ignore"):  # no spread about the medians at all
        result = stats.levene(*groups, center="median")
    if not np.isfinite(result.statistic):
        return math.nan, math.nan
    return float(result.statistic), float(result.pvalue)


def _spread(cells: pd.DataFrame, factors: tuple[FactorInfo, ...]) -> pd.DataFrame:
    """The seed-to-seed SD at every level of every factor, pooled over its cells."""
    rows = []
    for f in factors:
        for level in f.levels:
            at = cells[cells[f.name] == level]
            if not len(at):
                continue
            pooled = ((at["n"] - 1) * at["var"]).sum() / (at["n"] - 1).sum()
            rows.append({"factor": f.name, "level": f.level_label(level),
                         "sd": math.sqrt(pooled), "cells": len(at)})  # fmt: skip
    return pd.DataFrame(rows, columns=["factor", "level", "sd", "cells"])


def box_meyer(
    frame: pd.DataFrame, residual: NDArray[np.float64], factors: tuple[FactorInfo, ...],
    opts: Options,
) -> pd.DataFrame | None:  # fmt: skip
    """Dispersion effects of an unreplicated design from the location model's residuals.

    Box and Meyer (1986): for a two-level factor, F* = ln(S²₊ / S²₋), the log ratio of the
    residuals' variance at its high level to that at its low level. Under no dispersion effect
    F* is near 0, with variance about 2/(n₊ − 1) + 2/(n₋ − 1) (each ln S² has variance about
    2/df); the p value from that normal approximation is rough -- the residuals share the
    location fit -- and is adjusted over the factors like every other family. Rows: factor,
    low, high, sd_low, sd_high, f_star, p, p_adj, spread_differs. None where no factor has two
    levels or the residuals hold no spread.
    """
    from scipy import stats

    rows = []
    for f in (f for f in factors if f.two_level):
        levels = frame[f.name].to_numpy()
        low, high = residual[levels == f.low], residual[levels == f.high]
        if min(len(low), len(high)) < 3 or min(low.var(ddof=1), high.var(ddof=1)) <= 0:
            continue
        f_star = math.log(high.var(ddof=1) / low.var(ddof=1))
        z = f_star / math.sqrt(2 / (len(high) - 1) + 2 / (len(low) - 1))
        rows.append({"factor": f.name, "low": f.level_label(f.low),
                     "high": f.level_label(f.high), "sd_low": float(low.std(ddof=1)),
                     "sd_high": float(high.std(ddof=1)), "f_star": f_star,
                     "p": float(2 * stats.norm.sf(abs(z)))})  # fmt: skip
    if not rows:
        return None
    table = pd.DataFrame(rows)
    table["p_adj"] = estimates.adjust(table["p"].to_numpy(float), opts.adjust)
    table["spread_differs"] = table["p_adj"] < opts.alpha
    return table
