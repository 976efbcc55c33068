"""A study as typed, frozen dataclasses: the grid, the model, training, data, runs, analysis.

Each key of a study file is declared here once, as a field (:func:`ablate.parameters.setting`:
its default, its values, one line of meaning); :mod:`ablate.study.parse` reads and validates
study files from these declarations, and the reference of the study file is generated from
them (:func:`ablate.study.schema.reference`). ``Study.to_dict`` gives the resolved study
(every default filled in), which ablate saves beside the results, and ``Study.fingerprint``
names the experiment its trials belong to.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Literal

import yaml

from ablate.models.registry import ModelSpec, builder_spec
from ablate.parameters import REQUIRED, Level, setting
from ablate.study.run_settings import (
    AnalysisSettings,
    DesignSettings,
    RunSettings,
)
from ablate.study.streams import Streams
from ablate.tasks import TASKS, Task
from ablate.tasks.declared import DeclaredTask, Response

FactorKind = Literal["bool", "number", "string"]

OPTIMIZERS = ("adam", "adamw", "rmsprop", "sgd")
MAX_TRIALS = 100_000


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

    builder: str = setting(
        "vae", "the model builder: a built-in model's name, or your own function",
        kind="custom", values="a built-in model, or 'package.module:function'",
    )  # fmt: skip
    parameters: tuple[tuple[str, Any], ...] = ()  # the builder's declared parameters (options)

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
class TrainerSettings:
    """What trains each trial instead of ablate's Keras loop: your function, or your program.

    A function (``function``) is called once per trial with the trial's factor levels and
    ``options`` as keyword arguments, and with ``seed`` and ``report`` where its signature
    names them; it returns the declared ``responses`` as a mapping (see
    :mod:`ablate.training.user`). A program (``command``) is run once per trial in a folder of
    its own, its template's fields filled in, and writes the responses to the ``{result}``
    file as JSON (see :mod:`ablate.training.command`).
    """

    function: str | None = setting(
        None, "your training function (give it or command)", kind="custom",
        values="'package.module:function'", none=True,
    )  # fmt: skip
    command: str | None = setting(
        None, "your program's command line (give it or function), run once per trial in a "
        "folder of its own, with {factor}, {option}, {seed}, {result} and {epochs_file} filled "
        "in; {name:flag=--x} gives --x for a true level and nothing for a false one",
        kind="text", none=True,
    )  # fmt: skip
    shell: bool = setting(
        False, "run the command with /bin/sh -c, levels quoted for the shell (default: as an "
        "argument list, without a shell)",
    )  # fmt: skip
    options: tuple[tuple[str, Any], ...] = setting(
        (), "keyword arguments every trial's call gets, or values the command's template names "
        "(the fixed settings); an integer `epochs` among them is the epochs progress displays "
        "count to", kind="custom", values="a mapping of option names to values",
    )  # fmt: skip

    @property
    def epochs(self) -> int | None:
        """The epochs a trial reports, where ``options`` says (progress displays)."""
        value = dict(self.options).get("epochs")
        return value if isinstance(value, int) and not isinstance(value, bool) else None

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {"function": self.function} if self.function else {}
        if self.command is not None:
            out.update(command=self.command, shell=self.shell)
        out["options"] = {k: _plain(v) for k, v in self.options}
        return out


@dataclass(frozen=True)
class TrainingSettings:
    """How each trial trains: the reference's Adam with inverse-time decay by default."""

    epochs: int = setting(25, "epochs each trial trains", minimum=1, maximum=100_000)
    batch_size: int = setting(64, "training examples per step", minimum=1, maximum=1 << 20)
    optimizer: str = setting("adam", "the optimizer", kind="choice", choices=OPTIMIZERS)
    learning_rate: float = setting(0.005, "the initial learning rate", above=0, maximum=10)
    decay: float | Literal["reference"] = setting(
        "reference", "inverse-time decay per step, lr / (1 + decay·step); \"reference\": "
        "2·(learning_rate − min_learning_rate)/epochs, the reference study's", kind="float",
        minimum=0, maximum=1000, also=("reference",),
    )  # fmt: skip
    min_learning_rate: float = setting(
        0.0001, "the learning rate the reference decay reaches at the last step", minimum=0,
        maximum=10,
    )  # fmt: skip
    eval_batch_size: int = setting(
        256, "test examples per evaluation step (1,024 doubled a worker's peak memory)",
        minimum=1, maximum=1 << 20,
    )  # fmt: skip
    validate_each_epoch: bool = setting(True, "evaluate on the test set after every epoch")
    save_outputs: bool = setting(
        True, "keep what each trained model learned (latent codes, reconstructions, attention)"
    )
    # How the training step runs, not what it computes (no part of the experiment):
    jit_compile: bool | Literal["auto"] = setting(
        "auto", "compile the training step with XLA; \"auto\": on a GPU under JAX or "
        "TensorFlow", kind="bool", also=("auto",),
    )  # fmt: skip
    steps_per_execution: int = setting(
        1, "training steps per call into the backend (the same computation, fewer calls)",
        minimum=1, maximum=1 << 16,
    )  # fmt: skip

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

    dataset: str = setting(
        "mnist", "where the data comes from: a built-in source, or your own function",
        kind="custom", values="a built-in source, or 'package.module:function'",
    )  # fmt: skip
    path: str | None = setting(
        None, "a file or folder to read the data from (relative to the study file)",
        kind="text", none=True,
    )  # fmt: skip
    options: tuple[tuple[str, Any], ...] = setting(
        (), "keyword arguments for the source (declared per source; any for your function)",
        kind="custom", values="a mapping of option names to values",
    )  # fmt: skip
    train_size: int | None = setting(
        None, "use the first N training examples (null: all)", minimum=1, maximum=10**9,
        kind="int", none=True,
    )  # fmt: skip
    test_size: int | None = setting(
        None, "use the first N test examples (null: all)", minimum=1, maximum=10**9,
        kind="int", none=True,
    )  # fmt: skip

    def to_dict(self) -> dict[str, Any]:
        out = asdict(self)
        out["options"] = {k: _plain(v) for k, v in self.options}
        return out


@dataclass(frozen=True)
class Study:
    """A validated study: the grid, how to train each cell, and where results go."""

    name: str = setting(
        REQUIRED, "names the results folder and the study in storage", kind="custom",
        values="1 to 64 letters, digits, '.', '_' or '-'",
    )  # fmt: skip
    factors: tuple[Factor, ...] = setting(
        REQUIRED, "the factors and their levels: the grid", kind="custom",
        values="a mapping of factor names to lists of levels",
    )  # fmt: skip
    description: str = setting("", "what the study is for, in words")
    task: str = setting(
        "reconstruction", "what the model learns (default: the builder's own task)",
        kind="custom", values="reconstruction, classification or regression",
    )  # fmt: skip
    model: ModelSettings = field(default_factory=ModelSettings)
    #: Your own training function instead of ``model:`` (then ``responses:`` says what it
    #: returns, and ``model:``, ``training:`` and ``data:`` do not apply).
    trainer: TrainerSettings | None = None
    responses: tuple[Response, ...] = ()
    training: TrainingSettings = field(default_factory=TrainingSettings)
    data: DataSettings = field(default_factory=DataSettings)
    replicates: int = setting(
        1, "trials per cell, replicate r with seed seed + r; or seed streams crossed, e.g. "
        "{init: 3, data_order: 2} (6 trials per cell, each source of randomness seeded "
        "separately)", minimum=1, maximum=10_000,
    )  # fmt: skip
    #: The seed streams ``replicates`` crosses, where it names them (:mod:`~ablate.study.streams`).
    streams: Streams = field(default_factory=Streams)
    seed: int = setting(
        768, "the seed of replicate 0 (the reference's)", minimum=0, maximum=2**32 - 1 - 10_000
    )
    results: str = setting("results", "the folder under which the study's folder is made")
    run: RunSettings = field(default_factory=RunSettings)
    analysis: AnalysisSettings = field(default_factory=AnalysisSettings)
    design: DesignSettings = field(default_factory=DesignSettings)
    source: str | None = field(default=None, compare=False)

    @property
    def task_spec(self) -> Task:
        if self.trainer is not None:
            return DeclaredTask(self.responses)
        return TASKS[self.task]

    @property
    def planned_epochs(self) -> int | None:
        """The epochs each trial trains (None: a training function that does not say)."""
        return self.trainer.epochs if self.trainer is not None else self.training.epochs

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
        if self.trainer is not None:
            out["trainer"] = self.trainer.to_dict()
            out["responses"] = {r.name: r.to_dict() for r in self.responses}
        else:
            out["model"] = self.model.to_dict()
        out["factors"] = {f.name: list(f.levels) for f in self.factors}
        out["design"] = self.design.to_dict()
        if self.trainer is None:
            out["training"] = asdict(self.training)
            out["data"] = self.data.to_dict()
        out["replicates"] = dict(self.streams.counts) if self.streams.counts else self.replicates
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
            "margin": self.analysis.margin,
            "block": self.analysis.block,
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
        # Which sources are seeded apart defines the trials; how many seeds each has does not.
        streams = {"streams": list(self.streams.names)} if self.streams.counts else {}
        if self.trainer is not None:  # the function and its options define the outcomes
            return {"task": d["task"], "trainer": d["trainer"], "responses": d["responses"],
                    "factors": d["factors"], "seed": d["seed"], **streams}  # fmt: skip
        data = {k: v for k, v in d["data"].items() if k != "path"}
        training = {k: v for k, v in d["training"].items() if k not in EXECUTION_SETTINGS}
        return {
            "task": d["task"],
            "model": d["model"],
            "factors": d["factors"],
            "training": training,
            "data": data,
            "seed": d["seed"],
            **streams,
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
