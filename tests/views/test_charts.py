"""Charts from known data: the right number of marks (points, bars, lines), and labels."""

from __future__ import annotations

import itertools
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from matplotlib.axes import Axes
from matplotlib.collections import PathCollection
from matplotlib.image import AxesImage

from ablate.results import Results
from ablate.stats.analysis import Analysis, analyze
from ablate.stats.curves import learning_curves
from ablate.views.curves import learning_curve_plot
from ablate.views.effects import (
    coefficient_chart,
    half_normal_plot,
    interaction_matrix,
    main_effects_plot,
    pareto_chart,
    residual_plots,
)
from ablate.views.learned import learned_figure
from ablate.views.plots import chart_set, save_figures
from ablate.views.style import level_colors

FACTORS = ["bn", "do", "act"]
ACTS = ["elu", "relu", "selu"]


def _data(replicates: int = 2) -> Results:
    """A 2x2x3 design whose bn effect is large and real and do has none, with epoch losses."""
    rng = np.random.default_rng(3)
    trials, epochs = [], []
    for i, (r, bn, do, act) in enumerate(
        itertools.product(range(replicates), [False, True], [False, True], ACTS)
    ):
        key = f"k{i:03d}"
        loss = 0.5 - 0.2 * bn + 0.0 * do + 0.05 * ACTS.index(act) + rng.normal(0, 0.01)
        trials.append({"trial_key": key, "cell": f"c{i}", "replicate": r, "status": "complete",
                       "bn": bn, "do": do, "act": act, "test_loss": loss})  # fmt: skip
        for e in (1, 2, 3):
            epochs.append({"trial_key": key, "epoch": e, "train_loss": loss + 0.1 / e,
                           "test_loss": loss + 0.2 / e})  # fmt: skip
    return Results(pd.DataFrame(trials), pd.DataFrame(epochs), None, Path("t.parquet"))


@pytest.fixture(scope="module")
def analysis() -> Analysis:
    return analyze(_data(), factors=FACTORS, coding="reference")


def _points(ax: Axes) -> int:
    return sum(len(c.get_offsets()) for c in ax.collections if isinstance(c, PathCollection))


def test_coefficient_chart(analysis: Analysis) -> None:
    fig = coefficient_chart(analysis)
    main, side = fig.axes
    family = analysis.coefficients[~analysis.coefficients["term"].str.startswith("act[")]
    assert _points(main) == len(family) == 2  # bn, do
    assert [t.get_text() for t in main.get_yticklabels()] == list(
        family.sort_values("coef")["term"]
    )
    assert [t.get_text() for t in side.get_yticklabels()] == ["act[elu]", "act[relu]", "act[selu]"]
    red = [
        c
        for c in main.collections
        if isinstance(c, PathCollection) and c.get_label() == "significant"
    ]
    assert len(red[0].get_offsets()) == 1  # only bn is significant
    assert any(list(line.get_xdata()) == [0.0, 0.0] for line in main.lines)  # the zero line
    assert "95% intervals" in fig.get_suptitle()


def test_pareto_and_half_normal(analysis: Analysis) -> None:
    fig = pareto_chart(analysis)
    ax = fig.axes[0]
    assert len(ax.patches) == len(analysis.screening) == 4  # bn, do, act[relu], act[selu]
    widths = [p.get_width() for p in ax.patches]
    assert widths == sorted(widths, reverse=True)  # largest first (drawn top-down)
    assert ax.lines[-1].get_xdata()[0] == pytest.approx(analysis.pareto_critical)
    assert "|t|" in ax.get_xlabel()

    fig = half_normal_plot(analysis)
    ax = fig.axes[0]
    assert _points(ax) == 4
    labels = [t.get_text() for t in ax.texts]
    assert set(labels) == set(analysis.screening.loc[analysis.screening["active"], "term"])
    assert "bn" in labels and "half-normal" in ax.get_xlabel()


def test_main_effects_one_panel_per_factor_on_a_shared_axis(analysis: Analysis) -> None:
    fig = main_effects_plot(analysis)
    axes = fig.axes
    assert [ax.get_title() for ax in axes] == FACTORS
    assert [_points(ax) for ax in axes] == [2, 2, 3]
    assert axes[0].get_shared_y_axes().joined(axes[0], axes[2])
    assert [t.get_text() for t in axes[2].get_xticklabels()] == ACTS


def test_interaction_matrix_and_colours(analysis: Analysis) -> None:
    fig = interaction_matrix(analysis)
    assert len(fig.axes) == 9
    act_row_bn_col = fig.axes[2 * 3 + 0]  # lines: act levels, x: bn
    assert len(act_row_bn_col.lines) == 3
    assert [line.get_color() for line in act_row_bn_col.lines] == list(
        level_colors(analysis.factors[2]).values()
    )
    assert [t.get_text() for t in fig.axes[4].texts] == ["do"]  # the diagonal names it


def test_residual_diagnostics(analysis: Analysis) -> None:
    qq, rf = residual_plots(analysis).axes
    assert _points(qq) == _points(rf) == analysis.n_used == 24
    assert "normal quantile" in qq.get_xlabel() and "fitted" in rf.get_xlabel()


def test_learning_curves_every_trial_and_every_level(analysis: Analysis) -> None:
    data = _data()
    per_trial, per_level = learning_curves(data, analysis.factors)
    assert len(per_trial) == 24 * 3
    fig = learning_curve_plot(per_trial, per_level, analysis.factors)
    visible = [ax for ax in fig.axes if ax.get_visible()]
    assert [ax.get_title() for ax in visible] == FACTORS
    # 24 thin trial lines, plus test and train lines for each level
    assert [len(ax.lines) for ax in visible] == [24 + 4, 24 + 4, 24 + 6]
    assert visible[0].get_xlabel() == "epoch"


def test_what_a_model_learned() -> None:
    rng = np.random.default_rng(0)
    outputs = {
        "latent": rng.normal(size=(200, 2)).astype(np.float16),
        "labels": rng.integers(0, 10, 200).astype(np.uint8),
        "originals": rng.integers(0, 255, (10, 28, 28)).astype(np.uint8),
        "reconstructions": rng.integers(0, 255, (10, 28, 28)).astype(np.uint8),
        "walk": rng.integers(0, 255, (100, 28, 28)).astype(np.uint8),
        "walk_x": np.linspace(-1, 1, 10), "walk_y": np.linspace(1, -1, 10),
    }  # fmt: skip
    fig = learned_figure(outputs, "best")
    recon, latent, walk = fig.axes
    image = next(a for a in recon.get_children() if isinstance(a, AxesImage))
    assert image.get_array().shape == (56, 280)  # 2 rows of ten 28x28 digits
    assert len([c for c in latent.collections if isinstance(c, PathCollection)]) == 10
    assert next(a for a in walk.get_children() if isinstance(a, AxesImage)).get_array().shape == (
        280,
        280,
    )


def test_every_chart_is_written(analysis: Analysis, tmp_path: Path) -> None:
    figures = chart_set(analysis, learning_curves(_data(), analysis.factors))
    assert set(figures) == {"coefficients", "pareto", "half_normal", "main_effects",
                            "interactions", "residuals", "learning_curves",
                            "importance", "spread"}  # fmt: skip
    for path in save_figures(figures, tmp_path, "svg"):
        assert path.read_text().lstrip().startswith("<?xml")


def test_a_saturated_model_draws_without_intervals() -> None:
    frame = _data(replicates=1).trials
    a = analyze(Results(frame, None, None, Path("t")), factors=FACTORS, coding="sum",
                interactions=3)  # fmt: skip
    assert a.saturated
    fig = coefficient_chart(a)
    assert "saturated" in fig.get_suptitle()
    assert "Lenth" in pareto_chart(a).axes[0].get_xlabel()
    assert "no residuals" in residual_plots(a).axes[0].texts[0].get_text()
