"""Did each trial learn? A test of every trial against what a model that learned nothing scores.

Beating the trivial baseline by a hair is not learning: on 2,000 test sequences an accuracy of
0.497 against a majority-class rate of 0.4885 is 17 examples, well within chance. So:

- a share of test examples (accuracy, with the test set's size known) gets an exact one-sided
  binomial test of its count of correct examples against the baseline's rate; a trial learned
  when the test rejects at α after Holm's adjustment over the trials tested (the question "which
  trials learned" is one family of tests);
- any other response (a loss, an error, R²) must beat the baseline by a stated margin:
  :data:`MARGIN` of the baseline's size (5% below a loss's baseline; for a baseline of 0, as
  R²'s, 0.05 in the response's units).

Trials that did not learn are named; ``--exclude-unlearned`` leaves them out of the fit.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

if TYPE_CHECKING:
    from numpy.typing import NDArray

    from ablate.tasks.base import Baseline

#: How far a response other than a share must beat its baseline, as a share of the baseline.
MARGIN = 0.05


@dataclass(frozen=True)
class Learned:
    """Every trial judged against the baseline, and the verdict in words."""

    value: float  # the baseline
    what: str  # how the baseline scores it
    rule: str  # the test, in words
    best: float
    table: pd.DataFrame  # trial, value, p (binomial; else NaN), threshold, learned
    note: str

    @property
    def not_learned(self) -> int:
        return int((~self.table["learned"]).sum())

    def as_dict(self) -> dict[str, Any]:
        """What ``Analysis.fit["baseline"]`` keeps (JSON-ready)."""
        return {"value": self.value, "what": self.what, "rule": self.rule, "best": self.best,
                "not_learned": self.not_learned, "note": self.note}  # fmt: skip


def judge(
    frame: pd.DataFrame, names: list[str], response: str, y: NDArray[np.float64],
    baseline: Baseline | None, goal: str | None, alpha: float,
) -> Learned | None:  # fmt: skip
    """Each trial's verdict; None without a baseline or a direction to beat it in."""
    if baseline is None or goal is None or len(y) == 0:
        return None
    if baseline.examples is not None and goal == "max" and 0 < baseline.value < 1:
        p, learned, threshold, rule = _binomial(y, baseline.value, baseline.examples, alpha)
    else:
        p, learned, threshold, rule = _margin(y, baseline.value, goal)
    table = pd.DataFrame({"trial": _trial_labels(frame, names), "value": y, "p": p,
                          "threshold": threshold, "learned": learned})  # fmt: skip
    best = float(y.min() if goal == "min" else y.max())
    return Learned(baseline.value, baseline.what, rule, best, table,
                   _note(response, baseline, goal, rule, table, best))  # fmt: skip


def _binomial(
    y: NDArray[np.float64], rate: float, n: int, alpha: float
) -> tuple[NDArray[np.float64], NDArray[np.bool_], float, str]:
    """P(X >= correct) for X ~ Binomial(n, rate), Holm-adjusted over the trials."""
    from scipy import stats
    from statsmodels.stats.multitest import multipletests

    correct = np.rint(y * n).astype(int)
    p = stats.binom.sf(correct - 1, n, rate)
    learned = multipletests(p, alpha=alpha, method="holm")[0] if len(p) > 1 else p < alpha
    rule = (f"an exact binomial test of each trial's correct count among {n} test examples "
            f"against the rate {rate:.4g}, one-sided, Holm-adjusted over {len(y)} trials, "
            f"α = {alpha:g}")  # fmt: skip
    return p, np.asarray(learned, dtype=bool), float("nan"), rule


def _margin(
    y: NDArray[np.float64], value: float, goal: str
) -> tuple[NDArray[np.float64], NDArray[np.bool_], float, str]:
    """Better than the baseline by MARGIN of its size (or MARGIN itself for a baseline of 0)."""
    step = MARGIN * (abs(value) or 1.0)
    threshold = value - step if goal == "min" else value + step
    learned = y <= threshold if goal == "min" else y >= threshold
    side = "at most" if goal == "min" else "at least"
    size = f"{MARGIN:.0%} of the baseline" if value else f"{MARGIN:g}"
    rule = f"{side} {threshold:.4g}: better than the baseline by {size}"
    return np.full(len(y), np.nan), np.asarray(learned, dtype=bool), threshold, rule


def _trial_labels(frame: pd.DataFrame, names: list[str]) -> list[str]:
    cells = (
        frame["cell"].astype(str).tolist()
        if "cell" in frame.columns
        else [" ".join(f"{n}={v}" for n, v in zip(names, row, strict=True))
              for row in frame[names].itertuples(index=False)]
    )  # fmt: skip
    if "replicate" not in frame.columns:
        return cells
    return [f"{c} #{int(r)}" for c, r in zip(cells, frame["replicate"], strict=True)]


def _note(
    response: str, b: Baseline, goal: str, rule: str, table: pd.DataFrame, best: float
) -> str:
    n, failing = len(table), int((~table["learned"]).sum())
    if failing == 0:
        verdict = f"every one of the {n} trials learned (best {best:.4g})"
    elif failing == n:
        verdict = (f"NO trial learned (best {best:.4g}): the effects below compare models that "
                   "failed")  # fmt: skip
    else:
        names = ", ".join(table.loc[~table["learned"], "trial"].head(6))
        more = f" and {failing - 6} more" if failing > 6 else ""
        verdict = f"{failing} of {n} trials did not learn: {names}{more}"
    better = "lower" if goal == "min" else "higher"
    return (f"trivial baseline: a model that learned nothing scores {response} = {b.value:.4g} "
            f"({b.what}; {better} is better); learned = {rule}; {verdict}.")  # fmt: skip
