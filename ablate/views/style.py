"""The charts' common look: page width, colours, one colour per factor level throughout.

Figures are built with ``matplotlib.figure.Figure`` directly (no pyplot state, no display
needed), sized for a paper page (6.5 to 7 inches wide).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

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
