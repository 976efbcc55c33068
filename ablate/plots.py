"""Effect charts: data from the analysis in, matplotlib figures out; no statistics here.

Figures are built with ``matplotlib.figure.Figure`` directly (no pyplot state, no display
needed), so they can be drawn in worker processes, tests and headless servers alike.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from ablate.analysis import Analysis

if TYPE_CHECKING:
    from matplotlib.figure import Figure

FORMATS = ("png", "svg", "pdf")


def coefficient_chart(analysis: Analysis) -> Figure:
    """Each term's estimate with its 95% confidence interval, sorted, around a zero line."""
    from matplotlib.figure import Figure

    table = analysis.coefficients.sort_values("coef")
    n = len(table)
    fig = Figure(figsize=(7.0, 1.0 + 0.38 * n), layout="constrained")
    ax = fig.add_subplot()
    positions = range(n)
    ax.errorbar(
        table["coef"],
        positions,
        xerr=[table["coef"] - table["ci_low"], table["ci_high"] - table["coef"]],
        fmt="o",
        color="#1f4e79",
        ecolor="#6d8fb3",
        capsize=3,
    )
    ax.axvline(0.0, color="0.4", linewidth=0.8, linestyle="--")
    ax.set_yticks(list(positions), list(table["term"]))
    ax.set_xlabel(f"coefficient on {analysis.response} (response units)")
    ax.set_title(f"OLS coefficients with 95% intervals (n = {analysis.n_used})")
    ax.grid(axis="x", color="0.9")
    return fig


def write_plots(analysis: Analysis, out_dir: Path, fmt: str = "png") -> list[Path]:
    """Draw every chart into ``out_dir``; returns the files written."""
    out_dir.mkdir(parents=True, exist_ok=True)
    path = out_dir / f"coefficients.{fmt}"
    coefficient_chart(analysis).savefig(path, dpi=150)
    return [path]
