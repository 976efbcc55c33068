"""The analysis as tables for people and tools: text (100 columns), Markdown, LaTeX, CSV, JSON.

:func:`sections` lays an :class:`~ablate.stats.analysis.Analysis` out as titled tables with
readable column names and number formats; the renderers turn those into each format. The
HTML report embeds the same sections.
"""

from __future__ import annotations

import json
import math
import re
import textwrap
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from ablate.stats.analysis import Analysis

TABLE_FORMATS = ("text", "markdown", "latex", "csv", "json")
TABLES = (
    "coefficients", "effects", "anova", "lack_of_fit", "marginal_means", "pairwise", "cells",
    "screening", "aliases", "correlations", "importance",
)  # fmt: skip
_WIDTH = 100
_FIRST_COLUMN_MAX = 28


@dataclass(frozen=True)
class Section:
    """A titled table (or, with ``table`` None, a block of text lines)."""

    key: str
    title: str
    table: pd.DataFrame | None = None
    lines: tuple[str, ...] = ()


# ---------------------------------------------------------------------------------------------
# Layout


def _p(value: float) -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return ""
    return "<0.001" if value < 0.001 else f"{value:.3f}"


def _g(value: Any) -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return ""
    if isinstance(value, (int, np.integer)):
        return str(int(value))
    return f"{value:.4g}"


def _ci(low: float, high: float) -> str:
    if math.isnan(low) or math.isnan(high):
        return ""
    return f"[{low:.4g}, {high:.4g}]"


def sections(a: Analysis) -> list[Section]:
    """Every table of the analysis, formatted for reading, in report order."""
    out = [Section("design", "Design", lines=tuple(_design_lines(a)))]
    c = a.coefficients
    out.append(
        Section(
            "coefficients",
            f"Coefficients ({a.confidence}% CI; p adjusted: {a.options.adjust})",
            pd.DataFrame(
                {
                    "term": c["term"],
                    "coef": c["coef"].map(_g),
                    "std err": c["std_err"].map(_g),
                    "t": c["t"].map(lambda v: "" if math.isnan(v) else f"{v:.2f}"),
                    "p": c["p"].map(_p),
                    "p adj": c["p_adj"].map(_p),
                    f"{a.confidence}% CI": [
                        _ci(lo, hi) for lo, hi in zip(c["ci_low"], c["ci_high"], strict=True)
                    ],
                }
            ),
        )
    )
    if len(a.effects):
        e = a.effects
        table = pd.DataFrame(
            {
                "factor": [
                    _labelled(f, al) for f, al in zip(e["factor"], _aliases_of(e), strict=True)
                ],
                "low → high": [f"{lo} → {hi}" for lo, hi in zip(e["low"], e["high"], strict=True)],
                "effect": e["effect"].map(_g),
                "std err": e["std_err"].map(_g),
                f"{a.confidence}% CI": [
                    _ci(lo, hi) for lo, hi in zip(e["ci_low"], e["ci_high"], strict=True)
                ],
                "p": e["p"].map(_p),
                "p adj": e["p_adj"].map(_p),
            }
        )
        if "ratio" in e:
            table["ratio high/low"] = [
                f"{r:.3g} [{lo:.3g}, {hi:.3g}]"
                for r, lo, hi in zip(e["ratio"], e["ratio_low"], e["ratio_high"], strict=True)
            ]
        out.append(
            Section(
                "effects",
                f"Effects of two-level factors (high − low, in {a.response} units, averaged "
                "over the other factors)",
                table,
            )
        )
    out += _design_sections(a)
    an = a.anova
    out.append(
        Section(
            "anova",
            f"ANOVA (Type {'II' if a.options.anova_type == 2 else 'III'} sums of squares)",
            pd.DataFrame(
                {
                    "term": an["term"],
                    "df": an["df"].map(lambda v: str(int(v))),
                    "sum sq": an["sum_sq"].map(_g),
                    "mean sq": an["mean_sq"].map(_g),
                    "F": an["F"].map(lambda v: "" if math.isnan(v) else f"{v:.2f}"),
                    "p": an["p"].map(_p),
                    "% of SS": an["pct_ss"].map(lambda v: f"{v:.1f}"),
                }
            ),
        )
    )
    if a.lack_of_fit is not None:
        lof = a.lack_of_fit
        out.append(
            Section(
                "lack_of_fit",
                "Residual split by replicates: lack of fit against pure error",
                pd.DataFrame(
                    {
                        "source": lof["source"],
                        "df": lof["df"].map(lambda v: str(int(v))),
                        "sum sq": lof["sum_sq"].map(_g),
                        "mean sq": lof["mean_sq"].map(_g),
                        "F": lof["F"].map(lambda v: "" if math.isnan(v) else f"{v:.2f}"),
                        "p": lof["p"].map(_p),
                    }
                ),
            )
        )
    m = a.marginal_means
    out.append(
        Section(
            "marginal_means",
            f"Estimated marginal means ({a.confidence}% CI) and observed means",
            pd.DataFrame(
                {
                    "factor": m["factor"],
                    "level": m["level"],
                    "n": m["n"].map(str),
                    "marginal mean": m["emmean"].map(_g),
                    f"{a.confidence}% CI": [
                        _ci(lo, hi) for lo, hi in zip(m["ci_low"], m["ci_high"], strict=True)
                    ],
                    "observed mean": m["observed_mean"].map(_g),
                }
            ),
        )
    )
    if len(a.pairwise):
        pw = a.pairwise
        out.append(
            Section(
                "pairwise",
                f"Pairwise differences of marginal means (Tukey HSD, {a.confidence}% family-wise)",
                pd.DataFrame(
                    {
                        "factor": pw["factor"],
                        "comparison": [
                            f"{b} − {a_}"
                            for a_, b in zip(pw["level_a"], pw["level_b"], strict=True)
                        ],
                        "difference": pw["diff"].map(_g),
                        "std err": pw["std_err"].map(_g),
                        "simultaneous CI": [
                            _ci(lo, hi) for lo, hi in zip(pw["ci_low"], pw["ci_high"], strict=True)
                        ],
                        "p (Tukey)": pw["p_tukey"].map(_p),
                    }
                ),
            )
        )
    if a.lenth is not None:
        s = a.screening
        aliases = {} if a.aliases is None else dict(zip(a.aliases["term"], a.aliases["aliases"],
                                                        strict=True))  # fmt: skip
        table = pd.DataFrame(
            {
                "term": [_labelled(t.replace(":", "×"), aliases.get(t, "")) for t in s["term"]],
                "effect": s["effect"].map(_g),
                "pseudo t": s["t_or_pseudo_t"].map(lambda v: f"{v:.2f}"),
                "active (ME)": s["active"].map(lambda v: "yes" if v else ""),
                "active (SME)": s["active_simultaneous"].map(lambda v: "yes" if v else ""),
            }
        )
        out.append(
            Section(
                "screening",
                f"Effect screening by Lenth's method: PSE = {a.lenth['pse']:.4g}, ME = "
                f"{a.lenth['me']:.4g}, SME = {a.lenth['sme']:.4g} ({a.lenth['df']:.1f} df)",
                table,
            )
        )
    if a.fit["replicates_max"] > 1:
        cells = a.cells
        names = [f.name for f in a.factors]
        out.append(
            Section(
                "cells",
                "Seed-to-seed spread per cell",
                pd.DataFrame(
                    {
                        "cell": [" ".join(str(r[n]) for n in names) for _, r in cells.iterrows()],
                        "n": cells["n"].map(str),
                        "mean": cells["mean"].map(_g),
                        "sd": cells["sd"].map(_g),
                    }
                ),
            )
        )
    if a.importance is not None and len(a.importance):
        imp = a.importance
        out.append(
            Section(
                "importance",
                "Importance of each factor: the linear model beside Optuna's evaluators (each "
                "sums to 1)",
                pd.DataFrame(
                    {
                        "factor": imp["factor"],
                        "linear model": imp["linear"].map(_share),
                        "fANOVA": imp["fanova"].map(_share),
                        "PED-ANOVA": imp["ped_anova"].map(_share),
                    }
                ),
            )
        )
    out.append(Section("fit", "Fit", lines=tuple(_fit_lines(a))))
    if a.notes:
        out.append(Section("notes", "Notes", lines=tuple(f"- {n}" for n in a.notes)))
    return out


def _share(value: float) -> str:
    return "" if value is None or math.isnan(value) else f"{value:.3f}"


def _aliases_of(effects: pd.DataFrame) -> list[str]:
    return list(effects["aliases"]) if "aliases" in effects else [""] * len(effects)


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
    columns = {"aliased with": full.any(), "partially aliased with": partial.any()}
    shown = sum(columns.values())
    first = min(max(len(t) for t in aliases["term"]), _FIRST_COLUMN_MAX)
    width = max((_WIDTH - first - 2 * shown) // max(shown, 1), 24)
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


def _design_lines(a: Analysis) -> list[str]:
    fit = a.fit
    left_out = ", ".join(f"{n} {s}" for s, n in a.excluded.items()) or "none"
    reps = (
        f"{fit['replicates_min']}"
        if fit["replicates_min"] == fit["replicates_max"]
        else f"{fit['replicates_min']} to {fit['replicates_max']}"
    )
    goal = {"min": " (lower is better)", "max": " (higher is better)"}.get(fit.get("goal"), "")
    lines = [f"response: {a.response}{goal}"]
    if fit.get("baseline"):
        b = fit["baseline"]
        lines.append(
            f"trivial baseline: {b['value']:.4g} ({b['what']}); best trial {b['best']:.4g}; "
            f"{b['not_beating']} of {a.n_used} trials do not beat it"
        )
    lines += [
        f"trials used: {a.n_used} (left out: {left_out})",
        f"cells: {fit['cells']} with {reps} trial(s) each",
    ]
    for f in a.factors:
        levels = ", ".join(f.level_label(v) for v in f.levels)
        lines.append(f"factor {f.name}: {levels} (baseline {f.level_label(f.baseline)})")
    lines.append(f"model: {fit['formula']}")
    if a.structure is not None:
        lines += [f"design: {line}" if i == 0 else line
                  for i, line in enumerate(a.structure.lines())]  # fmt: skip
    return lines


def _fit_lines(a: Analysis) -> list[str]:
    f = a.fit
    return [
        f"R² = {_g(f['r2']) or 'undefined'}, adjusted R² = {_g(f['adj_r2']) or 'undefined'}, "
        f"predicted R² (PRESS) = {_g(f['pred_r2']) or 'undefined'}",
        f"residual SD = {_g(f['resid_sd']) or 'undefined'} on {f['df_resid']} df; "
        f"{f['n_params']} coefficients from {f['n_used']} trials",
    ]


# ---------------------------------------------------------------------------------------------
# Renderers


def render(a: Analysis, fmt: str = "text", table: str = "coefficients") -> str:
    """The whole analysis in ``fmt``; CSV holds one table (``table``), JSON holds them all."""
    if fmt == "json":
        return json.dumps(to_dict(a), indent=2, allow_nan=False)
    if fmt == "csv":
        return _raw_table(a, table).to_csv(index=False)
    parts = []
    for s in sections(a):
        if fmt == "markdown":
            body = markdown(s.table) if s.table is not None else "  \n".join(s.lines)
            parts.append(f"### {s.title}\n\n{body}")
        elif fmt == "latex":
            parts.append(_latex_section(s))
        else:
            body = text(s.table) if s.table is not None else "\n".join(map(_wrap, s.lines))
            parts.append(f"{s.title}\n{'=' * min(len(s.title), _WIDTH)}\n{body}")
    if fmt == "text":
        parts.append("OLS summary (statsmodels)\n" + "=" * 25 + "\n" + a.summary)
    return "\n\n".join(parts) + "\n"


def _wrap(line: str) -> str:
    return textwrap.fill(line, _WIDTH, subsequent_indent="  ", break_on_hyphens=False)


def text(table: pd.DataFrame) -> str:
    """A plain table within 100 columns; a first cell too long gets a line of its own."""
    cells = table.astype(str).to_numpy().tolist()
    heads = [str(c) for c in table.columns]
    first = min(max([len(heads[0])] + [len(r[0]) for r in cells]), _FIRST_COLUMN_MAX)
    widths = [first] + [
        max([len(heads[i])] + [len(r[i]) for r in cells]) for i in range(1, len(heads))
    ]

    def line(row: list[str]) -> str:
        padded = [
            v.ljust(w) if i == 0 else v.rjust(w)
            for i, (v, w) in enumerate(zip(row, widths, strict=True))
        ]
        return "  ".join(padded).rstrip()

    out = [line(heads), "-" * len(line(heads))]
    for row in cells:
        if len(row[0]) > first:
            out.append(textwrap.fill(row[0], _WIDTH, subsequent_indent="  "))
            row = ["", *row[1:]]
        out.append(line(row))
    return "\n".join(out)


def markdown(table: pd.DataFrame) -> str:
    heads = [str(c) for c in table.columns]
    rows = table.astype(str).to_numpy().tolist()
    esc = lambda v: v.replace("|", "\\|")  # noqa: E731
    lines = ["| " + " | ".join(map(esc, heads)) + " |",
             "| " + " | ".join(["---"] + ["---:"] * (len(heads) - 1)) + " |"]  # fmt: skip
    lines += ["| " + " | ".join(map(esc, r)) + " |" for r in rows]
    return "\n".join(lines)


_LATEX = {
    "\\": r"\textbackslash{}", "_": r"\_", "%": r"\%", "&": r"\&", "#": r"\#", "$": r"\$",
    "{": r"\{", "}": r"\}", "~": r"\textasciitilde{}", "^": r"\textasciicircum{}",
    "−": "$-$", "→": r"$\to$", "²": r"$^2$", "<": r"$<$", ">": r"$>$", "×": r"$\times$",
    "±": r"$\pm$", "…": r"\ldots{}",
}  # fmt: skip


def _latex_escape(value: str) -> str:
    return "".join(_LATEX.get(ch, ch) for ch in value)


def _latex_section(s: Section) -> str:
    title = _latex_escape(s.title)
    if s.table is None:
        body = "\n".join(_latex_escape(line) + r" \\" for line in s.lines)
        return f"\\paragraph{{{title}}}\n{body}"
    heads = [_latex_escape(str(c)) for c in s.table.columns]
    spec = "l" + "r" * (len(heads) - 1)
    rows = [
        " & ".join(_latex_escape(str(v)) for v in r) + r" \\" for r in s.table.to_numpy().tolist()
    ]
    return (
        f"% {title}\n\\begin{{table}}[ht]\n\\centering\n\\caption{{{title}}}\n"
        f"\\begin{{tabular}}{{{spec}}}\n\\toprule\n"
        + " & ".join(heads)
        + r" \\"
        + "\n\\midrule\n"
        + "\n".join(rows)
        + "\n\\bottomrule\n\\end{tabular}\n\\end{table}"
    )


# ---------------------------------------------------------------------------------------------
# Data out (CSV, JSON)


def _raw_table(a: Analysis, name: str) -> pd.DataFrame:
    if name not in TABLES:
        from ablate.errors import AblateError

        raise AblateError(f"--table must be one of {', '.join(TABLES)}.")
    table = getattr(a, name)
    if table is None:
        from ablate.errors import AblateError

        why = {"lack_of_fit": " (it needs replicates)", "importance": " (--no-importance)"}
        raise AblateError(f"this analysis has no {name} table{why.get(name, '')}.")
    return table


def _records(table: pd.DataFrame | None) -> list[dict[str, Any]] | None:
    if table is None:
        return None
    return [{k: _jsonable(v) for k, v in row.items()} for row in table.to_dict(orient="records")]


def _jsonable(value: Any) -> Any:
    if isinstance(value, (np.bool_, bool)):
        return bool(value)
    if isinstance(value, (np.integer,)):
        return int(value)
    if isinstance(value, (float, np.floating)):
        return None if math.isnan(value) or math.isinf(value) else float(value)
    if isinstance(value, dict):
        return {k: _jsonable(v) for k, v in value.items()}
    return value


def _structure(a: Analysis) -> dict[str, Any] | None:
    st = a.structure
    if st is None:
        return None
    return {
        "kind": st.kind,
        "title": st.title,
        "runs": st.runs,
        "cells": st.cells,
        "resolution": st.resolution,
        "defining_relation": st.defining_relation(),
        "letters": dict(zip(st.letters, st.factors, strict=True)),
        "word_length_pattern": st.relation.word_length_pattern()
        if st.relation is not None and st.relation.regular
        else None,
        "chains": list(st.chains),
        "clear": list(st.clear),
        "d_efficiency": _jsonable(st.d_efficiency),
        "estimable": list(st.estimable),
    }


def to_dict(a: Analysis) -> dict[str, Any]:
    """Everything other tools need, JSON-ready (NaN becomes null)."""
    return {
        "response": a.response,
        "fit": _jsonable(a.fit),
        "design": {
            "factors": [
                {
                    "name": f.name,
                    "kind": f.kind,
                    "levels": [f.level_label(v) for v in f.levels],
                    "baseline": f.level_label(f.baseline),
                }
                for f in a.factors
            ],
            "columns": a.model_matrix.columns,
            "terms": [{"term": t.label, "columns": list(t.columns)} for t in a.model_matrix.terms],
        },
        "coefficients": _records(a.coefficients),
        "effects": _records(a.effects),
        "anova": _records(a.anova),
        "lack_of_fit": _records(a.lack_of_fit),
        "marginal_means": _records(a.marginal_means),
        "pairwise": _records(a.pairwise),
        "cells": _records(a.cells),
        "screening": _records(a.screening),
        "lenth": _jsonable(a.lenth) if a.lenth else None,
        "structure": _structure(a),
        "aliases": _records(a.aliases),
        "correlations": _records(a.correlations),
        "importance": _records(a.importance),
        "notes": list(a.notes),
    }
