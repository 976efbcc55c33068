"""Regular two-level fractions 2^(k−p), built by pydoe, and their fold-overs.

A fraction is chosen by the resolution it must have (the fewest runs that reach it), by its
number of runs, or by explicit generators (``E = ABC``: factor E is run at the level of the
product of A, B and C). Where several fractions fit, pydoe's ``fracfact_opt`` picks the one
of minimum aberration (the fewest short words in its defining relation). Column j of every
matrix belongs to the study's factor j; −1 is its low level, +1 its high one.
"""

from __future__ import annotations

import math
import re
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from ablate.designs.relation import defining_relation, letters
from ablate.errors import AblateError

MAX_FACTORS = 20  # pydoe's limit for searching generators
SEARCH_BUDGET = 3000  # sets of generators fracfact_opt tries exhaustively (about 4 s)
ROMAN = {1: "I", 2: "II", 3: "III", 4: "IV", 5: "V", 6: "VI", 7: "VII", 8: "VIII"}


@dataclass(frozen=True)
class Fraction:
    """A regular fraction's runs (±1, one column per factor) and how it was chosen."""

    matrix: np.ndarray  # runs × factors, −1/+1; pydoe's order (the last base factor fastest)
    generators: tuple[str, ...]  # "E = BCD", letters in factor order
    how: str  # "minimum aberration", "as given", ...

    @property
    def runs(self) -> int:
        return int(self.matrix.shape[0])


@dataclass(frozen=True)
class Generator:
    """One generator: factor ``target`` runs at the sign times the product of ``word``."""

    target: int
    word: tuple[int, ...]
    sign: int

    def text(self, names: Sequence[str]) -> str:
        return f"{names[self.target]} = {'-' if self.sign < 0 else ''}" + "".join(
            names[j] for j in self.word
        )


def roman(resolution: int | None) -> str:
    return ROMAN.get(resolution, str(resolution)) if resolution else "full"


def largest_p(k: int) -> int:
    """The most generators k factors allow: m = k − p base factors carry 2^m − m − 1 products."""
    p = 0
    while p + 1 < k and (1 << (k - p - 1)) - (k - p - 1) - 1 >= p + 1:
        p += 1
    return p


def runs_needed(k: int, resolution: int) -> int:
    """A lower bound on the runs of a resolution-R fraction of k factors (its estimable
    effects need as many runs): III main effects, IV twice the factors, V main effects and
    every two-factor interaction."""
    if resolution <= 3:
        return k + 1
    if resolution == 4:
        return 2 * k
    return 1 + k + k * (k - 1) // 2


def by_resolution(k: int, resolution: int) -> Fraction:
    """The fraction with the fewest runs of at least ``resolution``, of minimum aberration."""
    _check_size(k)
    for p in range(largest_p(k), 0, -1):
        if (1 << (k - p)) < runs_needed(k, resolution):
            continue
        found = minimum_aberration(k, p)
        if (defining_relation(found.matrix).resolution or k + 1) >= resolution:
            return found
    raise AblateError(
        f"no fraction of the {k} two-level factors has resolution {roman(resolution)}: only "
        f"the full factorial ({1 << k} runs) does. Use design type full, or ask for a lower "
        "resolution."
    )


def by_runs(k: int, runs: int) -> Fraction:
    """The fraction of minimum aberration with ``runs`` runs (a power of two)."""
    _check_size(k)
    p = k - int(math.log2(runs))
    if (1 << (k - p)) != runs or not 1 <= p <= largest_p(k):
        raise AblateError(smallest_runs_message(k, runs))
    return minimum_aberration(k, p)


def smallest_runs_message(k: int, runs: int) -> str:
    sizes = [1 << m for m in range(k - largest_p(k), k)]
    shown = ", ".join(map(str, sizes[:-1])) + f" or {sizes[-1]}"
    return f"a regular fraction of {k} two-level factors has {shown} runs, not {runs}"


def minimum_aberration(k: int, p: int) -> Fraction:
    """pydoe's ``fracfact_opt``: exhaustive search of the generators up to a budget."""
    import pydoe

    m = k - p
    candidates = (1 << m) - m - 1
    combos = math.comb(candidates, p)
    attempts = 0 if combos <= SEARCH_BUDGET else SEARCH_BUDGET
    gen, _, _ = pydoe.fracfact_opt(k, p, max_attempts=attempts)
    how = "minimum aberration"
    if attempts:
        how = (
            f"the least aberration among the first {attempts:,} of {combos:,} sets of generators "
            "(pydoe's most promising first): minimum aberration is not guaranteed"
        )
    matrix = pydoe.fracfact(gen).astype(int)
    return Fraction(matrix, _generator_texts(gen.split(), k), how)


def from_generators(k: int, generators: Sequence[Generator]) -> Fraction:
    """The fraction the given generators define (pydoe's ``fracfact`` builds it)."""
    import pydoe

    _check_size(k)
    targets = {g.target: g for g in generators}
    base = [j for j in range(k) if j not in targets]
    pydoe_letter = {j: "abcdefghijklmnopqrstuvwxyz"[i] for i, j in enumerate(base)}
    columns = []
    for j in range(k):
        if j in targets:
            g = targets[j]
            columns.append(("-" if g.sign < 0 else "") + "".join(pydoe_letter[i] for i in g.word))
        else:
            columns.append(pydoe_letter[j])
    matrix = pydoe.fracfact(" ".join(columns)).astype(int)
    names = letters(k)
    return Fraction(matrix, tuple(g.text(names) for g in generators), "as given")


def fold(matrix: np.ndarray, columns: Sequence[int] | None = None) -> np.ndarray:
    """The fold-over runs (pydoe's ``fold``): every run with the signs of ``columns`` (all
    factors if None) reversed. Returns only the new runs, in the order of the old ones."""
    import pydoe

    folded = pydoe.fold(matrix, None if columns is None else list(columns))
    return np.asarray(folded[len(matrix) :]).astype(int)


_SIGN_WORD = re.compile(r"^([+-]?)\s*(.+)$")


def parse_generator(text: str, names: Sequence[str]) -> Generator:
    """``E = ABC`` (letters in factor order), ``E = -ABC``, or names: ``e = a*b*c``.

    Raises ValueError with what is wrong (the caller adds where).
    """
    left, sep, right = text.partition("=")
    if not sep or not left.strip() or not right.strip():
        raise ValueError(f"{text!r} is not of the form 'E = ABC'")
    lookup = _lookup(names)
    target = _factor(left.strip(), lookup)
    matched = _SIGN_WORD.match(right.strip())
    if matched is None:  # a line break inside: "." stops there
        raise ValueError(f"{text!r} is not of the form 'E = ABC'")
    sign_text, body = matched.groups()
    body = body.strip()
    if "*" in body or "×" in body or body in lookup:
        parts = [p.strip() for p in re.split(r"[*×]", body)]
    else:
        parts = list(body)
    word = tuple(_factor(p, lookup) for p in parts)
    if len(set(word)) != len(word):
        raise ValueError(f"{text!r} names a factor twice in its product")
    if target in word:
        raise ValueError(f"{text!r} defines a factor by a product that contains it")
    if len(word) < 2:
        raise ValueError(
            f"{text!r} would run two factors at the same levels (a main effect aliased with "
            "another); a generator is a product of at least two factors"
        )
    return Generator(target, tuple(sorted(word)), -1 if sign_text == "-" else 1)


def check_generators(generators: Sequence[Generator], k: int) -> None:
    """Generators define distinct factors from base factors only; ValueError otherwise."""
    names = letters(k)
    targets = [g.target for g in generators]
    if len(set(targets)) != len(targets):
        raise ValueError("a factor is defined by two generators")
    for g in generators:
        generated = [j for j in g.word if j in targets]
        if generated:
            raise ValueError(
                f"{g.text(names)} uses {names[generated[0]]}, which a generator defines; write "
                "every product in terms of factors no generator defines"
            )
    if k - len(generators) < 2:
        raise ValueError("at least two factors must be left to vary freely (no generator)")
    words = [g.word for g in generators]
    if len(set(words)) != len(words):
        raise ValueError("two generators use the same product, so their factors would coincide")


def _lookup(names: Sequence[str]) -> dict[str, int]:
    return {
        **{name: j for j, name in enumerate(names)},
        **{letter: j for j, letter in enumerate(letters(len(names)))},
    }


def _factor(token: str, lookup: dict[str, int]) -> int:
    if token not in lookup:
        raise ValueError(f"'{token}' is neither a factor's letter nor its name")
    return lookup[token]


def _generator_texts(columns: list[str], k: int) -> tuple[str, ...]:
    """pydoe's column words ("a b c abc") as generators in the study's letters ("D = ABC")."""
    names = letters(k)
    base = [j for j, c in enumerate(columns) if len(c.lstrip("-")) == 1]
    ours = {"abcdefghijklmnopqrstuvwxyz"[i]: names[j] for i, j in enumerate(base)}
    out = []
    for j, column in enumerate(columns):
        word = column.lstrip("-")
        if len(word) > 1:
            sign = "-" if column.startswith("-") else ""
            out.append(f"{names[j]} = {sign}{''.join(ours[c] for c in word)}")
    return tuple(out)


def _check_size(k: int) -> None:
    if not 3 <= k <= MAX_FACTORS:
        raise AblateError(
            f"a fraction needs 3 to {MAX_FACTORS} two-level factors; this design has {k}"
        )
