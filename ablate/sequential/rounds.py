"""Replicates until precise enough: run a round, analyse, add replicates, until every effect's
interval is as narrow as asked.

``ablate run STUDY --until-halfwidth D [--max-replicates R]`` (or the study's
``run.until_halfwidth`` and ``run.max_replicates``) runs the study with its replicates, fits
the analysis, and while some two-level effect or pairwise difference has a confidence interval
wider than ±D, grows the study to the replicates the planning formula says would be enough
(:func:`ablate.stats.precision.replicates_for`, at least one more) and runs again. New
replicates are new trials of the same experiment (replicate r has seed ``seed + r``), so a
round is an ordinary run: resumable, on any storage, with workers on several machines.

What stopping on the width does to coverage: the rule looks at the residual SD, never at the
estimates, so it does not select effects that happen to look large (stopping when an effect
becomes significant would); the intervals keep close to their stated coverage, slightly
below it because a round whose SD came out low stops early -- a few points at most with 10 or
more residual degrees of freedom.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ablate.errors import AblateError, option, render_options
from ablate.execution.runner import RunSummary
from ablate.stats.precision import halfwidths, replicates_for
from ablate.stats.result import Analysis
from ablate.study.settings import Study

if TYPE_CHECKING:
    import pandas as pd


@dataclass(frozen=True)
class Round:
    replicates: int
    complete: int  # trials complete after the round
    widest: str  # the effect or difference with the widest interval
    halfwidth: float
    seconds: float


@dataclass(frozen=True, kw_only=True)
class Stopped:
    """Why a sequence of rounds stopped, worded for whoever asked: the reason is kept with its
    options marked (:func:`ablate.errors.option`) and rendered as Python or CLI names."""

    raw_reason: str  # in words, options as ablate.errors.option marks them
    summary: RunSummary  # the last round's

    @property
    def reason(self) -> str:
        """Why the rounds stopped, options named as Python passes them."""
        return render_options(self.raw_reason, flags=False)

    def render(self, *, flags: bool) -> str:
        """Why the rounds stopped, options named as the command line's flags (``flags``)."""
        return render_options(self.raw_reason, flags=flags)


@dataclass(frozen=True)
class Outcome(Stopped):
    """How the rounds went, and why they stopped, in words."""

    rounds: tuple[Round, ...]
    target: float
    met: bool


def run_until_precise(
    study: Study, halfwidth: float, *, max_replicates: int | None = None,
    run: Callable[[Study], RunSummary] | None = None, say: Callable[[str], None] = print,
    **run_options: Any,
) -> Outcome:  # fmt: skip
    """Rounds of replicates until every effect's interval is within ±``halfwidth`` or
    ``max_replicates`` (default: the study's ``run.max_replicates``) is reached. Each round is
    :func:`ablate.run_study` with ``run_options`` (``storage_url``, ``workers``, ...), or
    ``run``; each round is said through ``say``."""
    from ablate.execution.runner import run_study
    from ablate.results import load_results
    from ablate.stats.analysis import analyze

    most = max_replicates or study.run.max_replicates
    return run_until(study, halfwidth, most, run or (lambda s: run_study(s, **run_options)),
                     lambda d: analyze(load_results(d), importance=False), say)  # fmt: skip


def run_until(
    study: Study, target: float, most: int, run: Callable[[Study], RunSummary],
    analyse: Callable[[Path], Analysis], say: Callable[[str], None],
) -> Outcome:  # fmt: skip
    """Rounds of ``run`` (a study run) and ``analyse`` (its results folder) until every
    half-width is at most ``target`` or ``most`` replicates are reached."""
    if study.streams.counts:
        raise AblateError(
            f"rounds of replicates add plain replicates, and this study crosses seed streams "
            f"(replicates: {dict(study.streams.counts)}); grow a stream's count in the study "
            "file and run it again, or give replicates as a count."
        )
    if most < study.replicates:
        raise AblateError(
            f"{option('max_replicates', str(most))} is below the study's {study.replicates} "
            "replicates; raise it, or lower the study's replicates."
        )
    r = study.replicates
    rounds: list[Round] = []
    while True:
        summary = run(replace(study, replicates=r))
        if summary.interrupted or summary.failed or summary.diverged:
            why = "it was interrupted" if summary.interrupted else "some trials did not complete"
            reason = (f"stopped after round {len(rounds) + 1}: {why}; run the same command "
                      "again to carry on.")  # fmt: skip
            return Outcome(tuple(rounds), target, False, raw_reason=reason, summary=summary)
        a = analyse(summary.directory)
        widths = halfwidths(a)
        if not len(widths):
            raise AblateError(f"{option('until_halfwidth')} needs an effect with an interval: "
                              f"a two-level "
                              "factor or a factor whose levels are compared pairwise.")  # fmt: skip
        widest = widths.iloc[int(widths["halfwidth"].fillna(math.inf).argmax())]
        rounds.append(Round(r, summary.complete, str(widest["term"]), float(widest["halfwidth"]),
                            summary.seconds))  # fmt: skip
        say(_round_line(rounds[-1], a, target))
        if widest["halfwidth"] <= target:
            met = _met(rounds[-1], a, target)
            return Outcome(tuple(rounds), target, True, raw_reason=met, summary=summary)
        if r >= most:
            short = _short(widths, a, target, most)
            return Outcome(tuple(rounds), target, False, raw_reason=short, summary=summary)
        r = _next(widths, a, target, most)


def _next(widths: pd.DataFrame, a: Analysis, target: float, most: int) -> int:
    """The replicates for the next round: enough for the widest interval by the planning
    formula, at least one more, at most ``most``."""
    now = (a.fit.df_resid, a.fit.replicates_min, a.fit.cells)
    needed = [
        replicates_for(w, crit, now, target, most)
        for w, crit in zip(widths["halfwidth"], widths["critical"], strict=True)
        if not w <= target
    ]
    if any(n is None for n in needed):
        return most
    return min(max([now[1] + 1, *(n for n in needed if n is not None)]), most)


def _round_line(rnd: Round, a: Analysis, target: float) -> str:
    return (f"round at {rnd.replicates} replicate(s) per run ({rnd.complete} trials): widest "
            f"{a.confidence}% interval {rnd.widest} ±{rnd.halfwidth:.3g} "
            f"(target ±{target:g})")  # fmt: skip


def _met(rnd: Round, a: Analysis, target: float) -> str:
    return (f"target met: every effect's {a.confidence}% interval is within ±{target:g} at "
            f"{rnd.replicates} replicates per run\n  (widest: {rnd.widest} "
            f"±{rnd.halfwidth:.3g}).")  # fmt: skip


def _short(widths: pd.DataFrame, a: Analysis, target: float, most: int) -> str:
    wide = widths[~(widths["halfwidth"] <= target)]
    names = ", ".join(f"{t} ±{w:.3g}" for t, w in zip(wide["term"], wide["halfwidth"],
                                                        strict=True))  # fmt: skip
    return (f"target not met: {option('max_replicates', str(most))} reached with {len(wide)} "
            f"interval(s) wider than ±{target:g} ({names}); raise "
            f"{option('max_replicates')} or the target.")  # fmt: skip
