"""Charts of margins and seeds: equivalence verdicts against the margin, spread by level.

Data from the analysis in (:mod:`ablate.stats.equivalence`, :mod:`ablate.stats.dispersion`),
figures out; no statistics here.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np
import pandas as pd

from ablate.stats.analysis import Analysis
from ablate.views.style import MUTED, PLAIN, SIGNIFICANT, figure, level_colors

if TYPE_CHECKING:
    from matplotlib.figure import Figure

#: The verdicts' colours: shown different, shown negligible, undecided.
_VERDICT_COLORS = {"different": SIGNIFICANT, "equivalent": "#1b7837", "inconclusive": MUTED}


def equivalence_chart(a: Analysis) -> Figure:
    """Every effect and pairwise difference with its 1 − 2α interval (thick) and 1 − α
    interval (thin), the margin ±D shaded: inside the band is negligible, outside matters."""
    eq = a.equivalence
    assert eq is not None
    margin = float(eq["margin"].iloc[0])
    fig = figure(1.4 + 0.32 * len(eq))
    ax = fig.subplots()
    y = np.arange(len(eq))[::-1]
    ax.axvspan(-margin, margin, color="#d9f0d3", zorder=0, label=f"±{margin:g} (the margin)")
    ax.axvline(0.0, color="0.3", linewidth=0.8, linestyle="--")
    for yi, (_, row) in zip(y, eq.iterrows(), strict=True):
        color = _VERDICT_COLORS.get(str(row["verdict"]).split(",")[0].split(" ")[0], MUTED)
        ax.hlines(yi, row["ci_low"], row["ci_high"], color=color, linewidth=1.0, zorder=1)
        ax.hlines(yi, row["ci_tost_low"], row["ci_tost_high"], color=color, linewidth=3.2,
                  zorder=2)  # fmt: skip
        ax.scatter([row["estimate"]], [yi], s=30, color="white", edgecolor=color, zorder=3)
    ax.set_yticks(y, [f"{t}  ({v})" for t, v in zip(eq["term"], eq["verdict"], strict=True)])
    ax.set_xlabel(f"effect or difference ({a.response} units)")
    level = f"{100 * (1 - 2 * a.options.alpha):g}"
    ax.set_title(f"Equivalence within ±{margin:g}: thick {level}% CI (inside the band: "
                 f"equivalent), thin {a.confidence}% CI (clear of 0: different)",
                 fontsize="medium", wrap=True)  # fmt: skip
    ax.grid(axis="x", color="0.92")
    return fig


def spread_chart(a: Analysis) -> Figure:
    """The SD at every level of every factor -- across seeds (pooled within cells) with
    replicates, of the residuals (Box-Meyer) without -- the factors whose level changes the
    spread titled in red."""
    spread, flags, (label, flag, title) = _spread_data(a)
    factors = [f for f in a.factors if f.name in set(spread["factor"])]
    fig = figure(2.6)
    axes = np.atleast_1d(fig.subplots(1, len(factors), sharey=True))
    for ax, f in zip(axes, factors, strict=True):
        rows = spread[spread["factor"] == f.name]
        colors = level_colors(f)
        ax.bar(rows["level"], rows["sd"], color=[colors.get(lv, PLAIN) for lv in rows["level"]])
        flagged = bool(flags.get(f.name))
        ax.set_title(f.name + (f" ({flag})" if flagged else ""), fontsize="small",
                     color=SIGNIFICANT if flagged else "black")  # fmt: skip
        ax.tick_params(axis="x", labelrotation=30, labelsize="small")
        ax.grid(axis="y", color="0.92")
    axes[0].set_ylabel(f"{label} ({a.response})")
    fig.suptitle(title, fontsize="medium")
    return fig


def _spread_data(a: Analysis) -> tuple[pd.DataFrame, dict[str, bool], tuple[str, str, str]]:
    """(factor, level, sd) rows, which factors are flagged, and the chart's words."""
    d, bm = a.dispersion, a.box_meyer
    if d is not None:
        flags = dict(zip(d.table["factor"], d.table["seed_sensitive"], strict=True))
        return d.spread, flags, ("SD across seeds", "seed-sensitive",
                                 f"Seed-to-seed spread by level ({d.cells_used} cells with "
                                 "replicates)")  # fmt: skip
    assert bm is not None
    rows = [{"factor": r.factor, "level": level, "sd": sd} for r in bm.itertuples()
            for level, sd in ((r.low, r.sd_low), (r.high, r.sd_high))]  # fmt: skip
    flags = dict(zip(bm["factor"], bm["spread_differs"], strict=True))
    return pd.DataFrame(rows), flags, ("residual SD", "spread differs",
                                       "Spread of the residuals by level (Box-Meyer; one run "
                                       "per cell)")  # fmt: skip
