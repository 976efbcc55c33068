"""How precise the effects are, and how many replicates would make them precise enough.

An effect of a two-level factor and a pairwise difference of levels (Tukey) each have an
interval of half-width ``crit(df) · SE``; with r replicates of every run its standard error
shrinks as 1/√r, and the residual degrees of freedom grow by the number of runs per added
replicate, which shrinks the critical value too. :func:`replicates_for` finds the fewest
replicates at which a half-width reaches a target, were the residual SD what it is now -- the
planning formula of :mod:`ablate.stats.power`, asked for a width instead of a power.
"""

from __future__ import annotations

import math
from collections.abc import Callable

import pandas as pd

from ablate.stats.result import Analysis

Critical = Callable[[float], float]  # df -> the interval's critical value


def halfwidths(a: Analysis) -> pd.DataFrame:
    """term, halfwidth and the critical value's function, for every two-level effect and
    every pairwise difference of a factor's levels."""
    from scipy import stats

    alpha = a.options.alpha
    rows = []
    for _, e in a.effects.iterrows():
        crit: Critical = lambda df: float(stats.t.ppf(1 - alpha / 2, df))  # noqa: E731
        rows.append({"term": e["factor"], "halfwidth": (e["ci_high"] - e["ci_low"]) / 2,
                     "critical": crit})  # fmt: skip
    for f in a.factors:
        pairs = a.pairwise[a.pairwise["factor"] == f.name]
        k = len(f.levels)

        def crit_k(df: float, k: int = k) -> float:
            return float(stats.studentized_range.ppf(1 - alpha, k, df)) / math.sqrt(2)

        for _, p in pairs.iterrows():
            term = f"{f.name}: {p['level_b']} − {p['level_a']}"
            half = (p["ci_high"] - p["ci_low"]) / 2
            rows.append({"term": term, "halfwidth": half, "critical": crit_k})
    return pd.DataFrame(rows, columns=["term", "halfwidth", "critical"])


def replicates_for(
    halfwidth: float, critical: Critical, now: tuple[int, int, int], target: float, most: int
) -> int | None:
    """The fewest replicates per run (above the current ones, at most ``most``) at which the
    half-width reaches ``target``; ``now``: the residual df, the replicates and the runs.
    None where ``most`` is not enough or the width is unknown."""
    df, replicates, runs = now
    if not (math.isfinite(halfwidth) and df > 0):
        return None
    unit = halfwidth / critical(df) * math.sqrt(replicates)  # the SE with one replicate
    for r in range(replicates + 1, most + 1):
        if critical(df + (r - replicates) * runs) * unit / math.sqrt(r) <= target:
            return r
    return None
