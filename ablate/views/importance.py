"""The importance chart: each factor's share by the linear model beside Optuna's evaluators.

Data from :func:`ablate.stats.importance.importance` (through the analysis); nothing is
computed here. One horizontal group of bars per factor, largest linear share at the top.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np

from ablate.stats.analysis import Analysis
from ablate.views.style import figure

if TYPE_CHECKING:
    from matplotlib.figure import Figure

#: (column, legend, colour) of each reading
READINGS = (
    ("linear", "linear model: share of main-effect sum of squares", "#2166ac"),
    ("fanova", "Optuna fANOVA: share of the forest's variance", "#f4a582"),
    ("ped_anova", "Optuna PED-ANOVA: what sets the best trials apart", "#7b3294"),
)


def importance_chart(a: Analysis) -> Figure:
    """Grouped bars: for every factor, its importance by each reading (each sums to 1)."""
    table = a.importance
    assert table is not None
    table = table.sort_values("linear", ascending=True, na_position="first", ignore_index=True)
    present = [r for r in READINGS if table[r[0]].notna().any()]
    fig = figure(1.4 + 0.22 * len(table) * max(len(present), 1))
    ax = fig.subplots()
    y = np.arange(len(table))
    height = 0.8 / max(len(present), 1)
    for i, (column, legend, color) in enumerate(present):
        offset = (i - (len(present) - 1) / 2) * height
        ax.barh(y - offset, table[column].fillna(0.0), height=height * 0.95, color=color,
                label=legend)  # fmt: skip
        if f"{column}_low" in table:  # the bootstrap interval
            low, high = table[f"{column}_low"], table[f"{column}_high"]
            err = np.vstack(
                [(table[column] - low).clip(lower=0), (high - table[column]).clip(lower=0)]
            )
            ax.errorbar(table[column], y - offset, xerr=err.astype(float), fmt="none",
                        ecolor="0.15", capsize=2, linewidth=1)  # fmt: skip
    ax.set_yticks(y, list(table["factor"]))
    ax.set_xlim(0, 1)
    ax.set_xlabel("importance (share; each reading sums to 1 over the factors)")
    # A figure title, centred on the page rather than the axes, so that it is never cut off.
    fig.suptitle(f"Importance of each factor for {a.response}, three readings of the same "
                 "trials", fontsize="medium")  # fmt: skip
    ax.legend(loc="lower right", fontsize="small", frameon=False)
    ax.grid(axis="x", color="0.92")
    ax.set_axisbelow(True)  # grid lines behind the bars
    return fig
