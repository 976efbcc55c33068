"""Model matrices for factorial analyses: factors, codings, terms and interactions.

A :class:`ModelMatrix` is the exact matrix a model is fitted on, with one named column per
coefficient, and the term structure the ANOVA needs (which columns belong to which main
effect or interaction). Three codings:

- ``reference``: the reference analysis's one-hot columns, no intercept. A 0/1 column per
  on/off factor; the first categorical factor gets a column for every level (together they
  stand in for the intercept); further categorical factors drop their baseline level. Without
  a categorical factor an intercept column is added.
- ``treatment``: an intercept plus 0/1 columns for every level but the baseline, per factor.
- ``sum`` (effect coding): an intercept plus, per factor, a column for every level but the
  baseline, +1 at that level and −1 at the baseline. For two-level factors that is +1 for the
  high (on) level and −1 for the low (off) one, so signs read "on minus off".
- ``helmert`` (inside the analysis, for the screening charts): as ``sum`` for two-level
  factors; a factor of k levels gets k − 1 orthogonal contrasts, each level against the mean
  of those before it (``activation[selu − mean(elu, relu)]``).

Levels are ordered false < true, numbers ascending, strings as listed in the study file (or
sorted, for a bare table); a factor's baseline is its first level unless chosen otherwise.
Interaction columns are products of the main-effect columns (baselines dropped).
"""

from __future__ import annotations

import itertools
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

import numpy as np
import pandas as pd

from ablate.errors import AblateError, option

Coding = Literal["reference", "treatment", "sum", "helmert"]
#: The codings an analysis may be asked for: reference (the default) and sum. (treatment is
#: the reference coding with an intercept, and helmert the orthogonal contrasts of the
#: screening charts: both are used inside the analysis, not offered.)
CODINGS: tuple[Coding, ...] = ("reference", "sum")
_ALL_CODINGS: tuple[Coding, ...] = ("reference", "treatment", "sum", "helmert")


@dataclass(frozen=True)
class FactorInfo:
    """A factor as the analysis sees it: its levels in analysis order and its baseline."""

    name: str
    kind: str  # "bool", "number" or "string"
    levels: tuple[Any, ...]
    baseline: Any

    @property
    def low(self) -> Any:
        """For a two-level factor, the level the effect is measured from."""
        return self.baseline

    @property
    def high(self) -> Any:
        return next(v for v in self.levels if v != self.baseline)

    @property
    def two_level(self) -> bool:
        return len(self.levels) == 2

    def level_label(self, level: Any) -> str:
        if isinstance(level, bool) or self.kind == "bool":
            return "true" if level else "false"
        return str(level)


@dataclass(frozen=True)
class Term:
    """A main effect (one factor), an interaction (several) or the intercept (none)."""

    factors: tuple[str, ...]
    columns: tuple[str, ...]

    @property
    def label(self) -> str:
        return ":".join(self.factors) if self.factors else "intercept"


@dataclass(frozen=True)
class ModelMatrix:
    """The fitted matrix, its terms, and how to build the same columns for other rows."""

    matrix: pd.DataFrame  # one column per coefficient, one row per observation
    terms: tuple[Term, ...]
    coding: Coding
    factors: tuple[FactorInfo, ...]
    formula: str
    notes: tuple[str, ...] = ()
    _encoders: tuple[tuple[str, Callable[[pd.DataFrame], np.ndarray]], ...] = field(
        default=(), repr=False, compare=False
    )

    @property
    def columns(self) -> list[str]:
        return list(self.matrix.columns)

    @property
    def intercept_columns(self) -> tuple[str, ...]:
        """Columns that carry the overall level: the intercept, or reference coding's full set."""
        term = next((t for t in self.terms if not t.factors), None)
        return term.columns if term else ()

    def rows(self, frame: pd.DataFrame) -> np.ndarray:
        """ModelMatrix rows for other observations (e.g. a reference grid), same columns."""
        return np.column_stack([encode(frame) for _, encode in self._encoders])


def factor_infos(
    frame: pd.DataFrame,
    names: Sequence[str],
    *,
    declared: dict[str, tuple[str, tuple[Any, ...]]] | None = None,
    baselines: dict[str, Any] | None = None,
) -> tuple[FactorInfo, ...]:
    """Kinds and ordered levels of the factor columns, as present in ``frame``.

    ``declared`` gives (kind, levels in study order) for factors known from a study file;
    ``baselines`` chooses reference levels. A factor needs at least two levels present.
    """
    declared = declared or {}
    baselines = baselines or {}
    infos = []
    for name in names:
        column = frame[name]
        present = column.dropna().unique().tolist()
        if name in declared:
            kind, order = declared[name]
            levels = tuple(v for v in _ordered(kind, order, as_listed=True) if v in present)
        else:
            kind = _kind(column, present)
            levels = _ordered(kind, present, as_listed=False)
        if len(levels) < 2:
            shown = ", ".join(map(str, levels)) or "none"
            raise AblateError(
                f"factor '{name}' has {len(levels)} level ({shown}) among the usable rows, so "
                f"it has no effect to estimate; leave it out of {option('factors')} (or run "
                f"the cells "
                "that vary it)."
            )
        baseline = levels[0]
        if name in baselines:
            baseline = _match_level(name, baselines[name], levels, kind)
        infos.append(FactorInfo(name, kind, levels, baseline))
    return tuple(infos)


def _kind(column: pd.Series, values: list[Any]) -> str:
    if column.dtype == bool or (values and all(isinstance(v, (bool, np.bool_)) for v in values)):
        return "bool"
    if pd.api.types.is_numeric_dtype(column):
        return "number"
    return "string"


def _ordered(kind: str, levels: Sequence[Any], as_listed: bool) -> tuple[Any, ...]:
    """false < true, numbers ascending, strings as listed in the study (or else sorted)."""
    if kind == "bool":
        return tuple(sorted(bool(v) for v in levels))
    if kind == "number":
        return tuple(sorted(levels))
    return tuple(levels) if as_listed else tuple(sorted(map(str, levels)))


def _match_level(name: str, wanted: Any, levels: tuple[Any, ...], kind: str) -> Any:
    """A baseline given as text (--baseline a=true) or value, matched to the factor's levels."""
    for level in levels:
        text = ("true" if level else "false") if kind == "bool" else str(level)
        if level == wanted and isinstance(level, bool) == isinstance(wanted, bool):
            return level
        if isinstance(wanted, str) and wanted.strip().lower() == text.lower():
            return level
    shown = ", ".join(("true" if v else "false") if kind == "bool" else str(v) for v in levels)
    raise AblateError(
        f"the baseline {wanted!r} for factor '{name}' is not one of its levels ({shown})."
    )


Encoder = tuple[str, Callable[[pd.DataFrame], np.ndarray]]  # a column's name, how to make it


def build_matrix(
    frame: pd.DataFrame,
    factors: Sequence[FactorInfo],
    coding: Coding = "reference",
    interactions: int = 1,
    named: Sequence[tuple[str, ...]] = (),
) -> ModelMatrix:
    """The design matrix of ``coding`` with interactions up to order ``interactions``, and
    the interactions ``named`` besides (tuples of factor names, e.g. ``("a", "b")``)."""
    _check_request(factors, coding, interactions, named)
    notes: list[str] = []
    # Per factor: the columns of its main effect, and the columns interactions are built from.
    contrast = {f.name: _contrast_columns(f, coding) for f in factors}
    full_set = next((f.name for f in factors if coding == "reference" and f.kind != "bool"), None)
    terms, encoders = _main_terms(factors, coding, full_set, contrast, notes)
    combos = _combinations(factors, interactions, named)
    for combo in combos:
        cols = []
        for parts in itertools.product(*(contrast[name] for name in combo)):
            label = ":".join(p[0] for p in parts)
            cols.append((label, _product([p[1] for p in parts])))
        encoders.extend(cols)
        terms.append(Term(combo, tuple(c for c, _ in cols)))
    if (interactions > 1 or combos) and coding in ("reference", "treatment"):
        notes.append(
            "with 0/1 (treatment-style) columns and interactions, a main-effect coefficient is a "
            "simple effect: the factor's effect with the factors it interacts with at their "
            "baselines. The effects table averages over them instead; sum coding makes "
            "main-effect coefficients averages too."
        )
    matrix = pd.DataFrame(
        np.column_stack([encode(frame) for _, encode in encoders]),
        columns=[name for name, _ in encoders],
        index=frame.index,
    )
    formula = _formula(factors, interactions, coding, full_set, combos)
    return ModelMatrix(matrix, tuple(terms), coding, tuple(factors), formula, tuple(notes),
                       _encoders=tuple(encoders))  # fmt: skip


def _check_request(
    factors: Sequence[FactorInfo], coding: str, interactions: int, named: Sequence[tuple[str, ...]]
) -> None:
    """Refuse a coding, an order of interactions or a named interaction that cannot be had."""
    if coding not in _ALL_CODINGS:
        raise AblateError(f"unknown coding {coding!r}; choose one of {', '.join(CODINGS)}.")
    if not 1 <= interactions <= max(1, len(factors)):
        raise AblateError(
            f"{option('interactions', str(interactions))} is impossible with {len(factors)} "
            f"factors; "
            f"choose from 1 (main effects only) to {len(factors)}."
        )
    names = [f.name for f in factors]
    for term in named:
        if any(n not in names for n in term) or len(set(term)) != len(term) or len(term) < 2:
            raise AblateError(
                f"{option('terms', ':'.join(term))}: an interaction names two or more "
                f"different factors "
                f"of the analysis ({', '.join(names)}), joined by ':'."
            )


def _main_terms(
    factors: Sequence[FactorInfo],
    coding: Coding,
    full_set: str | None,
    contrast: dict[str, list[Encoder]],
    notes: list[str],
) -> tuple[list[Term], list[Encoder]]:
    """The intercept (or the level columns standing in for it) and the main effects."""
    terms: list[Term] = []
    encoders: list[Encoder] = []
    if coding != "reference" or full_set is None:
        encoders.append(("intercept", lambda d: np.ones(len(d))))
        terms.append(Term((), ("intercept",)))
        if coding == "reference":
            notes.append(
                "no categorical factor has level columns that can stand in for the intercept, "
                "so an intercept column was added (the response with every factor at its "
                "baseline)."
            )
    for f in factors:
        if f.name == full_set:  # its level columns hold the intercept: as a term, k - 1 df
            cols = [(f"{f.name}[{f.level_label(v)}]", _indicator(f.name, v)) for v in f.levels]
            terms.append(Term((), tuple(c for c, _ in cols)))
        else:
            cols = contrast[f.name]
            terms.append(Term((f.name,), tuple(c for c, _ in cols)))
        encoders.extend(cols)
        if coding == "reference" and f.name != full_set and f.kind != "bool" and full_set:
            notes.append(
                f"{f.name}: its levels are measured against {f.name}"
                f"[{f.level_label(f.baseline)}] (its baseline)."
            )
    return terms, encoders


def _combinations(
    factors: Sequence[FactorInfo], interactions: int, named: Sequence[tuple[str, ...]]
) -> list[tuple[str, ...]]:
    """Every interaction up to order ``interactions``, then those ``named`` besides."""
    order = {f.name: i for i, f in enumerate(factors)}
    combos = [
        combo
        for size in range(2, interactions + 1)
        for combo in itertools.combinations([f.name for f in factors], size)
    ]
    for term in named:  # interactions beyond those of --interactions, in factor order
        combo = tuple(sorted(term, key=order.__getitem__))
        if len(combo) > interactions and combo not in combos:
            combos.append(combo)
    return combos


def _contrast_columns(f: FactorInfo, coding: Coding) -> list[Encoder]:
    """A factor's columns without its baseline level: 0/1 or, for sum coding, +1/−1."""
    if coding == "helmert" and not f.two_level:
        return _helmert_columns(f)
    others = [v for v in f.levels if v != f.baseline]
    cols = []
    for level in others:
        on = f.kind == "bool" and level is True
        name = f.name if on else f"{f.name}[{f.level_label(level)}]"  # "batch_norm": 1 when on
        if coding in ("sum", "helmert"):
            cols.append((name, _deviation(f.name, level, f.baseline)))
        else:
            cols.append((name, _indicator(f.name, level)))
    return cols


def _helmert_columns(f: FactorInfo) -> list[Encoder]:
    """Level j against the mean of the levels before it: −1 at those, j at level j."""
    cols = []
    for j in range(1, len(f.levels)):
        before = [f.level_label(v) for v in f.levels[:j]]
        against = before[0] if j == 1 else f"mean({', '.join(before)})"
        name = f"{f.name}[{f.level_label(f.levels[j])} − {against}]"
        cols.append((name, _helmert(f.name, f.levels[:j], f.levels[j], j)))
    return cols


def _helmert(name: str, before: tuple[Any, ...], level: Any, j: int) -> Callable[..., np.ndarray]:
    def encode(d: pd.DataFrame) -> np.ndarray:
        v = _values(d, name)
        column: np.ndarray = j * (v == level).astype(float) - np.isin(v, list(before)).astype(float)
        return column

    return encode


def _values(frame: pd.DataFrame, name: str) -> np.ndarray:
    return frame[name].to_numpy()


def _indicator(name: str, level: Any) -> Callable[[pd.DataFrame], np.ndarray]:
    return lambda d: (_values(d, name) == level).astype(float)


def _deviation(name: str, level: Any, baseline: Any) -> Callable[[pd.DataFrame], np.ndarray]:
    def encode(d: pd.DataFrame) -> np.ndarray:
        v = _values(d, name)
        column: np.ndarray = (v == level).astype(float) - (v == baseline).astype(float)
        return column

    return encode


def _product(parts: list[Callable[[pd.DataFrame], np.ndarray]]) -> Callable[..., np.ndarray]:
    def encode(d: pd.DataFrame) -> np.ndarray:
        out = np.ones(len(d))
        for part in parts:
            out = out * part(d)
        return out

    return encode


def _formula(
    factors: Sequence[FactorInfo],
    interactions: int,
    coding: Coding,
    full_set: str | None,
    combos: Sequence[tuple[str, ...]] = (),
) -> str:
    """An R-style formula describing the fitted model, for the record."""
    shown = {f.name: f.name if f.kind == "bool" else f"C({f.name})" for f in factors}
    names = list(shown.values())
    if interactions == 1:
        rhs = " + ".join(names)
    elif interactions == len(factors):
        rhs = " * ".join(names)
    else:
        rhs = f"({' + '.join(names)})^{interactions}"
    extra = [c for c in combos if len(c) > interactions]
    if extra:
        rhs += " + " + " + ".join(":".join(shown[n] for n in c) for c in extra)
    prefix = "0 + " if coding == "reference" and full_set else ""
    return f"{prefix}{rhs}  [{coding} coding]"


def reference_grid(factors: Sequence[FactorInfo]) -> pd.DataFrame:
    """Every combination of the factors' levels once: the grid marginal means average over."""
    combos = list(itertools.product(*(f.levels for f in factors)))
    return pd.DataFrame(combos, columns=[f.name for f in factors])
