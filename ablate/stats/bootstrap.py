"""A check beside OLS that assumes no normal errors: the cluster bootstrap over seeds.

Each resample draws, within every cell, as many of its trials as it has, with replacement (the
replicates are the clusters; the design stays as run), and refits. Everything the check needs
depends on the trials only through each cell's mean and count -- a cell's coefficients come
from weighted least squares on the cell means, and a sum of squares *difference* between two
models of the factors is the same on cell means weighted by counts as on every trial, because
the within-cell part cancels -- so a resample costs a draw of cell means, not a refit on every
trial: 100,000 trials resample as fast as 100.

It gives, for every two-level effect, a 95% percentile interval beside the OLS one (they
*disagree* when the bootstrap's half-width is under 2/3 or over 3/2 of OLS's, or only one of
them excludes 0), and for every factor an interval around its linear importance share (its
Type II main-effect sum of squares over all the factors'). With r replicates per cell the
bootstrap's variance is (r − 1)/r of the sampling variance (it resamples r values of r), so
each effect's interval is widened about its estimate by √(r/(r − 1)), r the fewest trials in a
cell. Even so, with few replicates the check disagrees with OLS by chance: the analysis runs it
only with :data:`ablate.stats.needs.CLUSTER_BOOTSTRAP`'s replicates per cell.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd

from ablate.designs.matrix import Coding, FactorInfo, ModelMatrix, build_matrix, reference_grid
from ablate.stats.options import Options

if TYPE_CHECKING:
    from numpy.typing import NDArray

RESAMPLES = 400


@dataclass(frozen=True)
class Bootstrap:
    """Cluster-bootstrap intervals of the effects and of the linear importance shares."""

    resamples: int
    effects: pd.DataFrame  # factor, effect, ci_low, ci_high, boot_low, boot_high, agrees
    importance: pd.DataFrame  # factor, linear, linear_low, linear_high
    cells: pd.DataFrame  # one row per cell: its factor levels
    means: NDArray[np.float64]  # (cells, resamples): each cell's mean in every resample


def cluster_bootstrap(
    frame: pd.DataFrame, y: NDArray[np.float64], factors: tuple[FactorInfo, ...],
    design: ModelMatrix, effects: pd.DataFrame, opts: Options, seed: int,
) -> Bootstrap | None:  # fmt: skip
    """None unless every cell has two or more trials (a cell of one has nothing to resample)."""
    names = [f.name for f in factors]
    codes = frame[names].groupby(names, sort=False, observed=True).ngroup().to_numpy()
    counts = np.bincount(codes)
    if len(counts) < 2 or counts.min() < 2:
        return None
    first = np.unique(codes, return_index=True)[1]  # each cell's first trial, in code order
    cell_frame = frame[names].iloc[first].reset_index(drop=True)
    means = _resampled_means(y, codes, counts, np.random.default_rng(seed))
    X = design.rows(cell_frame)
    beta = _weighted_fit(X, counts, means)  # (p, B)
    grid = reference_grid(factors)
    rows, lows, highs = design.rows(grid), [], []
    widen = float(np.sqrt(counts.min() / (counts.min() - 1)))
    for f in (f for f in factors if f.two_level):
        L = rows[(grid[f.name] == f.high).to_numpy()].mean(0) - rows[
            (grid[f.name] == f.low).to_numpy()
        ].mean(0)
        low, high = np.percentile(L @ beta, [2.5, 97.5])
        centre = float(effects.loc[effects["factor"] == f.name, "effect"].iloc[0])
        lows.append(centre + widen * (float(low) - centre))
        highs.append(centre + widen * (float(high) - centre))
    table = effects[["factor", "effect", "ci_low", "ci_high"]].copy()
    table["boot_low"], table["boot_high"] = lows, highs
    bounds = table[["ci_low", "ci_high", "boot_low", "boot_high"]].to_numpy()
    table["agrees"] = [_agrees(*r) for r in bounds]
    coding: Coding = "sum" if opts.coding == "sum" else "treatment"
    anova_design = build_matrix(cell_frame, factors, coding, opts.interactions, opts.terms)
    shares = _linear_shares(anova_design, factors, counts, means)
    with warnings.catch_warnings():  # a response that never varies has no shares: NaN
        warnings.simplefilter("ignore", RuntimeWarning)
        low, high = np.nanpercentile(shares, [2.5, 97.5], axis=1)
    importance = pd.DataFrame({"factor": names, "linear_low": low, "linear_high": high})
    return Bootstrap(means.shape[1], table, importance, cell_frame, means)


def _resampled_means(
    y: NDArray[np.float64], codes: NDArray[np.integer], counts: NDArray[np.int64],
    rng: np.random.Generator, resamples: int = RESAMPLES,
) -> NDArray[np.float64]:  # fmt: skip
    """(cells, resamples): each cell's mean over its trials drawn with replacement."""
    out = np.empty((len(counts), resamples))
    order = np.argsort(codes, kind="stable")
    starts = np.r_[0, np.cumsum(counts)[:-1]]
    for c, (start, n) in enumerate(zip(starts, counts, strict=True)):
        values = y[order[start : start + n]]
        out[c] = values[rng.integers(0, n, (resamples, n))].mean(axis=1)
    return out


def _weighted_fit(
    X: NDArray[np.float64], w: NDArray[np.int64], Y: NDArray[np.float64]
) -> NDArray[np.float64]:
    """Coefficients (p, B) of Y's columns on X, each cell weighted by its count."""
    return np.linalg.pinv(X.T @ (X * w[:, None])) @ (X.T @ (Y * w[:, None]))


def _linear_shares(
    design: ModelMatrix, factors: tuple[FactorInfo, ...], w: NDArray[np.int64],
    Y: NDArray[np.float64],
) -> NDArray[np.float64]:  # fmt: skip
    """(factors, B): each factor's Type II main-effect SS over all the factors', per resample."""
    X, columns = design.matrix.to_numpy(dtype=float), design.columns
    intercept = [columns.index(c) for t in design.terms if not t.factors for c in t.columns]
    ss = []
    for f in factors:
        without = [columns.index(c) for t in design.terms if f.name not in t.factors
                   for c in t.columns]  # fmt: skip
        main = next(t for t in design.terms if t.factors == (f.name,))
        with_f = without + [columns.index(c) for c in main.columns]
        ss.append(_rss(X[:, without or intercept], w, Y) - _rss(X[:, with_f], w, Y))
    ss_arr = np.maximum(np.array(ss), 0.0)
    total = ss_arr.sum(axis=0)
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(total > 0, ss_arr / total, np.nan)


def _rss(
    X: NDArray[np.float64], w: NDArray[np.int64], Y: NDArray[np.float64]
) -> NDArray[np.float64]:
    """Weighted residual sums of squares of Y's columns on X (the between-cell part)."""
    fitted = X @ _weighted_fit(X, w, Y)
    rss: NDArray[np.float64] = ((Y - fitted) ** 2 * w[:, None]).sum(axis=0)
    return rss


def _agrees(ols_low: float, ols_high: float, low: float, high: float) -> bool:
    """Whether the bootstrap interval tells the same story as OLS's (see the module)."""
    if not np.isfinite([ols_low, ols_high]).all():
        return True
    ratio = (high - low) / (ols_high - ols_low) if ols_high > ols_low else 1.0
    same_side = ((ols_low > 0) or (ols_high < 0)) == ((low > 0) or (high < 0))
    return bool(2 / 3 <= ratio <= 3 / 2 and same_side)
