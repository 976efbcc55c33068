"""Sphinx configuration of ablate's documentation (MyST Markdown pages).

Build it as `.ci/run` does, warnings as errors:

    .venv/bin/sphinx-build -W --keep-going -b html docs docs/_build/html

The reference pages under `reference/generated/` are written here, before Sphinx reads the
sources, from the declarations in the code (the study file's keys, the argument parser, the
parquet schema, the JSON files of bench/results/), so that they cannot fall behind it; they
are not kept in git.
"""

from __future__ import annotations

import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))

from ablate.cli import reference as cli_reference  # noqa: E402
from ablate.results.export import schema_markdown  # noqa: E402
from ablate.study import reference as study_reference  # noqa: E402
from ablate.version import __version__  # noqa: E402
from bench import catalogue  # noqa: E402

GENERATED = HERE / "reference" / "generated"
PAGES = {
    "study-file.md": ("The study file", "Every key of a study file, section by section, with its "
                      "values, default and meaning; then every built-in model's parameters and "
                      "every data source's options.", study_reference.markdown()),
    "cli.md": ("The command line", "Every `ablate` command, its arguments and options. Exit "
               "codes: 0 done; 2 a problem you can fix (the message says what and how); 130 "
               "interrupted (run the same command again to carry on); 141 the output's reader "
               "went away; 1 a bug in ablate.", cli_reference.markdown()),
    "results.md": ("The results tables", "The columns of the parquet files `ablate run` "
                   "writes into the results folder.", schema_markdown()),
    "benchmarks.md": ("Benchmark results", "Read from the JSON files the benchmarks wrote; "
                      "[Performance](../../performance.md) explains what they found.",
                      catalogue.markdown()),
}  # fmt: skip


def _generate() -> None:
    GENERATED.mkdir(parents=True, exist_ok=True)
    for name, (title, intro, body) in PAGES.items():
        body = ("\n" + body).replace("\n### ", "\n## ").lstrip("\n")  # under the page's title
        text = f"# {title}\n\n{intro}\n\n{body}"
        path = GENERATED / name
        if not path.exists() or path.read_text() != text:
            path.write_text(text)


_generate()

project = "ablate"
author = "the ablate developers"
copyright = "2026, the ablate developers"
release = version = __version__
extensions = ["myst_parser", "sphinx.ext.autodoc"]
autodoc_member_order = "bysource"
autodoc_typehints = "description"
source_suffix = {".md": "markdown"}
exclude_patterns = ["_build"]
myst_heading_anchors = 3
# Option names are printed as typed: no "--" turned into an en dash, no curly quotes (a copied
# --until-halfwidth must work).
smartquotes = False
html_theme = "alabaster"
html_title = f"ablate {__version__}"
# Room for code blocks 100 characters wide, as the project's code and the analysis print them.
html_theme_options = {"page_width": "1240px", "sidebar_width": "240px"}
html_static_path = ["_static"]  # custom.css: code blocks of 100 columns, tables that wrap
