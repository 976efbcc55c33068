"""The study report: one self-contained HTML file (images embedded) and a Markdown twin.

It opens with what the study found, in words (the analysis's findings), then every chart of
``ablate plot``, then every table of ``ablate analyze``, and ends with the study definition.
The HTML needs no network and no other file to view; the Markdown refers to the PNG charts
written beside it in ``plots/``.
"""

from __future__ import annotations

import base64
import html
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import pandas as pd

from ablate.results import Results, write_atomic
from ablate.stats.analysis import Analysis
from ablate.stats.formats import Section
from ablate.stats.layout import sections
from ablate.stats.tables import markdown

_CAPTIONS = {
    "coefficients": "Coefficients with their intervals; red: significant after adjustment.",
    "pareto": "Pareto chart: the standardised size of every effect against the critical value.",
    "half_normal": "Half-normal plot: effects far above the noise line are real.",
    "main_effects": "Main effects: marginal mean response at every level of every factor.",
    "interactions": "Interaction plots: non-parallel lines show that two factors interact.",
    "residuals": "Residual diagnostics: the model's assumptions, checked.",
    "learning_curves": "Learning curves: did the training itself behave?",
    "importance": "Importance: the linear model's share of each factor beside Optuna's fANOVA "
    "and PED-ANOVA, on the same trials.",
    "equivalence": "Equivalence: every effect against the margin (the shaded band); thick bars "
    "inside the band are negligible, thin bars clear of 0 are real.",
    "spread": "Seed sensitivity: the spread across seeds at every level of every factor (run "
    "once per cell: the residuals' spread, Box-Meyer).",
}


@dataclass(frozen=True)
class Report:
    html: Path
    markdown: Path
    charts: tuple[Path, ...]


def write_report(
    results: Results, analysis: Analysis, out_dir: Path, picks: tuple[str, ...] = ("best", "worst")
) -> Report:
    """Write report.html and report.md (and the charts, in plots/) into ``out_dir``."""
    from ablate.views.plots import draw_all, save_figures

    out_dir.mkdir(parents=True, exist_ok=True)
    figures = draw_all(results, analysis, picks)
    charts = save_figures(figures, out_dir / "plots", "png")
    images = {p.stem: base64.b64encode(p.read_bytes()).decode("ascii") for p in charts}
    title = _title(results, analysis)
    parts = sections(analysis)
    study_text = results.study.to_yaml() if results.study is not None else None
    html_path = out_dir / "report.html"
    md_path = out_dir / "report.md"
    write_atomic(html_path, _html(title, study_text, parts, images).encode())
    write_atomic(md_path, _markdown(title, study_text, parts, charts).encode())
    return Report(html_path, md_path, tuple(charts))


def _title(results: Results, a: Analysis) -> str:
    name = results.study.name if results.study is not None else results.source.name
    return f"Ablation study {name}: effects on {a.response}"


def _caption(stem: str) -> str:
    if stem.startswith("learned_"):
        return "What the trained model learned (reconstructions, confusion matrix or predictions)."
    if stem.startswith("attention_"):
        return (
            "What the trained model attended to: spatial masks, channel weights or the "
            "transformed input of test images; the multi-scale module's map; or the mean "
            "attention weight per time step."
        )
    return _CAPTIONS.get(stem, stem)


# ---------------------------------------------------------------------------------------------


_CSS = """
body { font-family: system-ui, -apple-system, "Segoe UI", sans-serif; margin: 2rem auto;
       max-width: 72rem; padding: 0 1rem; color: #1b1b1b; line-height: 1.45; }
h1 { font-size: 1.6rem; } h2 { font-size: 1.25rem; margin-top: 2.2rem;
     border-bottom: 1px solid #ddd; padding-bottom: .2rem; }
table { border-collapse: collapse; margin: .6rem 0 1.2rem; font-size: .88rem; }
th, td { padding: .25rem .6rem; border-bottom: 1px solid #e4e4e4; text-align: right; }
th:first-child, td:first-child { text-align: left; }
th { background: #f4f6f8; }
pre { background: #f7f7f7; padding: .8rem; overflow-x: auto; font-size: .85rem; }
figure { margin: 1.2rem 0 2rem; } figure img { max-width: 100%; height: auto; }
figcaption { color: #555; font-size: .9rem; }
.lines p { margin: .15rem 0; } footer { color: #777; font-size: .8rem; margin-top: 3rem; }
"""


def html_table(table: pd.DataFrame) -> str:
    head = "".join(f"<th>{html.escape(str(c))}</th>" for c in table.columns)
    rows = "".join(
        "<tr>" + "".join(f"<td>{html.escape(str(v))}</td>" for v in row) + "</tr>"
        for row in table.astype(str).to_numpy().tolist()
    )
    return f"<table><thead><tr>{head}</tr></thead><tbody>{rows}</tbody></table>"


def _html_section(s: Section) -> str:
    body = (
        html_table(s.table)
        if s.table is not None
        else '<div class="lines">'
        + "".join(f"<p>{html.escape(line)}</p>" for line in s.lines)
        + "</div>"
    )
    return f'<section id="{s.key}"><h2>{html.escape(s.title)}</h2>{body}</section>'


def _html(
    title: str,
    study_text: str | None,
    parts: list[Section],
    images: dict[str, str],
) -> str:
    charts = "".join(
        f'<figure id="chart-{stem}"><img alt="{html.escape(_caption(stem))}" '
        f'src="data:image/png;base64,{images[stem]}"><figcaption>'
        f"{html.escape(_caption(stem))}</figcaption></figure>"
        for stem in images
    )
    study = (
        f'<section id="study"><h2>Study definition</h2><pre>{html.escape(study_text)}</pre>'
        "</section>"
        if study_text
        else ""
    )
    stamp = datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC")
    first, rest = _findings_first(parts)
    return (
        '<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8">'
        f'<meta name="viewport" content="width=device-width, initial-scale=1">'
        f"<title>{html.escape(title)}</title><style>{_CSS}</style></head><body>"
        f"<h1>{html.escape(title)}</h1>"
        + "".join(_html_section(s) for s in first)
        + f'<section id="charts"><h2>Charts</h2>{charts}</section>'
        + "".join(_html_section(s) for s in rest)
        + study
        + f"<footer>Written by ablate on {stamp}.</footer></body></html>\n"
    )


def _findings_first(parts: list[Section]) -> tuple[list[Section], list[Section]]:
    """The findings (and nothing else) before the charts; every other table after them."""
    return [s for s in parts if s.key == "findings"], [s for s in parts if s.key != "findings"]


def _markdown(title: str, study_text: str | None, parts: list[Section], charts: list[Path]) -> str:
    out = [f"# {title}", ""]
    first, rest = _findings_first(parts)
    for s in first:
        out += _markdown_section(s)
    out += ["## Charts", ""]
    for path in charts:
        out += [f"![{_caption(path.stem)}](plots/{path.name})", "", f"*{_caption(path.stem)}*", ""]
    for s in rest:
        out += _markdown_section(s)
    if study_text:
        out += ["## Study definition", "", "```yaml", study_text.rstrip(), "```", ""]
    return "\n".join(out)


def _markdown_section(s: Section) -> list[str]:
    body = [markdown(s.table)] if s.table is not None else [f"{line}  " for line in s.lines]
    return [f"## {s.title}", "", *body, ""]
