"""Sections of the analysis beyond the final effects: each effect at every epoch, and the
probability of improvement per contrast (:mod:`ablate.views.sections` places them)."""

from __future__ import annotations

import math

import pandas as pd

from ablate.stats.result import Analysis
from ablate.stats.trends import EffectTrend
from ablate.views.formats import Section, fmt_g


def over_epochs(a: Analysis) -> list[Section]:
    """The effects at every fitted epoch (``*``: the interval excludes 0), when each one's
    sign settled, and its change over the last step."""
    over = a.over_epochs
    if over is None or over.missing is not None or len(over.epochs) < 2:
        return []
    table = over.table
    rows = []
    for t in over.effects:
        mine = table[(table["factor"] == t.factor) & (table["high"] == t.high)]
        row = {"effect": f"{t.factor}: {t.low} → {t.high}"}
        for r in mine.itertuples():
            row[f"epoch {r.epoch}"] = fmt_g(r.effect) + ("*" if r.clear else "")
        row["settled from"] = "" if t.settled_from is None else f"{t.settled_from} ({t.word})"
        row["last change /epoch"] = _change(t)
        rows.append(row)
    title = (f"Effects over epochs (high − low in {over.response} at each epoch; *: its "
             f"{over.confidence}% CI excludes 0)")  # fmt: skip
    notes = tuple(f"- {n}" for n in over.notes)
    return [Section("over_epochs", title, pd.DataFrame(rows).fillna(""), lines=notes)]


def _change(t: EffectTrend) -> str:
    if t.change is None or t.change_ci_low is None or t.change_ci_high is None:
        return ""
    moving = f" ({t.trend})" if t.moving and t.trend else ""
    return f"{fmt_g(t.change)} [{fmt_g(t.change_ci_low)}, {fmt_g(t.change_ci_high)}]{moving}"


def improvement(a: Analysis) -> list[Section]:
    """P(a trial at ``high`` beats its partner at ``low``, same seed), per contrast."""
    table = a.improvement
    if table is None or not len(table):
        return []
    shown = pd.DataFrame({
        "factor": table["factor"],
        "low → high": [f"{lo} → {hi}" for lo, hi in zip(table["low"], table["high"], strict=True)],
        "pairs": table["pairs"],
        "P(high better)": [_percent(p) for p in table["p_improve"]],
        f"{a.confidence}% CI": [_interval(lo, hi) for lo, hi in
                                zip(table["ci_low"], table["ci_high"], strict=True)],
        "missing": table["missing"],
    })  # fmt: skip
    if not shown["missing"].astype(bool).any():
        shown = shown.drop(columns="missing")
    title = ("Probability of improvement (pairs of trials at the same seed that differ in one "
             "factor; cluster bootstrap over seeds)")  # fmt: skip
    return [Section("improvement", title, shown)]


def _percent(p: float) -> str:
    return "" if not math.isfinite(p) else f"{100 * p:.0f}%"


def _interval(lo: float, hi: float) -> str:
    if not (math.isfinite(lo) and math.isfinite(hi)):
        return "(needs 4 seeds)"
    return f"[{100 * lo:.0f}%, {100 * hi:.0f}%]"


def components(a: Analysis) -> list[Section]:
    """With seed streams: each scope's share of the seed-to-seed variance by source, and the
    ratios of a source's variance between a two-level factor's levels."""
    found = a.components
    if found is None:
        return []
    level = f"{100 * found.confidence:g}% CI"
    rows = []
    for scope in found.scopes:
        row = {"cells": scope.name, "n": scope.n_trials, "seed-to-seed SD": fmt_g(scope.sd)}
        for c in scope.components:
            row[c.source] = (
                f"{100 * c.share:.0f}% [{100 * c.share_low:.0f}, {100 * c.share_high:.0f}]"
            )
        rows.append(row)
    title = f"Seed-to-seed variance by source (share, {level}; {found.method.split(' (')[0]})"
    notes = (f"- {found.method}; {found.intervals}.", *(f"- {m}" for m in found.missing))
    out = [Section("components", title, pd.DataFrame(rows).fillna(""), lines=notes)]
    if found.ratios:
        ratios = pd.DataFrame({
            "factor": [r.factor for r in found.ratios],
            "low → high": [f"{r.low} → {r.high}" for r in found.ratios],
            "source": [r.source for r in found.ratios],
            "variance ratio": [fmt_g(r.ratio) for r in found.ratios],
            level: [f"[{fmt_g(r.ci_low)}, {fmt_g(r.ci_high)}]" for r in found.ratios],
            "clear": ["yes" if r.excludes_one else "" for r in found.ratios],
        })  # fmt: skip
        adjusted = (f"; intervals Bonferroni-adjusted over the {found.ratio_tests} ratios"
                    if found.ratio_tests > 1 else "")  # fmt: skip
        out.append(Section("component_ratios", "Variance ratios by source (high level over "
                           f"low; clear: the interval excludes 1{adjusted})", ratios))  # fmt: skip
    return out
