"""What a factor does, decided by a named test: one rule, and the words for it, for every output.

An estimate is *clear* (different from zero) when the interval the analysis shows for it
excludes zero: the 95% interval of an effect or coefficient (a t test on the residual), the
Tukey simultaneous interval of a difference between two levels, or -- in a saturated model,
which has no residual -- Lenth's margin of error around the effect. The tables carry that
decision in their ``clear`` column, the charts colour by it, and the findings say it in words
with the test and its numbers. A two-level factor *helps* or *hurts* (or, where the response
has no better direction, *raises* or *lowers* it) when its effect is clear; a factor of three
or more levels gets the grouping its pairwise tests support (a compact letter display: levels
that share a letter are not told apart), and a *best* level only where one level is clearly
better than every other. Nothing here names a command-line option: advice is a
:class:`NextStep` naming the analysis's parameter, which each output words its own way.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Literal

import numpy as np

#: What a verdict says of a factor.
Kind = Literal[
    "helps", "hurts", "raises", "lowers", "no clear effect", "equivalent", "inconclusive",
    "levels differ", "no effect", "not testable",
]  # fmt: skip


@dataclass(frozen=True)
class NextStep:
    """Advice: set ``parameter`` (an analysis option, or a key of the study file where
    ``study_key``) to ``value`` -- ``why``."""

    parameter: str
    value: str
    why: str
    study_key: bool = False


@dataclass(frozen=True)
class Missing:
    """A statistic left out for want of data: what it needs, what there is, and the cure."""

    statistic: str
    needs: str
    has: str
    cure: NextStep | None = None

    @property
    def text(self) -> str:
        return f"{self.statistic}: not shown; it needs {self.needs}, and {self.has}"


@dataclass(frozen=True)
class LevelGroup:
    """One level of a factor: its marginal mean and its letters (levels that share a letter
    are not told apart by the pairwise tests)."""

    level: str
    mean: float
    letters: str


@dataclass(frozen=True)
class SeedVerdict:
    """Whether a factor changes the spread from seed to seed, and the test that says so."""

    sensitive: bool
    #: the clause the finding gains, e.g. "seed-sensitive (SD ×2.1 at true, 95% CI [1.3, 3.4];
    #: Brown-Forsythe p = 0.002, adjusted 0.004)"
    text: str


@dataclass(frozen=True)
class FactorVerdict:
    """What one factor does to the response, and the test that supports it."""

    factor: str
    kind: Kind
    text: str  # the finding, one sentence, starting with the factor's name
    test: str  # the named test and its numbers
    estimate: float | None = None  # a two-level factor's effect (high − low)
    ci_low: float | None = None
    ci_high: float | None = None
    groups: tuple[LevelGroup, ...] = ()  # three or more levels: best first
    best: str | None = None  # a level clearly better than every other, if there is one
    seed: SeedVerdict | None = None  # None: the data cannot say (see Analysis.missing)
    #: a clear effect that the adjustment for the number of effects (Holm) would not call clear
    unadjusted_only: bool = False


@dataclass(frozen=True)
class Finding:
    """One line of what the study found: a factor's verdict or what qualifies the answer."""

    kind: Literal["factor", "learning", "check", "warning"]
    text: str
    factor: str | None = None


def clear(low: float, high: float) -> bool:
    """The rule: an interval that excludes zero (a missing interval is not clear)."""
    return bool(np.isfinite(low) and np.isfinite(high) and (low > 0 or high < 0))


def clear_column(lows: Iterable[float], highs: Iterable[float]) -> list[bool]:
    return [clear(lo, hi) for lo, hi in zip(lows, highs, strict=True)]


def direction(effect: float, goal: str | None) -> Kind:
    """The word for a clear effect of ``effect`` (high − low) on a response with ``goal``."""
    if goal is None:
        return "raises" if effect > 0 else "lowers"
    return "helps" if (effect < 0) == (goal == "min") else "hurts"


def letters(order: Sequence[str], differ: Iterable[tuple[str, str]]) -> dict[str, str]:
    """A compact letter display by insert-absorb (Piepho 2004): two levels share a letter
    exactly when they are not told apart. ``order`` lists the levels best first; letters go
    to groups in the order of their best member."""
    groups: list[list[str]] = [list(order)]
    for a, b in sorted(tuple(sorted(p)) for p in differ):
        split: list[list[str]] = []
        for g in groups:
            if a in g and b in g:
                split += [[x for x in g if x != a], [x for x in g if x != b]]
            else:
                split.append(g)
        groups = [g for i, g in enumerate(split) if g and not _absorbed(g, split, i)]
    rank = {level: i for i, level in enumerate(order)}
    groups.sort(key=lambda g: min(rank[x] for x in g))
    out = {level: "" for level in order}
    for i, g in enumerate(groups):
        for level in g:
            out[level] += _letter(i)
    return out


def _absorbed(g: list[str], groups: list[list[str]], i: int) -> bool:
    """A group contained in another (an earlier one, when equal) says nothing new."""
    s = set(g)
    return any(
        (s < set(h)) or (s == set(h) and j < i) for j, h in enumerate(groups) if j != i and h
    )


def _letter(i: int) -> str:
    return chr(ord("a") + i) if i < 26 else f"{chr(ord('a') + i // 26 - 1)}{chr(ord('a') + i % 26)}"


def listing(items: Sequence[str]) -> str:
    """``a``, ``a and b``, ``a, b and c``."""
    items = list(items)
    return items[0] if len(items) == 1 else ", ".join(items[:-1]) + " and " + items[-1]


def p_text(p: float) -> str:
    """A p value as findings write it, as the tables print it: ``p = 0.011``, ``p < 0.001``."""
    if math.isnan(p):
        return "p n/a"
    return "p < 0.001" if p < 0.001 else f"p = {p:.3f}"


def worded_ordering(
    order: Sequence[str], pairs: Sequence[tuple[str, str, float]], goal: str | None
) -> tuple[str, str | None]:
    """What the pairwise tests say of a factor's levels, in words, and its best level (one
    clearly better than every other; None if there is none).

    ``order``: the levels best first; ``pairs``: (better, worse, p) for every pair told apart.
    """
    worse_word = "worse than" if goal is not None else "lower than"  # no goal: highest first
    above: dict[str, list[str]] = {level: [] for level in order}
    p_of: dict[str, list[float]] = {level: [] for level in order}
    for better, worse, p in pairs:
        above[worse].append(better)
        p_of[worse].append(p)
    clauses, seen = [], set()
    for level in order:
        over = tuple(x for x in order if x in above[level])
        if not over or level in seen:
            continue
        alike = [x for x in order if tuple(y for y in order if y in above[x]) == over]
        seen.update(alike)
        ps = [p for x in alike for p in p_of[x]]
        top = max(ps)
        every = "p < 0.001" if top < 0.001 else f"p ≤ {top:.3f}"
        tukey = "Tukey HSD " + (p_text(ps[0]) if len(ps) == 1 else every)
        verb = "is" if len(alike) == 1 else "are"
        clauses.append(f"{listing(alike)} {verb} {worse_word} {listing(over)} ({tukey})")
    best = next((x for x in order if all(x in above[y] for y in order if y != x)), None)
    return "; ".join(clauses), best
