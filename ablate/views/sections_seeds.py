"""The sections about seeds, margins and learning, laid out for people: the findings in words,
equivalence verdicts, blocks, seed sensitivity, the trials that did not learn, and the
statistics left out for want of data.

:func:`ablate.views.sections.sections` places them: the findings first, the rest beside the
effects they qualify.
"""

from __future__ import annotations

import math

import pandas as pd

from ablate.stats.result import Analysis
from ablate.views.formats import Section, fmt_cis, fmt_f, fmt_g, fmt_p


def findings(a: Analysis) -> list[Section]:
    if not a.findings:
        return []
    marks = {"warning": "WARNING: "}
    lines = tuple(f"- {marks.get(f.kind, '')}{f.text}" for f in a.findings)
    return [Section("findings", "Findings", lines=lines)]


def missing(a: Analysis) -> list[Section]:
    if not a.missing:
        return []
    lines = tuple(f"- {m.text}" for m in a.missing)
    return [Section("missing", "Not shown for want of data", lines=lines)]


def equivalence(a: Analysis) -> list[Section]:
    eq = a.equivalence
    if eq is None or not len(eq):
        return []
    level = f"{100 * (1 - 2 * a.options.alpha):g}"
    margin = float(eq["margin"].iloc[0])
    table = pd.DataFrame(
        {
            "effect or pair": eq["term"], "estimate": eq["estimate"].map(_short),
            f"{level}% CI": [f"[{_short(lo)}, {_short(hi)}]" for lo, hi in
                             zip(eq["ci_tost_low"], eq["ci_tost_high"], strict=True)],
            "p TOST": eq["p_tost"].map(fmt_p),
            "verdict": eq["verdict"].map(_short_verdict),
            "reps needed": eq["replicates_to_decide"].map(_count),
        }
    )  # fmt: skip
    title = (f"Equivalence within ±{margin:g} (two one-sided tests at α = {a.options.alpha:g}, "
             f"each on its own: equivalent when the {level}% CI is inside)")  # fmt: skip
    return [Section("equivalence", title, table)]


def _short_verdict(verdict: str) -> str:
    """A TOST verdict without the margin, which the table's title gives."""
    head = verdict.partition(" within ±")[0]
    return head.rstrip(",") + (" (smaller than the margin)" if head.endswith(",") else "")


def _short(value: float) -> str:
    return "" if math.isnan(value) else f"{value:.3g}"


def _count(value: object) -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return ""
    return str(int(value))  # type: ignore[call-overload]


def blocks(a: Analysis) -> list[Section]:
    b = a.blocks
    if b is None:
        return []
    line = b.anova
    lines = [
        f"block: {b.column} ({b.levels} blocks), fitted as a fixed effect beside the factors "
        f"and as a random intercept",
        f"block line of the ANOVA: df {line['df']}, sum sq {fmt_g(line['sum_sq'])}, F "
        f"{fmt_f(line['F'])}, p {fmt_p(line['p']) or 'n/a'}",
        f"residual SD {fmt_g(b.resid_sd)} on {b.df_resid} df with blocks, "
        f"{fmt_g(b.resid_sd_unblocked) or 'undefined'} without; relative efficiency of "
        f"blocking {fmt_g(b.relative_efficiency) or 'undefined'} (a blocked trial is worth that "
        "many unblocked ones: below 1, the blocks cost more degrees of freedom than they removed)",
    ]
    if b.mixed:
        m = b.mixed
        lines.append(
            f"random intercept (REML): block variance {fmt_g(m['block_var'])}, residual "
            f"variance {fmt_g(m['resid_var'])}, intra-class correlation {fmt_g(m['icc'])} (the "
            "share of the seed-to-seed variance every cell of a replicate shares)"
        )
    e = b.effects
    table = pd.DataFrame(
        {
            "factor": e["factor"], "effect": e["effect"].map(fmt_g),
            "std err": e["std_err"].map(fmt_g), f"{a.confidence}% CI": fmt_cis(e),
            "p": e["p"].map(fmt_p),
        }
    )  # fmt: skip
    return [
        Section("blocks", f"Blocks: {b.column}", lines=tuple(lines)),
        Section("blocked_effects", "Effects with the blocks in the model", table),
    ]


def dispersion(a: Analysis) -> list[Section]:
    d = a.dispersion
    if d is None:
        return []
    t = d.table
    table = pd.DataFrame(
        {
            "factor": t["factor"],
            f"SD ratio high/low ({a.confidence}% CI)": [
                f"{r:.3g} [{lo:.3g}, {hi:.3g}]" if shown else ""
                for r, lo, hi, shown in zip(t["ratio"], t["ratio_low"], t["ratio_high"],
                                            t["ratio_shown"], strict=True)
            ],
            "p adj (ln SD)": t["p_adj"].map(fmt_p),
            "p adj (Brown-Forsythe)": t["bf_p_adj"].map(fmt_p),
            "seed-sensitive": t["seed_sensitive"].map(lambda v: "yes" if v else ""),
        }
    )  # fmt: skip
    s = d.spread
    levels = pd.DataFrame({"factor": s["factor"], "level": s["level"],
                           "SD across seeds": s["sd"].map(fmt_g),
                           "cells": s["cells"].map(str)})  # fmt: skip
    title = (f"Seed sensitivity: effects on the spread across seeds ({d.cells_used} cells; p "
             f"adjusted: {a.options.adjust})")  # fmt: skip
    spread = Section("spread", "Seed-to-seed SD at every level (pooled within cells)", levels)
    return [Section("dispersion", title, table), spread]


def box_meyer(a: Analysis) -> list[Section]:
    bm = a.box_meyer
    if bm is None:
        return []
    table = pd.DataFrame(
        {
            "factor": bm["factor"], "low → high": bm["low"] + " → " + bm["high"],
            "SD low": bm["sd_low"].map(fmt_g), "SD high": bm["sd_high"].map(fmt_g),
            "F*": bm["f_star"].map(lambda v: f"{v:+.3f}"),
            "p adj (approx.)": bm["p_adj"].map(fmt_p),
            "spread differs": bm["spread_differs"].map(lambda v: "yes" if v else ""),
        }
    )  # fmt: skip
    title = ("Dispersion effects from the residuals (Box-Meyer F* = ln(S²high/S²low) of the "
             "residual SDs; unreplicated, so the spread is across cells, not seeds; p "
             f"adjusted: {a.options.adjust})")  # fmt: skip
    return [Section("box_meyer", title, table)]


def not_learned(a: Analysis) -> list[Section]:
    learned = a.learned
    if learned is None or not learned.not_learned:
        return []
    rows = learned.table[~learned.table["learned"]]
    table = pd.DataFrame({"trial": rows["trial"], a.response: rows["value"].map(fmt_g),
                          "p (binomial)": rows["p"].map(fmt_p)})  # fmt: skip
    if table["p (binomial)"].eq("").all():
        table = table.drop(columns="p (binomial)")
    title = (f"Trials that did not learn (baseline {learned.value:.4g}; the test is in the "
             "design lines)")  # fmt: skip
    return [Section("not_learned", title, table)]


def bootstrap(a: Analysis) -> list[Section]:
    b = a.bootstrap
    if b is None or not len(b.effects):
        return []
    e = b.effects
    table = pd.DataFrame(
        {
            "factor": e["factor"], "effect": e["effect"].map(fmt_g),
            f"OLS {a.confidence}% CI": fmt_cis(e),
            "bootstrap 95% CI": [f"[{fmt_g(lo)}, {fmt_g(hi)}]" for lo, hi in
                                 zip(e["boot_low"], e["boot_high"], strict=True)],
            "agrees": e["agrees"].map(lambda v: "yes" if v else "NO"),
        }
    )  # fmt: skip
    title = (f"Cluster bootstrap over seeds ({b.resamples} resamples of the replicates within "
             "each cell), beside OLS")  # fmt: skip
    return [Section("bootstrap", title, table)]
