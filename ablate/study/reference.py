"""The study file's reference, generated from its declarations: every key, its values, its
default and its meaning, section by section, and each built-in model's and data source's
parameters. The documentation's reference pages are this text; a test checks that no key the
parser accepts is missing from it."""

from __future__ import annotations

from dataclasses import dataclass

from ablate.data.sources import SOURCES
from ablate.models.registry import BUILDERS
from ablate.parameters import Parameter, declared, markdown_table
from ablate.study.settings import (
    AnalysisSettings,
    DataSettings,
    DesignSettings,
    ModelSettings,
    RunSettings,
    Study,
    TrainerSettings,
    TrainingSettings,
)
from ablate.tasks.declared import Response

#: Each section of a study file, the dataclass that declares its keys, and what it is for.
SECTIONS: tuple[tuple[str, type, str], ...] = (
    ("", Study, "The study: its name, its grid and how many trials each cell gets."),
    ("model", ModelSettings, "The model builder; a built-in model's parameters may also be set "
     "here for every cell (see Models), a user's builder takes `options:`."),
    ("trainer", TrainerSettings, "Your own training function, instead of `model:` (or a "
     "function name alone: `trainer: package.module:function`); a study with `trainer:` has no "
     "`model:`, `training:` or `data:`, and declares `responses:`."),
    ("responses.<name>", Response, "What your training function returns, one entry per "
     "response under the name the function returns it by (`responses: {test_accuracy: {goal: "
     "max}}`, or `test_loss: min` for short); the first is the analysis's default response."),
    ("training", TrainingSettings, "How each trial trains."),
    ("data", DataSettings, "Where the data comes from, and how much of it."),
    ("run", RunSettings, "How trials are spread over worker processes, and retried."),
    ("analysis", AnalysisSettings, "Defaults for `ablate analyze`."),
    ("design", DesignSettings, "Which runs of the grid to train: every cell, or a designed "
     "subset."),
)  # fmt: skip


@dataclass(frozen=True)
class Key:
    """One key of the study file: where it is, and its declaration."""

    path: str  # e.g. "training.epochs"
    parameter: Parameter


def keys() -> list[Key]:
    """Every key of the study file the settings declare, section by section."""
    out = []
    for section, cls, _ in SECTIONS:
        prefix = f"{section}." if section else ""
        out += [Key(prefix + p.name, p) for p in declared(cls)]
    return out


def markdown() -> str:
    """The study file's reference in Markdown: a table per section, then every built-in
    model's parameters and every data source's options."""
    parts = []
    for section, cls, doc in SECTIONS:
        title = f"`{section}:`" if section else "The top level"
        prefix = f"{section}." if section else ""
        parts += [f"### {title}", "", doc, "", markdown_table(declared(cls), prefix), ""]
    for name, spec in BUILDERS.items():
        parts += [f"### Model `{name}`", "", f"{spec.doc[0].upper()}{spec.doc[1:]}.", ""]
        parts += [markdown_table(spec.parameters or ()), ""]
    for name, found in SOURCES.items():
        if found.options:
            title = f"### Data source `{name}`: `data.options`"
            parts += [title, "", markdown_table(found.options), ""]
    return "\n".join(parts).rstrip() + "\n"
