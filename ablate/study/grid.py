"""The grid: every (cell, replicate) of a study as a trial with a stable key and seed."""

from __future__ import annotations

import hashlib
import itertools
import json
from dataclasses import dataclass
from typing import Any

from ablate.study.runs import design_runs
from ablate.study.settings import Level, Study


@dataclass(frozen=True)
class Cell:
    """One combination of factor levels, numbered in study-file order."""

    index: int
    levels: tuple[tuple[str, Level], ...]

    def as_dict(self) -> dict[str, Level]:
        return dict(self.levels)

    @property
    def label(self) -> str:
        """Short and readable: ``+batch_norm -dropout +spatial_attention activation=relu``."""
        parts = []
        for name, level in self.levels:
            if isinstance(level, bool):
                parts.append(("+" if level else "-") + name)
            else:
                parts.append(f"{name}={level}")
        return " ".join(parts)


@dataclass(frozen=True)
class TrialSpec:
    """One training run: a cell, a replicate number and the seed derived from both."""

    cell: Cell
    replicate: int
    seed: int

    @property
    def key(self) -> str:
        return trial_key(self.cell.as_dict(), self.replicate)

    def to_payload(self) -> dict[str, Any]:
        """The spec as plain data (JSON), kept with its trial in storage: a worker rebuilds
        the spec from it instead of the study's design."""
        return {"cell": self.cell.index, "levels": [list(pair) for pair in self.cell.levels],
                "replicate": self.replicate, "seed": self.seed}  # fmt: skip

    @classmethod
    def from_payload(cls, payload: dict[str, Any]) -> TrialSpec:
        """The spec :meth:`to_payload` wrote."""
        levels = tuple((str(name), level) for name, level in payload["levels"])
        cell = Cell(int(payload["cell"]), levels)
        return cls(cell, int(payload["replicate"]), int(payload["seed"]))


def trial_key(levels: dict[str, Any], replicate: int) -> str:
    """A stable 16-hex-digit key for (cell, replicate), independent of factor order."""
    blob = json.dumps({"levels": levels, "replicate": replicate}, sort_keys=True)
    return hashlib.sha256(blob.encode()).hexdigest()[:16]


def cells(study: Study) -> list[Cell]:
    """All cells of the full factorial grid, the last factor varying fastest."""
    names = study.factor_names
    combos = itertools.product(*(f.levels for f in study.factors))
    return [Cell(i, tuple(zip(names, combo, strict=True))) for i, combo in enumerate(combos)]


def runs(study: Study) -> list[Cell]:
    """The cells the study's design trains, numbered in design order (:mod:`ablate.designs`).

    For the full design, every cell of the grid; otherwise the design's runs, stage after
    stage, so that extending a design appends runs and never renumbers those already run.
    """
    if study.design.type == "full":
        return cells(study)

    names = study.factor_names
    return [
        Cell(i, tuple(zip(names, run, strict=True)))
        for i, run in enumerate(design_runs(study).runs)
    ]


def expand_trials(study: Study) -> list[TrialSpec]:
    """Every trial of the study, replicate by replicate.

    Replicate r of every cell uses seed ``study.seed + r``: the cells of one replicate share
    their random numbers (common random numbers), which sharpens comparisons between cells,
    and replicate 0 reproduces the reference's single seed. Replicates come in order so that
    an interrupted study has whole replicates done first, a balanced design at every stage.
    """
    grid = runs(study)
    return [TrialSpec(c, r, study.seed + r) for r in range(study.replicates) for c in grid]
