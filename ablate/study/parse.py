"""Study files: YAML in, typed frozen dataclasses out, and every mistake named before training.

A study file describes one factorial experiment: the model, the factors and their levels,
training, data, replicates and where results go. ``load_study`` parses and validates it
against the declarations of :mod:`ablate.study.settings` (and the builders' and data
sources'); any problem raises :class:`StudyFileError` naming the file, the key (with its
line), what was expected and what was found. The ``model:`` and ``factors:`` sections are
read by :mod:`~ablate.study.parse_model`, ``design:`` by :mod:`~ablate.study.parse_design`.
"""

from __future__ import annotations

import dataclasses
import re
from pathlib import Path
from typing import Any

import yaml

from ablate.data.sources import SOURCES, Source, source
from ablate.errors import StudyFileError
from ablate.models.registry import ModelSpec
from ablate.parameters import declared
from ablate.study import library
from ablate.study.parse_design import DesignReader
from ablate.study.parse_model import ModelReader
from ablate.study.parse_trainer import TrainerReader
from ablate.study.reading import (
    IDENTIFIER,
    describe,
    hashable,
    is_identifier,
    is_level,
    parameter,
)
from ablate.study.settings import (
    MAX_TRIALS,
    AnalysisSettings,
    DataSettings,
    DesignSettings,
    Factor,
    RunSettings,
    Study,
    TrainingSettings,
)
from ablate.study.streams import KERAS_STREAMS, MAX_COUNT, Streams
from ablate.tasks import COMMON_GOALS, TASKS, Task
from ablate.tasks.declared import DeclaredTask

_NAME_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$")
#: The keys of a study file's top level: every field of a study but where it was read from.
TOP_KEYS = tuple(f.name for f in dataclasses.fields(Study) if f.name != "source")


def locate_study(path: str | Path) -> tuple[Path, str | None]:
    """The file a study argument means, and a note where a name could mean two: a file or
    folder of that name here, then ``NAME.yaml`` here, then the study ablate ships as
    ``NAME``. The note says which was taken (and that the other exists)."""
    p = Path(path)
    shipped = library.path_of(str(path))
    if p.exists() or shipped is None:
        return p, None
    local = p.with_name(p.name + ".yaml")
    if local.is_file():
        return local, (f"running {local}, not the study ablate ships as {path!r} (`ablate run "
                       f"{shipped}` runs that one)")  # fmt: skip
    return shipped, (f"running the study ablate ships as {path!r} ({shipped}); `ablate init "
                     f"{path}` writes a copy to edit")  # fmt: skip


def load_study(path: str | Path) -> Study:
    """Read and validate a study file; a folder means its saved ``study.yaml``, and a name
    means ``NAME.yaml`` here, else the study ablate ships as ``NAME`` (:func:`locate_study`)."""
    p, _ = locate_study(path)
    if p.is_dir():
        if not (p / "study.yaml").is_file():
            raise StudyFileError(
                f"{p}: this folder has no study.yaml, so it is neither a results folder of "
                "ablate nor a study. Pass a study file (like studies/quick.yaml) or a results "
                "folder written by `ablate run` (like results/quick)."
            )
        p = p / "study.yaml"
    try:
        text = p.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise StudyFileError(
            f"{p}: no such study file. Check the path, or name a study ablate ships "
            f"({', '.join(library.names())}; `ablate init NAME` writes a copy to edit)."
        ) from None
    except (OSError, UnicodeDecodeError) as err:
        raise StudyFileError(f"{p}: cannot read the study file ({err}).") from None
    return parse_study(text, source=str(p))


def parse_study(text: str, source: str = "<study>") -> Study:
    """Parse study-file text; relative data paths are taken from the file's folder."""
    try:
        root = yaml.compose(text, Loader=yaml.SafeLoader)
        data = yaml.safe_load(text)
    except yaml.YAMLError as err:
        mark = getattr(err, "problem_mark", None)
        where = f" at line {mark.line + 1}, column {mark.column + 1}" if mark else ""
        problem = getattr(err, "problem", None) or str(err).splitlines()[0]
        raise StudyFileError(
            f"{source}: this is not valid YAML{where}: {problem}. Fix the syntax "
            "(indentation, a missing colon or quote); studies/quick.yaml is a working example."
        ) from None
    return _StudyReader(source, root).study(data)


class _StudyReader(ModelReader, DesignReader, TrainerReader):
    """The whole study file, section by section."""

    def study(self, data: Any) -> Study:
        required = tuple(p.name for p in declared(Study) if p.required)
        top = self.section(data, (), TOP_KEYS, required)
        name = top["name"]
        if not isinstance(name, str) or not _NAME_RE.match(name):
            self.expect(("name",), "a name of 1 to 64 letters, digits, '.', '_' or '-' (it "
                        "names the results folder and the study in storage)", name)  # fmt: skip
        if "trainer" in top:
            return self._trainer_study(top, name)
        if "responses" in top:
            self.fail(("responses",), "declares what your own training function returns; "
                      "name that function under trainer:, or remove responses: (a built-in "
                      "or Keras model's responses are its task's)")  # fmt: skip
        spec, given = self.model_section(top.get("model"))
        task = self.task(top, spec)
        factors = self.factors(top["factors"], spec, given)
        top, streams = self.streams(top, factors, keras=True)
        scalars = self.values(Study, top, ())
        if not scalars["results"].strip():
            self.expect(("results",), "a folder path (text)", scalars["results"])
        design = self.design(top.get("design"), factors)
        self._check_size(factors, design, scalars["replicates"])
        return Study(
            name=name,
            factors=factors,
            task=task,
            model=self.model(spec, given, factors),
            training=self.training(top.get("training")),
            data=self.data(top.get("data"), task),
            run=self.run(top.get("run")),
            analysis=self.analysis(top.get("analysis"), factors, TASKS[task]),
            design=design,
            source=self.source,
            streams=streams,
            **{**scalars, "description": (scalars["description"] or "").strip()},
        )  # fmt: skip

    def _trainer_study(self, top: dict[str, Any], name: str) -> Study:
        """A study trained by the user's function (:mod:`~ablate.study.parse_trainer`)."""
        trainer = self.trainer(top)
        if top.get("task", "custom") != "custom":
            self.fail(("task",), "a study with trainer: has the task your responses: "
                      "declare (custom); remove task:")  # fmt: skip
        # The user's function or program takes any factor: nothing to check them against.
        target = trainer.function or ""
        spec = ModelSpec(name=target or "command", target=target, doc="your trainer",
                         parameters=None)  # fmt: skip
        factors = self.factors(top["factors"], spec, {})
        responses = self.responses(top.get("responses"), tuple(f.name for f in factors))
        top, streams = self.streams(top, factors, keras=False)
        scalars = self.values(Study, top, ())
        design = self.design(top.get("design"), factors)
        self._check_size(factors, design, scalars["replicates"])
        return Study(
            name=name, factors=factors, task="custom", trainer=trainer, responses=responses,
            run=self.run(top.get("run")),
            analysis=self.analysis(top.get("analysis"), factors, DeclaredTask(responses)),
            design=design, source=self.source, streams=streams,
            **{**scalars, "description": (scalars["description"] or "").strip()},
        )  # fmt: skip

    def streams(
        self, top: dict[str, Any], factors: tuple[Factor, ...], *, keras: bool
    ) -> tuple[dict[str, Any], Streams]:
        """``replicates:`` as seed streams, where it is a mapping (:mod:`~ablate.study.streams`);
        ``top`` with the plain count the rest of the study reads."""
        data, path = top.get("replicates"), ("replicates",)
        if not isinstance(data, dict):
            return top, Streams()
        if not data:
            self.expect(path, "a count, or seed streams and their counts", data)
        counts = []
        for name, count in data.items():
            self._stream_name(name, factors, keras)
            if isinstance(count, bool) or not isinstance(count, int) or not 1 <= count <= MAX_COUNT:
                self.expect((*path, str(name)), f"a number of seeds from 1 to {MAX_COUNT}", count)
            counts.append((name, count))
        streams = Streams(tuple(counts))
        return {**top, "replicates": streams.total}, streams

    def _stream_name(self, name: Any, factors: tuple[Factor, ...], keras: bool) -> None:
        path = ("replicates", str(name))
        if not isinstance(name, str) or not is_identifier(name):
            self.expect(path, f"a stream name that is {IDENTIFIER}", name)
        if name in {f.name for f in factors}:
            self.fail(path, f"'{name}' is a factor; give the stream another name")
        if keras and name not in KERAS_STREAMS:
            known = "; ".join(f"{n} ({what})" for n, what in KERAS_STREAMS.items())
            self.fail(path, f"ablate's Keras loop seeds these sources apart: {known}; name "
                      "streams among them (a training function or program names its "
                      "own)")  # fmt: skip

    def _check_size(
        self, factors: tuple[Factor, ...], design: DesignSettings, replicates: int
    ) -> None:
        n_cells = 1
        for f in factors:
            n_cells *= len(f.levels)
        n_trials = replicates * _runs_at_most(design, n_cells)
        if n_trials > MAX_TRIALS:
            self.fail(
                ("factors",),
                f"the {'grid' if design.type == 'full' else 'design'} has {n_trials:,} trials "
                f"(runs times replicates), more than the {MAX_TRIALS:,} ablate runs in one "
                "study; split it into several studies, or use a design with fewer runs",
            )

    def task(self, top: dict[str, Any], spec: ModelSpec) -> str:
        """The study's task: as written, else the builder's own."""
        task = top.get("task", spec.default_task)
        if not isinstance(task, str) or task not in TASKS:
            self.expect(("task",), "one of " + ", ".join(TASKS), task)
        if spec.tasks and task not in spec.tasks:
            self.fail(
                ("task",),
                f"the {spec.name} model serves {', '.join(spec.tasks)}, not {task}; choose "
                "another model (model.builder) or remove task:",
            )
        return task

    def training(self, data: Any) -> TrainingSettings:
        path = ("training",)
        d = self.declared_section(TrainingSettings, data, path)
        settings = TrainingSettings(**self.values(TrainingSettings, d, path))
        if settings.decay == "reference" and settings.min_learning_rate > settings.learning_rate:
            self.fail(
                (*path, "min_learning_rate"),
                f"is larger than learning_rate ({settings.learning_rate:g}), which would make "
                "the reference decay negative; lower it or give decay as a number",
            )
        return settings

    def data(self, data: Any, task: str) -> DataSettings:
        path = ("data",)
        d = self.declared_section(DataSettings, data, path)
        dataset = d.get("dataset", parameter(DataSettings, "dataset").default)
        found = source(dataset) if isinstance(dataset, str) else None
        if found is None:
            self.expect(
                (*path, "dataset"),
                f"one of {', '.join(SOURCES)}, or your own function as 'package.module:function'",
                dataset,
            )
        if found.task is not None and found.task != task:
            made = f"is made for the {found.task} task, not {task}"
            self.fail((*path, "dataset"), f"dataset {dataset} {made}")
        values = self.values(DataSettings, d, path)
        values["path"] = self._data_path(values["path"], found, path)
        options = self.options(d.get("options"), (*path, "options"), found)
        return DataSettings(dataset=dataset, options=options, **values)

    def _data_path(self, given: str | None, found: Source, path: tuple[str, ...]) -> str | None:
        """The data path, relative to the study file's folder; refused where the source reads
        none, required where it reads a file."""
        if given is None:
            if found.path == "required":
                what = f"dataset {found.name} reads a file: set data.path to it"
                self.fail((*path, "path"), what)
            return None
        if not given.strip():
            self.expect((*path, "path"), "a file or folder path (text)", given)
        if found.path == "none":
            reads = [s.name for s in SOURCES.values() if s.path != "none"]
            self.fail((*path, "path"), f"dataset {found.name} does not read a path (only "
                      f"{', '.join(reads)} do); remove it")  # fmt: skip
        p = Path(given).expanduser()
        if not p.is_absolute() and self.source not in ("<study>",):
            p = Path(self.source).parent / p
        return str(p)

    def options(
        self, data: Any, path: tuple[str, ...], found: Source
    ) -> tuple[tuple[str, Any], ...]:
        """A source's options: checked against its declaration (a user's function: any)."""
        if data is None:
            data = {}
        if not isinstance(data, dict):
            self.expect(path, "a mapping of option names to values", data)
        if found.options is None:
            if not all(isinstance(k, str) and is_identifier(k) for k in data):
                self.expect(path, f"keyword arguments (names, each {IDENTIFIER})", data)
            return tuple((k, hashable(v)) for k, v in data.items())
        names = tuple(p.name for p in found.options)
        if data and not names:
            self.fail(path, f"dataset {found.name} takes no options; remove them")
        self.section(data, path, names, required=())
        return tuple((p.name, self.value(data, path, p)) for p in found.options)

    def run(self, data: Any) -> RunSettings:
        d = self.declared_section(RunSettings, data, ("run",))
        return RunSettings(**self.values(RunSettings, d, ("run",)))

    def analysis(self, data: Any, factors: tuple[Factor, ...], spec: Task) -> AnalysisSettings:
        path = ("analysis",)
        d = self.declared_section(AnalysisSettings, data, path)
        response = d.get("response", spec.default_response)
        if not isinstance(response, str) or not (
            spec.is_response(response) or response in COMMON_GOALS
        ):
            self.expect(
                (*path, "response"),
                f"a response of the {spec.name} task: {', '.join(spec.result_columns)} (or "
                f"{', '.join(COMMON_GOALS)})",
                response,
            )
        return AnalysisSettings(response=response, baseline=self._baseline(d, path, factors),
                                **self.values(AnalysisSettings, d, path))  # fmt: skip

    def _baseline(
        self, d: dict[str, Any], path: tuple[str, ...], factors: tuple[Factor, ...]
    ) -> tuple[tuple[str, Any], ...]:
        baseline = d.get("baseline") or {}
        if not isinstance(baseline, dict):
            self.expect((*path, "baseline"), "a mapping of factor names to levels", baseline)
        by_name = {f.name: f for f in factors}
        pairs = []
        for name, level in baseline.items():
            if name not in by_name:
                self.expect((*path, "baseline", str(name)),
                            "one of the factors " + ", ".join(by_name), name)  # fmt: skip
            if not is_level(level, by_name[name]):
                levels = ", ".join(describe(v) for v in by_name[name].levels)
                self.expect((*path, "baseline", name), f"one of its levels ({levels})", level)
            pairs.append((name, level))
        return tuple(pairs)


def _runs_at_most(design: DesignSettings, n_cells: int) -> int:
    """How many runs the design has at most (all cells, unless its settings say fewer)."""
    if design.type == "full" or design.runs is None:
        return n_cells
    return min(n_cells, design.runs * (1 + len(design.fold)) + sum(design.augment))
