"""The variance components chart: where the seed-to-seed variance comes from, scope by scope.

Data from :func:`ablate.stats.components.variance_components` in, a matplotlib figure out; no
statistics here. One horizontal bar per scope (all cells, then each level of each factor), cut
into the sources' shares, one colour per source in every bar, the total seed-to-seed SD with its
interval written beside the bar.
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING

import numpy as np

from ablate.stats.components import RESIDUAL, Components, Scope
from ablate.views.style import TAB10, figure

if TYPE_CHECKING:
    from matplotlib.artist import Artist
    from matplotlib.axes import Axes
    from matplotlib.figure import Figure

#: The rest is what no stream explains: a quiet grey beside the streams' tab10 colours.
REST_COLOR = "#c7c7c7"
_GAP = 0.6  # extra space between the groups of bars (all cells, then one group per factor)


def source_colors(components: Components) -> dict[str, str]:
    """One colour per source, the same in every bar: the streams in the study's order, a
    stream that holds the rest (one trial per seed index) in that stream's colour paled, the
    rest grey."""
    from matplotlib.colors import to_hex, to_rgb

    colors = {s: TAB10[i % len(TAB10)] for i, s in enumerate(components.streams)}
    for stream, color in list(colors.items()):  # the stream's colour, paled
        r, g, b = (0.5 + 0.5 * v for v in to_rgb(color))
        colors[f"{stream} and the rest"] = to_hex((r, g, b))
    colors[RESIDUAL] = REST_COLOR
    return colors


def components_chart(components: Components) -> Figure:
    """For each scope a horizontal bar of the sources' shares of the seed-to-seed variance,
    the total SD (with its interval) beside it; scopes grouped by factor, all cells on top."""
    scopes = components.scopes
    fig = figure(1.9 + 0.36 * max(len(scopes), 1) + _GAP * 0.3 * _groups(scopes))
    ax = fig.subplots()
    if not scopes:  # nothing to draw: say why
        why = components.missing[0] if components.missing else "no trials"
        ax.text(0.5, 0.5, f"no variance components: {why}", ha="center", va="center",
                transform=ax.transAxes, wrap=True)  # fmt: skip
        ax.set_axis_off()
        return fig
    colors = source_colors(components)
    y = _positions(scopes)
    drawn: dict[str, Artist] = {}
    decimals = _decimals(scopes)
    for yi, scope in zip(y, scopes, strict=True):
        _bar(ax, yi, scope, colors, drawn)
        ax.text(102, yi, _sd_label(scope, decimals), va="center", ha="left", fontsize="small",
                clip_on=False)  # fmt: skip
    level = f"{100 * components.confidence:g}%"
    ax.text(102, -0.65, f"total SD [{level} interval]", va="bottom", ha="left",
            fontsize="small", color="0.35", clip_on=False)  # fmt: skip
    ax.set_yticks(y, [f"{s.name} ({s.n_cells} cells)" for s in scopes])
    ax.set_ylim(max(y, default=0) + 0.6, -0.6)  # the first scope (all cells) on top
    ax.set_xlim(0, 100)
    ax.set_xticks(np.arange(0, 101, 20))
    ax.set_xlabel("share of the seed-to-seed variance within a cell (%)")
    ax.set_ylabel("cells included")
    ax.spines[["top", "right"]].set_visible(False)
    order = [s for s in colors if s in drawn]
    fig.legend([drawn[s] for s in order], order, loc="outside lower center",
               ncol=min(len(order), 4), frameon=False, fontsize="small",
               title="source of randomness", title_fontsize="small")  # fmt: skip
    estimator = "ANOVA" if components.method.startswith("ANOVA") else "REML"
    fig.suptitle(f"Seed-to-seed variance of {components.response} by source of randomness "
                 f"({estimator} estimates)", fontsize="medium")  # fmt: skip
    return fig


def _groups(scopes: tuple[Scope, ...]) -> int:
    return len({s.factor for s in scopes})


def _positions(scopes: tuple[Scope, ...]) -> list[float]:
    """Bar centres from the top, a gap wherever the factor changes."""
    y, at, last = [], 0.0, None
    for i, s in enumerate(scopes):
        if i and s.factor != last:
            at += _GAP
        y.append(at)
        at, last = at + 1.0, s.factor
    return y


def _bar(ax: Axes, y: float, scope: Scope, colors: dict[str, str],
         drawn: dict[str, Artist]) -> None:  # fmt: skip
    """One scope's stacked shares, each labelled with its percentage where it has room."""
    left = 0.0
    for c in scope.components:
        width = 100 * c.share
        if not math.isfinite(width) or width <= 0:
            continue
        bar = ax.barh(y, width, left=left, height=0.7, color=colors.get(c.source, "0.5"),
                      edgecolor="white", linewidth=0.8)  # fmt: skip
        drawn.setdefault(c.source, bar.patches[0])
        if width >= 7:
            ink = "black" if _light(colors.get(c.source, "0.5")) else "white"
            ax.text(left + width / 2, y, f"{width:.0f}%", ha="center", va="center",
                    fontsize="x-small", color=ink)  # fmt: skip
        left += width


def _light(color: str) -> bool:
    """Whether black text reads better than white on ``color`` (its luminance)."""
    from matplotlib.colors import to_rgb

    r, g, b = to_rgb(color)
    return 0.299 * r + 0.587 * g + 0.114 * b > 0.6


def _decimals(scopes: tuple[Scope, ...]) -> int:
    """Decimals that give the largest SD three significant digits, the same for every bar."""
    top = max((s.total_high for s in scopes if math.isfinite(s.total_high)), default=0.0)
    return max(0, 2 - math.floor(math.log10(math.sqrt(top)))) if top > 0 else 2


def _sd_label(scope: Scope, decimals: int) -> str:
    """The SD and its interval, "0.41 [0.33, 0.52]"; "no spread" where every trial of a cell
    is alike."""
    if not scope.total > 0:
        return "no spread"
    low, high = math.sqrt(scope.total_low), math.sqrt(scope.total_high)
    return f"{scope.sd:.{decimals}f} [{low:.{decimals}f}, {high:.{decimals}f}]"
