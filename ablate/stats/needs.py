"""What each statistic needs of the data before its numbers are shown as a result.

A statistic computed from too little data is not a finding: with two seeds per cell a cell's
standard deviation has one degree of freedom, and an interval of the ratio of two of them can
span eleven orders of magnitude; a bootstrap that resamples two or three trials per cell
disagrees with the normal model by chance more often than not. Each such statistic declares
its need here, once; below it the analysis leaves the statistic out and says what is missing
and how many replicates would supply it (:class:`ablate.stats.verdicts.Missing`).
"""

from __future__ import annotations

from dataclasses import dataclass

from ablate.stats.verdicts import Missing, NextStep


@dataclass(frozen=True)
class Need:
    """A statistic shown only with at least ``replicates`` trials in every cell."""

    statistic: str
    replicates: int
    why: str

    def missing(self, replicates_min: int) -> Missing | None:
        """What is missing for this statistic with ``replicates_min`` trials in the leanest
        cell; None when the data suffice."""
        if replicates_min >= self.replicates:
            return None
        has = f"the leanest cell has {replicates_min} trial{'s' if replicates_min != 1 else ''}"
        cure = NextStep("replicates", str(self.replicates), f"supplies {self.statistic}",
                        study_key=True)  # fmt: skip
        return Missing(self.statistic, f"{self.replicates} replicates per cell", has, cure)


#: Seed sensitivity (dispersion effects on ln SD, Brown-Forsythe): a cell's SD from two seeds
#: has one degree of freedom (ln s varies by about 1/(2(n − 1)) = 0.5 around its truth).
SEED_SENSITIVITY = Need(
    "seed sensitivity", 3, "a cell's SD from two seeds has a single degree of freedom"
)

#: The cluster bootstrap beside OLS: on normal data, where every disagreement is a false
#: alarm, it flagged 13.5% of effects at 2 replicates per cell, 5.1% at 3, 3.6% at 4, 3.3% at
#: 5 and 2.9% at 10 (2,000 studies each: bench/results/bootstrap-agreement-20261207-072903.json).
#: It is shown from 4, the first count whose false alarms stay under 5%.
CLUSTER_BOOTSTRAP = Need(
    "the cluster bootstrap beside OLS", 4,
    "with fewer trials per cell it disagrees with the normal model by chance",
)  # fmt: skip


def cure(missing: tuple[Missing, ...]) -> NextStep | None:
    """One step that supplies every statistic missing for want of replicates: the most
    replicates any of them needs."""
    wanting = [m for m in missing if m.cure is not None and m.cure.parameter == "replicates"]
    if not wanting:
        return None
    most = max(int(m.cure.value) for m in wanting if m.cure is not None)
    if len(wanting) == 1:
        return NextStep("replicates", str(most), f"supplies {wanting[0].statistic}", study_key=True)
    what = " and ".join(f"{m.statistic} (from {m.cure.value})" for m in wanting if m.cure)
    return NextStep("replicates", str(most), f"supplies {what}", study_key=True)
