"""A design's runs: which cells of a grid it trains, stage by stage.

``build_runs`` turns a study's ``design:`` settings into runs (tuples of levels in factor order):
the base design (:mod:`~ablate.designs.fractional`, :mod:`~ablate.designs.screening`,
:mod:`~ablate.designs.optimal`, or every cell), then each extension in the order the study
file lists it (fold-overs, augmentations). Extensions only ever append runs, so the runs a
study has trained keep their place; a run is a cell, and its trials keep their keys (which
depend on levels and replicate alone).

Coded levels map to a factor's levels in analysis order (false < true, numbers ascending,
strings as listed): −1 the first, +1 the last, 0 the middle of three.
"""

from __future__ import annotations

import functools
import itertools
from collections.abc import Hashable, Sequence
from dataclasses import Field, dataclass, replace
from typing import Any, ClassVar, Protocol

import numpy as np

from ablate.designs import fractional, optimal, screening
from ablate.designs.matrix import FactorInfo, build_matrix
from ablate.designs.relation import defining_relation
from ablate.errors import AblateError
from ablate.parameters import Level

Run = tuple[Level, ...]


class Factor(Protocol):
    """A factor as a design needs it (the study's factors are these), read-only."""

    @property
    def name(self) -> str: ...

    @property
    def levels(self) -> tuple[Level, ...]: ...

    @property
    def kind(self) -> str: ...

    def ordered_levels(self) -> tuple[Level, ...]: ...


class DesignSpec(Hashable, Protocol):
    """A design's settings as a study file gives them (``ablate.study.settings``): a frozen
    dataclass, read-only and hashable (the cache of built designs is keyed by it), that
    ``dataclasses.replace`` can copy."""

    __dataclass_fields__: ClassVar[dict[str, Field[Any]]]

    @property
    def type(self) -> str: ...

    @property
    def resolution(self) -> int | None: ...

    @property
    def runs(self) -> int | None: ...

    @property
    def generators(self) -> tuple[str, ...]: ...

    @property
    def model(self) -> str: ...

    @property
    def fold(self) -> tuple[str, ...]: ...

    @property
    def augment(self) -> tuple[int, ...]: ...

    @property
    def table(self) -> tuple[tuple[Level, ...], ...]: ...


@dataclass(frozen=True)
class Stage:
    """Runs one step of the design adds: the base design, a fold-over, an augmentation."""

    label: str
    runs: tuple[Run, ...]


@dataclass(frozen=True)
class DesignRuns:
    """Every run of a study's design, by stage, and how the base design was chosen."""

    type: str
    stages: tuple[Stage, ...]
    summary: str  # one line: what the base design is and how it was chosen
    model: str  # the model it was built to estimate: "main" or "main+2fi"
    d_efficiency: float | None = None  # optimal designs: pydoe's report for its model

    @property
    def runs(self) -> tuple[Run, ...]:
        return tuple(r for s in self.stages for r in s.runs)

    @property
    def description(self) -> str:
        """The summary, and the extensions with the runs each adds."""
        extra = [f"{s.label} (+{len(s.runs)} runs)" for s in self.stages[1:]]
        return self.summary + (f"; then {', '.join(extra)}" if extra else "")


def build_runs(factors: tuple[Factor, ...], settings: DesignSpec, seed: int) -> DesignRuns:
    """The runs of the design these settings describe over these factors (its recorded
    ``table`` left aside); refuses what cannot be built (AblateError)."""
    return _build(factors, replace(settings, table=()), seed)


@functools.lru_cache(maxsize=32)
def _build(factors: tuple[Factor, ...], settings: DesignSpec, seed: int) -> DesignRuns:
    kind = settings.type
    if kind == "full":
        cells = tuple(itertools.product(*(f.levels for f in factors)))
        return DesignRuns(kind, (Stage("every cell", cells),), "full factorial", "main")
    if kind in ("fractional", "plackett-burman"):
        _require_two_levels(factors, kind)
        if kind == "fractional":
            fraction = _fraction(factors, settings)
            matrix, summary = fraction.matrix, _fraction_summary(len(factors), fraction)
        else:
            matrix = screening.plackett_burman(len(factors), settings.runs)
            summary = f"Plackett–Burman design in {len(matrix)} runs (pydoe pbdesign)"
        stages = [Stage("base", _levels(matrix, factors))]
        for target in settings.fold:
            columns = None if target == "all" else [_index(factors, target)]
            folded = fractional.fold(matrix, columns)
            label = "fold-over on every factor" if columns is None else f"fold-over on {target}"
            stages.append(_new_stage(label, _levels(folded, factors), stages))
        return DesignRuns(kind, tuple(stages), summary, "main")
    if kind == "definitive-screening":
        return _definitive_screening(factors)
    if kind == "optimal":
        return _optimal(factors, settings, seed)
    raise AblateError(f"unknown design type {kind!r}")


def _fraction(factors: Sequence[Factor], settings: DesignSpec) -> fractional.Fraction:
    k = len(factors)
    names = [f.name for f in factors]
    if settings.generators:
        try:
            parsed = [fractional.parse_generator(g, names) for g in settings.generators]
            fractional.check_generators(parsed, k)
        except ValueError as err:
            raise AblateError(f"generators: {err}") from None
        return fractional.from_generators(k, parsed)
    if settings.runs is not None:
        return fractional.by_runs(k, settings.runs)
    return fractional.by_resolution(k, settings.resolution or 4)


def _fraction_summary(k: int, fraction: fractional.Fraction) -> str:

    relation = defining_relation(fraction.matrix)
    res = fractional.roman(relation.resolution)
    return (
        f"2^({k}-{relation.p}) fraction of resolution {res} in {fraction.runs} runs, "
        f"{fraction.how}: {', '.join(fraction.generators)} (pydoe)"
    )


def _optimal(factors: tuple[Factor, ...], settings: DesignSpec, seed: int) -> DesignRuns:
    cells, model = candidates(factors, settings.model)
    runs = settings.runs
    assert runs is not None  # required by the study file's checks
    choice = optimal.d_optimal(model, runs, seed)
    stages = [Stage("base", tuple(cells[i] for i in choice.indices))]
    chosen = list(choice.indices)
    for i, extra in enumerate(settings.augment, start=1):
        added = optimal.augment(model, chosen, extra, seed + i)
        chosen += added
        stages.append(Stage(f"augmentation {i}", tuple(cells[j] for j in added)))
    what = "main effects" if settings.model == "main" else "main effects and 2-factor interactions"
    summary = (
        f"D-optimal design of {runs} runs for {what} ({choice.parameters} coefficients): "
        f"D-efficiency {choice.d_efficiency:.2f}% (pydoe DETMAX, best of {optimal.STARTS} "
        f"starts drawn from seed {seed})"
    )
    return DesignRuns("optimal", tuple(stages), summary, settings.model, choice.d_efficiency)


def candidates(factors: Sequence[Factor], model: str) -> tuple[list[Run], np.ndarray]:
    """Every cell of the grid and its row of the model's effect-coded columns (intercept first)."""
    import pandas as pd

    infos = infos_of(factors)
    cells = list(itertools.product(*(f.levels for f in factors)))
    frame = pd.DataFrame(cells, columns=[f.name for f in factors])
    design = build_matrix(frame, list(infos), "sum", 2 if model == "main+2fi" else 1)
    return cells, design.matrix.to_numpy(dtype=float)


def infos_of(factors: Sequence[Factor]) -> tuple[FactorInfo, ...]:
    """Factors as the analysis sees them (levels in analysis order, the first the baseline)."""
    return tuple(
        FactorInfo(f.name, f.kind, f.ordered_levels(), f.ordered_levels()[0]) for f in factors
    )


def _definitive_screening(factors: tuple[Factor, ...]) -> DesignRuns:
    numeric = [f for f in factors if f.kind == "number" and len(f.levels) == 3]
    two = [f for f in factors if len(f.levels) == 2]
    odd = [f.name for f in factors if f not in numeric and f not in two]
    if odd or not numeric:
        problem = f"{', '.join(odd)} does not fit" if odd else "no factor has three numeric levels"
        raise AblateError(
            "a definitive screening design takes numeric factors with three levels (and "
            f"two-level factors beside them); {problem}"
        )
    matrix = screening.definitive_screening(len(numeric), len(two))
    order = [*numeric, *two]
    runs = []
    for row in matrix:
        levels = {f.name: _level(f, int(v)) for f, v in zip(order, row, strict=True)}
        runs.append(tuple(levels[f.name] for f in factors))
    summary = (
        f"definitive screening design in {len(runs)} runs: {len(numeric)} three-level numeric "
        f"and {len(two)} two-level factors (pydoe definitive_screening_design)"
    )
    return DesignRuns("definitive-screening", (Stage("base", tuple(runs)),), summary, "main")


def _levels(matrix: np.ndarray, factors: Sequence[Factor]) -> tuple[Run, ...]:
    return tuple(
        tuple(_level(f, int(v)) for f, v in zip(factors, row, strict=True)) for row in matrix
    )


def _level(factor: Factor, code: int) -> Level:
    ordered = factor.ordered_levels()
    return ordered[0] if code < 0 else ordered[-1] if code > 0 else ordered[len(ordered) // 2]


def _new_stage(label: str, runs: tuple[Run, ...], before: list[Stage]) -> Stage:
    """A stage with the runs that are new (a fold-over may give back runs already there)."""
    seen = {r for s in before for r in s.runs}
    new = tuple(r for r in runs if r not in seen)
    if not new:
        raise AblateError(
            f"the {label} adds no run: its runs are all in the design already (when every word "
            "of the defining relation has even length, reversing every factor gives back the "
            "same fraction); fold over on one factor instead, e.g. fold: [FACTOR]"
        )
    return Stage(label, new)


def _require_two_levels(factors: Sequence[Factor], kind: str) -> None:
    wide = [f"{f.name} ({len(f.levels)})" for f in factors if len(f.levels) != 2]
    if wide:
        raise AblateError(
            f"a {kind} design needs every factor at two levels; {', '.join(wide)} "
            "has more. Use type: optimal for factors of any number of levels"
        )


def _index(factors: Sequence[Factor], name: str) -> int:
    return next(i for i, f in enumerate(factors) if f.name == name)
