"""Study files: YAML in, typed frozen dataclasses out, and every mistake named before training.

A study file describes one factorial experiment: the model, the factors and their levels,
training, data, replicates and where results go. ``load_study`` parses and validates it;
any problem raises :class:`StudyFileError` naming the file, the key (with its line), what
was expected and what was found.
"""

from __future__ import annotations

import difflib
import re
from collections.abc import Mapping
from pathlib import Path
from typing import Any, NoReturn

import yaml

from ablate.data.sources import SOURCES, Source, source
from ablate.errors import StudyFileError
from ablate.models.registry import BUILDERS, ModelSpec, builder_spec
from ablate.parameters import Parameter, is_int, is_number
from ablate.study.settings import (
    DESIGN_MODELS,
    DESIGN_TYPES,
    MAX_TRIALS,
    OPTIMIZERS,
    AnalysisSettings,
    DataSettings,
    DesignSettings,
    Factor,
    ModelSettings,
    RunSettings,
    Study,
    TrainingSettings,
)
from ablate.tasks import COMMON_GOALS, TASKS

_NAME_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$")
_ROMAN = {"III": 3, "IV": 4, "V": 5, "VI": 6, "VII": 7, "VIII": 8}
#: The keys of ``design:`` that apply to each type (``type`` and ``table`` to every one).
_DESIGN_KEYS = {
    "full": (),
    "fractional": ("resolution", "runs", "generators", "fold"),
    "plackett-burman": ("runs", "fold"),
    "optimal": ("runs", "model", "augment"),
    "definitive-screening": (),
}
_IDENTIFIER_RE = re.compile(r"^[A-Za-z_][A-Za-z0-9_]{0,63}$")


def load_study(path: str | Path) -> Study:
    """Read and validate a study file; a folder means its saved ``study.yaml``."""
    p = Path(path)
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
            f"{p}: no such study file. Check the path; the shipped studies are in studies/."
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
    reader = _Reader(source, root)
    return reader.study(data)


class _Reader:
    """Walks the parsed YAML, checking each key and value against the schema."""

    def __init__(self, source: str, root: yaml.Node | None) -> None:
        self.source = source
        self.lines: dict[tuple[str, ...], int] = {}
        self._given_model_keys: set[str] = set()
        if root is not None:
            self._index(root, ())

    def _index(self, node: yaml.Node, path: tuple[str, ...]) -> None:
        """Record the line of every key, and refuse duplicate keys (YAML keeps the last)."""
        if isinstance(node, yaml.MappingNode):
            seen: set[str] = set()
            for key_node, value_node in node.value:
                key = str(key_node.value)
                if key in seen:
                    self.fail(
                        (*path, key),
                        "appears twice in the same section, and YAML would silently keep only "
                        "the last one; keep one of them",
                        line=key_node.start_mark.line + 1,
                    )
                seen.add(key)
                self.lines[(*path, key)] = key_node.start_mark.line + 1
                self._index(value_node, (*path, key))

    # -- messages -----------------------------------------------------------------------------

    def fail(self, path: tuple[str, ...], message: str, line: int | None = None) -> NoReturn:
        shown = [part if part.isprintable() else repr(part) for part in path]
        key = ".".join(shown) if path else "the top level"
        line = line or self.lines.get(path)
        where = f"{key} (line {line})" if line else key
        raise StudyFileError(f"{self.source}: {where}: {message}.")

    def expect(self, path: tuple[str, ...], expected: str, found: Any) -> NoReturn:
        self.fail(path, f"expected {expected}, found {_describe(found)}")

    # -- sections -----------------------------------------------------------------------------

    def section(
        self, data: Any, path: tuple[str, ...], allowed: tuple[str, ...], required: tuple[str, ...]
    ) -> dict[str, Any]:
        if data is None and not required:
            return {}
        if not isinstance(data, dict):
            self.expect(path, "a mapping of keys to values", data)
        for key in data:
            if not isinstance(key, str):
                self.expect(path, "text keys", key)
            if key not in allowed:
                close = difflib.get_close_matches(key, allowed, n=1)
                hint = f" (did you mean '{close[0]}'?)" if close else ""
                self.fail(
                    (*path, key),
                    f"unknown key{hint}; the keys allowed here are {', '.join(allowed)}",
                )
        for key in required:
            if key not in data:
                where = ".".join(path) if path else "the study file"
                raise StudyFileError(
                    f"{self.source}: {where}: the required key '{key}' is missing; "
                    "studies/quick.yaml shows a complete study."
                )
        return data

    def integer(
        self, d: dict[str, Any], path: tuple[str, ...], key: str, default: int | None,
        minimum: int, maximum: int, auto: bool = False,
    ) -> int | None:  # fmt: skip
        """An integer in range; None where the key may be absent, null, or "auto"."""
        value = d.get(key, default)
        if (value is None and (auto or default is None)) or (auto and value == "auto"):
            return None
        if not is_int(value) or not minimum <= value <= maximum:
            extra = ' or "auto"' if auto else ""
            self.expect((*path, key), f"an integer from {minimum} to {maximum:,}{extra}", value)
        return value

    def number(
        self, d: dict[str, Any], path: tuple[str, ...], key: str, default: float,
        minimum: float, maximum: float, strict_min: bool = False,
    ) -> float:  # fmt: skip
        value = d.get(key, default)
        ok = is_number(value) and value <= maximum
        ok = ok and (value > minimum if strict_min else value >= minimum)
        if not ok:
            low = f"greater than {minimum:g}" if strict_min else f"at least {minimum:g}"
            self.expect((*path, key), f"a number {low} and at most {maximum:g}", value)
        return float(value)

    def choice(
        self, d: dict[str, Any], path: tuple[str, ...], key: str, default: str,
        choices: tuple[str, ...],
    ) -> str:  # fmt: skip
        value = d.get(key, default)
        if not isinstance(value, str) or value not in choices:
            self.expect((*path, key), "one of " + ", ".join(choices), value)
        return value

    # -- the study ----------------------------------------------------------------------------

    def study(self, data: Any) -> Study:
        top = self.section(
            data,
            (),
            (
                "name", "description", "task", "model", "factors", "design", "training",
                "data", "replicates", "seed", "results", "run", "analysis",
            ),
            required=("name", "factors"),
        )  # fmt: skip
        name = top["name"]
        if not isinstance(name, str) or not _NAME_RE.match(name):
            self.expect(
                ("name",),
                "a name of 1 to 64 letters, digits, '.', '_' or '-' (it names the results "
                "folder and the study in storage)",
                name,
            )
        description = top.get("description", "") or ""
        if not isinstance(description, str):
            self.expect(("description",), "text", description)
        spec, given = self.model_section(top.get("model"))
        task = self.task(top, spec)
        factors = self.factors(top["factors"], spec, given)
        model = self.model(spec, given, factors)
        training = self.training(top.get("training"))
        data_settings = self.data(top.get("data"), task)
        replicates = self.integer(top, (), "replicates", 1, 1, 10_000)
        seed = self.integer(top, (), "seed", 768, 0, 2**32 - 1 - 10_000)
        results = top.get("results", "results")
        if not isinstance(results, str) or not results.strip():
            self.expect(("results",), "a folder path (text)", results)
        design = self.design(top.get("design"), factors)
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
        analysis = self.analysis(top.get("analysis"), factors, task)
        return Study(
            name=name,
            description=description.strip(),
            task=task,
            model=model,
            factors=factors,
            training=training,
            data=data_settings,
            replicates=replicates,
            seed=seed,
            results=results,
            run=self.run(top.get("run")),
            analysis=analysis,
            design=design,
            source=self.source,
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

    def model_section(self, data: Any) -> tuple[ModelSpec, dict[str, Any]]:
        """The builder and the settings the ``model:`` section gives (checked, not resolved)."""
        path = ("model",)
        builder = data.get("builder", "vae") if isinstance(data, dict) else "vae"
        spec = builder_spec(builder) if isinstance(builder, str) else None
        if spec is None:
            self.expect(
                (*path, "builder"),
                f"one of {', '.join(BUILDERS)}, or your own as 'package.module:function'",
                builder,
            )
        if spec.parameters is None:
            d = self.section(data, path, ("builder", "options"), required=())
            options = d.get("options") or {}
            if not isinstance(options, dict) or not all(
                isinstance(k, str) and _IDENTIFIER_RE.match(k) for k in options
            ):
                self.expect((*path, "options"), "a mapping of keyword arguments", options)
            return spec, {k: _hashable(v) for k, v in options.items()}
        names = tuple(p.name for p in spec.parameters)
        d = self.section(data, path, ("builder", *names), required=())
        given = {}
        for name, value in d.items():
            if name == "builder":
                continue
            param = spec.parameter(name)
            assert param is not None
            if not param.accepts(value):
                self.expect((*path, name), param.expected(), value)
            given[name] = param.normalise(value)
        return spec, given

    def model(
        self, spec: ModelSpec, given: dict[str, Any], factors: tuple[Factor, ...]
    ) -> ModelSettings:
        """The fixed settings: what ``model:`` gives, every other non-factor default filled in."""
        varied = {f.name for f in factors}
        if spec.parameters is None:
            return ModelSettings(builder=spec.name, parameters=tuple(given.items()))
        for a, b in spec.exclusive:
            in_use = [
                n for n in (a, b) if n in varied or (n in given and given[n] != spec.defaults()[n])
            ]
            if len(in_use) == 2:
                where = " and ".join(
                    f"{n} ({'a factor' if n in varied else 'set under model:'})" for n in in_use
                )
                self.fail(
                    ("factors",) if a in varied or b in varied else ("model", b),
                    f"{where} describe the same part of the model; use one of the two",
                )
        values = {
            p.name: given.get(p.name, p.default) for p in spec.parameters if p.name not in varied
        }
        return ModelSettings(builder=spec.name, parameters=tuple(values.items()))

    def factors(self, data: Any, spec: ModelSpec, given: dict[str, Any]) -> tuple[Factor, ...]:
        path = ("factors",)
        if not isinstance(data, dict) or not data:
            self.expect(path, "a mapping of factor names to lists of levels", data)
        factors = []
        for name, levels in data.items():
            fpath = (*path, str(name))
            if not isinstance(name, str) or not _IDENTIFIER_RE.match(name):
                self.expect(fpath, "a factor name made of letters, digits and '_'", name)
            param = spec.parameter(name)
            if spec.parameters is not None and (param is None or not param.factor):
                allowed = tuple(p.name for p in spec.parameters if p.factor)
                close = difflib.get_close_matches(name, allowed, n=1)
                hint = f" (did you mean '{close[0]}'?)" if close else ""
                self.fail(
                    fpath,
                    f"'{name}' is not a parameter of the {spec.name} model{hint}; a factor can "
                    f"be any of {', '.join(allowed)}",
                )
            if name in given:
                self.fail(
                    fpath,
                    f"'{name}' is both a factor and fixed under model:; remove one of the two",
                )
            factors.append(self.factor(fpath, name, levels, param))
        return tuple(factors)

    def factor(
        self, path: tuple[str, ...], name: str, levels: Any, param: Parameter | None
    ) -> Factor:
        expected = param.expected() if param else "true/false, text or a number"
        if not isinstance(levels, list) or not levels:
            self.expect(path, f"a non-empty list of levels, each {expected}", levels)
        for level in levels:
            ok = param.accepts(level) if param else _plain_level(level)
            if not ok:
                self.expect(path, f"levels that are each {expected}", level)
        if len({_level_kind(level) for level in levels}) > 1:
            self.fail(path, "mixes kinds of levels; use all true/false, all text or all numbers")
        seen: list[Any] = []
        for level in levels:  # all of one kind by now, so 1 == 1.0 is the only coincidence
            if level in seen:
                self.fail(path, f"the level {_describe(level)} is listed twice")
            seen.append(level)
        if len(levels) < 2:
            self.fail(
                path,
                "a factor needs at least 2 levels to have an effect; to fix a setting for "
                "every cell, set it under model: instead",
            )
        return Factor(name, tuple(levels))

    def design(self, data: Any, factors: tuple[Factor, ...]) -> DesignSettings:
        """Which runs of the grid to train; the checks that need no construction.

        (Building the design, :mod:`ablate.designs.build`, refuses what only pydoe can tell:
        a resolution no fraction of these factors reaches, say.)
        """
        path = ("design",)
        if isinstance(data, str):  # design: fractional is not enough; design: full is
            data = {"type": data}
        allowed = ("type", "table", *dict.fromkeys(k for v in _DESIGN_KEYS.values() for k in v))
        d = self.section(data, path, allowed, required=())
        kind = self.choice(d, path, "type", "full", DESIGN_TYPES)
        for key in d:
            if key not in ("type", "table", *_DESIGN_KEYS[kind]):
                keys = ", ".join(("type", *_DESIGN_KEYS[kind], "table"))
                self.fail((*path, key), f"does not apply to a {kind} design (its keys: {keys})")
        n_cells = 1
        for f in factors:
            n_cells *= len(f.levels)
        k = len(factors)
        if kind in ("fractional", "plackett-burman"):
            wide = [f"{f.name} ({len(f.levels)} levels)" for f in factors if len(f.levels) != 2]
            if wide:
                self.fail(
                    ("factors",) if "type" not in d else (*path, "type"),
                    f"a {kind} design needs every factor at two levels, and "
                    f"{', '.join(wide)} has more; use type: optimal for factors of any number "
                    "of levels",
                )
        settings = DesignSettings(type=kind)
        if kind == "fractional":
            settings = self._fractional(d, path, factors)
        elif kind == "plackett-burman":
            from ablate.designs.screening import plackett_burman_sizes

            sizes = plackett_burman_sizes(k)
            runs = self.integer(d, path, "runs", None, 4, 1 << 16)
            if runs is not None and runs not in sizes:
                self.expect(
                    (*path, "runs"),
                    f"a run count pydoe builds for {k} factors ({', '.join(map(str, sizes))}, …)",
                    runs,
                )
            settings = DesignSettings(type=kind, runs=runs)
        elif kind == "optimal":
            settings = self._optimal(d, path, factors, n_cells)
        elif kind == "definitive-screening":
            numeric = [f for f in factors if f.kind == "number" and len(f.levels) == 3]
            odd = [f.name for f in factors if f not in numeric and len(f.levels) != 2]
            if odd or not numeric:
                self.fail(
                    (*path, "type"),
                    "a definitive screening design takes numeric factors with three levels "
                    "(and two-level factors beside them); "
                    + (f"{', '.join(odd)} do(es) not fit" if odd else "no factor has three "
                       "numeric levels"),
                )  # fmt: skip
        fold = self._fold(d, path, factors) if "fold" in d else ()
        table = self._table(d.get("table"), (*path, "table"), factors)
        return DesignSettings(
            type=settings.type, resolution=settings.resolution, runs=settings.runs,
            generators=settings.generators, model=settings.model, fold=fold,
            augment=settings.augment, table=table,
        )  # fmt: skip

    def _fractional(
        self, d: dict[str, Any], path: tuple[str, ...], factors: tuple[Factor, ...]
    ) -> DesignSettings:
        from ablate.designs import fractional

        k = len(factors)
        given = [key for key in ("resolution", "runs", "generators") if key in d]
        if len(given) != 1:
            self.fail(
                path,
                "a fractional design is chosen by exactly one of resolution (III, IV, V: the "
                "fewest runs that reach it), runs (a power of two) or generators (e.g. "
                f"'E = ABC'); found {' and '.join(given) or 'none of them'}",
            )
        if not 3 <= k <= fractional.MAX_FACTORS:
            self.fail(
                ("factors",),
                f"a fractional design takes 3 to {fractional.MAX_FACTORS} two-level factors, "
                f"not {k}",
            )
        if "resolution" in d:
            value = d["resolution"]
            if isinstance(value, str) and value.strip().upper() in _ROMAN:
                value = _ROMAN[value.strip().upper()]
            if not is_int(value) or not 3 <= value <= 8:
                self.expect((*path, "resolution"), "III, IV, V (or 3 to 8)", d["resolution"])
            return DesignSettings(type="fractional", resolution=int(value))
        if "runs" in d:
            runs = self.integer(d, path, "runs", None, 4, 1 << 20)
            smallest, largest = 1 << (k - fractional.largest_p(k)), 1 << (k - 1)
            if runs is None or runs & (runs - 1) or not smallest <= runs <= largest:
                self.expect(
                    (*path, "runs"),
                    f"a power of two from {smallest} to {largest} (a fraction of {k} factors)",
                    d["runs"],
                )
            return DesignSettings(type="fractional", runs=runs)
        raw = d["generators"]
        items = raw if isinstance(raw, list) else [raw]
        if not items or not all(isinstance(g, str) for g in items):
            self.expect((*path, "generators"), "a list of generators like 'E = ABC'", raw)
        texts = [part.strip() for g in items for part in g.split(",") if part.strip()]
        names = [f.name for f in factors]
        try:
            parsed = [fractional.parse_generator(g, names) for g in texts]
            fractional.check_generators(parsed, k)
        except ValueError as err:
            legend = ", ".join(f"{a} = {n}" for a, n in zip(_letters(k), names, strict=True))
            self.fail((*path, "generators"), f"{err} (letters: {legend})")
        normal = tuple(g.text(_letters(k)) for g in parsed)
        return DesignSettings(type="fractional", generators=normal)

    def _optimal(
        self, d: dict[str, Any], path: tuple[str, ...], factors: tuple[Factor, ...], n_cells: int
    ) -> DesignSettings:
        model = self.choice(d, path, "model", "main", DESIGN_MODELS)
        p = 1 + sum(len(f.levels) - 1 for f in factors)
        if model == "main+2fi":
            p += sum(
                (len(a.levels) - 1) * (len(b.levels) - 1)
                for i, a in enumerate(factors)
                for b in factors[i + 1 :]
            )
        if "runs" not in d:
            self.fail(
                (*path, "runs"),
                f"an optimal design needs runs: how many cells to train, from {p} (the model's "
                f"coefficients) to {n_cells} (the grid)",
            )
        if p > n_cells:
            self.fail((*path, "model"), f"needs {p} coefficients, more than the {n_cells} cells")
        runs = self.integer(d, path, "runs", None, p, n_cells)
        augment_raw = d.get("augment", [])
        augment = augment_raw if isinstance(augment_raw, list) else [augment_raw]
        if not all(is_int(a) and a >= 1 for a in augment):
            self.expect((*path, "augment"), "a number of runs, or a list of them", augment_raw)
        if runs is not None and runs + sum(augment) > n_cells:
            self.fail(
                (*path, "augment"),
                f"adds {sum(augment)} runs to {runs}, more than the {n_cells} cells of the grid "
                "(for repeats, add replicates)",
            )
        return DesignSettings(type="optimal", runs=runs, model=model, augment=tuple(augment))

    def _fold(
        self, d: dict[str, Any], path: tuple[str, ...], factors: tuple[Factor, ...]
    ) -> tuple[str, ...]:
        raw = d["fold"]
        items = raw if isinstance(raw, list) else [raw]
        names = [f.name for f in factors]
        for item in items:
            if item != "all" and item not in names:
                self.expect(
                    (*path, "fold"),
                    "fold-overs, each 'all' (every factor reversed) or a factor's name "
                    f"({', '.join(names)})",
                    item,
                )
        if len(set(items)) != len(items):
            self.fail((*path, "fold"), "lists the same fold-over twice")
        return tuple(items)

    def _table(
        self, data: Any, path: tuple[str, ...], factors: tuple[Factor, ...]
    ) -> tuple[tuple[Any, ...], ...]:
        """The runs a resolved study records: one list of levels per run, in factor order."""
        if data is None:
            return ()
        if not isinstance(data, list) or not all(
            isinstance(r, list) and len(r) == len(factors) for r in data
        ):
            self.expect(path, f"a list of runs, each a list of {len(factors)} levels", data)
        for row in data:
            for f, level in zip(factors, row, strict=True):
                if not any(
                    level == v and isinstance(level, bool) == isinstance(v, bool) for v in f.levels
                ):
                    self.expect(path, f"levels of {f.name}", level)
        return tuple(tuple(_hashable(v) for v in row) for row in data)

    def training(self, data: Any) -> TrainingSettings:
        path = ("training",)
        names = tuple(TrainingSettings.__dataclass_fields__)
        d = self.section(data, path, names, required=())
        t = TrainingSettings()
        decay = d.get("decay", t.decay)
        if decay != "reference" and not (is_number(decay) and 0 <= decay <= 1e3):
            self.expect((*path, "decay"), '"reference" or a number from 0 to 1000', decay)
        validate = d.get("validate_each_epoch", t.validate_each_epoch)
        if not isinstance(validate, bool):
            self.expect((*path, "validate_each_epoch"), "true or false", validate)
        save_outputs = d.get("save_outputs", t.save_outputs)
        if not isinstance(save_outputs, bool):
            self.expect((*path, "save_outputs"), "true or false", save_outputs)
        jit = d.get("jit_compile", t.jit_compile)
        if jit != "auto" and not isinstance(jit, bool):
            self.expect((*path, "jit_compile"), '"auto", true or false', jit)
        settings = TrainingSettings(
            epochs=self.integer(d, path, "epochs", t.epochs, 1, 100_000),
            batch_size=self.integer(d, path, "batch_size", t.batch_size, 1, 1 << 20),
            optimizer=self.choice(d, path, "optimizer", t.optimizer, OPTIMIZERS),
            learning_rate=self.number(d, path, "learning_rate", t.learning_rate, 0, 10, True),
            decay=decay if decay == "reference" else float(decay),
            min_learning_rate=self.number(d, path, "min_learning_rate", t.min_learning_rate, 0, 10),
            eval_batch_size=self.integer(d, path, "eval_batch_size", t.eval_batch_size, 1, 1 << 20),
            validate_each_epoch=validate,
            save_outputs=save_outputs,
            jit_compile=jit,
            steps_per_execution=self.integer(
                d, path, "steps_per_execution", t.steps_per_execution, 1, 1 << 16
            ),
        )
        if decay == "reference" and settings.min_learning_rate > settings.learning_rate:
            self.fail(
                (*path, "min_learning_rate"),
                f"is larger than learning_rate ({settings.learning_rate:g}), which would make "
                "the reference decay negative; lower it or give decay as a number",
            )
        return settings

    def data(self, data: Any, task: str) -> DataSettings:
        path = ("data",)
        d = self.section(data, path, tuple(DataSettings.__dataclass_fields__), required=())
        dataset = d.get("dataset", "mnist")
        found = source(dataset) if isinstance(dataset, str) else None
        if found is None:
            self.expect(
                (*path, "dataset"),
                f"one of {', '.join(SOURCES)}, or your own function as 'package.module:function'",
                dataset,
            )
        data_path = d.get("path")
        if data_path is not None:
            if not isinstance(data_path, str) or not data_path.strip():
                self.expect((*path, "path"), "a file or folder path (text)", data_path)
            if found.path == "none":
                reads = [s.name for s in SOURCES.values() if s.path != "none"]
                self.fail(
                    (*path, "path"),
                    f"dataset {dataset} does not read a path (only {', '.join(reads)} do); "
                    "remove it",
                )
            p = Path(data_path).expanduser()
            if not p.is_absolute() and self.source not in ("<study>",):
                p = Path(self.source).parent / p
            data_path = str(p)
        elif found.path == "required":
            self.fail((*path, "path"), f"dataset {dataset} reads a file: set data.path to it")
        if found.task is not None and found.task != task:
            self.fail(
                (*path, "dataset"),
                f"dataset {dataset} is made for the {found.task} task, not {task}",
            )
        return DataSettings(
            dataset=dataset,
            path=data_path,
            options=self.options(d.get("options"), (*path, "options"), found),
            train_size=self.integer(d, path, "train_size", None, 1, 10**9),
            test_size=self.integer(d, path, "test_size", None, 1, 10**9),
        )

    def options(
        self, data: Any, path: tuple[str, ...], found: Source
    ) -> tuple[tuple[str, Any], ...]:
        """A source's options: checked against its declaration (a user's function: any)."""
        if data is None:
            data = {}
        if not isinstance(data, dict):
            self.expect(path, "a mapping of option names to values", data)
        if found.options is None:
            if not all(isinstance(k, str) and _IDENTIFIER_RE.match(k) for k in data):
                self.expect(path, "keyword arguments (names of letters, digits and '_')", data)
            return tuple((k, _hashable(v)) for k, v in data.items())
        names = tuple(p.name for p in found.options)
        if data and not names:
            self.fail(path, f"dataset {found.name} takes no options; remove them")
        self.section(data, path, names, required=())
        values = []
        for param in found.options:
            value = data.get(param.name, param.default)
            if not param.accepts(value):
                self.expect((*path, param.name), param.expected(), value)
            values.append((param.name, param.normalise(value)))
        return tuple(values)

    def run(self, data: Any) -> RunSettings:
        path = ("run",)
        d = self.section(data, path, tuple(RunSettings.__dataclass_fields__), required=())
        r = RunSettings()
        return RunSettings(
            workers=self.integer(d, path, "workers", None, 1, 1024, auto=True),
            workers_per_gpu=self.integer(d, path, "workers_per_gpu", r.workers_per_gpu, 1, 64),
            threads_per_worker=self.integer(d, path, "threads_per_worker", None, 1, 1024, True),
            retries=self.integer(d, path, "retries", r.retries, 0, 100),
            lost_retries=self.integer(d, path, "lost_retries", r.lost_retries, 0, 100),
            heartbeat_seconds=self.number(
                d, path, "heartbeat_seconds", r.heartbeat_seconds, 0.05, 3600
            ),
        )

    def analysis(self, data: Any, factors: tuple[Factor, ...], task: str) -> AnalysisSettings:
        path = ("analysis",)
        d = self.section(data, path, ("response", "baseline"), required=())
        spec = TASKS[task]
        response = d.get("response", spec.default_response)
        if not isinstance(response, str) or not (
            spec.is_response(response) or response in COMMON_GOALS
        ):
            self.expect(
                (*path, "response"),
                f"a response of the {task} task: {', '.join(spec.result_columns)} (or "
                f"{', '.join(COMMON_GOALS)})",
                response,
            )
        baseline = d.get("baseline") or {}
        if not isinstance(baseline, dict):
            self.expect((*path, "baseline"), "a mapping of factor names to levels", baseline)
        by_name = {f.name: f for f in factors}
        pairs = []
        for name, level in baseline.items():
            if name not in by_name:
                self.expect(
                    (*path, "baseline", str(name)), "one of the factors " + ", ".join(by_name), name
                )
            is_level = any(
                level == v and isinstance(level, bool) == isinstance(v, bool)
                for v in by_name[name].levels
            )
            if not is_level:
                levels = ", ".join(_describe(v) for v in by_name[name].levels)
                self.expect((*path, "baseline", name), f"one of its levels ({levels})", level)
            pairs.append((name, level))
        return AnalysisSettings(response=response, baseline=tuple(pairs))


def _letters(k: int) -> list[str]:
    from ablate.designs.relation import letters

    return letters(k)


def _runs_at_most(design: DesignSettings, n_cells: int) -> int:
    """How many runs the design has at most (all cells, unless its settings say fewer)."""
    if design.type == "full" or design.runs is None:
        return n_cells
    return min(n_cells, design.runs * (1 + len(design.fold)) + sum(design.augment))


def _plain_level(value: Any) -> bool:
    """A level a user's builder may receive: true/false, short text, or a finite number."""
    if isinstance(value, str):
        return 0 < len(value) <= 64 and value.isprintable()
    return isinstance(value, bool) or is_number(value)


def _level_kind(value: Any) -> str:
    if isinstance(value, bool):
        return "bool"
    return "string" if isinstance(value, str) else "number"


def _describe(value: Any) -> str:
    """A value as a person reads it in an error message."""
    if value is None:
        return "nothing (null)"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, str):
        shown = value if len(value) <= 40 else value[:37] + "..."
        return f"the text {shown!r}"
    if isinstance(value, (int, float)):
        return f"the number {value!r}" if abs(value) < 1e15 else f"the number {value:.3g}"
    if isinstance(value, list):
        return f"a list of {len(value)} item{'s' if len(value) != 1 else ''}"
    if isinstance(value, Mapping):
        return "a mapping"
    return f"a {type(value).__name__}"


def _hashable(value: Any) -> Any:
    """Lists as tuples and mappings as sorted pairs, so settings stay hashable and frozen."""
    if isinstance(value, list):
        return tuple(_hashable(v) for v in value)
    if isinstance(value, dict):
        return tuple(sorted((str(k), _hashable(v)) for k, v in value.items()))
    return value
