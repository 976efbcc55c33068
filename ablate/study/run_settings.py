"""How a study runs, is analysed and chooses its runs: the ``run:``, ``analysis:`` and
``design:`` sections, declared as :mod:`ablate.study.settings` declares the rest (each key
once, with its default, its values and its meaning); :class:`~ablate.study.settings.Study`
holds one of each.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from ablate.parameters import Level, setting

DESIGN_TYPES = ("full", "fractional", "plackett-burman", "optimal", "definitive-screening")
DESIGN_MODELS = ("main", "main+2fi")  # main effects; main effects and two-factor interactions


@dataclass(frozen=True)
class RunSettings:
    """How trials are spread over worker processes and how failures are retried."""

    workers: int | None = setting(
        None, "worker processes on this machine (\"auto\": one per GPU slot, else per core)",
        kind="int", minimum=1, maximum=1024, also=("auto",), none=True,
    )  # fmt: skip
    workers_per_gpu: int = setting(2, "trials that share one GPU", minimum=1, maximum=64)
    threads_per_worker: int | None = setting(
        None, "compute threads per worker (\"auto\": the cores divided among the workers)",
        kind="int", minimum=1, maximum=1024, also=("auto",), none=True,
    )  # fmt: skip
    retries: int = setting(
        1, "extra attempts for a trial that diverges or fails in a way trying again may cure",
        minimum=0, maximum=100,
    )  # fmt: skip
    lost_retries: int = setting(
        5, "extra attempts for a trial whose worker process died", minimum=0, maximum=100
    )
    heartbeat_seconds: float = setting(
        10.0, "seconds between a running trial's signs of life (5 missed: its worker is lost, "
        "ended and replaced, and the trial tried again per lost_retries)",
        minimum=0.05, maximum=3600,
    )  # fmt: skip
    stall_timeout: float | None = setting(
        1800.0, "seconds a trial may go without a sign of progress (a batch or an epoch of the "
        "Keras loop, a report() of a training function, a line or epoch of a command) before it "
        "is ended as stalled and tried again per retries; null: no limit. A function that never "
        "calls report() shows no progress until it returns", kind="float", minimum=1,
        maximum=10**7, none=True,
    )  # fmt: skip
    trial_timeout: float | None = setting(
        None, "seconds a trial may run in all before it is ended as timed out and tried again "
        "per retries; null: no limit", kind="float", minimum=1, maximum=10**8, none=True,
    )  # fmt: skip
    until_halfwidth: float | None = setting(
        None, "add rounds of replicates until every effect's confidence interval is within "
        "±this (response units; ablate run --until-halfwidth)", kind="float", above=0, none=True,
    )  # fmt: skip
    max_replicates: int = setting(
        10, "the most replicates per run that until_halfwidth may reach", minimum=1, maximum=1000
    )
    fuse: int | str = setting(
        "auto", "trials a worker trains at once as one compiled program (JAX): a group size, "
        "\"off\", or \"auto\" (on a GPU under JAX, up to 32; off on CPUs, where it is slower)",
        kind="int", minimum=1, maximum=1024, also=("auto", "off"),
    )  # fmt: skip
    tensorboard: bool = setting(
        False, "write each trial's epochs as TensorBoard event files, a run per trial under "
        "results/<study>/tensorboard/ (`tensorboard --logdir` there); needs tensorboardX "
        "(pip install 'ablate[tensorboard]')",
    )  # fmt: skip


@dataclass(frozen=True)
class AnalysisSettings:
    """Defaults for ``ablate analyze``: the response and the baseline level per factor."""

    response: str = setting(
        "test_loss", "the result column analysed (default: the task's)", kind="custom",
        values="a response of the study's task",
    )  # fmt: skip
    baseline: tuple[tuple[str, Level], ...] = setting(
        (), "the reference level of a factor (default: its first)", kind="custom",
        values="a mapping of factor names to levels",
    )  # fmt: skip
    margin: float | None = setting(
        None, "the equivalence margin, in the response's units: each effect is tested for "
        "being smaller than ±margin (two one-sided tests)", kind="float", above=0, none=True,
    )  # fmt: skip
    block: str | None = setting(
        None, "a result column fitted as a block beside the factors: replicate (seeds as "
        "blocks)", kind="text", none=True, values="a column name, e.g. replicate",
    )  # fmt: skip


@dataclass(frozen=True)
class DesignSettings:
    """Which runs of the grid a study trains: every cell (``full``) or a designed subset.

    The construction is :mod:`ablate.designs`; here only what the study file says. ``fold``
    and ``augment`` extend a design after it has run (fold-overs of the base fraction, batches
    of runs added to an optimal design); ``table`` records the runs ablate built (the resolved
    study lists them, and a run checks that it builds the same ones again).
    """

    type: str = setting("full", "which runs of the grid to train", kind="choice",
                        choices=DESIGN_TYPES)  # fmt: skip
    resolution: int | None = setting(
        None, "fractional: the lowest resolution acceptable (the fewest runs that reach it)",
        kind="custom", values="III, IV, V (or 3 to 8)", none=True,
    )  # fmt: skip
    runs: int | None = setting(
        None, "fractional, plackett-burman, optimal: the number of base runs", kind="custom",
        values="a number of runs the design can build", none=True,
    )  # fmt: skip
    generators: tuple[str, ...] = setting(
        (), "fractional: generators like 'E = ABC', letters in factor order", kind="custom",
        values="a list of generators",
    )  # fmt: skip
    model: str = setting(
        "main", "optimal: what the runs must estimate (main effects, or also 2-factor "
        "interactions)", kind="choice", choices=DESIGN_MODELS,
    )  # fmt: skip
    fold: tuple[str, ...] = setting(
        (), "fold-overs of the base runs, in order: 'all', or a factor's name", kind="custom",
        values="a list of fold-overs",
    )  # fmt: skip
    augment: tuple[int, ...] = setting(
        (), "optimal: batches of runs added, each D-optimal given all before", kind="custom",
        values="a number of runs, or a list of them",
    )  # fmt: skip
    table: tuple[tuple[Level, ...], ...] = setting(
        (), "the runs ablate built (the resolved study lists them; a run checks it builds "
        "the same again)", kind="custom", values="a list of runs, each a list of levels",
    )  # fmt: skip

    def to_dict(self) -> dict[str, Any]:
        """The keys a study file gives for this type (the others do not apply to it)."""
        out: dict[str, Any] = {"type": self.type}
        if self.resolution is not None:
            out["resolution"] = self.resolution
        if self.runs is not None:
            out["runs"] = self.runs
        if self.generators:
            out["generators"] = list(self.generators)
        if self.type == "optimal":
            out["model"] = self.model
        if self.fold:
            out["fold"] = list(self.fold)
        if self.augment:
            out["augment"] = list(self.augment)
        if self.table:
            out["table"] = [list(row) for row in self.table]
        return out
