"""The probability of improvement beside each effect (Agarwal et al. 2021, "Deep RL at the edge
of the statistical precipice", as rliable computes it), paired by seed.

An effect is a difference of means: it can be carried by a few large wins while most trials
lose a little, or hidden by the noise of a few bad seeds while nearly every trial wins a
little. The probability of improvement counts instead: of the trials that differ only in one
factor, at the same seed (same replicate, same levels of every other factor), how often the
trial at one level is better than its partner at the other -- a tie counts one half. 1/2 is
"no better, no worse"; 1 is "better at every seed and setting".

For each contrast the analysis reports (a two-level factor's low -> high, a multi-level
factor's baseline -> each other level) :func:`probability_of_improvement` gives the count of
pairs, the probability, its cluster-bootstrap interval, and, where the design has no such
pairs (a fractional or screening design changes several factors at once), why it is missing.
:func:`tells_more` says when the probability tells a reader something the effect does not.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import numpy as np
import pandas as pd

from ablate.designs.matrix import FactorInfo, factor_infos
from ablate.errors import AblateError
from ablate.tasks.base import Goal

#: Columns of :func:`probability_of_improvement`'s table, in order.
COLUMNS = ("factor", "low", "high", "pairs", "p_improve", "ci_low", "ci_high", "missing")

#: How close to 1/2 a probability of improvement must be to be "near 1/2" in :func:`tells_more`.
NEAR_HALF = 0.1


def probability_of_improvement(
    frame: pd.DataFrame,
    factors: Sequence[str],
    response: str,
    goal: Goal,
    *,
    baselines: dict[str, Any] | None = None,
    declared: dict[str, tuple[str, tuple[Any, ...]]] | None = None,
    replicate: str = "replicate",
    alpha: float = 0.05,
    resamples: int = 2000,
    seed: int = 0,
) -> pd.DataFrame:
    """P(a trial at ``high`` is better than its paired trial at ``low``), per contrast.

    One row per contrast, in the order of ``factors``: a two-level factor's ``low -> high``
    and a multi-level factor's ``baseline -> level`` for each other level. Levels and
    baselines are chosen as the analysis chooses them (:func:`ablate.designs.matrix.
    factor_infos`: false < true, numbers ascending, strings as ``declared`` or else sorted;
    the baseline is the first level unless ``baselines`` names another).

    Columns (:data:`COLUMNS`): ``factor``; ``low`` and ``high``, the two levels as labels
    (as in :attr:`ablate.stats.result.Analysis.effects`); ``pairs``, the pairs counted;
    ``p_improve``; ``ci_low`` and ``ci_high``, its ``1 - alpha`` percentile bootstrap
    interval; ``missing``, why a number is NaN ("" where nothing is).

    Pairing: two trials pair when they have the same ``replicate`` and the same level of
    every other factor in ``factors``, and differ in this one. "Better" is higher for goal
    ``"max"``, lower for ``"min"``; equal responses count 1/2. Where one setting holds more
    than one trial at a level (a column left out of ``factors`` varies too), every trial at
    ``high`` is compared with every one at ``low`` and the setting counts as one pair scored
    by their mean, so no setting outweighs another.

    The rows used are this function's business: trials whose ``status`` (where the column
    exists) is not ``"complete"``, whose response is NaN or infinite, or that lack a factor
    level or replicate are left out before levels are found and pairs formed.

    Bootstrap: the replicates are resampled with replacement, each drawn replicate bringing
    all its pairs, and P recomputed; the interval is the percentiles of those ``resamples``
    values. Replicates are the clusters because the pairs of one seed are not independent:
    every trial at that seed shares its initial weights and batch order, so a lucky or unlucky
    seed moves all its pairs together, and resampling pairs one by one would treat them as
    independent draws and give too narrow an interval. Each contrast draws from its own
    generator seeded by ``seed``, so a contrast's interval does not depend on which other
    factors are listed. With pairs at one seed only there is nothing to resample: the
    interval is NaN and ``missing`` says so.
    """
    if goal not in ("max", "min"):
        raise AblateError(
            f"the probability of improvement needs to know whether a higher or lower "
            f"{response} is better, but the goal is {goal!r}; give 'max' or 'min'."
        )
    if not 0 < alpha < 1:
        raise AblateError(f"alpha must lie between 0 and 1, not {alpha}.")
    names = list(factors)
    absent = [c for c in [*names, response, replicate] if c not in frame.columns]
    if absent:
        raise AblateError(
            f"the trials table has no column {', '.join(map(repr, absent))}; its columns are "
            f"{', '.join(map(str, frame.columns))}."
        )
    usable = _usable(frame, names, response, replicate)
    infos = factor_infos(usable, names, declared=declared, baselines=baselines)
    y = usable[response].to_numpy(dtype=float)
    better = y if goal == "max" else -y
    rows = []
    for info in infos:
        for level in (v for v in info.levels if v != info.baseline):
            rows.append(_contrast(usable, better, info, level, names, replicate,
                                  alpha, resamples, seed))  # fmt: skip
    return pd.DataFrame(rows, columns=list(COLUMNS))


def _usable(frame: pd.DataFrame, names: list[str], response: str, replicate: str) -> pd.DataFrame:
    """Complete trials with a finite response, every factor's level and a replicate."""
    keep = np.ones(len(frame), dtype=bool)
    if "status" in frame.columns:
        keep &= (frame["status"].astype("string") == "complete").fillna(False).to_numpy(bool)
    y = pd.to_numeric(frame[response], errors="coerce").to_numpy(dtype=float)
    keep &= np.isfinite(y)
    keep &= ~frame[[*names, replicate]].isna().any(axis=1).to_numpy()
    return frame[keep]


def _contrast(
    frame: pd.DataFrame, better: np.ndarray, info: FactorInfo, level: Any, names: list[str],
    replicate: str, alpha: float, resamples: int, seed: int,
) -> dict[str, Any]:  # fmt: skip
    """One row of the table: ``info.baseline -> level``."""
    row: dict[str, Any] = {"factor": info.name, "low": info.level_label(info.baseline),
                           "high": info.level_label(level)}  # fmt: skip
    scores, clusters = _paired_scores(frame, better, info, level, names, replicate)
    if len(scores) == 0:
        others = [n for n in names if n != info.name]
        same = "the same seed" + (f" and the same {', '.join(others)}" if others else "")
        why = (f"needs trials that differ only in {info.name} ({row['low']} against "
               f"{row['high']}) at {same}; this design has none")  # fmt: skip
        return {**row, "pairs": 0, "p_improve": math.nan, "ci_low": math.nan,
                "ci_high": math.nan, "missing": why}  # fmt: skip
    p = float(scores.mean())
    low, high, missing = math.nan, math.nan, ""
    if len(np.unique(clusters)) < 2:
        missing = "the interval needs pairs at two or more seeds; these are all at one"
    else:
        low, high = _cluster_interval(scores, clusters, alpha, resamples, seed)
    return {**row, "pairs": len(scores), "p_improve": p, "ci_low": low, "ci_high": high,
            "missing": missing}  # fmt: skip


def _paired_scores(
    frame: pd.DataFrame, better: np.ndarray, info: FactorInfo, level: Any, names: list[str],
    replicate: str,
) -> tuple[np.ndarray, np.ndarray]:  # fmt: skip
    """Each pair's score (1 high better, 1/2 tie, 0 worse) and the replicate it belongs to."""
    keys = [n for n in names if n != info.name] + [replicate]
    setting = frame[keys].groupby(keys, sort=False, observed=True, dropna=False).ngroup()
    column = frame[info.name].to_numpy()
    base = pd.DataFrame({"setting": setting.to_numpy(), "value": better,
                         "cluster": frame[replicate].to_numpy()})  # fmt: skip
    lows = base[column == info.baseline]
    highs = base[column == level]
    joined = highs.merge(lows[["setting", "value"]], on="setting", suffixes=("_high", "_low"))
    if joined.empty:
        return np.empty(0), np.empty(0)
    difference = joined["value_high"].to_numpy() - joined["value_low"].to_numpy()
    joined["score"] = np.where(difference > 0, 1.0, np.where(difference < 0, 0.0, 0.5))
    per_setting = joined.groupby("setting", sort=True).agg(
        score=("score", "mean"), cluster=("cluster", "first")
    )
    return per_setting["score"].to_numpy(dtype=float), per_setting["cluster"].to_numpy()


def _cluster_interval(
    scores: np.ndarray, clusters: np.ndarray, alpha: float, resamples: int, seed: int
) -> tuple[float, float]:
    """Percentile interval of P over resamples of the replicates (clusters of pairs)."""
    codes = np.unique(clusters, return_inverse=True)[1]
    sums = np.bincount(codes, weights=scores)
    counts = np.bincount(codes).astype(float)
    k = len(sums)
    # Each resample: how many times each replicate is drawn, k draws with replacement.
    weights = np.random.default_rng(seed).multinomial(k, np.full(k, 1 / k), size=resamples)
    estimates = (weights @ sums) / (weights @ counts)
    low, high = np.percentile(estimates, [100 * alpha / 2, 100 * (1 - alpha / 2)])
    return float(low), float(high)


def tells_more(
    p_improve: float,
    ci: tuple[float, float],
    effect_clear: bool,
    effect_improves: bool | None = None,
) -> bool:
    """Whether the probability of improvement says something the effect's interval does not.

    ``ci`` is the probability's interval, ``effect_clear`` whether the effect's interval
    excludes 0, and ``effect_improves`` (optional) whether the effect's sign is an improvement
    under the goal. With P's interval (lo, hi), the rule is, exactly:

    - *away from 1/2* means lo > 1/2 or hi < 1/2 (the interval excludes 1/2);
    - *near 1/2* means lo <= 1/2 <= hi and |P - 1/2| <= :data:`NEAR_HALF` (0.1);
    - *the other way* means the effect is known to improve and hi < 1/2, or known to worsen
      and lo > 1/2.

    True when the effect is not clear but P is away from 1/2 (the mean's noise hides a
    consistent win or loss, pair by pair), or when the effect is clear but P is near 1/2 or
    goes the other way (the mean moves on a few large wins while the typical pair does not
    win, or loses). False otherwise, and where P or its interval is NaN (nothing to say).
    """
    lo, hi = ci
    if not all(math.isfinite(v) for v in (p_improve, lo, hi)):
        return False
    away = lo > 0.5 or hi < 0.5
    if not effect_clear:
        return away
    near = lo <= 0.5 <= hi and abs(p_improve - 0.5) <= NEAR_HALF
    other_way = effect_improves is not None and (hi < 0.5 if effect_improves else lo > 0.5)
    return near or other_way
