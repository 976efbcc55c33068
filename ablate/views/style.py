"""The charts' common look: page width, colours, one colour per factor level throughout.

Figures are built with ``matplotlib.figure.Figure`` directly (no pyplot state, no display
needed), sized for a paper page (6.5 to 7 inches wide).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np

from ablate.designs.matrix import FactorInfo

if TYPE_CHECKING:
    from matplotlib.axes import Axes
    from matplotlib.figure import Figure
    from matplotlib.text import Annotation
    from matplotlib.transforms import Bbox, BboxBase
    from numpy.typing import NDArray

IMAGE_FORMATS = ("png", "svg", "pdf")  # what a chart may be saved as
WIDTH = 7.0  # inches: a full-width figure in a paper
SIGNIFICANT = "#b2182b"
PLAIN = "#2166ac"
MUTED = "#8c8c8c"
#: Colours of levels: matplotlib's tab10 without its red, which every chart keeps for "active"
#: (a level drawn red would read as a finding).
TAB10 = ("#1f77b4", "#ff7f0e", "#2ca02c", "#9467bd", "#8c564b", "#e377c2", "#17becf",
         "#bcbd22", "#7f7f7f", "#393b79")  # fmt: skip


def level_colors(factor: FactorInfo) -> dict[str, str]:
    """One colour per level, the same in every chart: off grey and on blue, else tab10."""
    labels = [factor.level_label(v) for v in factor.levels]
    if factor.kind == "bool":
        return {"false": "#7f7f7f", "true": "#1f77b4"}
    return {label: TAB10[i % len(TAB10)] for i, label in enumerate(labels)}


def figure(height: float) -> Figure:
    from matplotlib.figure import Figure
    from matplotlib.layout_engine import ConstrainedLayoutEngine

    return Figure(figsize=(WIDTH, height), layout=ConstrainedLayoutEngine(h_pad=0.06, w_pad=0.06))


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


def place_labels(
    ax: Axes, x: NDArray[np.float64], y: NDArray[np.float64], labels: list[str]
) -> list[Annotation]:
    """Label each point (x, y) at the first place around it where the label's box, as
    drawn, overlaps no point, no label placed before it and stays inside the axes; the
    biggest points first. Returns the labels' text objects."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg

    fig = ax.figure.figure  # the root figure (itself, for style.figure's axes)
    canvas = fig.canvas
    if not hasattr(canvas, "get_renderer"):
        canvas = FigureCanvasAgg(fig)  # the figure's canvas from now on
    canvas.draw()  # the layout engine settles the axes before anything is measured
    renderer = canvas.get_renderer()
    dots = [ax.transData.transform((xi, yi)) for xi, yi in zip(x, y, strict=True)]
    frame = ax.get_window_extent(renderer)
    placed: list[Bbox] = []
    texts = []
    page = fig.bbox
    for i in np.argsort(-y, kind="stable"):
        best: tuple[float, Annotation, Bbox] | None = None
        for dx, dy, ha, va in _PLACES:
            leader = {"arrowstyle": "-", "color": "0.6", "linewidth": 0.5} if dy else None
            text = ax.annotate(labels[i], (x[i], y[i]), xytext=(dx, dy), textcoords="offset points",
                               fontsize="x-small", ha=ha, va=va, arrowprops=leader)  # fmt: skip
            text.set_in_layout(False)  # the axes stay where they were measured
            box = text.get_window_extent(renderer).expanded(1.05, 1.15)
            cost = _clashes(box, placed, dots, i, frame, page)
            if best is None or cost < best[0]:
                if best is not None:
                    best[1].remove()
                best = (cost, text, box)
            else:
                text.remove()
            if cost == 0:
                break
        assert best is not None
        placed.append(best[2])
        texts.append(best[1])
    return texts


def _clashes(
    box: Bbox, placed: list[Bbox], dots: list[NDArray[np.float64]], me: int, frame: Bbox,
    page: BboxBase,
) -> float:  # fmt: skip
    """How bad a label's place is: 0 when it covers no point and no label and stays inside the
    axes; leaving the figure, where it would be cut off, is worst."""
    cost = float(sum(box.overlaps(b) for b in placed))
    cost += sum(box.contains(px, py) for j, (px, py) in enumerate(dots) if j != me)
    if not (frame.contains(box.x0, box.y0) and frame.contains(box.x1, box.y1)):
        cost += 0.5
    if not (page.contains(box.x0, box.y0) and page.contains(box.x1, box.y1)):
        cost += 100
    return cost
