"""Replicates until every verdict is decided: rounds of replicates while some effect is still
inconclusive, each effect tested against 0 (different) and against ±margin (equivalent).

``ablate run STUDY --until-decided --margin D [--max-replicates R]``, or
:func:`run_until_decided` from Python, runs the study with its replicates (at least 2), fits
the analysis, and looks: every two-level effect and every pairwise difference of a factor's
levels is *different* from 0 when its t test at the look's level rejects 0, *equivalent* when
both one-sided tests at that level reject a difference of ±D or more, else inconclusive; an
effect keeps the first verdict it reaches. While some effect is inconclusive, the next round
grows the replicates (×1.5, at least one more) up to R. Looking after every round would inflate
the error rates, so the looks share α by O'Brien-Fleming-type alpha spending over the
information fraction replicates/R (:mod:`ablate.sequential.decided`): simulated on 20,000
studies per setting, a wrong "different" and a wrong "equivalent" each stay at or below α per
effect (bench/sequential_decided.py). Each look analyses only the replicates it has reached,
so a resumed run looks at the same data its schedule planned. A round is an ordinary run:
resumable, on any storage, with workers on several machines.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, replace
from typing import Any

import numpy as np

from ablate.errors import AblateError, option
from ablate.execution.runner import RunSummary, run_study
from ablate.results import Results, load_results
from ablate.sequential.decided import Look, Rule
from ablate.sequential.rounds import Stopped
from ablate.stats.analysis import analyze
from ablate.stats.result import Analysis
from ablate.study.settings import Study


@dataclass(frozen=True)
class Decided(Stopped):
    """How the rounds went: every look, whether every effect was decided, why they stopped."""

    looks: tuple[Look, ...]
    decided: bool


def run_until_decided(
    study: Study, *, margin: float | None = None, max_replicates: int | None = None,
    alpha: float = 0.05, run: Callable[[Study], RunSummary] | None = None,
    say: Callable[[str], None] = print, **run_options: Any,
) -> Decided:  # fmt: skip
    """Rounds of replicates until every effect is decided or ``max_replicates`` (default: the
    study's ``run.max_replicates``) is reached; ``margin`` defaults to the study's
    ``analysis.margin``. Each round is :func:`ablate.run_study` with ``run_options``
    (``storage_url``, ``workers``, ...), or ``run``; each look is said through ``say``."""
    rule = _rule(study, margin, max_replicates, alpha)
    run = run or (lambda s: run_study(s, **run_options))
    r, looks = rule.start_replicates, list[Look]()
    while True:
        summary = run(replace(study, replicates=r))
        if summary.interrupted or summary.failed or summary.diverged:
            why = "it was interrupted" if summary.interrupted else "some trials did not complete"
            reason = (f"stopped at the look at {r} replicates: {why}; run the same command again "
                      "to carry on.")  # fmt: skip
            return Decided(tuple(looks), False, raw_reason=reason, summary=summary)
        a = analyze(_first(load_results(summary.directory), r), importance=False)
        look = rule.look(r, *terms(a), before=looks[-1] if looks else None)
        looks.append(look)
        say(_look_line(look, a))
        if look.stop:
            return Decided(
                tuple(looks), not look.inconclusive, raw_reason=look.reason, summary=summary
            )
        assert look.next_replicates is not None
        r = look.next_replicates


def _rule(study: Study, margin: float | None, most: int | None, alpha: float) -> Rule:
    if study.streams.counts:
        raise AblateError(
            f"rounds of replicates add plain replicates, and this study crosses seed streams "
            f"(replicates: {dict(study.streams.counts)}); grow a stream's count in the study "
            "file and run it again, or give replicates as a count."
        )
    margin = margin if margin is not None else study.analysis.margin
    if margin is None:
        raise AblateError(
            f"replicates until decided need the margin an effect must stay within to be "
            f"equivalent: {option('margin', 'D')} (in the response's units), or analysis.margin "
            "in the study file."
        )
    most = most or study.run.max_replicates
    return Rule(margin, most, alpha, start_replicates=max(2, study.replicates))


def _first(results: Results, replicates: int) -> Results:
    """The results of the first ``replicates`` replicates (a look sees what it planned to)."""
    return replace(results, trials=results.trials[results.trials["replicate"] < replicates])


def terms(a: Analysis) -> tuple[list[str], np.ndarray, np.ndarray, np.ndarray]:
    """Every effect the rounds decide: each two-level factor's effect, and each pairwise
    difference of a factor's levels, with its estimate, standard error and residual df
    (with the blocks in the model where there are blocks)."""
    effects, pairs = a.tested_effects, a.tested_pairwise
    df = float(a.blocks.df_resid if a.blocks is not None else a.fit.df_resid)
    names = [str(f) for f in effects["factor"]]
    est, se = list(effects["effect"]), list(effects["std_err"])
    many = {f.name for f in a.factors if len(f.levels) > 2}
    for row in pairs[pairs["factor"].isin(many)].itertuples():
        names.append(f"{row.factor}: {row.level_b} − {row.level_a}")
        est.append(row.diff)
        se.append(row.std_err)
    if not names:
        raise AblateError("replicates until decided need an effect to decide: a factor of two "
                          "levels, or one whose levels are compared pairwise.")  # fmt: skip
    return names, np.array(est, float), np.array(se, float), np.full(len(names), df)


def _look_line(look: Look, a: Analysis) -> str:
    spent = f"α spent {look.spent:.3g} of {a.options.alpha:g}"
    level = f"this look tests at {look.level:.2g}" if math.isfinite(look.level) else ""
    counts = ", ".join(f"{look.decisions.count(k)} {k}" for k in
                       ("different", "equivalent", "inconclusive"))  # fmt: skip
    return f"look at {look.replicates} replicates per run: {counts} ({level}; {spent})"
