"""The charts' common look: page width, colours, one colour per factor level throughout.

Figures are built with ``matplotlib.figure.Figure`` directly (no pyplot state, no display
needed), sized for a paper page (6.5 to 7 inches wide).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import numpy as np

from ablate.designs.matrix import FactorInfo

if TYPE_CHECKING:
    from matplotlib.figure import Figure

IMAGE_FORMATS = ("png", "svg", "pdf")  # what a chart may be saved as
WIDTH = 7.0  # inches: a full-width figure in a paper
SIGNIFICANT = "#b2182b"
PLAIN = "#2166ac"
MUTED = "#8c8c8c"
TAB10 = ("#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd", "#8c564b", "#e377c2",
          "#7f7f7f", "#bcbd22", "#17becf")  # fmt: skip


def level_colors(factor: FactorInfo) -> dict[str, str]:
    """One colour per level, the same in every chart: off grey and on blue, else tab10."""
    labels = [factor.level_label(v) for v in factor.levels]
    if factor.kind == "bool":
        return {"false": "#7f7f7f", "true": "#1f77b4"}
    return {label: TAB10[i % len(TAB10)] for i, label in enumerate(labels)}


def figure(height: float) -> Figure:
    from matplotlib.figure import Figure

    fig = Figure(figsize=(WIDTH, height), layout="constrained")
    fig.get_layout_engine().set(h_pad=0.06, w_pad=0.06)
    return fig


#: Where a label may go, around its point, in points (x, y) and alignment, in order of choice.
_PLACES = (
    (6, 0, "left", "center"),
    (-6, 0, "right", "center"),
    (6, 9, "left", "bottom"),
    (-6, 9, "right", "bottom"),
    (6, -9, "left", "top"),
    (-6, -9, "right", "top"),
    (0, 12, "center", "bottom"),
    (0, -12, "center", "top"),
    (6, 20, "left", "bottom"),
    (-6, 20, "right", "bottom"),
    (6, -20, "left", "top"),
    (-6, -20, "right", "top"),
)


def place_labels(ax: Any, x: np.ndarray, y: np.ndarray, labels: list[str]) -> list[Any]:
    """Label each point (x, y) at the first place around it where the label's box, as
    drawn, overlaps no point, no label placed before it and stays inside the axes; the
    biggest points first. Returns the labels' text objects."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg

    fig = ax.figure
    if fig.canvas is None or not hasattr(fig.canvas, "get_renderer"):
        FigureCanvasAgg(fig)
    fig.canvas.draw()  # the layout engine settles the axes before anything is measured
    renderer = fig.canvas.get_renderer()
    dots = [ax.transData.transform((xi, yi)) for xi, yi in zip(x, y, strict=True)]
    frame = ax.get_window_extent(renderer)
    placed: list[Any] = []
    texts = []
    for i in np.argsort(-y, kind="stable"):
        for dx, dy, ha, va in _PLACES:
            leader = {"arrowstyle": "-", "color": "0.6", "linewidth": 0.5} if dy else None
            text = ax.annotate(labels[i], (x[i], y[i]), xytext=(dx, dy), textcoords="offset points",
                               fontsize="x-small", ha=ha, va=va, arrowprops=leader)  # fmt: skip
            text.set_in_layout(False)  # the axes stay where they were measured
            box = text.get_window_extent(renderer).expanded(1.05, 1.15)
            clashes = (
                any(box.overlaps(b) for b in placed)
                or any(box.contains(px, py) for j, (px, py) in enumerate(dots) if j != i)
                or not (frame.contains(box.x0, box.y0) and frame.contains(box.x1, box.y1))
            )
            if not clashes or (dx, dy) == _PLACES[-1][:2]:
                placed.append(box)
                texts.append(text)
                break
            text.remove()
    return texts
