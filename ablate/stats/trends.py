"""Effects over training time, as data: an effect at every epoch, and each effect's course
(from which epoch its sign is settled, whether it still moves at the last epoch).

:mod:`ablate.stats.over_epochs` computes them; the analysis holds them
(:attr:`ablate.stats.result.Analysis.over_epochs`), the findings word them and
:mod:`ablate.views.epochs_chart` draws them.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Literal

if TYPE_CHECKING:
    import pandas as pd

    from ablate.stats.verdicts import Kind

#: The columns of :attr:`OverEpochs.table`, one row per epoch and contrast.
COLUMNS = ("epoch", "factor", "low", "high", "effect", "ci_low", "ci_high", "p", "clear", "n",
           "two_level")  # fmt: skip


@dataclass(frozen=True)
class SkippedEpoch:
    """An epoch the analysis could not be fitted at, and why (``analyze``'s own words)."""

    epoch: int
    reason: str


@dataclass(frozen=True)
class EffectTrend:
    """One contrast over training: where it stands at the last epoch, from which epoch its
    sign is settled, and its change over the last step (per epoch) with its interval."""

    factor: str
    low: str  # the baseline level
    high: str  # the level compared with it
    two_level: bool
    last_epoch: int
    effect: float  # at the last epoch, high − low
    ci_low: float
    ci_high: float
    #: the first epoch from which the interval excludes 0 with this sign through the last one
    settled_from: int | None
    word: Kind | None  # the settled sign in words (helps/hurts, raises/lowers); None: unsettled
    previous_epoch: int | None = None  # the step the change is measured over: previous → last
    change: float | None = None  # per epoch, in the response's units (as analysed)
    change_ci_low: float | None = None
    change_ci_high: float | None = None
    change_p: float | None = None
    moving: bool = False  # the change's interval excludes 0: still moving at the last epoch
    change_missing: str | None = None  # why there is no change, where there is none

    @property
    def trend(self) -> Literal["growing", "shrinking"] | None:
        """Whether a moving effect grows away from 0 or shrinks towards it; None if steady."""
        if not self.moving or self.change is None:
            return None
        return "growing" if (self.change > 0) == (self.effect > 0) else "shrinking"


@dataclass(frozen=True)
class OverEpochs:
    """The effects at every recorded epoch, and what each one does over training.

    ``missing`` says what the data lack where nothing could be computed (then ``table`` is
    empty and ``effects`` is ``()``)."""

    response: str  # as analysed, e.g. "test_loss" or "log(test_loss)"
    goal: Literal["min", "max"] | None  # which direction is better, where there is one
    alpha: float
    table: pd.DataFrame  # COLUMNS: one row per epoch and contrast
    effects: tuple[EffectTrend, ...]
    margin: float | None = None  # the equivalence margin the analysis used, if any
    skipped: tuple[SkippedEpoch, ...] = ()
    notes: tuple[str, ...] = field(default=())
    missing: str | None = None

    @property
    def epochs(self) -> tuple[int, ...]:
        """The epochs that were fitted."""
        return tuple(sorted(int(e) for e in self.table["epoch"].unique()))

    @property
    def confidence(self) -> str:
        return f"{100 * (1 - self.alpha):g}"
