"""The analysis as tables for people and tools: text (100 columns), Markdown, LaTeX, CSV, JSON.

The renderers turn the sections :mod:`ablate.views.sections` lays out into each format; JSON and
CSV carry the analysis's own tables, unformatted.
"""

from __future__ import annotations

import dataclasses
import json
import math
import textwrap
from typing import Any

import numpy as np
import pandas as pd

from ablate.errors import AblateError, option
from ablate.stats.result import Analysis
from ablate.views.formats import FIRST_COLUMN_MAX, WIDTH, Section
from ablate.views.sections import first_screen, sections

TABLE_FORMATS = ("text", "markdown", "latex", "csv", "json")
TABLES = (
    "coefficients", "effects", "anova", "lack_of_fit", "marginal_means", "pairwise", "cells",
    "screening", "aliases", "correlations", "importance", "equivalence", "learned",
    "blocked_effects", "dispersion", "spread", "box_meyer", "bootstrap", "improvement",
    "over_epochs",
)  # fmt: skip


def render(
    a: Analysis, fmt: str = "text", table: str = "coefficients", *, full: bool = True,
    only: tuple[str, ...] = (),
) -> str:  # fmt: skip
    """The analysis in ``fmt``; CSV holds one table (``table``), JSON holds them all.

    Text, Markdown and LaTeX show every section (``full``), or the first screen
    (:func:`~ablate.views.sections.first_screen`), or the sections named in ``only``."""
    if fmt == "json":
        return json.dumps(to_dict(a), indent=2, allow_nan=False)
    if fmt == "csv":
        return _raw_table(a, table).to_csv(index=False)
    parts = []
    for s in chosen_sections(a, full, only):
        shown = without_empty_columns(s.table) if s.table is not None else None
        if fmt == "markdown":
            body = markdown(shown) if shown is not None else "  \n".join(s.lines)
            parts.append(f"### {s.title}\n\n{body}")
        elif fmt == "latex":
            parts.append(_latex_section(Section(s.key, s.title, shown, s.lines)))
        else:
            title = _wrap(s.title)
            rule = "=" * min(max(len(line) for line in title.splitlines()), WIDTH)
            body = text(shown) if shown is not None else "\n".join(map(_wrap, s.lines))
            parts.append(f"{title}\n{rule}\n{body}")
    if fmt == "text" and full and not only:
        parts.append("OLS summary (statsmodels)\n" + "=" * 25 + "\n" + a.summary)
    elif fmt == "text" and not full and not only:
        parts.append(_wrap(MORE))
    return "\n\n".join(parts) + "\n"


#: The line under the first screen: where the rest is.
MORE = ("(ablate analyze --full prints every table: coefficients, marginal means, pairwise "
        "differences, seed spread, importance, fit and statsmodels' summary; --section NAME "
        "prints one)")  # fmt: skip


def chosen_sections(a: Analysis, full: bool, only: tuple[str, ...]) -> list[Section]:
    """The sections asked for: named ones (an unknown name refused, naming the choices),
    every one, or the first screen."""
    every = sections(a)
    if not only:
        return every if full else first_screen(a)
    keys = [s.key for s in every]
    unknown = [k for k in only if k not in keys and not any(x.startswith(f"{k}_") for x in keys)]
    if unknown:
        raise AblateError(f"this analysis has no section {', '.join(unknown)}; its sections: "
                          f"{', '.join(keys)}.")  # fmt: skip
    return [s for s in every if s.key in only or any(s.key.startswith(f"{k}_") for k in only)]


def without_empty_columns(table: pd.DataFrame) -> pd.DataFrame:
    """A table without the columns that are empty in every row (the first always stays)."""
    keep = [c for i, c in enumerate(table.columns)
            if i == 0 or table[c].astype(str).str.strip().ne("").any()]  # fmt: skip
    return table[keep]


def _wrap(line: str) -> str:
    return textwrap.fill(line, WIDTH, subsequent_indent="  ", break_on_hyphens=False)


def text(table: pd.DataFrame) -> str:
    """A plain table within 100 columns: a first cell too long gets a line of its own, and a
    table too wide for 100 columns continues below, its first column repeated."""
    cells = table.astype(str).to_numpy().tolist()
    heads = [str(c) for c in table.columns]
    fitting = [len(r[0]) for r in cells if len(r[0]) <= FIRST_COLUMN_MAX]  # others: own line
    first = max([len(heads[0]), *fitting])
    widths = [first] + [
        max([len(heads[i])] + [len(r[i]) for r in cells]) for i in range(1, len(heads))
    ]
    if sum(widths) + 2 * (len(widths) - 1) > WIDTH and len(widths) > 2:
        cut = _fitting(widths)
        left = table.iloc[:, :cut]
        right = table.iloc[:, [0, *range(cut, len(heads))]]
        return text(left) + "\n\n" + text(right)

    def line(row: list[str]) -> str:
        padded = [
            v.ljust(w) if i == 0 else v.rjust(w)
            for i, (v, w) in enumerate(zip(row, widths, strict=True))
        ]
        return "  ".join(padded).rstrip()

    out = [line(heads), "-" * len(line(heads))]
    for row in cells:
        if len(row[0]) > first:
            out.append(textwrap.fill(row[0], WIDTH, subsequent_indent="  "))
            row = ["", *row[1:]]
        out.append(line(row))
    return "\n".join(out)


def _fitting(widths: list[int]) -> int:
    """How many leading columns fit in :data:`WIDTH` (at least two)."""
    used, cut = widths[0], 1
    while cut < len(widths) and used + 2 + widths[cut] <= WIDTH:
        used += 2 + widths[cut]
        cut += 1
    return max(cut, 2)


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
        raise AblateError(f"{option('table')} must be one of {', '.join(TABLES)}.")
    table = _nested(a).get(name, getattr(a, name, None))
    if table is None:
        why = {"lack_of_fit": " (it needs replicates)",
               "importance": f" ({option('importance', 'False', '--no-importance')})",
               "equivalence": f" ({option('margin', 'D')})",
               "blocked_effects": f" ({option('block', 'COLUMN')})",
               "dispersion": " (it needs 3 replicates per cell)",
               "spread": " (it needs 3 replicates per cell)",
               "learned": " (the response has no trivial baseline)",
               "bootstrap": " (it needs 4 replicates per cell)",
               "box_meyer": " (it needs an unreplicated design with residual df)",
               "improvement": " (it needs replicates and a response with a direction)",
               "over_epochs": " (it needs the response in the epochs table, 2 epochs)"}  # fmt: skip
        raise AblateError(f"this analysis has no {name} table{why.get(name, '')}.")
    return table


def _nested(a: Analysis) -> dict[str, pd.DataFrame | None]:
    """The tables that sit inside the analysis's parts."""
    return {
        "learned": a.learned.table if a.learned is not None else None,
        "blocked_effects": a.blocks.effects if a.blocks is not None else None,
        "dispersion": a.dispersion.table if a.dispersion is not None else None,
        "spread": a.dispersion.spread if a.dispersion is not None else None,
        "bootstrap": a.bootstrap.effects if a.bootstrap is not None else None,
        "over_epochs": a.over_epochs.table if a.over_epochs is not None else None,
    }


def _records(table: pd.DataFrame | None) -> list[dict[str, Any]] | None:
    if table is None:
        return None
    records = table.to_dict(orient="records")
    return [{str(k): _jsonable(v) for k, v in row.items()} for row in records]


def _jsonable(value: object) -> object:
    if isinstance(value, (np.bool_, bool)):
        return bool(value)
    if isinstance(value, (np.integer,)):
        return int(value)
    if isinstance(value, (float, np.floating)):
        return None if math.isnan(value) or math.isinf(value) else float(value)
    if isinstance(value, dict):
        return {k: _jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_jsonable(v) for v in value]
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
        "fit": _jsonable({**dataclasses.asdict(a.fit), "excluded": dict(a.excluded)}),
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
        "verdicts": [_jsonable(dataclasses.asdict(v)) for v in a.verdicts],
        "findings": [_jsonable(dataclasses.asdict(f)) for f in a.findings],
        "missing": [_jsonable(dataclasses.asdict(m)) for m in a.missing],
        "next_steps": [_jsonable(dataclasses.asdict(s)) for s in a.next_steps],
        "coefficients": _records(a.coefficients),
        "effects": _records(a.effects),
        "anova": _records(a.anova),
        "lack_of_fit": _records(a.lack_of_fit),
        "marginal_means": _records(a.marginal_means),
        "pairwise": _records(a.pairwise),
        "cells": _records(a.cells),
        "screening": _records(a.screening),
        "lenth": _jsonable(dataclasses.asdict(a.lenth)) if a.lenth else None,
        "structure": _structure(a),
        "aliases": _records(a.aliases),
        "correlations": _records(a.correlations),
        "importance": _records(a.importance),
        "learned": _learned(a),
        "equivalence": _records(a.equivalence),
        "blocks": _blocks(a),
        "dispersion": _dispersion(a),
        "box_meyer": _records(a.box_meyer),
        "bootstrap": None
        if a.bootstrap is None
        else {
            "resamples": a.bootstrap.resamples,
            "effects": _records(a.bootstrap.effects),
            "importance": _records(a.bootstrap.importance),
        },
        "improvement": _records(a.improvement),
        "over_epochs": _over_epochs(a),
        "components": _jsonable(dataclasses.asdict(a.components)) if a.components else None,
        "notes": list(a.notes),
    }


def _over_epochs(a: Analysis) -> dict[str, Any] | None:
    over = a.over_epochs
    if over is None:
        return None
    return {"response": over.response, "missing": over.missing, "notes": list(over.notes),
            "skipped": [_jsonable(dataclasses.asdict(s)) for s in over.skipped],
            "effects": [_jsonable(dataclasses.asdict(t)) for t in over.effects],
            "table": _records(over.table)}  # fmt: skip


def _learned(a: Analysis) -> dict[str, Any] | None:
    if a.learned is None:
        return None
    summary = {k: _jsonable(v) for k, v in a.learned.as_dict().items()}
    return {**summary, "trials": _records(a.learned.table)}


def _blocks(a: Analysis) -> dict[str, Any] | None:
    b = a.blocks
    if b is None:
        return None
    return {
        "column": b.column, "levels": b.levels, "anova": _jsonable(b.anova),
        "resid_sd": _jsonable(b.resid_sd), "resid_sd_unblocked": _jsonable(b.resid_sd_unblocked),
        "df_resid": b.df_resid, "relative_efficiency": _jsonable(b.relative_efficiency),
        "mixed": _jsonable(b.mixed), "effects": _records(b.effects),
    }  # fmt: skip


def _dispersion(a: Analysis) -> dict[str, Any] | None:
    d = a.dispersion
    if d is None:
        return None
    return {"cells_used": d.cells_used, "effects": _records(d.table),
            "spread": _records(d.spread)}  # fmt: skip
