"""The grid: every (cell, replicate) of a study as a trial with a stable key and seed (and,
where the study crosses seed streams, a seed per stream: :mod:`ablate.study.streams`)."""

from __future__ import annotations

import hashlib
import itertools
import json
from dataclasses import dataclass
from typing import Any

from ablate.study.runs import design_runs
from ablate.study.settings import Level, Study
from ablate.study.streams import stream_seed, trial_seed


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
    """One training run: a cell, a replicate number and the seed derived from both; where the
    study crosses seed streams, each stream's index and seed (``(name, index, seed)``)."""

    cell: Cell
    replicate: int
    seed: int
    streams: tuple[tuple[str, int, int], ...] = ()

    @property
    def key(self) -> str:
        if self.streams:  # the stream indices, not the replicate: a stream may grow
            return trial_key(self.cell.as_dict(), self.stream_indices())
        return trial_key(self.cell.as_dict(), self.replicate)

    def stream_indices(self) -> dict[str, int]:
        return {name: index for name, index, _ in self.streams}

    def seed_of(self, source: str) -> int:
        """The seed that drives one source of randomness: its stream's, where the study
        names it, else the trial's own seed."""
        return next((seed for name, _, seed in self.streams if name == source), self.seed)

    def to_payload(self) -> dict[str, Any]:
        """The spec as plain data (JSON), kept with its trial in storage: a worker rebuilds
        the spec from it instead of the study's design."""
        out = {"cell": self.cell.index, "levels": [list(pair) for pair in self.cell.levels],
               "replicate": self.replicate, "seed": self.seed}  # fmt: skip
        if self.streams:
            out["streams"] = [list(stream) for stream in self.streams]
        return out

    @classmethod
    def from_payload(cls, payload: dict[str, Any]) -> TrialSpec:
        """The spec :meth:`to_payload` wrote."""
        levels = tuple((str(name), level) for name, level in payload["levels"])
        cell = Cell(int(payload["cell"]), levels)
        streams = tuple((str(n), int(i), int(s)) for n, i, s in payload.get("streams", ()))
        return cls(cell, int(payload["replicate"]), int(payload["seed"]), streams)


def trial_key(levels: dict[str, Any], replicate: int | dict[str, int]) -> str:
    """A stable 16-hex-digit key for (cell, replicate) -- or (cell, stream indices) --,
    independent of factor order."""
    which = "streams" if isinstance(replicate, dict) else "replicate"
    blob = json.dumps({"levels": levels, which: replicate}, sort_keys=True)
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
    if study.streams.counts:
        crossing = enumerate(study.streams.combinations())
        return [TrialSpec(c, r, trial_seed(study.seed, indices), _streams(study, indices))
                for r, indices in crossing for c in grid]  # fmt: skip
    return [TrialSpec(c, r, study.seed + r) for r in range(study.replicates) for c in grid]


def _streams(study: Study, indices: tuple[int, ...]) -> tuple[tuple[str, int, int], ...]:
    return tuple((name, i, stream_seed(study.seed, name, i))
                 for name, i in zip(study.streams.names, indices, strict=True))  # fmt: skip
