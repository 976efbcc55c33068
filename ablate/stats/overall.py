"""The whole analysis of a study: the final values' (:func:`ablate.stats.analysis.analyze`)
with the effects at every recorded epoch (:func:`ablate.stats.over_epochs.effects_over_epochs`)
and the findings they add. What ``ablate analyze``, ``plot`` and ``report`` and
:func:`ablate.analyze` show.
"""

from __future__ import annotations

from dataclasses import replace
from typing import Any

from ablate.results import Results
from ablate.stats import analysis, more_findings
from ablate.stats.options import Options
from ablate.stats.over_epochs import effects_over_epochs
from ablate.stats.result import Analysis


def analyze(results: Results, options: Options | None = None, **overrides: Any) -> Analysis:
    """Fit the factorial model to a results folder or a bare table (see
    :func:`ablate.stats.analysis.analyze`) and, where the trials recorded their epochs, the
    same model at every epoch (at most :data:`ablate.stats.over_epochs.AT_MOST` of them)."""
    final = analysis.analyze(results, options, **overrides)
    over = None
    if results.epochs is not None and len(results.epochs):
        over = effects_over_epochs(results, final.options)
    extra = (*more_findings.improvement(final.improvement, final.verdicts, final.confidence),
             *more_findings.epochs(over))  # fmt: skip
    return replace(final, over_epochs=over, findings=(*final.findings, *extra))
