"""A study's runs: the cells its design trains (:mod:`ablate.designs` builds them), checked
against the runs a resolved study records, and listed in the study saved with its results."""

from __future__ import annotations

from dataclasses import replace

from ablate.designs.build import DesignRuns, build_runs
from ablate.errors import AblateError
from ablate.study.settings import Study


def design_runs(study: Study) -> DesignRuns:
    """The runs of the study's design; refuses (naming the study file) what cannot be built.

    A study whose ``design.table`` records runs (a resolved study) must build the same runs
    again: a different pydoe could choose others, and then the saved results and the design
    would no longer match.
    """
    settings = study.design
    try:
        built = build_runs(study.factors, settings, study.seed)
    except AblateError as err:
        raise AblateError(f"{study.source or study.name}: design: {err.raw}") from None
    if settings.table and tuple(settings.table) != built.runs:
        raise AblateError(
            f"{study.source or study.name}: design.table lists {len(settings.table)} runs that "
            f"differ from the {len(built.runs)} runs this ablate builds from the design's "
            "settings (another pydoe version may choose other runs, or the settings were "
            "edited). Remove design.table to use the runs built now, or run with the pydoe "
            "that built these."
        )
    return built


def with_table(study: Study) -> Study:
    """The study with its design's runs listed (for the resolved study saved with results)."""
    if study.design.type == "full":
        return study
    runs = design_runs(study).runs
    return replace(study, design=replace(study.design, table=runs))


def run_count(study: Study) -> int:
    """How many runs (cells) the study's design trains, before replicates."""
    if study.design.type == "full":
        return study.n_cells
    return len(design_runs(study).runs)
