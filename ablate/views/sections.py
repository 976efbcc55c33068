"""The analysis laid out for people: titled tables with readable columns and numbers.

:func:`sections` turns an :class:`~ablate.stats.analysis.Analysis` into :class:`Section`
objects in report order; :func:`first_screen` picks what ``ablate analyze`` prints by default
(the findings, the design in two lines, the effects, the levels of factors with three or more,
the ANOVA, what is missing and the next steps: one screen); :mod:`ablate.views.tables`
renders them as text, Markdown, LaTeX, CSV or JSON, and the HTML report embeds the same
sections. Every verdict word comes from the analysis's verdicts
(:mod:`ablate.stats.verdicts`); nothing here decides one.
"""

from __future__ import annotations

import math
import re

import pandas as pd

from ablate.stats.result import Analysis
from ablate.stats.verdicts import NextStep
from ablate.views import sections_seeds as seeds
from ablate.views import sections_time as time
from ablate.views.formats import FIRST_COLUMN_MAX, WIDTH, Section, fmt_cis, fmt_f, fmt_g, fmt_p

#: The sections ``ablate analyze`` prints without --full, in order (a fraction's or a
#: screening design's alias table is part of reading its effects, so it is on the first screen).
FIRST_SCREEN = ("findings", "design", "effects", "levels", "aliases", "anova", "next_steps")


def sections(a: Analysis) -> list[Section]:
    """Every table of the analysis, formatted for reading, in report order."""
    out = [*seeds.findings(a), Section("design", "Design", lines=tuple(design_lines(a)))]
    for build in (_effects, _levels, time.over_epochs, time.improvement, _coefficients,
                  time.components, seeds.equivalence, seeds.blocks, seeds.bootstrap,
                  _design_sections, _anova,
                  _lack_of_fit, _means, _pairwise, _screening, _cells, seeds.dispersion,
                  seeds.box_meyer, _importance, seeds.not_learned):  # fmt: skip
        out += build(a)
    out.append(Section("fit", "Fit", lines=tuple(_fit_lines(a))))
    if a.notes:
        out.append(Section("notes", "Notes", lines=tuple(f"- {n}" for n in a.notes)))
    out += seeds.missing(a) + next_steps(a)
    return out


def first_screen(a: Analysis) -> list[Section]:
    """What ``ablate analyze`` shows by default: one screen (see :data:`FIRST_SCREEN`)."""
    out = []
    for s in sections(a):
        if s.key == "design":
            s = Section("design", "Design", lines=tuple(design_summary(a)))
        if s.key in FIRST_SCREEN or s.key.startswith("levels_"):
            out.append(s)
    return out


def next_steps(a: Analysis) -> list[Section]:
    if not a.next_steps:
        return []
    lines = tuple(f"- {step_text(s)}" for s in a.next_steps)
    return [Section("next_steps", "Next steps", lines=lines)]


def step_text(step: NextStep) -> str:
    """A next step as the command line words it: an option of ``ablate analyze``, or a key
    of the study file (then run the study again)."""
    if step.study_key:
        return f"{step.parameter}: {step.value} in the study file, then run it again: {step.why}"
    flag = f"--{step.parameter.replace('_', '-')}" + (f" {step.value}" if step.value else "")
    return f"{flag}: {step.why}"


def _effects(a: Analysis) -> list[Section]:
    blocked = a.blocks is not None
    e = a.tested_effects
    if not len(e):
        return []
    verdict = {v.factor: v.kind + (" (unadj.)" if v.unadjusted_only else "") for v in a.verdicts}
    table = pd.DataFrame(
        {
            "factor": [_labelled(f, al) for f, al in zip(e["factor"], _aliases_of(a), strict=True)],
            "low → high": [f"{lo} → {hi}" for lo, hi in zip(e["low"], e["high"], strict=True)],
            "effect": e["effect"].map(fmt_g), f"{a.confidence}% CI": fmt_cis(e, digits=3),
            "p": e["p"].map(fmt_p), "p adj": e["p_adj"].map(fmt_p),
            "verdict": [verdict.get(f, "") for f in e["factor"]],
        }
    )  # fmt: skip
    if "ratio" in e:
        table.insert(3, "ratio high/low", [f"{r:.3g}" for r in e["ratio"]])
    blocks = ", blocks in the model" if blocked else ""
    title = (f"Effects (from each factor's baseline to its other level, in {a.response}, "
             f"averaged over the other factors{blocks})")  # fmt: skip
    return [Section("effects", title, table)]


def _levels(a: Analysis) -> list[Section]:
    """Each factor of three or more levels: its levels best first, with their groups."""
    out = []
    for v in a.verdicts:
        if not v.groups:
            continue
        means = a.marginal_means[a.marginal_means["factor"] == v.factor].set_index("level")
        table = pd.DataFrame({
            "level": [g.level for g in v.groups],
            "marginal mean": [fmt_g(g.mean) for g in v.groups],
            f"{a.confidence}% CI": fmt_cis(means.loc[[g.level for g in v.groups]], digits=4),
            "group": [g.letters for g in v.groups],
        })  # fmt: skip
        if a.blocks is not None:  # the means' intervals are the plain fit's: not shown here
            table = table.drop(columns=f"{a.confidence}% CI")
        order = "best first" if a.fit.goal is not None else "highest first"
        blocks = ", blocks in the model" if a.blocks is not None else ""
        title = (f"Levels of {v.factor} ({order}; levels that share a letter are not told "
                 f"apart by Tukey's test{blocks})")  # fmt: skip
        out.append(Section(f"levels_{v.factor}", title, table))
    return out


def _coefficients(a: Analysis) -> list[Section]:
    c = a.coefficients
    table = pd.DataFrame(
        {
            "term": c["label"], "coef": c["coef"].map(fmt_g), "std err": c["std_err"].map(fmt_g),
            "t": c["t"].map(fmt_f), "p": c["p"].map(fmt_p), "p adj": c["p_adj"].map(fmt_p),
            f"{a.confidence}% CI": fmt_cis(c),
        }
    )  # fmt: skip
    plain = "; without the blocks" if a.blocks is not None else ""
    title = (f"Coefficients ({a.confidence}% CI; p adjusted: {a.options.adjust}; means are "
             f"not tested{plain})")  # fmt: skip
    return [Section("coefficients", title, table)]


def _anova(a: Analysis) -> list[Section]:
    an = a.anova
    names = {"blocks": f"blocks ({a.blocks.column})" if a.blocks is not None else "blocks"}
    table = pd.DataFrame(
        {
            "term": an["term"].map(lambda t: names.get(t, t)),
            "df": an["df"].map(lambda v: str(int(v))), "sum sq": an["sum_sq"].map(fmt_g),
            "mean sq": an["mean_sq"].map(fmt_g), "F": an["F"].map(fmt_f), "p": an["p"].map(fmt_p),
            "% of SS": an["pct_ss"].map(lambda v: f"{v:.1f}"),
        }
    )  # fmt: skip
    title = f"ANOVA (Type {'II' if a.options.anova_type == 2 else 'III'} sums of squares)"
    return [Section("anova", title, table)]


def _lack_of_fit(a: Analysis) -> list[Section]:
    lof = a.lack_of_fit
    if lof is None:
        return []
    table = pd.DataFrame(
        {
            "source": lof["source"], "df": lof["df"].map(lambda v: str(int(v))),
            "sum sq": lof["sum_sq"].map(fmt_g), "mean sq": lof["mean_sq"].map(fmt_g),
            "F": lof["F"].map(fmt_f), "p": lof["p"].map(fmt_p),
        }
    )  # fmt: skip
    title = "Residual split by replicates: lack of fit against pure error"
    return [Section("lack_of_fit", title, table)]


def _means(a: Analysis) -> list[Section]:
    m = a.marginal_means
    table = pd.DataFrame(
        {
            "factor": m["factor"], "level": m["level"], "n": m["n"].map(str),
            "marginal mean": m["emmean"].map(fmt_g), f"{a.confidence}% CI": fmt_cis(m),
            "observed mean": m["observed_mean"].map(fmt_g),
        }
    )  # fmt: skip
    plain = "; without the blocks" if a.blocks is not None else ""
    title = f"Estimated marginal means ({a.confidence}% CI{plain}) and observed means"
    return [Section("marginal_means", title, table)]


def _pairwise(a: Analysis) -> list[Section]:
    pw = a.tested_pairwise
    if not len(pw):
        return []
    table = pd.DataFrame(
        {
            "factor": pw["factor"],
            "comparison": [f"{b} − {x}" for x, b in zip(pw["level_a"], pw["level_b"], strict=True)],
            "difference": pw["diff"].map(fmt_g), "std err": pw["std_err"].map(fmt_g),
            "simultaneous CI": fmt_cis(pw), "p (Tukey)": pw["p_tukey"].map(fmt_p),
            "told apart": pw["clear"].map(lambda v: "yes" if v else ""),
        }
    )  # fmt: skip
    blocks = "; blocks in the model" if a.blocks is not None else ""
    title = (f"Pairwise differences of marginal means (Tukey HSD, {a.confidence}% "
             f"family-wise{blocks})")  # fmt: skip
    return [Section("pairwise", title, table)]


def _screening(a: Analysis) -> list[Section]:
    if not a.saturated or a.lenth is None:
        return []
    s = a.screening
    aliases = {} if a.aliases is None else dict(zip(a.aliases["term"], a.aliases["aliases"],
                                                    strict=True))  # fmt: skip
    table = pd.DataFrame(
        {
            "term": [_labelled(t.replace(":", "×"), aliases.get(t, "")) for t in s["term"]],
            "effect": s["effect"].map(fmt_g),
            "pseudo t": s["t_or_pseudo_t"].map(lambda v: f"{v:.2f}"),
            "active (ME)": s["active"].map(lambda v: "yes" if v else ""),
            "active (SME)": s["active_simultaneous"].map(lambda v: "yes" if v else ""),
        }
    )
    lenth = a.lenth
    title = (f"Effect screening by Lenth's method: PSE = {lenth.pse:.4g}, ME = {lenth.me:.4g}, "
             f"SME = {lenth.sme:.4g} ({lenth.df:.1f} df)")  # fmt: skip
    return [Section("screening", title, table)]


def _cells(a: Analysis) -> list[Section]:
    if a.fit.replicates_max <= 1:
        return []
    cells = a.cells
    table = pd.DataFrame(
        {
            "cell": [_cell_label(a, r) for _, r in cells.iterrows()],
            "n": cells["n"].map(str), "mean": cells["mean"].map(fmt_g),
            "sd": cells["sd"].map(fmt_g),
        }
    )  # fmt: skip
    return [Section("cells", "Seed-to-seed spread per cell", table)]


def _cell_label(a: Analysis, row: pd.Series) -> str:
    """A cell as progress lines name it: ``+batch_norm -dropout activation=elu``."""
    parts = []
    for f in a.factors:
        level = str(row[f.name])
        if f.kind == "bool":
            parts.append(("+" if level == "true" else "-") + f.name)
        else:
            parts.append(f"{f.name}={level}")
    return " ".join(parts)


def _importance(a: Analysis) -> list[Section]:
    imp = a.importance
    if imp is None or not len(imp):
        return []
    table = pd.DataFrame(
        {
            "factor": imp["factor"], "linear model": _shares(imp, "linear"),
            "fANOVA": _shares(imp, "fanova"), "PED-ANOVA": _shares(imp, "ped_anova"),
        }
    )  # fmt: skip
    interval = " (bootstrap 95% CIs)" if "linear_low" in imp else ""
    title = f"Importance of each factor{interval}: the linear model beside Optuna's evaluators"
    return [Section("importance", title, table)]


def _shares(imp: pd.DataFrame, column: str) -> list[str]:
    """One reading's shares, with their bootstrap intervals where the analysis has them."""
    if f"{column}_low" not in imp:
        return [_share(v) for v in imp[column]]
    return [f"{_share(v)} [{_share(lo)}, {_share(hi)}]"
            if not (math.isnan(lo) or math.isnan(v)) else _share(v)
            for v, lo, hi in zip(imp[column], imp[f"{column}_low"], imp[f"{column}_high"],
                                 strict=True)]  # fmt: skip


def _share(value: float) -> str:
    return "" if value is None or math.isnan(value) else f"{value:.3f}"


def _aliases_of(a: Analysis) -> list[str]:
    e = a.effects
    return list(e["aliases"]) if "aliases" in e else [""] * len(e)


def _labelled(name: str, aliases: str) -> str:
    """An effect with what it is aliased with: ``temperature (+ pressure×concentration)``."""
    if not aliases:
        return name
    shown = aliases if len(aliases) <= 60 else aliases[:57].rsplit(" ", 2)[0] + " …"
    return f"{name} ({shown})"


def _design_sections(a: Analysis) -> list[Section]:
    """The alias table of the fitted terms and, for non-orthogonal runs, their correlations."""
    out = []
    st = a.structure
    if st is not None and st.kind != "full factorial" and a.aliases is not None:
        out.append(
            Section(
                "aliases",
                "Aliases of the estimated terms (effect coding, up to 3-factor interactions)",
                _alias_rows(a.aliases),
            )
        )
    if a.correlations is not None and len(a.correlations):
        c = a.correlations
        out.append(
            Section(
                "correlations",
                "Correlations between the estimated terms' columns (0 in an orthogonal design)",
                pd.DataFrame(
                    {
                        "column": c["column_a"].map(lambda t: t.replace(":", "×")),
                        "with": c["column_b"].map(lambda t: t.replace(":", "×")),
                        "r": c["r"].map(lambda v: f"{v:.3f}"),
                    }
                ),
            )
        )
    return out


def _alias_rows(aliases: pd.DataFrame) -> pd.DataFrame:
    """The alias table for reading: long lists continue on rows of their own (blank term),
    and a column that is empty for every term is left out."""
    full = aliases["aliases"].astype(str)
    partial = aliases["partial"].astype(str)
    columns = {"aliased with": bool(full.any()), "partially aliased with": bool(partial.any())}
    shown = sum(columns.values())
    first = min(max(len(t) for t in aliases["term"]), FIRST_COLUMN_MAX)
    width = max((WIDTH - first - 2 * shown) // max(shown, 1), 24)
    rows = []
    for term, f, p in zip(aliases["term"], full, partial, strict=True):
        terms = [t.strip() for t in re.split(r" (?=[+-] )", f)] if f else []
        cells = {
            "aliased with": _pack(terms, width),
            "partially aliased with": _pack(p.split("; ") if p else [], width),
        }
        height = max([1] + [len(v) for k, v in cells.items() if columns[k]])
        for i in range(height):
            row = {"term": term.replace(":", "×") if i == 0 else ""}
            for k, v in cells.items():
                if columns[k]:
                    row[k] = v[i] if i < len(v) else ("none" if i == 0 else "")
            rows.append(row)
    return pd.DataFrame(rows, columns=["term", *[k for k, keep in columns.items() if keep]])


def _pack(parts: list[str], width: int) -> list[str]:
    """Parts joined by spaces into lines of at most ``width`` characters (one part may exceed)."""
    lines: list[str] = []
    for part in parts:
        if lines and len(lines[-1]) + 1 + len(part) <= width:
            lines[-1] += " " + part
        else:
            lines.append(part)
    return lines


def _replicates(a: Analysis) -> str:
    lo, hi = a.fit.replicates_min, a.fit.replicates_max
    return f"{lo}" if lo == hi else f"{lo} to {hi}"


def design_summary(a: Analysis) -> list[str]:
    """The design in two lines: what was analysed and how, then how the trials learned, and a
    regular fraction's defining relation (the full design section has the rest)."""
    relation = a.structure.relation_lines() if a.structure is not None else []
    return _summary_lines(a) + relation


def _summary_lines(a: Analysis) -> list[str]:
    fit = a.fit
    shape = a.structure.title if a.structure is not None else f"{fit.cells} cells"
    left = sum(a.excluded.values())
    out = f" ({left} left out)" if left else ""
    replicates = "replicate" if fit.replicates_max == 1 else "replicates"
    df = (f"{a.blocks.df_resid} residual df with {a.blocks.levels} blocks ({a.blocks.column})"
          if a.blocks is not None else f"{fit.df_resid} residual df")  # fmt: skip
    first = (f"{a.response}: {a.n_used} trials{out}, {fit.cells} cells × {_replicates(a)} "
             f"{replicates}, {shape}, {df}")  # fmt: skip
    goal = {"min": "lower is better", "max": "higher is better"}.get(fit.goal or "", "")
    if a.learned is None:
        return [first, f"model: {fit.formula}" + (f"; {goal}" if goal else "")]
    b = a.learned
    learned = ("every trial learned" if not b.not_learned
               else f"{b.not_learned} of {len(b.table)} trials did not learn")  # fmt: skip
    return [first, f"{learned}: trivial baseline {b.value:.4g}, best trial {b.best:.4g} ({goal})"]


def design_lines(a: Analysis) -> list[str]:
    """The design in full: response, baseline, trials, cells, factors, model, runs."""
    fit = a.fit
    left_out = ", ".join(f"{n} {s}" for s, n in a.excluded.items()) or "none"
    goal = {"min": " (lower is better)", "max": " (higher is better)"}.get(fit.goal or "", "")
    lines = [f"response: {a.response}{goal}"]
    if a.learned is not None:
        b = a.learned
        lines.append(
            f"trivial baseline: {b.value:.4g} ({b.what}); best trial {b.best:.4g}; "
            f"{b.not_learned} trials did not learn (learned = {b.rule})"
        )
    lines += [
        f"trials used: {a.n_used} (left out: {left_out})",
        f"cells: {fit.cells} with {_replicates(a)} trial(s) each",
    ]
    for f in a.factors:
        levels = ", ".join(f.level_label(v) for v in f.levels)
        lines.append(f"factor {f.name}: {levels} (baseline {f.level_label(f.baseline)})")
    lines.append(f"model: {fit.formula}")
    if a.structure is not None:
        lines += [f"design: {line}" if i == 0 else line
                  for i, line in enumerate(a.structure.lines())]  # fmt: skip
    return lines


def _fit_lines(a: Analysis) -> list[str]:
    f = a.fit
    lines = [
        f"R² = {fmt_g(f.r2) or 'undefined'}, adjusted R² = {fmt_g(f.adj_r2) or 'undefined'}, "
        f"predicted R² (PRESS) = {fmt_g(f.pred_r2) or 'undefined'}",
        f"residual SD = {fmt_g(f.resid_sd) or 'undefined'} on {f.df_resid} df; "
        f"{f.n_params} coefficients from {f.n_used} trials",
    ]
    if a.blocks is not None:
        b = a.blocks
        lines.append(f"these are the fit without the blocks; with them the residual SD is "
                     f"{fmt_g(b.resid_sd)} on {b.df_resid} df")  # fmt: skip
    return lines
