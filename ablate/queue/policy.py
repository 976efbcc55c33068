"""What the queue needs to know of a study, built once from it: the queue's policy.

The queue (:mod:`ablate.queue.claims`) does not read a :class:`~ablate.study.settings.Study`:
everything it decides -- how often a trial is tried again, when a silent or stalled one is
taken back, which value Optuna records, the levels each factor's parameter takes -- comes from
this small value, which :func:`policy_of` builds from the study.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from ablate.study.settings import Study


@dataclass(frozen=True)
class QueuePolicy:
    """The queue's rules for one study."""

    study: str  # the study's name (the experiment in storage, the spool's records)
    fingerprint: str  # the experiment's (a spooled result must belong to it)
    factors: tuple[str, ...]  # in study-file order: a trial's levels are ordered by it
    choices: tuple[tuple[str, tuple[Any, ...]], ...]  # each factor's levels (Optuna params)
    retries: int  # extra attempts after a failure that trying again may cure, or a timeout
    lost_retries: int  # extra attempts after the trial's worker was lost
    stale_after: float  # seconds without a heartbeat after which a worker is lost
    stall_timeout: float | None = None  # seconds a trial may go without reporting progress
    trial_timeout: float | None = None  # seconds a trial may run in all
    response: str = "test_loss"  # the value per epoch Optuna's tools show
    objective: tuple[str, ...] = ("test_loss",)  # the value a complete trial records, in order

    @property
    def levels(self) -> dict[str, tuple[Any, ...]]:
        """Each factor's levels, by factor."""
        return dict(self.choices)


def policy_of(study: Study) -> QueuePolicy:
    """The queue's policy for ``study``."""
    run = study.run
    response = study.analysis.response
    objective = tuple(dict.fromkeys((response, study.task_spec.default_response, "test_loss")))
    return QueuePolicy(
        study=study.name,
        fingerprint=study.fingerprint(),
        factors=study.factor_names,
        choices=tuple((f.name, f.levels) for f in study.factors),
        retries=run.retries,
        lost_retries=run.lost_retries,
        stale_after=max(5.0 * run.heartbeat_seconds, 1.0),
        stall_timeout=run.stall_timeout,
        trial_timeout=run.trial_timeout,
        response=response,
        objective=objective,
    )
