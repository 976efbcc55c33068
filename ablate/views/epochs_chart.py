"""The effects over training time as a chart: would the conclusion survive longer training?

Every number drawn comes from :func:`ablate.stats.over_epochs.effects_over_epochs`; this module
only lays them out: one small panel per effect on a shared epoch axis, the effect with its
interval as a band, the zero line, the equivalence margin where there is one, and what the
effect does over training in words (house colours: :mod:`ablate.views.style`).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np

from ablate.stats.over_epochs import EffectTrend, OverEpochs
from ablate.views.style import MUTED, PLAIN, SIGNIFICANT, figure

if TYPE_CHECKING:
    from matplotlib.axes import Axes
    from matplotlib.figure import Figure

#: Panels per row: two leave each panel's title room for its two lines of words.
COLUMNS = 2


def effects_over_epochs_chart(
    over: OverEpochs, margin: float | None = None, response: str | None = None
) -> Figure:
    """One panel per effect (high − low, in the response's units) against the epoch: the
    effect's line, its interval as a band, red points where the interval excludes 0, the zero
    line and ±``margin`` dashed (the analysis's margin where none is given); each panel's title
    says what the effect is and what it does over training. ``response`` names the response
    in the labels (default: the response as analysed)."""
    label = response or over.response
    margin = margin if margin is not None else over.margin
    if over.missing is not None or not over.effects:
        return _nothing(over, label)
    k = len(over.effects)
    cols = min(COLUMNS, k)
    rows = (k + cols - 1) // cols
    fig = figure(1.0 + 2.1 * rows)
    axes = np.atleast_1d(fig.subplots(rows, cols, sharex=True, squeeze=False))
    for i, (ax, trend) in enumerate(zip(axes.ravel(), over.effects, strict=False)):
        _panel(ax, over, trend, margin)
        if i % cols == 0:
            ax.set_ylabel(f"effect ({label} units)", fontsize="small")
    for ax in axes.ravel()[k:]:
        ax.set_visible(False)
    for ax in axes[-1]:
        ax.set_xlabel("epoch", fontsize="small")
    for i in range(k, rows * cols):  # a hidden panel's column still needs its epochs below
        axes[-2, i % cols].tick_params(labelbottom=True)
        axes[-2, i % cols].set_xlabel("epoch", fontsize="small")
    fig.suptitle(_title(over, label, margin), fontsize="medium")
    return fig


def _panel(ax: Axes, over: OverEpochs, trend: EffectTrend, margin: float | None) -> None:
    """One effect over the epochs."""
    from matplotlib.ticker import MaxNLocator

    t = over.table
    rows = t[(t["factor"] == trend.factor) & (t["low"] == trend.low) & (t["high"] == trend.high)]
    rows = rows.sort_values("epoch")
    x = rows["epoch"].to_numpy(float)
    est = rows["effect"].to_numpy(float)
    red = rows["clear"].to_numpy(bool)
    ax.fill_between(x, rows["ci_low"].to_numpy(float), rows["ci_high"].to_numpy(float),
                    color=PLAIN, alpha=0.16, linewidth=0)  # fmt: skip
    ax.plot(x, est, color=PLAIN, linewidth=1.4, zorder=2)
    ax.scatter(x[~red], est[~red], s=22, facecolor="white", edgecolor=PLAIN, linewidth=1.2,
               zorder=3)  # fmt: skip
    ax.scatter(x[red], est[red], s=24, color=SIGNIFICANT, zorder=4)
    ax.axhline(0.0, color="0.25", linewidth=0.8)
    if margin is not None:
        for m in (-margin, margin):
            ax.axhline(m, color=MUTED, linewidth=0.9, linestyle="--")
    ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    ax.tick_params(labelsize="x-small")
    ax.grid(color="0.94")
    ax.set_title(f"{_name(trend)}\n{_course(trend)}", fontsize="x-small", loc="left")


def _name(trend: EffectTrend) -> str:
    """What the effect is, as the tables and the findings name it."""
    return f"{trend.factor} ({trend.low} → {trend.high})"


def _course(trend: EffectTrend) -> str:
    """What the effect does over training, in two short lines: where it settled, and whether
    it still moves over the last step."""
    where = (f"{trend.word} from epoch {trend.settled_from} on" if trend.word is not None
             else f"no clear effect at epoch {trend.last_epoch}")  # fmt: skip
    step = f"epoch {trend.previous_epoch}→{trend.last_epoch}"
    if trend.change is None:
        return f"{where}\nchange over the last step unknown"
    if not trend.moving:
        return f"{where}\n{step}: no clear change"
    change = f"{trend.change:+.2g}".replace("-", "−")
    return f"{where}\n{step}: {trend.trend}, {change} per epoch"


def _title(over: OverEpochs, label: str, margin: float | None) -> str:
    better = {"min": "; below 0 is better", "max": "; above 0 is better"}.get(over.goal or "", "")
    dashed = f"; dashed: ±{margin:g}, the margin" if margin is not None else ""
    return (f"Effects on {label} over training: high − low level, with its {over.confidence}% "
            f"interval (band)\nred: interval clear of 0{dashed}{better}")  # fmt: skip


def _nothing(over: OverEpochs, label: str) -> Figure:
    """A figure that says what is missing, where there is nothing to draw."""
    import textwrap

    fig = figure(1.6)
    ax = fig.subplots()
    ax.axis("off")
    why = over.missing or "no effect could be fitted at the last epoch"
    ax.text(0.5, 0.5, textwrap.fill(f"No effects over training for {label}: {why}.", 90),
            ha="center", va="center", fontsize="small", transform=ax.transAxes)  # fmt: skip
    return fig
