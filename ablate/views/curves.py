"""Learning curves: did the training itself behave? Per-epoch values in, a figure out."""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np

from ablate.designs.matrix import FactorInfo
from ablate.views.style import figure, level_colors

if TYPE_CHECKING:
    import pandas as pd
    from matplotlib.figure import Figure


def learning_curve_plot(
    per_trial: pd.DataFrame,
    per_level: pd.DataFrame,
    factors: tuple[FactorInfo, ...],
    metric: str = "loss",
    unit: str = "",
) -> Figure:
    """One metric per epoch: every trial's test value (thin), the median per level (thick;
    dashed: training), one panel per factor on a shared axis."""
    from matplotlib.ticker import MaxNLocator

    k = len(factors)
    cols = 2 if k > 1 else 1
    rows = (k + cols - 1) // cols
    fig = figure(2.7 * rows + 0.5)
    axes = np.atleast_1d(fig.subplots(rows, cols, sharey=True, squeeze=False)).ravel()
    values = np.r_[per_trial["test"].dropna(), per_trial["train"].dropna()]
    log = len(values) and values.min() > 0 and values.max() / values.min() > 20
    for ax, f in zip(axes, factors, strict=False):
        colors = level_colors(f)
        for _, trial in per_trial.groupby("trial_key", sort=False):
            ax.plot(trial["epoch"], trial["test"], color=colors[trial[f.name].iloc[0]],
                    alpha=0.2, linewidth=0.7)  # fmt: skip
        for level in [f.level_label(v) for v in f.levels]:
            means = per_level[(per_level["factor"] == f.name) & (per_level["level"] == level)]
            ax.plot(means["epoch"], means["test"], color=colors[level], linewidth=2.2,
                    label=f"{level} (test)")  # fmt: skip
            if means["train"].notna().any():
                ax.plot(means["epoch"], means["train"], color=colors[level], linewidth=1.6,
                        linestyle="--", label=f"{level} (train)")  # fmt: skip
        ax.set_title(f.name, fontsize="small")
        ax.set_xlabel("epoch")
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))
        ax.legend(fontsize="xx-small", frameon=False, ncols=2)
        ax.grid(color="0.94")
        if log:
            ax.set_yscale("log")
    for ax in axes[k:]:
        ax.set_visible(False)
    for ax in axes[::cols]:
        ax.set_ylabel(f"{metric} ({unit})" if unit else metric)
    fig.suptitle(
        f"Learning curves: every trial's test {metric} (thin), median per level (thick; "
        "dashed: train)",
        fontsize="medium",
    )
    return fig
