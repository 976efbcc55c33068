"""A study's design in words, for ``ablate run --dry-run``: how it was built, its stages, and
what its trials can estimate (computed from the runs, as ``ablate analyze`` does)."""

from __future__ import annotations

import textwrap

import pandas as pd

from ablate.designs.aliases import structure
from ablate.designs.build import design_runs, factor_infos
from ablate.study.settings import Study


def describe_design(study: Study) -> list[str]:
    """Lines for the dry run: the design, its stages, its structure; nothing for ``full``."""
    if study.design.type == "full":
        return []
    built = design_runs(study)
    lines = [f"Design: {built.summary}."]
    if len(built.stages) > 1:
        stages = "; ".join(
            f"{s.label}: {len(s.runs)} {'new ' if i else ''}runs"
            for i, s in enumerate(built.stages)
        )
        lines.append(f"Stages (a rerun trains only runs not trained yet): {stages}.")
    names = list(study.factor_names)
    frame = pd.DataFrame(list(built.runs) * study.replicates, columns=names)
    found = structure(frame, factor_infos(study.factors))
    lines.append("As run (runs x replicates), computed from the runs:")
    for line in found.lines():
        indent = "  " + " " * (len(line) - len(line.lstrip()))
        lines.append(textwrap.fill(line, 100, initial_indent="  ", subsequent_indent=indent + "  "))
    return lines


def run_count(study: Study) -> int:
    """How many runs (cells) the study's design trains, before replicates."""
    if study.design.type == "full":
        return study.n_cells
    return len(design_runs(study).runs)
