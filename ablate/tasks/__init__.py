"""Tasks: what a model is trained to do, how it is judged, and what it scores by chance.

=================  ==========================================  ===============================
task               data and model                              responses (default first)
=================  ==========================================  ===============================
reconstruction     inputs in [0, 1]; output = input's shape    test_loss, test_recon_loss, …
classification     labels 0 … K−1; K softmax outputs           test_accuracy, test_loss, …
regression         numeric targets; one linear output each     test_loss, test_mae, test_r2
=================  ==========================================  ===============================
"""

from __future__ import annotations

from ablate.tasks.base import Baseline, Finish, Goal, Metric, Task
from ablate.tasks.classification import Classification
from ablate.tasks.reconstruction import Reconstruction
from ablate.tasks.regression import Regression

TASKS: dict[str, Task] = {t.name: t for t in (Reconstruction(), Classification(), Regression())}

#: Result columns every task records, besides its own, and which way is better.
COMMON_GOALS: dict[str, Goal] = {
    "train_loss": "min",
    "seconds": "min",
    "train_seconds": "min",
    "eval_seconds": "min",
    "build_seconds": "min",
    "images_per_second": "max",
    "params": "min",
}


def goal_of(column: str, task: Task | None = None) -> Goal | None:
    """Whether lower or higher is better for a result column (None: unknown).

    With ``task`` its own metrics decide; without (a bare table), any task's metric of that
    name does, so a table from elsewhere with a ``test_accuracy`` column still reads right.
    """
    if column in COMMON_GOALS:
        return COMMON_GOALS[column]
    for candidate in (task,) if task is not None else TASKS.values():
        goal = candidate.goal(column) if candidate is not None else None
        if goal is not None:
            return goal
    return None


def bounds_of(column: str, task: Task | None = None) -> tuple[float | None, float | None]:
    """The values a result column can take, from the metric declarations (as :func:`goal_of`
    finds the direction); (None, None) where unknown."""
    for candidate in (task,) if task is not None else TASKS.values():
        found = candidate.bounds(column) if candidate is not None else (None, None)
        if found != (None, None):
            return found
    return None, None


__all__ = [
    "COMMON_GOALS",
    "TASKS",
    "Baseline",
    "Classification",
    "Finish",
    "Goal",
    "Metric",
    "Reconstruction",
    "Regression",
    "Task",
    "bounds_of",
    "goal_of",
]
