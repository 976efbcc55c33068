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
    effect_table,
    effects_chart,
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


def test_the_effects_chart_draws_contrasts_only_red_where_the_verdicts_say(
    analysis: Analysis,
) -> None:
    fig = effects_chart(analysis)
    (ax,) = fig.axes
    table = effect_table(analysis)
    labels = [t.get_text() for t in ax.get_yticklabels()]
    assert labels == list(table.sort_values("estimate", kind="stable")["label"])
    # each level against the baseline, and the other pair Tukey tells apart (0.05 apart)
    assert set(labels) == {"bn (false → true)", "do (false → true)", "act: relu − elu",
                           "act: selu − elu", "act: selu − relu"}  # fmt: skip
    assert not any(label.startswith("mean") for label in labels)  # no level mean is an effect
    # the levels' intervals are Tukey's, the ones the grouping uses
    pairs = analysis.pairwise.set_index(["level_a", "level_b"])
    row = table.set_index("label").loc["act: selu − elu"]
    assert row["ci_high"] == pytest.approx(pairs.loc[("elu", "selu"), "ci_high"])
    red = [c for c in ax.collections if isinstance(c, PathCollection)
           and tuple(c.get_facecolor()[0][:3]) != (1.0, 1.0, 1.0)]  # fmt: skip
    clear = table["clear"].sum()
    assert clear == 4 and sum(len(c.get_offsets()) for c in red) == clear  # bn, three pairs
    assert row["estimate"] == pytest.approx(pairs.loc[("elu", "selu"), "diff"])
    between = table.set_index("label").loc["act: selu − relu"]
    assert between["estimate"] == pytest.approx(pairs.loc[("relu", "selu"), "diff"])
    assert between["estimate"] > 0.04  # selu − relu, as the pair's difference is oriented
    verdicts = {v.factor: v.kind for v in analysis.verdicts}
    assert verdicts["bn"] == "helps" and verdicts["do"] == "no clear effect"
    assert any(list(line.get_xdata()) == [0.0, 0.0] for line in ax.lines)  # the zero line
    assert "95% intervals" in fig.get_suptitle()


def _lenth_pse(effects: np.ndarray) -> float:
    """Lenth (1989), from the paper: s0 = 1.5 median|c|, PSE = 1.5 median of |c| < 2.5 s0."""
    c = np.abs(effects)
    s0 = 1.5 * np.median(c)
    return float(1.5 * np.median(c[c < 2.5 * s0]))


def _boxes(fig: object, texts: list) -> list:
    renderer = fig.canvas.get_renderer()  # type: ignore[attr-defined]
    fig.canvas.draw()  # type: ignore[attr-defined]
    return [t.get_window_extent(renderer) for t in texts]


def test_pareto_and_half_normal(analysis: Analysis) -> None:
    fig = pareto_chart(analysis)
    ax = fig.axes[0]
    assert len(ax.patches) == len(analysis.screening) == 4  # bn, do and act's two contrasts
    widths = [p.get_width() for p in ax.patches]
    assert widths == sorted(widths, reverse=True)  # largest first (drawn top-down)
    assert ax.lines[-1].get_xdata()[0] == pytest.approx(analysis.pareto_critical)
    assert "|t|" in ax.get_xlabel()
    ticks = [t.get_text() for t in ax.get_yticklabels()]
    assert "act: selu vs elu, relu" in ticks and "act: relu vs elu" in ticks
    # a two-level factor's bar is its effects-table t, so bar and verdict agree
    bn = analysis.effects.set_index("factor").loc["bn", "t"]
    assert min(abs(abs(bn) - w) for w in widths) < 1e-9

    fig = half_normal_plot(analysis)
    ax = fig.axes[0]
    assert _points(ax) == 4
    labels = [t.get_text() for t in ax.texts]
    assert sorted(labels) == sorted(analysis.screening["label"])  # every point labelled
    line = next(line for line in ax.lines if line.get_linestyle() == "--")
    x, y = line.get_xdata(), line.get_ydata()
    assert y[1] / x[1] == pytest.approx(_lenth_pse(analysis.screening["effect"].to_numpy()))
    boxes = _boxes(fig, ax.texts)
    assert not any(a.overlaps(b) for i, a in enumerate(boxes) for b in boxes[i + 1 :])
    assert "half-normal" in ax.get_xlabel()


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
    assert "2-d latent space" in latent.get_title()


def test_a_larger_latent_space_is_projected_and_no_panel_is_empty() -> None:
    rng = np.random.default_rng(1)
    z = rng.normal(size=(300, 16)) * np.r_[np.full(12, 1.0), np.full(4, 0.01)]
    outputs = {"latent": z.astype(np.float16), "labels": rng.integers(0, 3, 300),
               "originals": np.zeros((10, 28, 28), np.uint8),
               "reconstructions": np.zeros((10, 28, 28), np.uint8)}  # fmt: skip
    _, projected, dims = learned_figure(outputs, "best").axes
    assert "PC1" in projected.get_xlabel() and "16-d" in projected.get_title()
    centred = z - z.mean(axis=0)
    pc1 = np.linalg.svd(centred, full_matrices=False)[0][:, 0]
    points = np.concatenate([c.get_offsets()[:, 0] for c in projected.collections])
    assert abs(np.corrcoef(np.sort(np.abs(points)), np.sort(np.abs(pc1)))[0, 1]) > 0.99
    assert len(dims.patches) == 16 and dims.get_title() == "12 of 16 latent dimensions in use"


def test_every_chart_is_written(analysis: Analysis, tmp_path: Path) -> None:
    figures = chart_set(analysis, learning_curves(_data(), analysis.factors))
    assert set(figures) == {"effects", "pareto", "half_normal", "main_effects",
                            "interactions", "residuals", "learning_curves",
                            "importance"}  # fmt: skip
    for path in save_figures(figures, tmp_path, "svg"):
        assert path.read_text().lstrip().startswith("<?xml")


def test_a_saturated_model_draws_without_intervals() -> None:
    frame = _data(replicates=1).trials
    a = analyze(Results(frame, None, None, Path("t")), factors=FACTORS, coding="sum",
                interactions=3)  # fmt: skip
    assert a.saturated
    fig = effects_chart(a)
    assert "saturated" in fig.get_suptitle()
    assert "Lenth" in pareto_chart(a).axes[0].get_xlabel()
    assert "no residuals" in residual_plots(a).axes[0].texts[0].get_text()
