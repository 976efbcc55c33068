"""What a study found, in words: one line per factor, then what qualifies it.

Each factor is one of: *helps* or *hurts* (its interval clear of 0, with the effect and the
interval; "raises"/"lowers" where the response has no better direction), *equivalent within
±D* (with ``--margin``), *inconclusive* (with the replicates that would decide it), or, for a
factor of three or more levels, *matters* (its ANOVA test) with its best level; a factor whose
spread across seeds changes with its level is also *seed-sensitive* (run once per cell: its
residuals spread more at one level, by the Box-Meyer statistic). Then: how many trials
did not learn, a warning where lack of fit is significant (with the two-factor interactions
the data point to), and a flag where an interval leaves the values the response can take.
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd

from ablate.designs.matrix import FactorInfo, build_matrix
from ablate.stats.equivalence import summary_line
from ablate.stats.result import Analysis

if TYPE_CHECKING:
    from numpy.typing import NDArray


def findings(a: Analysis, hints: list[tuple[str, float]], bounds: tuple) -> tuple[str, ...]:
    """The findings of ``a``; ``hints`` are interactions the data point to (name, p);
    ``bounds`` the values the response can take."""
    lines = [_factor_line(a, f) for f in a.factors]
    if a.learned is not None and a.learned.not_learned:
        lines.append(
            f"{a.learned.not_learned} of {len(a.learned.table)} trials did not learn (did not "
            f"beat {a.learned.value:.4g}, {a.learned.what})"
            + ("; left out of the fit." if a.excluded.get("did not learn") else ".")
        )
    lines += _bootstrap_lines(a)
    lines += _lack_of_fit_line(a, hints)
    lines += _range_lines(a, bounds)
    return tuple(lines)


def _factor_line(a: Analysis, f: FactorInfo) -> str:
    alpha = a.options.alpha
    line = _two_level(a, f) if f.two_level else _many_levels(a, f)
    if a.dispersion is not None:
        row = a.dispersion.table.set_index("factor").loc[f.name]
        if row["seed_sensitive"]:
            line += "; seed-sensitive (" + _spread_words(row, alpha) + ")"
    if a.box_meyer is not None and f.name in set(a.box_meyer["factor"]):
        row = a.box_meyer.set_index("factor").loc[f.name]
        if row["spread_differs"]:
            line += (f"; results spread more at {row['high'] if row['f_star'] > 0 else row['low']}"
                     f" (Box-Meyer F* = {row['f_star']:+.2f}, residual SD {row['sd_low']:.3g} "
                     f"→ {row['sd_high']:.3g}, adjusted p ≈ {row['p_adj']:.2g})")  # fmt: skip
    return line


def _two_level(a: Analysis, f: FactorInfo) -> str:
    effects = a.blocks.effects if a.blocks is not None else a.effects
    e = effects.set_index("factor").loc[f.name]
    ci = f"{a.confidence}% CI [{e['ci_low']:.3g}, {e['ci_high']:.3g}]"
    moved = f"{f.level_label(f.low)} → {f.level_label(f.high)}: {e['effect']:+.3g}, {ci}"
    if a.equivalence is not None and f.name in set(a.equivalence["term"]):
        row = a.equivalence.set_index("term").loc[f.name]
        if not str(row["verdict"]).startswith("different"):
            return summary_line(f.name, row, alpha=a.options.alpha)
    if math.isnan(e["ci_low"]):
        return f"{f.name}: {f.level_label(f.high)} changes it by {e['effect']:+.3g} (no interval)"
    if e["ci_low"] > 0 or e["ci_high"] < 0:
        return f"{f.name}: {f.level_label(f.high)} {_direction(a, e['effect'])} ({moved})"
    return (f"{f.name}: no clear effect ({moved}, which holds 0; --margin D tests whether it "
            "is smaller than D)")  # fmt: skip


def _direction(a: Analysis, effect: float) -> str:
    goal = a.fit.get("goal")
    if goal is None:
        return "raises it" if effect > 0 else "lowers it"
    good = effect < 0 if goal == "min" else effect > 0
    return "helps" if good else "hurts"


def _many_levels(a: Analysis, f: FactorInfo) -> str:
    row = a.anova[a.anova["term"] == f.name]
    p = float(row["p"].iloc[0]) if len(row) else math.nan
    means = a.marginal_means[a.marginal_means["factor"] == f.name]
    goal = a.fit.get("goal") or "min"
    best = means.loc[means["emmean"].idxmin() if goal == "min" else means["emmean"].idxmax()]
    if not p < a.options.alpha:
        tail = f"ANOVA p = {p:.3g}" if not math.isnan(p) else "no test"
        return f"{f.name}: no clear effect across its {len(f.levels)} levels ({tail})"
    line = (f"{f.name}: matters (ANOVA p = {p:.2g}); best level {best['level']} (marginal "
            f"mean {best['emmean']:.4g})")  # fmt: skip
    if a.equivalence is not None:
        pairs = a.equivalence[a.equivalence["term"].str.startswith(f"{f.name}: ")]
        same = pairs[pairs["verdict"].str.startswith("equivalent")]
        if len(same):
            line += f"; {len(same)} of {len(pairs)} pairs of levels equivalent within the margin"
    return line


def _spread_words(row: pd.Series, alpha: float) -> str:
    parts = []
    if not math.isnan(row["ratio"]):
        parts.append(f"SD ×{row['ratio']:.2g} at {row['high']}, {100 * (1 - alpha):g}% CI "
                     f"[{row['ratio_low']:.2g}, {row['ratio_high']:.2g}]")  # fmt: skip
    if not math.isnan(row["bf_p"]):
        parts.append(f"Brown-Forsythe p = {row['bf_p']:.2g}, adjusted {row['bf_p_adj']:.2g}")
    return "; ".join(parts)


def _bootstrap_lines(a: Analysis) -> list[str]:
    b = a.bootstrap
    if b is None or b.effects["agrees"].all():
        return []
    r = a.fit["replicates_min"]
    parts = [f"{row.factor} (OLS [{row.ci_low:.3g}, {row.ci_high:.3g}], bootstrap "
             f"[{row.boot_low:.3g}, {row.boot_high:.3g}])"
             for row in b.effects[~b.effects["agrees"]].itertuples()]  # fmt: skip
    few = (f"; with {r} replicates per cell the bootstrap's intervals run about "
           f"{((r - 1) / r) ** 0.5:.0%} as wide as they should") if r < 5 else ""  # fmt: skip
    return [f"the cluster bootstrap over seeds disagrees with OLS on {', '.join(parts)}: the "
            f"normal model's intervals may mislead there{few}."]  # fmt: skip


def _lack_of_fit_line(a: Analysis, hints: list[tuple[str, float]]) -> list[str]:
    lof = a.lack_of_fit
    if lof is None or "lack of fit" not in set(lof["source"]):
        return []
    p = float(lof.set_index("source").loc["lack of fit", "p"])
    if not p < a.options.alpha:
        return []
    pointed = ", ".join(f"{t} (p = {q:.2g})" for t, q in hints) or "no single two-factor one"
    return [f"WARNING: lack of fit is significant (p = {p:.2g}): the model misses structure in "
            f"the cell means; the interactions the data point to: {pointed} (add them with "
            "--terms or --interactions 2)."]  # fmt: skip


def _range_lines(a: Analysis, bounds: tuple) -> list[str]:
    low, high = bounds
    if (low is None and high is None) or a.options.log:
        return []
    m = a.marginal_means
    out = (m["ci_low"] < low) if low is not None else pd.Series(False, index=m.index)
    if high is not None:
        out |= m["ci_high"] > high
    if not out.any():
        return []
    worst = m.loc[out, ["ci_low", "ci_high"]].to_numpy()
    span = f"[{np.nanmin(worst):.3g}, {np.nanmax(worst):.3g}]"
    limits = f"[{'-∞' if low is None else f'{low:g}'}, {'∞' if high is None else f'{high:g}'}]"
    return [
        f"WARNING: {int(out.sum())} marginal-mean intervals leave the values {a.response} can "
        f"take {limits} (as far as {span}): the normal model fits poorly near the bound; --log "
        "(for a positive response) or the per-cell values suit it better."
    ]


def interaction_hints(
    frame: pd.DataFrame, y: NDArray[np.float64], factors: tuple[FactorInfo, ...],
    rss_main: float, df_main: int, alpha: float,
) -> list[tuple[str, float]]:  # fmt: skip
    """Two-factor interactions whose extra sum of squares over the main-effects model is
    significant (an F test against the model with it), most significant first."""
    from scipy import stats

    found = []
    for i, fa in enumerate(factors):
        for fb in factors[i + 1 :]:
            design = build_matrix(frame, factors, "sum", 1, ((fa.name, fb.name),))
            X = design.matrix.to_numpy(dtype=float)
            df = len(y) - X.shape[1]
            if df < 1 or np.linalg.matrix_rank(X) < X.shape[1]:
                continue
            beta, *_ = np.linalg.lstsq(X, y, rcond=None)
            rss = float(((y - X @ beta) ** 2).sum())
            extra_df = df_main - df
            if extra_df < 1 or rss <= 0:
                continue
            F = ((rss_main - rss) / extra_df) / (rss / df)
            p = float(stats.f.sf(F, extra_df, df))
            if p < alpha:
                found.append((f"{fa.name}×{fb.name}", p))
    return sorted(found, key=lambda t: t[1])
