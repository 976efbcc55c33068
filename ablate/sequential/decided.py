"""Replicates until decided: add rounds while some effect is inconclusive, with the error rates
held by alpha spending.

The rule behind ``ablate run STUDY --until-decided --margin D``: after each round (a *look*),
every effect is tested twice at the look's level -- a two-sided t test against 0 (*different*)
and two one-sided t tests against ±D (*equivalent*: the look's (1 − 2·level) interval lies
inside (−D, D)) -- and the rounds stop once every effect is one or the other, or at the
maximum replicates. An effect keeps the first verdict it reaches; later looks do not undo it.

Looking after every round and stopping at the first verdict inflates the error rates: with
looks at 2, 3, 5, 8, 12 and 20 replicates, each at 5%, a null effect of a 2^3 factorial is
called different 11-17% of the time, and an effect at the margin equivalent 9% of the time
(``bench/sequential_decided.py``). So the looks share α by a Lan-DeMets spending function of
the information fraction t = replicates / maximum (the SE shrinks as 1/√r, so information
grows in proportion to r), by default the O'Brien-Fleming type α(t) = 2 − 2Φ(z₁₋α/₂ / √t):
a look between t₁ and t₂ may spend α(t₂) − α(t₁), and the levels of all looks sum to α(1) = α.
Each look's tests run at that increment, as a Bonferroni split over the looks: the chance of
ever reaching a wrong verdict is at most the sum of the looks' levels, α. It is conservative
-- the looks share data, so the tests are positively correlated and the true rate is below α
(exact group-sequential boundaries would spend α in full, but need the joint distribution of
the looks) -- and it holds whichever looks happen, also when an equivalence verdict stops the
rounds early (the bound is non-binding). It bounds each effect's errors; across several
effects the chance that some effect errs is larger, as with any per-effect test.

O'Brien-Fleming spending keeps almost all of α for the late looks, so early looks decide only
large effects and the last look is close to a fixed-sample test at α; the Pocock type
α·ln(1 + (e − 1)·t) spends more early, deciding clear cases sooner at the price of a stricter
last look. The replicates grow by a fixed factor (1.5 by default, at least one more), fixed
before any data are seen: the looks' times then do not depend on the estimates, which the
spending bound needs (a planning formula fed by the estimates would choose the looks from the
data), and geometric growth keeps the number of looks logarithmic in the maximum.

Pure functions: the caller runs the study and gives each look's effects (estimate, standard
error, residual degrees of freedom).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal

import numpy as np
from numpy.typing import ArrayLike, NDArray

from ablate.errors import AblateError, option

#: What a look says of one effect.
Decision = Literal["different", "equivalent", "inconclusive"]
#: The spending functions: O'Brien-Fleming type (the default) and Pocock type (Lan-DeMets 1983).
Spending = Literal["obrien-fleming", "pocock"]

UNDECIDED: Decision = "inconclusive"


def spent(alpha: float, t: float, spending: Spending = "obrien-fleming") -> float:
    """The α spent by information fraction ``t`` (0 ≤ t ≤ 1): 0 at t = 0, ``alpha`` at t = 1.
    O'Brien-Fleming type 2 − 2Φ(z₁₋α/₂ / √t); Pocock type α·ln(1 + (e − 1)·t)."""
    from scipy import stats

    if not 0 < alpha < 1:
        raise ValueError(f"alpha must lie in (0, 1), not {alpha}")
    if not 0 <= t <= 1:
        raise ValueError(f"the information fraction must lie in [0, 1], not {t}")
    if t == 0:
        return 0.0
    if spending == "pocock":
        return alpha * math.log1p((math.e - 1) * t)
    if t == 1:
        return alpha  # the closed form, without the rounding of isf and sf
    return float(2 * stats.norm.sf(stats.norm.isf(alpha / 2) / math.sqrt(t)))


def look_alpha(
    alpha: float, t_prev: float, t_now: float, spending: Spending = "obrien-fleming"
) -> float:
    """The level a look at fraction ``t_now`` may use after one at ``t_prev`` (0 for the
    first): the increment α(t_now) − α(t_prev) of the spending function, a Bonferroni share."""
    if t_now < t_prev:
        raise ValueError(f"a look at {t_now} cannot follow one at {t_prev}")
    return max(spent(alpha, t_now, spending) - spent(alpha, t_prev, spending), 0.0)


def decide_many(
    effect: ArrayLike, se: ArrayLike, df: ArrayLike, margin: float, level: float
) -> NDArray[np.str_]:
    """:func:`decide` for arrays of effects (broadcast together): an array of decisions. An
    effect whose SE is not positive and finite, or with no degrees of freedom, is
    inconclusive."""
    from scipy import stats

    est, s, d = np.broadcast_arrays(*(np.asarray(x, dtype=float) for x in (effect, se, df)))
    ok = np.isfinite(est) & np.isfinite(s) & (s > 0) & (d > 0)
    d_safe = np.where(ok, d, 1.0)
    two = stats.t.isf(level / 2, d_safe)  # isf: accurate at the tiny levels of early looks
    one = stats.t.isf(level, d_safe)
    with np.errstate(invalid="ignore"):
        differs = ok & (np.abs(est) > two * s)
        within = ok & (est - one * s > -margin) & (est + one * s < margin)
    out = np.full(est.shape, UNDECIDED, dtype="<U12")
    out[within] = "equivalent"
    out[differs] = "different"  # both at once: a real effect inside ±D; "different" says more
    return out


def decide(effect: float, se: float, df: float, margin: float, level: float) -> Decision:
    """One effect at one look: "different" when the two-sided t test at ``level`` rejects 0;
    else "equivalent" when both one-sided t tests at ``level`` reject |effect| ≥ ``margin``
    (its (1 − 2·level) interval inside ±margin); else "inconclusive"."""
    return _as_decision(str(decide_many(effect, se, df, margin, level)[()]))


def keep(before: ArrayLike, now: ArrayLike) -> NDArray[np.str_]:
    """The decisions after a look: an effect decided at an earlier look (``before``) keeps
    that verdict; the others take this look's (``now``)."""
    b, n = np.asarray(before, dtype="<U12"), np.asarray(now, dtype="<U12")
    return np.where(b != UNDECIDED, b, n)


@dataclass(frozen=True)
class Look:
    """One look: the replicates per run, the level its tests used, the α spent so far, each
    effect's decision (the first verdict it reached, at this look or before), whether the
    rounds stop, why (in words), and the replicates of the next look (None when they stop)."""

    replicates: int
    level: float
    spent: float
    terms: tuple[str, ...]
    decisions: tuple[Decision, ...]
    stop: bool
    reason: str
    next_replicates: int | None

    def decision(self, term: str) -> Decision:
        return self.decisions[self.terms.index(term)]

    @property
    def inconclusive(self) -> tuple[str, ...]:
        return tuple(t for t, d in zip(self.terms, self.decisions, strict=True) if d == UNDECIDED)


@dataclass(frozen=True)
class Rule:
    """Replicates until decided: α spent over looks at ``start_replicates``, then × ``growth``
    (at least one more) up to ``max_replicates``; each effect tested against 0 and ±``margin``
    (in the response's units)."""

    margin: float
    max_replicates: int
    alpha: float = 0.05
    start_replicates: int = 2
    growth: float = 1.5
    spending: Spending = "obrien-fleming"

    def __post_init__(self) -> None:
        if not (math.isfinite(self.margin) and self.margin > 0):
            raise AblateError(
                f"{option('margin', str(self.margin))} must be a positive number in the "
                "response's units: the smallest effect that matters."
            )
        if not 0 < self.alpha < 0.5:
            raise AblateError(f"{option('alpha', str(self.alpha))} must lie between 0 and 0.5.")
        if not 1 <= self.start_replicates <= self.max_replicates:
            raise AblateError(
                f"{option('max_replicates', str(self.max_replicates))} is below the study's "
                f"{self.start_replicates} replicates; raise it, or lower the study's replicates."
            )
        if not self.growth > 1:
            raise ValueError(f"growth must exceed 1, not {self.growth}")

    def fraction(self, replicates: int) -> float:
        """The information fraction of a look: its replicates over the maximum."""
        if not 0 <= replicates <= self.max_replicates:
            raise ValueError(f"{replicates} replicates lie outside 0..{self.max_replicates}")
        return replicates / self.max_replicates

    def level(self, previous: int, replicates: int) -> float:
        """The level of a look at ``replicates`` after one at ``previous`` (0: the first)."""
        return look_alpha(self.alpha, self.fraction(previous), self.fraction(replicates),
                          self.spending)  # fmt: skip

    def next_replicates(self, replicates: int) -> int:
        """The next look's replicates: × growth, at least one more, at most the maximum; the
        maximum itself where less than half of this step would be left after it (a last look
        of a few replicates would spend α on little new information)."""
        if replicates >= self.max_replicates:
            raise ValueError(f"no look follows the maximum, {self.max_replicates} replicates")
        step = max(math.ceil(self.growth * replicates), replicates + 1) - replicates
        nxt = min(replicates + step, self.max_replicates)
        return self.max_replicates if self.max_replicates - nxt < step / 2 else nxt

    def schedule(self) -> tuple[int, ...]:
        """Every look's replicates, fixed in advance: the start, grown to the maximum."""
        looks = [self.start_replicates]
        while looks[-1] < self.max_replicates:
            looks.append(self.next_replicates(looks[-1]))
        return tuple(looks)

    def levels(self) -> tuple[float, ...]:
        """The level of every look of :meth:`schedule`; they sum to ``alpha``."""
        looks = self.schedule()
        return tuple(self.level(p, r) for p, r in zip((0, *looks[:-1]), looks, strict=True))

    def stops(self, decisions: Sequence[str], replicates: int) -> bool:
        """Whether the rounds stop: every effect decided, or the maximum reached."""
        return replicates >= self.max_replicates or all(d != UNDECIDED for d in decisions)

    def look(
        self, replicates: int, terms: Sequence[str], estimate: ArrayLike, se: ArrayLike,
        df: ArrayLike, before: Look | None = None,
    ) -> Look:  # fmt: skip
        """The look at ``replicates`` per run, given each term's estimate, SE and residual
        df, after the look ``before`` (None: the first)."""
        previous = before.replicates if before is not None else 0
        if replicates <= previous:
            raise ValueError(f"a look at {replicates} replicates cannot follow one at {previous}")
        level = self.level(previous, replicates)
        now = decide_many(estimate, se, df, self.margin, level)
        if now.shape != (len(terms),):
            raise ValueError(f"{len(terms)} terms but {now.size} estimates")
        prior = before.decisions if before is not None else (UNDECIDED,) * len(terms)
        if before is not None and before.terms != tuple(terms):
            raise ValueError("a look must test the same terms as the one before")
        decisions = tuple(_as_decision(d) for d in keep(prior, now))
        stop = self.stops(decisions, replicates)
        nxt = None if stop else self.next_replicates(replicates)
        return Look(replicates, level, spent(self.alpha, self.fraction(replicates), self.spending),
                    tuple(terms), decisions, stop,
                    self._reason(tuple(terms), decisions, replicates, nxt), nxt)  # fmt: skip

    def _reason(
        self, terms: tuple[str, ...], decisions: tuple[Decision, ...], replicates: int,
        nxt: int | None,
    ) -> str:  # fmt: skip
        open_ = [t for t, d in zip(terms, decisions, strict=True) if d == UNDECIDED]
        counts = (
            f"{decisions.count('different')} different from 0, "
            f"{decisions.count('equivalent')} equivalent within ±{self.margin:g}"
        )
        if not open_:
            return f"every effect decided at {replicates} replicates per run: {counts}."
        names = ", ".join(open_)
        if nxt is None:
            return (f"{len(open_)} effect(s) still inconclusive at the maximum, {replicates} "
                    f"replicates per run ({names}); {counts}. More replicates or a wider "
                    "margin would decide them.")  # fmt: skip
        return f"{len(open_)} effect(s) inconclusive ({names}); next look at {nxt} replicates."


def _as_decision(word: str) -> Decision:
    return (
        "different" if word == "different" else "equivalent" if word == "equivalent" else UNDECIDED
    )
