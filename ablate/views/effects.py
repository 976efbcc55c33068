"""Effect charts: data from the analysis in, matplotlib figures out; no statistics here.

Every number drawn comes from an :class:`~ablate.stats.analysis.Analysis`; this module only
lays them out, with the factor names of the study file, axis labels with units, and one
colour per factor level throughout (:mod:`ablate.views.style`).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np

from ablate.designs.matrix import FactorInfo
from ablate.stats.analysis import Analysis
from ablate.views.style import MUTED, PLAIN, SIGNIFICANT, figure, level_colors

if TYPE_CHECKING:
    import pandas as pd
    from matplotlib.axes import Axes
    from matplotlib.figure import Figure
    from numpy.typing import NDArray


def effect_table(a: Analysis) -> pd.DataFrame:
    """What the effects chart draws: every contrast the verdicts rest on, one row each --
    two-level factors' effects (with the blocks, where there are blocks), each level of a
    factor of three or more against its baseline and every other pair of its levels that
    Tukey's test tells apart (the pairs its finding names; Tukey's simultaneous intervals, as
    the grouping uses), and the interaction coefficients. Columns: label, estimate, ci_low,
    ci_high, clear. No level mean is among them."""
    import pandas as pd

    e = a.tested_effects
    rows = [{"label": f"{r.factor} ({r.low} → {r.high})", "estimate": r.effect,
             "ci_low": r.ci_low, "ci_high": r.ci_high, "clear": bool(r.clear)}
            for r in e.itertuples()]  # fmt: skip
    for f in (f for f in a.factors if not f.two_level):
        base = f.level_label(f.baseline)
        pairs = a.tested_pairwise[a.tested_pairwise["factor"] == f.name]
        for p in pairs.to_dict("records"):
            if base not in (p["level_a"], p["level_b"]) and not p["clear"]:
                continue
            sign, level, other = (1, p["level_b"], p["level_a"])
            if p["level_b"] == base:
                sign, level, other = -1, p["level_a"], base
            low, high = sorted((sign * p["ci_low"], sign * p["ci_high"]))
            rows.append({"label": f"{f.name}: {level} − {other}", "estimate": sign * p["diff"],
                         "ci_low": low, "ci_high": high, "clear": bool(p["clear"])})  # fmt: skip
    c = a.coefficients
    for r in c[(c["kind"] == "contrast") & c["term"].str.contains(":")].itertuples():
        rows.append({"label": str(r.term).replace(":", " × "), "estimate": r.coef,
                     "ci_low": r.ci_low, "ci_high": r.ci_high, "clear": bool(r.clear)})  # fmt: skip
    return pd.DataFrame(rows, columns=["label", "estimate", "ci_low", "ci_high", "clear"])


def effects_chart(a: Analysis) -> Figure:
    """Every contrast with its interval, sorted, a zero line; red where the interval excludes
    zero -- the rule every verdict uses (:func:`effect_table` says which contrasts)."""
    table = effect_table(a).sort_values("estimate", kind="stable")
    fig = figure(1.5 + 0.3 * max(len(table), 1))
    ax = fig.subplots()
    y = np.arange(len(table))
    est = table["estimate"].to_numpy(float)
    low, high = table["ci_low"].to_numpy(float), table["ci_high"].to_numpy(float)
    red = table["clear"].to_numpy(bool)
    ax.hlines(y, low, high, color=MUTED, linewidth=1.6, zorder=1)
    ax.scatter(est[~red], y[~red], s=36, facecolor="white", edgecolor=PLAIN, linewidth=1.4,
               zorder=2)  # fmt: skip
    ax.scatter(est[red], y[red], s=36, color=SIGNIFICANT, zorder=3)
    ax.axvline(0.0, color="0.3", linewidth=0.8, linestyle="--")
    ax.set_yticks(y, list(table["label"]))
    ax.set_ylim(-0.7, max(len(table), 1) - 0.3)
    ax.locator_params(axis="x", nbins=6)
    ax.grid(axis="x", color="0.92")
    ax.set_xlabel(f"effect on {a.response} ({a.response} units)")
    how = ("no intervals: a saturated model, judged by Lenth's method" if a.saturated
           else f"{a.confidence}% intervals, Tukey's simultaneous for levels")  # fmt: skip
    fig.suptitle(f"Effects on {a.response} ({how}; red: clear of 0)", fontsize="medium")
    return fig


def pareto_chart(a: Analysis) -> Figure:
    """|t| of every contrast (Lenth's |pseudo-t| when saturated), largest first, red where
    the term is active -- beyond the critical line, the rule the verdicts use."""
    s = a.screening
    kind = "pseudo-t" if a.saturated else "t"
    values = s["t_or_pseudo_t"].abs().to_numpy(float)
    fig = figure(1.4 + 0.28 * len(s))
    ax = fig.subplots()
    y = np.arange(len(s))[::-1]  # largest at the top
    colors = [SIGNIFICANT if v else PLAIN for v in s["active"]]
    ax.barh(y, values, color=colors, height=0.7)
    ax.set_yticks(y, list(s["label"]))
    line = ""
    if a.pareto_critical is not None:
        ax.axvline(a.pareto_critical, color="0.2", linestyle="--", linewidth=1)
        line = f"; dashed: critical |{kind}| = {a.pareto_critical:.2f}"
    source = "Lenth's PSE" if a.saturated else f"residual, {a.fit.df_resid} df"
    ax.set_xlabel(f"|{kind}| = |effect| / standard error ({source})")
    fig.suptitle(f"Pareto chart of effects on {a.response} (red: active{line})",
                 fontsize="medium")  # fmt: skip
    ax.grid(axis="x", color="0.92")
    ax.set_axisbelow(True)
    return fig


def half_normal_plot(a: Analysis) -> Figure:
    """|effect| against half-normal quantiles, every point labelled, with the line through
    the origin whose slope is Lenth's pseudo standard error of the effects: effects that are
    only noise fall near it. Red: active, by the rule the verdicts use."""
    s = a.screening
    fig = figure(4.8)
    ax = fig.subplots()
    q = s["half_normal_q"].to_numpy(float)
    e = s["abs_effect"].to_numpy(float)
    active = s["active"].to_numpy(bool)
    if (~active).any():
        ax.scatter(q[~active], e[~active], s=28, color=PLAIN, label="not active", zorder=3)
    if active.any():
        ax.scatter(q[active], e[active], s=36, color=SIGNIFICANT, label="active", zorder=3)
    if a.lenth is not None and a.lenth.pse > 0 and len(q):
        top = float(np.nanmax(q))
        ax.plot([0, top], [0, top * a.lenth.pse], color="0.4", linestyle="--", linewidth=1,
                label=f"noise line: slope = Lenth's PSE ({a.lenth.pse:.3g})")  # fmt: skip
    _label_points(ax, q, e, list(s["label"]))
    ax.set_xlabel("half-normal quantile")
    ax.set_ylabel(f"|effect| ({a.response} units)")
    test = "Lenth's ME" if a.saturated else "t test"
    ax.set_title(f"Half-normal plot of effects on {a.response} (active: {test})",
                 fontsize="medium")  # fmt: skip
    ax.legend(loc="upper left", fontsize="small", frameon=False)
    ax.grid(color="0.94")
    ax.set_xlim(-0.05, (float(np.nanmax(q)) if len(q) else 1.0) * 1.08 + 0.05)
    ax.set_ylim(bottom=0)
    return fig


def _label_points(
    ax: Axes, x: NDArray[np.float64], y: NDArray[np.float64], labels: list[str]
) -> None:
    """Every point labelled, each label where it covers no point and no other label (the
    first free place of several around its point, tried in order; measured as drawn)."""
    from ablate.views.style import place_labels

    place_labels(ax, np.asarray(x, float), np.asarray(y, float), labels)


def main_effects_plot(a: Analysis) -> Figure:
    """Marginal mean of the response at every level of every factor, one shared axis."""
    m = a.marginal_means
    names = [f.name for f in a.factors]
    fig = figure(3.2)
    axes = np.atleast_1d(
        fig.subplots(
            1, len(names), sharey=True, width_ratios=[len(f.levels) + 1 for f in a.factors]
        )
    )
    for ax, f in zip(axes, a.factors, strict=True):
        rows = m[m["factor"] == f.name]
        x = np.arange(len(rows))
        colors = level_colors(f)
        ax.plot(x, rows["emmean"], color="0.5", linewidth=1, zorder=1)
        for xi, (_, r) in zip(x, rows.iterrows(), strict=True):
            if not np.isnan(r["ci_low"]):
                ax.vlines(xi, r["ci_low"], r["ci_high"], color=colors[r["level"]], linewidth=2)
            ax.scatter(xi, r["emmean"], s=40, color=colors[r["level"]], zorder=2)
        ax.axhline(a.fit.mean, color="0.3", linestyle=":", linewidth=0.8)
        ax.set_xticks(x, list(rows["level"]), rotation=30 if len(rows) > 2 else 0)
        ax.set_xlim(-0.5, len(rows) - 0.5)
        ax.set_title(f.name, fontsize="small")
        ax.grid(axis="y", color="0.94")
    axes[0].set_ylabel(f"marginal mean of {a.response}")
    fig.suptitle(
        f"Main effects on {a.response}: marginal means with {a.confidence}% intervals "
        "(dotted: overall mean)",
        fontsize="medium",
    )
    return fig


def interaction_matrix(a: Analysis) -> Figure:
    """For every pair of factors, the observed mean response: x one factor, lines the other."""
    factors = a.factors
    k = len(factors)
    im = a.interaction_means
    fig = figure(max(2.0 * k, 3.0))
    axes = np.atleast_2d(fig.subplots(k, k, sharey=True, squeeze=False))
    for i, row_f in enumerate(factors):  # lines: levels of row_f
        for j, col_f in enumerate(factors):  # x axis: levels of col_f
            ax = axes[i, j]
            if i == j:
                ax.text(0.5, 0.5, row_f.name, ha="center", va="center", fontsize="medium",
                        transform=ax.transAxes, wrap=True)  # fmt: skip
                ax.set_xticks([])
                ax.tick_params(left=False, labelleft=False)
                continue
            if j == (1 if i == 0 else 0):  # the first chart of each row carries the y scale
                ax.tick_params(labelleft=True)
            data = _pair_means(im, row_f, col_f)
            xs = [col_f.level_label(v) for v in col_f.levels]
            colors = level_colors(row_f)
            for level in [row_f.level_label(v) for v in row_f.levels]:
                sub = data[data["line"] == level].set_index("x").reindex(xs)
                ax.plot(range(len(xs)), sub["mean"], marker="o", markersize=3,
                        color=colors[level], label=level)  # fmt: skip
            bottom = i == k - 1 or (i == k - 2 and j == k - 1)  # the diagonal ends column k
            ax.set_xticks(range(len(xs)), xs if bottom else [], fontsize="x-small",
                          rotation=45 if len(xs) > 2 else 0)  # fmt: skip
            ax.tick_params(axis="y", labelsize="x-small")
            ax.grid(color="0.94")
            if j == (0 if i else 1):
                ax.legend(title=row_f.name, fontsize="xx-small", title_fontsize="xx-small",
                          frameon=False, loc="best")  # fmt: skip
    fig.supylabel(f"observed mean {a.response}", fontsize="small")
    fig.suptitle(
        f"Interaction plots of {a.response}: in row r, column c, the x axis is factor c and "
        "the lines are the levels of factor r",
        fontsize="small",
    )
    return fig


def _pair_means(im: pd.DataFrame, lines: FactorInfo, x: FactorInfo) -> pd.DataFrame:
    """The interaction means of (lines, x), whichever order the analysis stored them in."""
    direct = im[(im["factor_a"] == lines.name) & (im["factor_b"] == x.name)]
    if len(direct):
        return direct.rename(columns={"level_a": "line", "level_b": "x"})
    flipped = im[(im["factor_a"] == x.name) & (im["factor_b"] == lines.name)]
    return flipped.rename(columns={"level_b": "line", "level_a": "x"})


def residual_plots(a: Analysis) -> Figure:
    """Normal QQ plot of the studentized residuals, and residuals against fitted values."""
    r = a.residuals
    fig = figure(3.4)
    qq, rf = fig.subplots(1, 2)
    if a.saturated or r["studentized"].isna().all():
        for ax in (qq, rf):
            ax.text(0.5, 0.5, "saturated model: no residuals", ha="center", va="center",
                    transform=ax.transAxes)  # fmt: skip
        return fig
    qq.scatter(r["normal_q"], r["studentized"], s=16, color=PLAIN)
    lim = float(np.nanmax(np.abs(np.r_[r["normal_q"], r["studentized"]])))
    qq.plot([-lim, lim], [-lim, lim], color="0.4", linestyle="--", linewidth=1)
    qq.set_xlabel("normal quantile")
    qq.set_ylabel("studentized residual (SD units)")
    qq.set_title("Normal QQ plot", fontsize="small")
    rf.scatter(r["fitted"], r["residual"], s=16, color=PLAIN)
    rf.axhline(0, color="0.4", linestyle="--", linewidth=1)
    rf.set_xlabel(f"fitted {a.response}")
    rf.set_ylabel(f"residual ({a.response} units)")
    rf.set_title("Residuals against fitted values", fontsize="small")
    for ax in (qq, rf):
        ax.grid(color="0.94")
    fig.suptitle(f"Residual diagnostics of the model of {a.response}", fontsize="medium")
    return fig
