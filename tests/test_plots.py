"""Charts are drawn from analysis data: the right marks, in the right order, labelled."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from ablate.analysis import Analysis, analyze
from ablate.plots import coefficient_chart, write_plots
from ablate.results import Results


def _analysis() -> Analysis:
    rng = np.random.default_rng(1)
    frame = pd.DataFrame(
        {
            "bn": [True, False] * 8,
            "act": ["a", "a", "b", "b"] * 4,
            "loss": rng.normal(size=16),
        }
    )
    results = Results(trials=frame, epochs=None, study=None, source=Path("x.csv"))
    return analyze(results, factors=["bn", "act"], response="loss")


def test_coefficient_chart_has_one_point_and_interval_per_term_sorted() -> None:
    analysis = _analysis()
    fig = coefficient_chart(analysis)
    ax = fig.axes[0]
    n = len(analysis.coefficients)
    line = ax.lines[0]  # the estimates
    assert len(line.get_xdata()) == n
    labels = [t.get_text() for t in ax.get_yticklabels()]
    assert labels == analysis.coefficients.sort_values("coef")["term"].tolist()
    assert list(line.get_xdata()) == sorted(analysis.coefficients["coef"])
    assert any(list(ln.get_xdata()) == [0.0, 0.0] for ln in ax.lines[1:])  # the zero line
    assert "95%" in ax.get_title() and "loss" in ax.get_xlabel()


def test_write_plots_writes_a_png(tmp_path: Path) -> None:
    [path] = write_plots(_analysis(), tmp_path)
    assert path.read_bytes()[:4] == b"\x89PNG"
