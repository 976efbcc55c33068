"""Variance components of the seed-to-seed variance, by source of randomness (seed streams).

A study may vary its sources of randomness separately (``replicates: {init: 3, data_order: 2}``):
each cell holds a trial per combination of seed indices. Within a cell the model is

    y = mu_cell + a_init[i] + a_data_order[j] + ... + e,

each stream's effect random (normal, mean 0, one variance per stream for all the cells of a
scope, independent from cell to cell). With one trial per combination, the streams' interaction
and any randomness no stream controls cannot be told apart: ``e`` is one source, RESIDUAL.

Estimation. Balanced data (every usable cell holds every combination equally often): the ANOVA
(expected-mean-squares) estimators, each source's sums of squares and degrees of freedom summed
over the cells: a stream's variance is (MS_stream − MS_rest) / k, k the trials per cell over
the stream's seed indices, a negative estimate set to 0 and flagged. Otherwise: REML, with
statsmodels' MixedLM, one group per cell (a fixed mean each, no group intercept), every stream
a variance component of its seed indices within the group; Fisher scoring then climbs on from
MixedLM's fit and from an even split, the higher likelihood kept (MixedLM's optimisers can stop
short of a maximum with a variance at 0 and report convergence). On balanced data REML gives
the ANOVA estimates where those are positive.

Intervals: percentiles of a parametric bootstrap from the fitted components. Balanced, the mean
squares are independent scaled chi-squares, so a resample draws them directly (the distribution
of simulating trials and re-estimating, at no cost). REML: each resample is simulated trial by
trial with the same trials missing and refitted by Fisher scoring on the same likelihood,
vectorised over the resamples (a MixedLM fit per resample would take minutes).

Scopes: all cells, and the cells at each level of each factor; for a two-level factor, the ratio
of each source's variance, high level over low, its interval from the two levels' independent
resamples. Caveats: the same seed index in every cell may move cells alike (still seed-to-seed
variance, but the intervals ignore the correlation); with three or more streams, their pairwise
interactions are assumed away into the rest; percentile intervals on few degrees of freedom
cover a little less than they say (95% intervals of a stream's variance covered 92-94% in
simulated studies of 24 cells, 89-93% with REML on 12 cells; the ratios' 97-98%).
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd

from ablate.designs.matrix import factor_infos
from ablate.errors import AblateError, option
from ablate.stats.reml import Fit, Layout, fit_reml, patterns, within

if TYPE_CHECKING:
    from collections.abc import Iterator, Sequence

    from numpy.typing import NDArray

RESIDUAL = "interaction and the rest"
ALL_CELLS = "all cells"
_ANOVA = (
    "ANOVA estimators (expected mean squares), sums of squares pooled over cells; a negative "
    "estimate is set to 0"
)
_REML = (
    "REML (statsmodels MixedLM: one group per cell, a fixed mean per cell, each stream a "
    "variance component within it; Fisher scoring on from its fit)"
)


@dataclass(frozen=True)
class Component:
    """One source's variance in a scope, its share of the scope's total, their intervals.
    ``truncated``: the estimate came out negative (ANOVA) or on the boundary (REML): it is 0."""

    source: str  # a stream's name, RESIDUAL, or "<stream> and the rest" where inseparable
    variance: float
    share: float
    ci_low: float
    ci_high: float
    share_low: float
    share_high: float
    truncated: bool


@dataclass(frozen=True)
class Scope:
    """The components within the cells of a scope (all cells, or one level of a factor)."""

    name: str  # ALL_CELLS or "factor=level"
    factor: str | None
    level: str | None  # the level's label (true/false, or as in the frame)
    n_cells: int  # cells with two or more trials
    n_trials: int
    total: float  # the seed-to-seed variance within a cell: the components' sum
    total_low: float
    total_high: float
    components: tuple[Component, ...]

    @property
    def sd(self) -> float:
        """The seed-to-seed standard deviation: the square root of the total."""
        return float(np.sqrt(self.total))


@dataclass(frozen=True)
class Ratio:
    """A source's variance at a two-level factor's high level over its low level."""

    factor: str
    low: str
    high: str
    source: str
    ratio: float  # inf where the low level's variance is 0
    ci_low: float
    ci_high: float
    excludes_one: bool


@dataclass(frozen=True)
class Components:
    """The variance components of ``response`` by seed stream, in every scope: ALL_CELLS
    first, then each factor's levels in analysis order; in each scope the streams in the order
    given, then RESIDUAL."""

    response: str
    streams: tuple[str, ...]
    method: str  # the estimator, in words
    intervals: str  # how the intervals were made, in words
    confidence: float  # of the intervals, e.g. 0.95
    scopes: tuple[Scope, ...]
    ratios: tuple[Ratio, ...]
    missing: tuple[str, ...]  # what the data could not support, in words
    #: how many ratios the ratios' intervals are Bonferroni-adjusted over (1: not adjusted)
    ratio_tests: int = 1

    def scope(self, name: str) -> Scope:
        """The scope named ``name`` (ALL_CELLS, or "factor=level")."""
        for s in self.scopes:
            if s.name == name:
                return s
        raise KeyError(f"no scope {name!r}; what the data could not support: {self.missing}")


def variance_components(
    frame: pd.DataFrame, response: str, streams: Sequence[str], factors: Sequence[str], *,
    alpha: float = 0.05, resamples: int = 1000, seed: int = 0,
) -> Components:  # fmt: skip
    """The seed-to-seed variance of ``response`` split by seed stream (see the module).

    ``frame``: the usable trials (complete, finite response) with ``cell``, a ``stream_<name>``
    column per stream and the ``factors``. What the data cannot support (a stream with one seed
    index, a scope with fewer than two cells of two or more trials, a ratio without both
    levels) is said in ``missing``, not raised."""
    streams = tuple(streams)
    _check(frame, response, streams, factors, alpha, resamples)
    data = _prepare(frame, response, streams)
    missing: list[str] = []
    kept = [s for s in streams if data[f"_s_{s}"].nunique() > 1]
    for s in (s for s in streams if s not in kept):
        missing.append(
            f"stream '{s}': every trial has the same seed index, so its variance cannot be "
            "told apart from the rest; give it two or more seed indices"
        )
    why = _balance(_layout(data, kept))
    balanced = not why
    rng = np.random.default_rng(seed)
    scopes, fits = [], {}
    for name, factor, level, mask in _scope_masks(data, factors):
        layout = _layout(data[mask], kept)
        fit = _fit_scope(layout, kept, balanced, rng, resamples, missing, name)
        if fit is not None:
            fits[name] = fit
            scopes.append(_scope(name, factor, level, layout, fit, alpha))
    method, draws = (_ANOVA, "mean squares drawn as scaled chi-squares") if balanced else (
        f"{_REML}, because {why}", "each refitted by REML")  # fmt: skip
    intervals = (
        f"{100 * (1 - alpha):g}% percentile intervals of a parametric bootstrap from the "
        f"fitted components: {resamples} resamples ({draws}), seed {seed}"
    )
    ratios = _ratios(data, factors, fits, alpha, missing)
    return Components(response, streams, method, intervals, 1 - alpha, tuple(scopes), ratios,
                      tuple(dict.fromkeys(missing)))  # fmt: skip


def _check(frame: pd.DataFrame, response: str, streams: tuple[str, ...],
           factors: Sequence[str], alpha: float, resamples: int) -> None:  # fmt: skip
    if not streams:
        raise AblateError(
            "the variance components need at least one seed stream; a study names its "
            "streams in replicates, as in {init: 3, data_order: 2}"
        )
    wanted = ["cell", response, *(f"stream_{s}" for s in streams), *factors]
    absent = [c for c in wanted if c not in frame.columns]
    if absent:
        raise AblateError(
            f"the trials table has no column {', '.join(map(repr, absent))}; pass the trials "
            "of a study whose replicates name these streams"
        )
    if not 0 < alpha < 1 or resamples < 1:
        raise AblateError(f"alpha must lie between 0 and 1 and resamples be 1 or more, not "
                          f"{alpha} and {resamples}; pass, say, {option('alpha', '0.05')} and "
                          f"{option('resamples', '1000')}")  # fmt: skip


def _prepare(frame: pd.DataFrame, response: str, streams: tuple[str, ...]) -> pd.DataFrame:
    """The trials with a finite response and seed indices: ``_y``, ``_cell`` and a code per
    stream (``_s_<name>``, 0 for its smallest index), sorted by cell and codes."""
    y = pd.to_numeric(frame[response], errors="coerce").to_numpy(float)
    columns = [f"stream_{s}" for s in streams]
    data = frame[np.isfinite(y) & frame[columns].notna().all(axis=1).to_numpy()].copy()
    data["_y"] = pd.to_numeric(data[response]).astype(float)
    data["_cell"] = pd.factorize(data["cell"].astype(str), sort=True)[0]
    for s, column in zip(streams, columns, strict=True):
        data[f"_s_{s}"] = pd.factorize(data[column], sort=True)[0]
    ordered: pd.DataFrame = data.sort_values(["_cell", *(f"_s_{s}" for s in streams)])
    return ordered


def _layout(rows: pd.DataFrame, streams: Sequence[str]) -> Layout:
    rows = rows[rows.groupby("_cell")["_y"].transform("size").to_numpy() >= 2]
    codes = rows[[f"_s_{s}" for s in streams]].to_numpy(np.int64).reshape(len(rows), -1)
    cell = pd.factorize(rows["_cell"], sort=True)[0].astype(np.int64)
    levels = tuple(int(rows[f"_s_{s}"].max()) + 1 if len(rows) else 0 for s in streams)
    return Layout(rows["_y"].to_numpy(float), cell, codes, levels)


def _balance(layout: Layout) -> str:
    """Empty where every cell holds every combination of seed indices equally often, else
    why not."""
    found = patterns(layout)
    if not layout.levels or not found:
        return ""
    full = int(np.prod(layout.levels))
    absent = sum(idx.shape[0] * (full - len(np.unique(c, axis=0))) for c, idx in found)
    if absent:
        return f"{absent} combination(s) of cell and seed indices have no usable trial"
    if len(found) > 1 or len(set(np.unique(found[0][0], axis=0, return_counts=True)[1])) > 1:
        return "the cells hold unequal numbers of trials per combination of seed indices"
    return ""


def _scope_masks(
    data: pd.DataFrame, factors: Sequence[str]
) -> Iterator[tuple[str, str | None, str | None, NDArray[np.bool_]]]:
    yield ALL_CELLS, None, None, np.ones(len(data), bool)
    for f in factors:
        for value, label in _levels(data, f):
            yield f"{f}={label}", f, label, (data[f] == value).to_numpy(bool)


def _levels(data: pd.DataFrame, factor: str) -> list[tuple[object, str]]:
    """A factor's levels in analysis order (false before true, numbers ascending) and labels."""
    present = data[factor].dropna().unique().tolist()
    if len(present) < 2:
        return [(v, "true" if v is True else "false" if v is False else str(v)) for v in present]
    info = factor_infos(data, [factor])[0]
    return [(v, info.level_label(v)) for v in info.levels]


def _fit_scope(layout: Layout, streams: list[str], balanced: bool, rng: np.random.Generator,
               resamples: int, missing: list[str], name: str) -> Fit | None:  # fmt: skip
    """The scope's components, or None (and what is missing) where it cannot have them."""
    if layout.cells < 2:
        missing.append(f"{name}: {layout.cells} cell(s) with two or more trials; the "
                       "components need at least 2")  # fmt: skip
        return None
    df_streams, df_rest = _support(layout)
    for s in (s for s, df in zip(streams, df_streams, strict=True) if df == 0):
        missing.append(f"{name}: stream '{s}' has one seed index in every cell (or moves "
                       "with another stream), so it was left out there")  # fmt: skip
    keep = [j for j, df in enumerate(df_streams) if df > 0]
    names = [streams[j] for j in keep]
    layout = Layout(layout.y, layout.cell, layout.codes[:, keep],
                     tuple(layout.levels[j] for j in keep))  # fmt: skip
    if df_rest == 0 and len(names) > 1:
        missing.append(f"{name}: no degrees of freedom are left for the rest; run every "
                       "combination of seed indices in each cell")  # fmt: skip
        return None
    if df_rest == 0 or not names:
        source = f"{names[0]} and the rest" if names else RESIDUAL
        if names:
            missing.append(
                f"no two trials of a cell share a seed index of '{names[0]}', so the rest "
                f"cannot be told apart from it: '{source}' holds both"
            )
        return _pooled(layout, source, rng, resamples)
    if balanced:
        return _anova(layout, names, rng, resamples)
    return fit_reml(layout, names, rng, resamples, missing, name, RESIDUAL)


def _support(layout: Layout) -> tuple[list[int], int]:
    """Each stream's degrees of freedom beyond the cell means and the other streams, and the
    rest's: ranks of each cell's design, summed over the cells."""
    p = len(layout.levels)
    df_streams, df_rest = [0] * p, 0
    for codes, idx in patterns(layout):
        m, n = idx.shape
        blocks = [np.eye(L)[codes[:, j]] for j, L in enumerate(layout.levels)]
        full = np.linalg.matrix_rank(np.hstack([np.ones((n, 1)), *blocks]))
        df_rest += m * (n - full)
        for j in range(p):
            others = [b for i, b in enumerate(blocks) if i != j]
            df_streams[j] += m * (full - np.linalg.matrix_rank(np.hstack([np.ones((n, 1)),
                                                                            *others])))  # fmt: skip
    return df_streams, int(df_rest)


def _pooled(layout: Layout, source: str, rng: np.random.Generator, resamples: int) -> Fit:
    """One source: the pooled within-cell variance, resampled as a scaled chi-square."""
    d, df = within(layout)
    var = float(d @ d) / df
    draws = var * rng.chisquare(df, (resamples, 1)) / df
    return Fit((source,), np.array([var]), np.array([False]), draws)


def _anova(layout: Layout, names: list[str], rng: np.random.Generator, resamples: int) -> Fit:
    """Balanced data: pooled mean squares, the expected-mean-squares estimators, and resamples
    of the mean squares from the fitted components."""
    d, df_within = within(layout)
    n_cell = len(layout.y) / layout.cells
    ss, df = [], []
    for j, L in enumerate(layout.levels):
        key = layout.cell * L + layout.codes[:, j]
        sums, counts = np.bincount(key, d), np.bincount(key)
        ss.append(float(np.sum(sums[counts > 0] ** 2 / counts[counts > 0])))
        df.append(layout.cells * (L - 1))
    ss.append(float(d @ d) - sum(ss))
    df.append(df_within - sum(df))
    dfs = np.array(df, float)
    k = n_cell / np.array(layout.levels, float)
    estimate, truncated = _from_mean_squares(np.array(ss) / dfs, k)
    expected = np.r_[estimate[-1] + k * estimate[:-1], estimate[-1]]
    draws, _ = _from_mean_squares(expected * rng.chisquare(dfs, (resamples, len(dfs))) / dfs, k)
    return Fit((*names, RESIDUAL), estimate, truncated, draws)


def _from_mean_squares(
    ms: NDArray[np.float64], k: NDArray[np.float64]
) -> tuple[NDArray[np.float64], NDArray[np.bool_]]:
    """(MS_stream − MS_rest) / k per stream, negatives set to 0 (and flagged), then MS_rest."""
    raw = (ms[..., :-1] - ms[..., -1:]) / k
    estimate = np.concatenate([np.maximum(raw, 0.0), ms[..., -1:]], axis=-1)
    return estimate, np.concatenate([raw < 0, np.zeros_like(raw[..., :1], bool)], axis=-1)


def _interval(draws: NDArray[np.float64], alpha: float) -> NDArray[np.float64]:
    """Percentile bounds (2, ...) of resamples along the first axis; order statistics, so an
    infinite ratio stays infinite and NaNs (0/0) are left out."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # a column of NaNs: NaN bounds
        return np.nanquantile(draws, [alpha / 2, 1 - alpha / 2], axis=0, method="inverted_cdf")


def _divide(a: NDArray[np.float64], b: NDArray[np.float64]) -> NDArray[np.float64]:
    with np.errstate(divide="ignore", invalid="ignore"):
        quotient: NDArray[np.float64] = np.asarray(a, float) / np.asarray(b, float)
    return quotient


def _scope(name: str, factor: str | None, level: str | None, layout: Layout, fit: Fit,
           alpha: float) -> Scope:  # fmt: skip
    total, totals = float(fit.estimate.sum()), fit.draws.sum(axis=1)
    share = _divide(fit.estimate, np.full_like(fit.estimate, total))
    low, high = _interval(fit.draws, alpha)
    share_low, share_high = _interval(_divide(fit.draws, totals[:, None]), alpha)
    total_low, total_high = _interval(totals, alpha)
    rows = zip(fit.sources, fit.estimate, share, low, high, share_low, share_high,
               fit.truncated, strict=True)  # fmt: skip
    components = tuple(Component(s, float(v), float(sh), float(lo), float(hi), float(sl),
                                 float(su), bool(cut))
                       for s, v, sh, lo, hi, sl, su, cut in rows)  # fmt: skip
    return Scope(name, factor, level, layout.cells, len(layout.y), total, float(total_low),
                 float(total_high), components)  # fmt: skip


def _ratios(data: pd.DataFrame, factors: Sequence[str], fits: dict[str, Fit], alpha: float,
            missing: list[str]) -> tuple[Ratio, ...]:  # fmt: skip
    """For every two-level factor and every source both levels have: high over low."""
    ratios = []
    for f in factors:
        levels = _levels(data, f)
        if len(levels) != 2:
            continue
        (_, low), (_, high) = levels
        a, b = fits.get(f"{f}={high}"), fits.get(f"{f}={low}")
        if a is None or b is None:
            missing.append(f"{f}: no ratios of variances, as one of its levels has no components")
            continue
        for source in (s for s in b.sources if s in a.sources):
            i, j = a.sources.index(source), b.sources.index(source)
            ratio = float(_divide(a.estimate[i], b.estimate[j]))
            lo, hi = _interval(_divide(a.draws[:, i], b.draws[:, j]), alpha)
            ratios.append(Ratio(f, low, high, source, ratio, float(lo), float(hi),
                                bool(lo > 1 or hi < 1)))  # fmt: skip
    return tuple(ratios)
