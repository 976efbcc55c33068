"""A study as typed, frozen dataclasses: the grid, the model, training, data, runs, analysis.

:mod:`ablate.study.parse` builds these from a study file and validates every value;
``Study.to_dict`` gives the resolved study (every default filled in), which ablate saves
beside the results, and ``Study.fingerprint`` names the experiment its trials belong to.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Literal

import yaml

from ablate.models.registry import ModelSpec, builder_spec
from ablate.tasks import TASKS, Task

Level = bool | int | float | str
FactorKind = Literal["bool", "number", "string"]

OPTIMIZERS = ("adam", "adamw", "rmsprop", "sgd")
MAX_TRIALS = 100_000
DESIGN_TYPES = ("full", "fractional", "plackett-burman", "optimal", "definitive-screening")
DESIGN_MODELS = ("main", "main+2fi")  # main effects; main effects and two-factor interactions


@dataclass(frozen=True)
class Factor:
    """One factor of the grid and its levels, in the order the study file lists them."""

    name: str
    levels: tuple[Level, ...]

    @property
    def kind(self) -> FactorKind:
        first = self.levels[0]
        if isinstance(first, bool):
            return "bool"
        return "string" if isinstance(first, str) else "number"

    def ordered_levels(self) -> tuple[Level, ...]:
        """Levels in analysis order: false < true, numbers ascending, strings as listed."""
        if self.kind == "string":
            return self.levels
        return tuple(sorted(self.levels))


@dataclass(frozen=True)
class ModelSettings:
    """The model's builder and its fixed settings; factors add their levels cell by cell.

    For a built-in builder ``parameters`` holds every declared parameter that is not a
    factor, defaults filled in; for a user's builder, the study's ``model.options``.
    """

    builder: str = "vae"
    parameters: tuple[tuple[str, Any], ...] = ()

    @property
    def spec(self) -> ModelSpec:
        spec = builder_spec(self.builder)
        assert spec is not None, self.builder  # validated when the study was parsed
        return spec

    def builder_kwargs(self) -> dict[str, Any]:
        """Keyword arguments for the builder, before a cell's levels are merged in."""
        return dict(self.parameters)

    def replace(self, **values: Any) -> ModelSettings:
        """The same settings with some values changed (scripts and benchmarks)."""
        return ModelSettings(self.builder, tuple({**dict(self.parameters), **values}.items()))

    def to_dict(self) -> dict[str, Any]:
        values = {k: list(v) if isinstance(v, tuple) else v for k, v in self.parameters}
        if self.spec.parameters is None:
            return {"builder": self.builder, "options": values}
        return {"builder": self.builder, **values}


@dataclass(frozen=True)
class TrainingSettings:
    """How each trial trains: the reference's Adam with inverse-time decay by default."""

    epochs: int = 25
    batch_size: int = 64
    optimizer: str = "adam"
    learning_rate: float = 0.005
    decay: float | Literal["reference"] = "reference"
    min_learning_rate: float = 0.0001
    eval_batch_size: int = 256  # 1024 doubled a worker's peak memory (3.3 GB, reference model)
    validate_each_epoch: bool = True
    save_outputs: bool = True  # keep each trained model's latent codes and reconstructions
    # How the training step runs, not what it computes (no part of the experiment):
    jit_compile: bool | Literal["auto"] = "auto"  # XLA; "auto": on a GPU under JAX/TensorFlow
    steps_per_execution: int = 1  # training steps per call into the backend

    def decay_rate(self) -> float:
        """Per-step inverse-time decay d in lr_t = lr / (1 + d·t).

        "reference" is the reference study's d = 2·(lr − min_lr)/epochs (its Keras 2 ``decay``).
        """
        if self.decay == "reference":
            return 2.0 * (self.learning_rate - self.min_learning_rate) / self.epochs
        return float(self.decay)


# Training settings that change how fast a trial runs, never its outcome
EXECUTION_SETTINGS = ("save_outputs", "jit_compile", "steps_per_execution")


@dataclass(frozen=True)
class DataSettings:
    """Which dataset, where from, its source's options, and how much of it (None: all)."""

    dataset: str = "mnist"
    path: str | None = None
    options: tuple[tuple[str, Any], ...] = ()  # keyword arguments for the source
    train_size: int | None = None
    test_size: int | None = None

    def to_dict(self) -> dict[str, Any]:
        out = asdict(self)
        out["options"] = {k: _plain(v) for k, v in self.options}
        return out


@dataclass(frozen=True)
class RunSettings:
    """How trials are spread over worker processes and how failures are retried."""

    workers: int | None = None  # None: chosen for the machine
    workers_per_gpu: int = 2
    threads_per_worker: int | None = None  # None: the cores divided among the workers
    retries: int = 1  # extra attempts for a trial that raises or diverges
    lost_retries: int = 5  # extra attempts for a trial whose worker died under it
    heartbeat_seconds: float = 10.0


@dataclass(frozen=True)
class AnalysisSettings:
    """Defaults for ``ablate analyze``: the response and the baseline level per factor."""

    response: str = "test_loss"  # the task's default response unless the study names one
    baseline: tuple[tuple[str, Level], ...] = ()


@dataclass(frozen=True)
class DesignSettings:
    """Which runs of the grid a study trains: every cell (``full``) or a designed subset.

    The construction is :mod:`ablate.designs`; here only what the study file says. ``fold``
    and ``augment`` extend a design after it has run (fold-overs of the base fraction, batches
    of runs added to an optimal design); ``table`` records the runs ablate built (the resolved
    study lists them, and a run checks that it builds the same ones again).
    """

    type: str = "full"
    resolution: int | None = None  # fractional: the lowest resolution acceptable (3 = III)
    runs: int | None = None  # fractional, plackett-burman, optimal: the number of base runs
    generators: tuple[str, ...] = ()  # fractional: "E = ABC", letters in factor order
    model: str = "main"  # optimal: what the runs must estimate (see DESIGN_MODELS)
    fold: tuple[str, ...] = ()  # fold-overs of the base runs: "all" or one factor's name
    augment: tuple[int, ...] = ()  # optimal: batches of runs added, each D-optimal given all before
    table: tuple[tuple[Level, ...], ...] = ()  # the runs, levels in factor order

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


@dataclass(frozen=True)
class Study:
    """A validated study: the grid, how to train each cell, and where results go."""

    name: str
    factors: tuple[Factor, ...]
    description: str = ""
    task: str = "reconstruction"
    model: ModelSettings = field(default_factory=ModelSettings)
    training: TrainingSettings = field(default_factory=TrainingSettings)
    data: DataSettings = field(default_factory=DataSettings)
    replicates: int = 1
    seed: int = 768
    results: str = "results"
    run: RunSettings = field(default_factory=RunSettings)
    analysis: AnalysisSettings = field(default_factory=AnalysisSettings)
    design: DesignSettings = field(default_factory=DesignSettings)
    source: str | None = field(default=None, compare=False)

    @property
    def task_spec(self) -> Task:
        return TASKS[self.task]

    @property
    def results_dir(self) -> Path:
        return Path(self.results) / self.name

    @property
    def factor_names(self) -> tuple[str, ...]:
        return tuple(f.name for f in self.factors)

    def factor(self, name: str) -> Factor:
        return next(f for f in self.factors if f.name == name)

    @property
    def n_cells(self) -> int:
        n = 1
        for f in self.factors:
            n *= len(f.levels)
        return n

    def to_dict(self) -> dict[str, Any]:
        """The resolved study as plain data, in study-file layout (a valid study file)."""
        out: dict[str, Any] = {"name": self.name}
        if self.description:
            out["description"] = self.description
        out["task"] = self.task
        out["model"] = self.model.to_dict()
        out["factors"] = {f.name: list(f.levels) for f in self.factors}
        out["design"] = self.design.to_dict()
        out["training"] = asdict(self.training)
        out["data"] = self.data.to_dict()
        out["replicates"] = self.replicates
        out["seed"] = self.seed
        out["results"] = self.results
        run = asdict(self.run)
        run["workers"] = "auto" if self.run.workers is None else self.run.workers
        run["threads_per_worker"] = (
            "auto" if self.run.threads_per_worker is None else self.run.threads_per_worker
        )
        out["run"] = run
        out["analysis"] = {
            "response": self.analysis.response,
            "baseline": dict(self.analysis.baseline),
        }
        return out

    def to_yaml(self) -> str:
        header = (
            "# Resolved study: the study file as ablate ran it, every default filled in.\n"
            "# It is itself a valid study file.\n"
        )
        dumped = yaml.safe_dump(
            self.to_dict(), sort_keys=False, allow_unicode=True, default_flow_style=None
        )
        return header + dumped

    def experiment(self) -> dict[str, Any]:
        """What defines the trials' outcomes; results from a different experiment don't mix.

        Replicates may grow (new seeds join the study) and the data path may move, so
        neither is part of it; run, analysis and what is kept besides the losses
        (``save_outputs``) are not either, nor how the training step is executed (XLA, steps per
        call: ``EXECUTION_SETTINGS``). Nor is the design: a trial's outcome depends on its
        levels and seed alone, so a design may be extended (fold-overs, more runs) or changed
        and every trial already run still counts.
        """
        d = self.to_dict()
        data = {k: v for k, v in d["data"].items() if k != "path"}
        training = {k: v for k, v in d["training"].items() if k not in EXECUTION_SETTINGS}
        return {
            "task": d["task"],
            "model": d["model"],
            "factors": d["factors"],
            "training": training,
            "data": data,
            "seed": d["seed"],
        }

    def experiment_defaults(self) -> dict[str, Any]:
        """The values an experiment recorded before a setting existed stood for: a stored
        experiment that lacks a key ran with its default (see ``TrialQueue.open``)."""
        model = {
            k: list(v) if isinstance(v, tuple) else v for k, v in self.model.spec.defaults().items()
        }
        return {
            "task": self.model.spec.default_task,
            "model": model,
            "data": {"options": {}},
        }

    def fingerprint(self) -> str:
        blob = json.dumps(self.experiment(), sort_keys=True, default=str)
        return hashlib.sha256(blob.encode()).hexdigest()[:16]


def _plain(value: Any) -> Any:
    """Tuples back to lists, for YAML and JSON."""
    return [_plain(v) for v in value] if isinstance(value, tuple) else value
