"""``ablate run --dry-run``: every check a run makes before training, and what it would do.

The dry run makes the checks a run makes (:mod:`ablate.execution.preflight`: the user's
builder and dataset function resolved, the data loaded and checked, the first cell's model
built and run forward once) and, with ``--storage``, connects to the database; then it says
what a run would train, where, and on how many workers. It trains nothing and writes
nothing. Its exit code says whether the study can run: 0 only when every check passed.
"""

from __future__ import annotations

import textwrap
from dataclasses import dataclass

import pandas as pd

from ablate.designs.aliases import structure
from ablate.designs.build import infos_of
from ablate.errors import AblateError
from ablate.execution.planning import describe_slots, plan_workers
from ablate.execution.preflight import preflight
from ablate.storage.opening import check_storage_url
from ablate.study.runs import design_runs, run_count
from ablate.study.settings import Study
from ablate.tasks import goal_of
from ablate.training.trainers import trainer_for


@dataclass(frozen=True)
class DryRun:
    """What the dry run says, and the problem that stops the study from running, if any."""

    text: str
    problem: AblateError | None = None


def dry_run(
    study: Study,
    workers: int | None = None,
    workers_per_gpu: int | None = None,
    storage_url: str | None = None,
) -> DryRun:
    """The checks and the plan (see the module); never raises for the user's mistakes."""
    n_runs = run_count(study)
    n_trials = n_runs * study.replicates
    runs = (
        f"{study.n_cells} cells"
        if study.design.type == "full"
        else f"{n_runs} runs of the {study.n_cells}-cell grid"
    )
    crossed = f" ({study.streams.describe()} seed streams)" if study.streams.counts else ""
    head = (
        f"{study.source}: the study file is valid. {runs} x {study.replicates} replicate(s)"
        f"{crossed} = "
        f"{n_trials} trials"
        + (f" of {study.planned_epochs} epoch(s)." if study.planned_epochs else ".")
    )
    try:
        checked, trainer = preflight(study), trainer_for(study)
        if storage_url:
            check_storage_url(storage_url)
    except AblateError as err:
        return DryRun(f"{head}\nIt cannot run as it is:", err)
    slots = plan_workers(
        study, workers=workers, workers_per_gpu=workers_per_gpu, remaining=n_trials
    )
    response = study.analysis.response
    better = "higher" if goal_of(response, study.task_spec) == "max" else "lower"
    baseline = checked.baselines.get(response)
    lines = [
        head,
        *trainer.describe(checked),
        f"Response {response} ({better} is better)"
        + (
            f"; a model that learned nothing scores {baseline.value:.4g} ({baseline.what})."
            if baseline is not None
            else "."
        ),
        f"Results would go to {study.results_dir}; up to {len(slots)} worker(s) "
        f"({describe_slots(slots)}).",
        *describe_design(study),
        "Every check passed: `ablate run` would start training.",
    ]
    return DryRun("\n".join(_within(line) for line in lines))


def _within(line: str, width: int = 100) -> str:
    """A line of the dry run within ``width`` columns, continued two spaces further in."""
    lead = " " * (len(line) - len(line.lstrip()))
    return textwrap.fill(line, width, initial_indent="", subsequent_indent=lead + "  ",
                         break_on_hyphens=False, break_long_words=False)  # fmt: skip


def describe_design(study: Study) -> list[str]:
    """Lines for the dry run: the design, its stages, what its trials can estimate (computed
    from the runs, as ``ablate analyze`` does); nothing for ``full``."""
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
    frame = pd.DataFrame(list(built.runs) * study.replicates, columns=list(study.factor_names))
    found = structure(frame, infos_of(study.factors))
    lines.append("As run (runs x replicates), computed from the runs:")
    for line in found.lines():
        indent = "  " + " " * (len(line) - len(line.lstrip()))
        lines.append(textwrap.fill(line, 100, initial_indent="  ", subsequent_indent=indent + "  "))
    return lines
