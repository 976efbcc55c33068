"""Every chart of a study, by file name: gathered from the analysis and the results, drawn,
saved. The drawing itself is in :mod:`ablate.views.effects`, :mod:`ablate.views.curves` and
:mod:`ablate.views.learned`.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ablate.errors import AblateError
from ablate.results import load_outputs
from ablate.stats.analysis import Analysis
from ablate.stats.curves import learning_curves
from ablate.views.attention import attention_figure, has_attention
from ablate.views.components import components_chart
from ablate.views.curves import learning_curve_plot
from ablate.views.effects import (
    effects_chart,
    half_normal_plot,
    interaction_matrix,
    main_effects_plot,
    pareto_chart,
    residual_plots,
)
from ablate.views.epochs_chart import effects_over_epochs_chart
from ablate.views.importance import importance_chart
from ablate.views.learned import learned_figure
from ablate.views.seeds import equivalence_chart, spread_chart
from ablate.views.style import IMAGE_FORMATS

if TYPE_CHECKING:
    import pandas as pd
    from matplotlib.figure import Figure

    from ablate.results import Results

__all__ = [
    "CAPTIONS",
    "IMAGE_FORMATS",
    "Chart",
    "chart_set",
    "draw_all",
    "pick_trial",
    "save_charts",
    "save_figures",
]


def chart_set(
    a: Analysis,
    curves: tuple[pd.DataFrame, pd.DataFrame] | None = None,
    learned: Sequence[tuple[str, str, dict[str, Any]]] = (),
    metric: tuple[str, str] = ("loss", ""),
    attended: Sequence[tuple[str, str, dict[str, Any]]] = (),
    label_step: int | None = None,
) -> dict[str, Figure]:
    """Every chart, by file stem: the analysis's, the learning curves, what models learned
    and what models with attention attended to.

    ``learned`` and ``attended``: (stem, title, outputs) for each chosen trial; ``metric``:
    the learning curves' metric and its unit; ``label_step``: the time step that carries the
    label, if the data says (marked in the attention over time).
    """
    figures = {}
    if a.equivalence is not None and len(a.equivalence):  # the answer first: what matters
        figures["equivalence"] = equivalence_chart(a)
    figures |= {
        "effects": effects_chart(a),
        "pareto": pareto_chart(a),
        "half_normal": half_normal_plot(a),
        "main_effects": main_effects_plot(a),
        "interactions": interaction_matrix(a),
        "residuals": residual_plots(a),
    }
    if len(a.factors) < 2:
        del figures["interactions"]
    if a.importance is not None and len(a.importance):
        figures["importance"] = importance_chart(a)
    if a.dispersion is not None or a.box_meyer is not None:
        figures["spread"] = spread_chart(a)
    if curves is not None:
        figures["learning_curves"] = learning_curve_plot(*curves, a.factors, *metric)
    if a.components is not None and a.components.scopes:
        figures["seed_streams"] = components_chart(a.components)
    over = a.over_epochs
    if over is not None and over.missing is None and len(over.epochs) > 1:
        figures["effects_over_epochs"] = effects_over_epochs_chart(over)
    for stem, title, outputs in learned:
        figures[stem] = learned_figure(outputs, title)
    for stem, title, outputs in attended:
        figures[stem] = attention_figure(outputs, title, label_step)
    return figures


def save_figures(figures: dict[str, Figure], out_dir: Path, fmt: str = "png") -> list[Path]:
    """Write each figure to ``out_dir/<stem>.<fmt>``; returns the paths."""
    out_dir.mkdir(parents=True, exist_ok=True)
    paths = []
    for stem, fig in figures.items():
        path = out_dir / f"{stem}.{fmt}"
        fig.savefig(path, dpi=200)
        paths.append(path)
    return paths


#: What each chart shows, as the report captions it (learned_* and attention_* are worded
#: per trial by :func:`draw_all`).
CAPTIONS = {
    "equivalence": "Equivalence: every effect and pair of levels against the margin (the shaded "
    "band); a thick bar inside the band is negligible, a thin bar clear of 0 is different.",
    "effects": "Effects: every two-level factor's effect, every level against its factor's "
    "baseline and every other pair of levels Tukey's test tells apart (Tukey's simultaneous "
    "intervals), and every interaction, with its interval; red where the interval excludes 0, "
    "the rule of the findings.",
    "pareto": "Pareto chart: each effect's size over its standard error, largest first; red "
    "beyond the critical line (its t test; a two-level factor's is the one its finding names, "
    "a factor of three or more levels enters as contrasts of one level against those before "
    "it, while its finding rests on Tukey's pairwise tests).",
    "half_normal": "Half-normal plot: each effect's size against its rank, on a common scale. "
    "The dashed line's slope is Lenth's pseudo standard error of the effects, a noise scale "
    "read from the effects themselves (too high where many are real); red: active, as in the "
    "Pareto chart.",
    "main_effects": "Main effects: marginal mean response at every level of every factor, "
    "with its interval.",
    "interactions": "Interaction plots: the observed mean response for every pair of factors; "
    "lines far from parallel would mean that two factors interact (the tables say whether the "
    "fitted model has interactions, and the lack-of-fit test whether it misses any).",
    "residuals": "Residual diagnostics: what the normal model assumes is points near the "
    "line of the QQ plot and an even band of residuals, whatever the fitted value.",
    "learning_curves": "Learning curves: did the training itself behave?",
    "seed_streams": "Seed streams: the seed-to-seed variance within a cell split by source "
    "(initialisation, data order, their interaction with what no stream controls), over all "
    "cells and at each level of each factor, with the seed-to-seed SD beside each bar.",
    "effects_over_epochs": "Effects over training: each effect at every epoch with its interval "
    "(the same model as the final one, fitted at that epoch); red points: clear of 0. Where an "
    "effect settles, grows, shrinks or flips says whether a longer training would change the "
    "answer.",
    "importance": "Importance: the linear model's share of each factor beside Optuna's fANOVA "
    "and PED-ANOVA, on the same trials.",
}


def _caption(stem: str, a: Analysis) -> str:
    """The caption of one of the analysis's charts."""
    if stem == "spread":
        if a.dispersion is not None:
            return ("Seed sensitivity: the spread across seeds (pooled within cells) at every "
                    "level of every factor; red titles: seed-sensitive.")  # fmt: skip
        return ("Spread of the residuals at every level of every factor (run once per cell, so "
                "across cells, not seeds: Box-Meyer); red titles: the spread differs.")  # fmt: skip
    return CAPTIONS.get(stem, stem)


def draw_all(
    results: Results, a: Analysis, picks: Sequence[str] = ("best", "worst")
) -> dict[str, Chart]:
    """Every chart of a results folder (or bare table), with its caption: its data
    gathered, then drawn.

    ``picks`` chooses the trials whose saved model outputs are shown: "best" and "worst"
    (by the response's direction: the lowest loss, the highest accuracy) or trial keys. The
    learning curves show the response's metric when it is recorded per epoch, else the loss.
    """
    metric = _curve_metric(results, a)
    curves = learning_curves(results, a.factors, metric[0])
    learned, attended, captions = [], [], {}
    if results.study is not None:
        for pick in picks:
            chosen = pick_trial(results, a, pick)
            if chosen is None:
                continue
            key, label, value = chosen
            suffix = pick if pick in ("best", "worst") else key
            whose = _whose(a, pick, label, value)
            outputs = load_outputs(results.source, key)
            if outputs is not None:
                title = f"What the {pick} trial's model learned ({_measure(a, value)})\n{label}"
                learned.append((f"learned_{suffix}", title, outputs))
                captions[f"learned_{suffix}"] = f"What {whose} learned: {_learned_what(outputs)}."
            found = _attending_trial(results, a, pick)
            if found is not None:
                _, label, value, outputs = found
                kinds = _attention_kinds(outputs)
                whose = (f"the {pick} trial with attention ({label}, {_measure(a, value)})"
                         if suffix == pick else f"the trial {label}")  # fmt: skip
                title = f"What {whose.split(' (')[0]} attended to ({_measure(a, value)})\n{label}"
                attended.append((f"attention_{suffix}", title, outputs))
                captions[f"attention_{suffix}"] = f"What {whose} attended to: {kinds}."
    figures = chart_set(a, curves, learned, metric, attended, _label_step(results))
    return {stem: Chart(fig, captions.get(stem) or _caption(stem, a))
            for stem, fig in figures.items()}  # fmt: skip


@dataclass(frozen=True)
class Chart:
    """A drawn chart and its caption."""

    figure: Figure
    caption: str


def _whose(a: Analysis, pick: str, label: str, value: float) -> str:
    if pick not in ("best", "worst"):
        return f"the trial {label} ({_measure(a, value)})"
    lowest = (a.fit.goal != "max") == (pick == "best")
    which = "lowest" if lowest else "highest"
    return f"the {pick} trial ({label}, the {which} {_measure(a, value)})"


def _learned_what(outputs: dict[str, Any]) -> str:
    if "confusion" in outputs:
        return "its confusion matrix and every class's recall against chance"
    if "y_pred" in outputs:
        return "its predictions against the true targets"
    latent = outputs.get("latent")
    if latent is None:
        return "test inputs over their reconstructions"
    if latent.shape[1] == 2:
        return (
            "test inputs over their reconstructions, its 2-d latent space and a walk "
            "decoded across it"
        )
    return (
        f"test inputs over their reconstructions, its {latent.shape[1]}-d latent space "
        "projected on two principal components, and how many latent dimensions it uses"
    )


_ATTENTION_WORDS = {
    "spatial": "the spatial attention masks of test digits",
    "channel": "the channel attention weights (mean over test digits)",
    "transformed": "what the spatial transformer made of test digits",
    "multiscale": "the multi-scale module's map and channel weights",
    "temporal": "the attention weight of every time step",
}


def _attention_kinds(outputs: dict[str, Any]) -> str:
    return "; ".join(w for k, w in _ATTENTION_WORDS.items() if f"attention_{k}" in outputs)


def save_charts(charts: dict[str, Chart], out_dir: Path, fmt: str = "png") -> list[Path]:
    """Write each chart to ``out_dir/<stem>.<fmt>``; returns the paths."""
    return save_figures({stem: c.figure for stem, c in charts.items()}, out_dir, fmt)


def _measure(a: Analysis, value: float) -> str:
    return f"{a.fit.response_column} {value:.4g}"


def _attending_trial(
    results: Results, a: Analysis, pick: str
) -> tuple[str, str, float, dict[str, Any]] | None:
    """(key, label, response, outputs) of the best or worst complete trial among those whose
    model saved attention (a study's worst trial may well be one without attention), or of
    the trial with key ``pick`` if it saved attention."""

    done = _complete(results, a)
    column = a.fit.response_column
    if pick in ("best", "worst"):
        lowest_first = (a.fit.goal != "max") == (pick == "best")
        candidates = done.sort_values(column, ascending=lowest_first, kind="stable")
    else:
        candidates = done[done["trial_key"] == pick]
    for _, row in candidates.iterrows():
        outputs = load_outputs(results.source, str(row["trial_key"]))
        if outputs is not None and has_attention(outputs):
            label = f"{row['cell']} r{row['replicate']}"
            return str(row["trial_key"]), label, float(row[column]), outputs
    return None


def _label_step(results: Results) -> int | None:
    """The time step that carries the label: the synthetic sequences' attention column."""
    study = results.study
    if study is None or study.data.dataset != "attention-sequences":
        return None
    return dict(study.data.options).get("attention_column")


def _curve_metric(results: Results, a: Analysis) -> tuple[str, str]:
    """(metric, unit) of the learning curves: the response's if per epoch, else the loss."""
    column = a.fit.response_column
    task = results.study.task_spec if results.study is not None else None
    name = column.removeprefix("test_") if column.startswith("test_") else "loss"
    epochs = results.epochs
    if epochs is None or f"test_{name}" not in epochs.columns:
        name = "loss"
    found = task.metric(name) if task is not None else None
    return name, found.unit if found is not None else ""


def pick_trial(results: Results, a: Analysis, pick: str) -> tuple[str, str, float] | None:
    """(trial key, readable label, response) of the best or worst complete trial, or by key."""

    column = a.fit.response_column
    done = _complete(results, a)
    if done.empty:
        return None
    if pick in ("best", "worst"):
        low, high = int(done[column].argmin()), int(done[column].argmax())  # positions
        best, worst = (low, high) if a.fit.goal != "max" else (high, low)
        row = done.iloc[best if pick == "best" else worst]
    else:
        match = done[done["trial_key"] == pick]
        if match.empty:
            raise AblateError(f"no complete trial has the key {pick!r}; see the trial_key column.")
        row = match.iloc[0]
    return str(row["trial_key"]), f"{row['cell']} r{row['replicate']}", float(row[column])


def _complete(results: Results, a: Analysis) -> pd.DataFrame:
    """The complete trials that have a value of the response."""
    trials = results.trials
    column = a.fit.response_column
    if "status" not in trials:
        return trials
    return trials[(trials["status"] == "complete") & trials[column].notna()]
