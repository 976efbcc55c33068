"""What a set of runs can and cannot estimate, computed from the runs alone.

Three readings, for any runs (a design built here, a fraction run elsewhere, a study with
failed trials left out):

- :func:`structure`: what kind of design the runs are (full factorial, regular fraction
  2^(k−p) with its resolution and defining relation, an orthogonal non-regular two-level
  design such as a Plackett–Burman, or a general one such as a D-optimal design), the alias
  chains among main effects and two-factor interactions, and what the usual models can
  estimate;
- :func:`model_aliases`: for a fitted model, what each coefficient is aliased with: the alias
  matrix A = (X1'X1)⁻¹X1'X2 of Montgomery (eq. 8.1) between the model's columns X1 and every
  effect of up to three factors left out of it (X2). An entry ±1 with nothing left over is a
  full alias (the coefficient estimates the sum of both); other entries are partial aliases;
- :func:`dependency`: for a model that cannot be fitted, the first term whose columns the
  others already span, and with what; so that the refusal names the alias.

All of it works on effect-coded (sum) columns, the coding in which a two-level factor is −1
at its low level and +1 at its high one, as textbooks write fractions.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd

from ablate.designs.fractional import roman
from ablate.designs.matrix import FactorInfo, ModelMatrix, Term, build_matrix
from ablate.designs.optimal import d_efficiency
from ablate.designs.relation import Relation, defining_relation, effects_up_to, word
from ablate.designs.relation import letters as make_letters

_TOL = 1e-8
_ORDER_NAMES = {1: "main effect", 2: "two-factor interaction", 3: "three-factor interaction"}


@dataclass(frozen=True)
class Structure:
    """The design the runs form, as ``ablate run --dry-run`` and ``ablate analyze`` show it."""

    kind: str  # "full factorial", "regular fraction", "orthogonal two-level", "general"
    title: str  # e.g. "2^(7-3) fraction, resolution IV"
    runs: int  # distinct runs
    cells: int  # cells of the full grid
    factors: tuple[str, ...]
    letters: tuple[str, ...]
    relation: Relation | None  # two-level runs only
    chains: tuple[str, ...]  # alias chains among main effects and two-factor interactions
    clear: tuple[str, ...]  # main effects and 2fi aliased with no other of them
    d_efficiency: float | None  # of the main-effects model (pydoe's definition)
    estimable: tuple[str, ...]  # what the main-effects and main+2fi models can estimate
    max_correlation: float | None = None  # between columns of different main effects

    @property
    def resolution(self) -> int | None:
        return self.relation.resolution if self.relation and self.relation.regular else None

    def defining_relation(self) -> str | None:
        """``I = ABCE = BCDF = …`` (letters), for a regular fraction."""
        if not self.relation or not self.relation.regular or not self.relation.words:
            return None
        words = [
            ("-" if s < 0 else "") + word(w, self.letters)
            for w, s in zip(self.relation.words, self.relation.signs, strict=True)
        ]
        return "I = " + " = ".join(words)

    def legend(self) -> str:
        return ", ".join(f"{a} {n}" for a, n in zip(self.letters, self.factors, strict=True))

    def relation_lines(self) -> list[str]:
        """A regular fraction's defining relation (with the letters it uses); none otherwise."""
        relation = self.defining_relation()
        if not relation:
            return []
        letters = [f"letters: {self.legend()}"] if self.letters != self.factors else []
        return [*letters, f"defining relation: {relation}"]

    def lines(self) -> list[str]:
        """The structure as lines of text (the chains indented under their heading)."""
        out = [f"{self.title}: {self.runs} distinct runs of the {self.cells}-cell grid."]
        out += self.relation_lines()
        if self.d_efficiency is not None and self.kind == "general":
            out.append(f"D-efficiency of the main-effects model: {self.d_efficiency:.2f}%")
        if self.max_correlation is not None and self.kind != "full factorial":
            out.append(
                "correlation between the main effects' columns: none (they are orthogonal)"
                if self.max_correlation < 1e-6
                else f"correlation between the main effects' columns: up to |r| = "
                f"{self.max_correlation:.3f}"
            )
        if self.chains:
            out.append("aliases up to two-factor interactions:")
            out += [f"  {c}" for c in self.chains]
        if self.clear and self.kind != "full factorial":
            out.append("clear of every other main effect and two-factor interaction: "
                       + ", ".join(self.clear))  # fmt: skip
        out += self.estimable
        return out


def coded(frame: pd.DataFrame, factors: Sequence[FactorInfo]) -> np.ndarray:
    """Two-level factors as −1 (low, the baseline) and +1 (high), one column each."""
    return np.column_stack(
        [np.where(frame[f.name].to_numpy() == f.high, 1, -1) for f in factors]
    ).astype(int)


def structure(frame: pd.DataFrame, factors: Sequence[FactorInfo]) -> Structure:
    """The design the rows of ``frame`` form (repeated rows count once)."""
    names = tuple(f.name for f in factors)

    abc = tuple(make_letters(len(factors)))
    cells = math.prod(len(f.levels) for f in factors)
    distinct = frame[list(names)].drop_duplicates()
    runs = len(distinct)
    two_level = all(f.two_level for f in factors)
    relation = defining_relation(coded(frame, factors)) if two_level else None
    estimable = tuple(_estimable(frame, factors))
    d_eff = _main_effects_efficiency(frame, factors)
    main = correlations(build_matrix(frame, list(factors), "sum", 1))
    max_r = float(main["r"].abs().max()) if len(main) else 0.0
    if runs == cells:
        kind, title = "full factorial", f"full factorial ({_grid(factors)})"
        chains: tuple[str, ...] = ()
        clear: tuple[str, ...] = ()
    elif relation is not None and relation.regular:
        kind = "regular fraction"
        k, p = relation.k, relation.p

        title = f"2^({k}-{p}) fraction, resolution {roman(relation.resolution)}"
        chains, clear = _regular_chains(relation, names)
    elif two_level and _orthogonal_main_effects(frame, factors):
        kind = "orthogonal two-level"
        title = "orthogonal two-level design (not a regular fraction: partial aliasing)"
        chains, clear = _partial_chains(frame, factors)
    else:
        correlated = "correlated" if max_r > 1e-6 else "orthogonal"
        kind, title = "general", f"general design (main effects {correlated})"
        if two_level:
            chains, clear = _partial_chains(frame, factors)
        else:
            chains, clear = (), ()
    return Structure(kind, title, runs, cells, names, abc, relation, chains, clear, d_eff,
                     estimable, max_r)  # fmt: skip


def _grid(factors: Sequence[FactorInfo]) -> str:
    return " × ".join(str(len(f.levels)) for f in factors)


def display(label: str) -> str:
    """A term or column name as people read it: ``a:b`` becomes ``a×b``."""
    return label.replace(":", "×")


def _regular_chains(relation: Relation, names: Sequence[str]) -> tuple[tuple[str, ...], ...]:
    """Alias chains of a regular fraction among effects of up to two factors."""
    seen: set[int] = set()
    chains, clear = [], []
    for effect in effects_up_to(relation.k, 2):
        if effect in seen:
            continue
        aliases = relation.aliases(effect, 2)
        seen.add(effect)
        seen.update(a for a, _ in aliases)
        if not aliases:
            clear.append(word(effect, names, "×"))
            continue
        parts = [word(effect, names, "×")]
        parts += [("-" if s < 0 else "") + word(a, names, "×") for a, s in aliases]
        chains.append(" = ".join(parts))
    return tuple(chains), tuple(clear)


def _orthogonal_main_effects(frame: pd.DataFrame, factors: Sequence[FactorInfo]) -> bool:
    x = coded(frame, factors).astype(float)
    x = np.column_stack([np.ones(len(x)), x])
    gram = x.T @ x
    return bool(np.allclose(gram, np.diag(np.diag(gram))))


def _partial_chains(
    frame: pd.DataFrame, factors: Sequence[FactorInfo]
) -> tuple[tuple[str, ...], tuple[str, ...]]:
    """For two-level runs that are not a regular fraction: the alias matrix of the main
    effects against the two-factor interactions, summarised per main effect."""
    x = coded(frame, factors).astype(float)
    k = x.shape[1]
    x1 = np.column_stack([np.ones(len(x)), x])
    pairs = [(i, j) for i in range(k) for j in range(i + 1, k)]
    if np.linalg.matrix_rank(x1) < x1.shape[1] or not pairs:
        return (), ()
    x2 = np.column_stack([x[:, i] * x[:, j] for i, j in pairs])
    a = np.linalg.lstsq(x1, x2, rcond=None)[0]
    names = [f.name for f in factors]
    chains, clear = [], []
    for c in range(k):
        entries = [(abs(a[c + 1, t]), a[c + 1, t], pairs[t]) for t in range(len(pairs))
                   if abs(a[c + 1, t]) > _TOL]  # fmt: skip
        if not entries:
            clear.append(names[c])
            continue
        entries.sort(key=lambda e: -e[0])
        shown = " ".join(f"{'-' if v < 0 else '+'} {abs(v):.2g} {names[i]}×{names[j]}"
                         for _, v, (i, j) in entries[:4])  # fmt: skip
        more = f" … ({len(entries)} interactions in all)" if len(entries) > 4 else ""
        chains.append(f"{names[c]} {shown}{more}")
    return tuple(chains), tuple(clear)


def _main_effects_efficiency(frame: pd.DataFrame, factors: Sequence[FactorInfo]) -> float | None:

    x = build_matrix(frame, list(factors), "sum", 1).matrix.to_numpy(dtype=float)
    if np.linalg.matrix_rank(x) < x.shape[1]:
        return None
    return d_efficiency(x)


def _estimable(frame: pd.DataFrame, factors: Sequence[FactorInfo]) -> list[str]:
    """Whether the main-effects model, and main effects with two-factor interactions, fit."""
    out = []
    n = len(frame)
    for order, what in ((1, "main effects"), (2, "main effects and two-factor interactions")):
        if order > len(factors):
            continue
        design = build_matrix(frame, list(factors), "sum", order)
        p = design.matrix.shape[1]
        problem = dependency(design)
        if problem is None:
            df = n - p
            rest = f"{df} residual df" if df else "saturated: no residual df, Lenth's method"
            out.append(f"{what}: estimable ({p} coefficients from {n} rows; {rest})")
        else:
            out.append(f"{what}: NOT estimable ({p} coefficients from {n} rows): {problem.text}")
    return out


@dataclass(frozen=True)
class Dependency:
    """A model term whose columns the terms before it already span: it cannot be estimated."""

    term: str  # as people read it: "a×b"
    others: tuple[tuple[str, float], ...]  # (column, coefficient) that reproduce it

    @property
    def text(self) -> str:
        if not self.others:
            return f"{self.term} does not vary in these runs"
        if len(self.others) == 1:
            name, coef = self.others[0]
            sign = "-" if coef < 0 else ""
            return f"{self.term} is aliased with {name} ({self.term} = {sign}{_times(coef)}{name})"
        combo = " ".join(f"{'-' if c < 0 else '+'} {_times(c)}{n}" for n, c in self.others[:6])
        more = " …" if len(self.others) > 6 else ""
        return (
            f"{self.term} is not estimable: in these runs it is a combination of other terms "
            f"of the model ({combo.lstrip('+ ')}{more})"
        )


def _times(c: float) -> str:
    """A coefficient as a factor: nothing for ±1, else ``0.5·``."""
    return "" if abs(abs(c) - 1) < 1e-6 else f"{abs(c):.3g}·"


def dependency(design: ModelMatrix) -> Dependency | None:
    """The first term (in model order) that the columns before it already span, or None."""
    x = design.matrix.to_numpy(dtype=float)
    names = list(design.columns)
    # a column is named by its term where the term has one column (two-level factors)
    shown = {c: t.label if len(t.columns) == 1 else c for t in design.terms for c in t.columns}
    kept: list[int] = []
    for term in design.terms:
        for col in term.columns:
            j = names.index(col)
            candidate = [*kept, j]
            if np.linalg.matrix_rank(x[:, candidate]) == len(candidate):
                kept.append(j)
                continue
            if not kept:
                return Dependency(display(term.label), ())
            coef = np.linalg.lstsq(x[:, kept], x[:, j], rcond=None)[0]
            others = tuple(
                (display(shown[names[kept[i]]]), float(c))
                for i, c in sorted(enumerate(coef), key=lambda e: -abs(e[1]))
                if abs(c) > 1e-6
            )
            if not others:
                return Dependency(display(term.label), ())
            return Dependency(display(col if len(term.columns) > 1 else term.label), others)
    return None


def model_aliases(
    frame: pd.DataFrame, factors: Sequence[FactorInfo], design: ModelMatrix, max_order: int = 3
) -> pd.DataFrame:
    """What each coefficient of an estimable model estimates besides itself.

    ``design`` is the model in sum coding. Returns one row per column: ``term`` (as the
    coefficients table names it), ``aliases`` (full aliases, e.g. ``+ b×c×d``), ``partial``
    (partial aliases, summarised) and ``label`` (``a (+ b×c×d)``).
    """
    x1 = design.matrix.to_numpy(dtype=float)
    in_model = {t.factors for t in design.terms}
    order = min(max_order, len(factors))
    everything = build_matrix(frame, list(factors), "sum", order)
    others = [t for t in everything.terms if t.factors and t.factors not in in_model]
    cols = [c for t in others for c in t.columns]
    rows = []
    if cols:
        x2 = everything.matrix[cols].to_numpy(dtype=float)
        a = np.linalg.lstsq(x1, x2, rcond=None)[0]
        resid = x2 - x1 @ a
        full = np.linalg.norm(resid, axis=0) <= _TOL * np.maximum(np.linalg.norm(x2, axis=0), 1)
    else:
        a = np.zeros((x1.shape[1], 0))
        full = np.zeros(0, dtype=bool)
    term_of = {c: t for t in others for c in t.columns}
    for i, name in enumerate(design.columns):
        exact, partial = [], []
        for t, col in enumerate(cols):
            v = a[i, t]
            if abs(v) <= _TOL:
                continue
            single = full[t] and np.count_nonzero(np.abs(a[:, t]) > _TOL) == 1
            if single and abs(abs(v) - 1) < 1e-6:
                exact.append(f"{'-' if v < 0 else '+'} {display(col)}")
            else:
                partial.append((term_of[col], v))
        label = display(name)
        if exact:
            label += f" ({' '.join(exact[:4])}{' …' if len(exact) > 4 else ''})"
        rows.append({"term": name, "aliases": " ".join(exact), "partial": _summary(partial),
                     "label": label})  # fmt: skip
    return pd.DataFrame(rows, columns=["term", "aliases", "partial", "label"])


def _summary(partial: list[tuple[Term, float]]) -> str:
    """Partial aliases grouped by order and size: ``12 two-factor interactions at ±0.33``."""
    groups: dict[tuple[int, float], int] = {}
    for term, v in partial:
        key = (len(term.factors), round(abs(v), 2))
        groups[key] = groups.get(key, 0) + 1
    parts = []
    for (order, size), count in sorted(groups.items(), key=lambda e: (e[0][0], -e[0][1])):
        what = _ORDER_NAMES.get(order, f"{order}-factor interaction")
        parts.append(f"{count} {what}{'s' if count > 1 else ''} at ±{size:.2g}")
    return "; ".join(parts)


def correlations(design: ModelMatrix) -> pd.DataFrame:
    """Correlations between the columns of different terms (intercept left out), |r| > 1e-6.

    Zero for every pair in an orthogonal design; an optimal design of few runs trades some
    correlation for runs, and this says how much.
    """
    term_of = {c: t.label for t in design.terms if t.factors for c in t.columns}
    cols = [c for c in design.columns if c in term_of]
    rows = []
    if len(cols) > 1:
        x = design.matrix[cols].to_numpy(dtype=float)
        x = x - x.mean(axis=0)
        norms = np.linalg.norm(x, axis=0)
        for i in range(len(cols)):
            for j in range(i + 1, len(cols)):
                if term_of[cols[i]] == term_of[cols[j]] or norms[i] == 0 or norms[j] == 0:
                    continue
                r = float(x[:, i] @ x[:, j] / (norms[i] * norms[j]))
                if abs(r) > 1e-6:
                    rows.append({"column_a": cols[i], "column_b": cols[j], "r": r})
    return pd.DataFrame(rows, columns=["column_a", "column_b", "r"])


__all__ = [
    "Dependency",
    "Structure",
    "correlations",
    "dependency",
    "display",
    "model_aliases",
    "structure",
]
