"""The study report: one self-contained HTML file (images embedded) and a Markdown twin.

It opens with a table of contents and what the study found, as a list in plain words (the
analysis's findings), with what would sharpen the answer in a box of its own (next steps, and
the statistics left out for want of data); then every chart of ``ablate plot`` with a caption
of its own, every table of ``ablate analyze``, and the study definition. The HTML needs no
network and no other file to view; the Markdown refers to the PNG charts written beside it in
``plots/``. Every text a user wrote (factor and level names, descriptions) is escaped in both.
"""

from __future__ import annotations

import base64
import html
import re
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import pandas as pd

from ablate.results import Results, write_atomic
from ablate.stats.analysis import Analysis
from ablate.views.formats import Section
from ablate.views.sections import sections, step_text
from ablate.views.tables import markdown, without_empty_columns

#: The sections the report's advice box holds (not the findings: a paper's words).
_ADVICE = ("missing", "next_steps")


@dataclass(frozen=True)
class Report:
    html: Path
    markdown: Path
    charts: tuple[Path, ...]


@dataclass(frozen=True)
class _Figure:
    stem: str
    caption: str
    png: str  # base64


def write_report(
    results: Results, analysis: Analysis, out_dir: Path, picks: tuple[str, ...] = ("best", "worst")
) -> Report:
    """Write report.html and report.md (and the charts, in plots/) into ``out_dir``."""
    from ablate.views.plots import draw_all, save_charts

    out_dir.mkdir(parents=True, exist_ok=True)
    charts = draw_all(results, analysis, picks)
    paths = save_charts(charts, out_dir / "plots", "png")
    figures = [
        _Figure(p.stem, charts[p.stem].caption, base64.b64encode(p.read_bytes()).decode("ascii"))
        for p in paths
    ]
    title = _title(results, analysis)
    parts = [s for s in sections(analysis) if s.key not in _ADVICE]
    study_text = results.study.to_yaml() if results.study is not None else None
    html_path = out_dir / "report.html"
    md_path = out_dir / "report.md"
    write_atomic(html_path, _html(title, analysis, study_text, parts, figures).encode())
    write_atomic(md_path, _markdown(title, analysis, study_text, parts, figures).encode())
    return Report(html_path, md_path, tuple(paths))


def _title(results: Results, a: Analysis) -> str:
    name = results.study.name if results.study is not None else results.source.name
    return f"Ablation study {name}: effects on {a.response}"


def _advice(a: Analysis) -> list[str]:
    """The next steps and what is missing, as the command line words them."""
    return [step_text(s) for s in a.next_steps] + [m.text for m in a.missing]


# ---------------------------------------------------------------------------------------------
# HTML


_CSS = """
body { font-family: system-ui, -apple-system, "Segoe UI", sans-serif; margin: 2rem auto;
       max-width: 72rem; padding: 0 1rem; color: #1b1b1b; line-height: 1.45; }
h1 { font-size: 1.6rem; } h2 { font-size: 1.25rem; margin-top: 2.2rem;
     border-bottom: 1px solid #ddd; padding-bottom: .2rem; }
nav { background: #f7f7f7; padding: .6rem 1rem; font-size: .9rem; columns: 2 18rem; }
nav a { display: block; color: #2166ac; text-decoration: none; }
ul.findings li { margin: .35rem 0; }
aside.next { border-left: 4px solid #2166ac; background: #f3f7fb; padding: .4rem 1rem;
             margin: 1rem 0; font-size: .92rem; }
aside.next code { font-size: .85rem; }
table { border-collapse: collapse; margin: .6rem 0 1.2rem; font-size: .88rem; }
th, td { padding: .25rem .6rem; border-bottom: 1px solid #e4e4e4; text-align: right; }
th:first-child, td:first-child { text-align: left; }
th { background: #f4f6f8; }
.wide { overflow-x: auto; }
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
    markup = f"<table><thead><tr>{head}</tr></thead><tbody>{rows}</tbody></table>"
    return f'<div class="wide">{markup}</div>'


def _html_section(s: Section) -> str:
    if s.table is not None:
        body = html_table(without_empty_columns(s.table))
    else:
        body = '<div class="lines">' + "".join(
            f"<p>{html.escape(line)}</p>" for line in s.lines) + "</div>"  # fmt: skip
    return f'<section id="{s.key}"><h2>{html.escape(s.title)}</h2>{body}</section>'


def _html(
    title: str, a: Analysis, study_text: str | None, parts: list[Section], figures: list[_Figure]
) -> str:
    rest = [s for s in parts if s.key != "findings"]
    toc = [("findings", "Findings"), ("charts", "Charts")]
    toc += [(f"chart-{f.stem}", f"— {f.stem.replace('_', ' ')}") for f in figures]
    toc += [(s.key, s.title.split(" (")[0]) for s in rest]
    toc += [("study", "Study definition")] if study_text else []
    nav = "<nav>" + "".join(f'<a href="#{k}">{html.escape(t)}</a>' for k, t in toc) + "</nav>"
    findings = "".join(f"<li>{html.escape(f.text)}</li>" for f in a.findings)
    advice = "".join(f"<li>{_code_flags(html.escape(line))}</li>" for line in _advice(a))
    box = (f'<aside class="next"><strong>Next steps</strong><ul>{advice}</ul></aside>'
           if advice else "")  # fmt: skip
    charts = "".join(
        f'<figure id="chart-{f.stem}"><img alt="{html.escape(f.caption)}" '
        f'src="data:image/png;base64,{f.png}"><figcaption>{html.escape(f.caption)}</figcaption>'
        "</figure>"
        for f in figures
    )
    study = (f'<section id="study"><h2>Study definition</h2><pre>{html.escape(study_text)}</pre>'
             "</section>" if study_text else "")  # fmt: skip
    stamp = datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC")
    return (
        '<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8">'
        '<meta name="viewport" content="width=device-width, initial-scale=1">'
        f"<title>{html.escape(title)}</title><style>{_CSS}</style></head><body>"
        f"<h1>{html.escape(title)}</h1>{nav}"
        f'<section id="findings"><h2>Findings</h2><ul class="findings">{findings}</ul>{box}'
        "</section>"
        f'<section id="charts"><h2>Charts</h2>{charts}</section>'
        + "".join(_html_section(s) for s in rest)
        + study
        + f"<footer>Written by ablate on {stamp}.</footer></body></html>\n"
    )


def _code_flags(text: str) -> str:
    """Options and study keys in an advice line, set as code."""
    return re.sub(r"^(--[\w-]+(?: \S+)?|\w+: \S+ in the study file)", r"<code>\1</code>", text)


# ---------------------------------------------------------------------------------------------
# Markdown


def md_escape(text: str) -> str:
    """User text made inert in Markdown: HTML special characters as entities, and the
    characters that would start emphasis, links or code escaped."""
    text = html.escape(text, quote=False)
    return re.sub(r"([\\`*_\[\]])", r"\\\1", text)


def _markdown(
    title: str, a: Analysis, study_text: str | None, parts: list[Section], figures: list[_Figure]
) -> str:
    out = [f"# {md_escape(title)}", "", "## Findings", ""]
    out += [f"- {md_escape(f.text)}" for f in a.findings] + [""]
    advice = _advice(a)
    if advice:
        out += ["> **Next steps**", ">"] + [f"> - {md_escape(line)}" for line in advice] + [""]
    out += ["## Charts", ""]
    for f in figures:
        out += [f"![{md_escape(f.caption)}](plots/{f.stem}.png)", "", f"*{md_escape(f.caption)}*",
                ""]  # fmt: skip
    for s in parts:
        if s.key == "findings":
            continue
        body = ([markdown(_escaped(without_empty_columns(s.table)))] if s.table is not None
                else [f"{md_escape(line)}  " for line in s.lines])  # fmt: skip
        out += [f"## {md_escape(s.title)}", "", *body, ""]
    if study_text:
        out += ["## Study definition", "", "```yaml", study_text.rstrip().replace("```", "ˋˋˋ"),
                "```", ""]  # fmt: skip
    return "\n".join(out)


def _escaped(table: pd.DataFrame) -> pd.DataFrame:
    out = table.astype(str).map(md_escape)
    out.columns = [md_escape(str(c)) for c in table.columns]
    return out
