"""A task whose responses the study file declares: for a user's own training function.

A study that names ``trainer: "package.module:function"`` trains with the user's code, so
ablate cannot know what the model is judged by; the study file says it once, under
``responses:`` -- each response's name, whether lower or higher is better, the values it can
take and, where there is one, the trivial baseline a model must beat::

    responses:
      test_accuracy: {goal: max, low: 0, high: 1, baseline: 0.1135, examples: 1000,
                      baseline_what: always predicting the most frequent digit}
      test_loss: {goal: min}

:class:`DeclaredTask` turns that declaration into a :class:`~ablate.tasks.base.Task`, so that
the result columns, "best" and "worst", the analysis's default response, the range checks and
the learned-or-not test all read it as they read a built-in task's metrics. The response's
name is its result column, exactly as the function returns it.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, ClassVar, Literal

from ablate.parameters import REQUIRED, setting
from ablate.tasks.base import Baseline, Goal, Metric, Task

if TYPE_CHECKING:
    from ablate.data import Dataset


@dataclass(frozen=True)
class Response:
    """One declared response of a training function: its metric and its trivial baseline."""

    name: str  # the mapping's key in the study file
    goal: Literal["min", "max"] = setting(REQUIRED, "min: lower is better; max: higher is better",
                         kind="choice", choices=("min", "max"))  # fmt: skip
    low: float | None = setting(None, "the lowest value it can take (an interval below is "
                                "flagged)", kind="float", none=True)  # fmt: skip
    high: float | None = setting(None, "the highest value it can take", kind="float", none=True)
    baseline: float | None = setting(
        None, "what a model that learned nothing scores; trials are tested against it",
        kind="float", none=True,
    )  # fmt: skip
    baseline_what: str = setting(
        "the trivial baseline the study file declares", "the baseline, in words"
    )
    examples: int | None = setting(
        None, "for a share of test examples (accuracy, 0 to 1): how many, for the exact "
        "binomial test against the baseline", kind="int", minimum=1, none=True,
    )  # fmt: skip
    doc: str = setting("", "what it measures, in words")

    def metric(self) -> Metric:
        return Metric(self.name, self.goal, self.doc or "declared in the study file",
                      low=self.low, high=self.high)  # fmt: skip

    def to_dict(self) -> dict[str, object]:
        out: dict[str, object] = {"goal": self.goal}
        for key in ("low", "high", "baseline", "examples"):
            if getattr(self, key) is not None:
                out[key] = getattr(self, key)
        if self.baseline is not None:
            out["baseline_what"] = self.baseline_what
        if self.doc:
            out["doc"] = self.doc
        return out


class DeclaredTask(Task):
    """The task of a study trained by a user's function (see the module)."""

    name: ClassVar[str] = "custom"
    doc: ClassVar[str] = "your own training function; the study file declares its responses"

    def __init__(self, responses: tuple[Response, ...]) -> None:
        self.responses = responses
        self.metrics = tuple(r.metric() for r in responses)  # type: ignore[misc]
        self.default_response = responses[0].name  # type: ignore[misc]

    @property
    def result_columns(self) -> tuple[str, ...]:
        """The declared names, as the function returns them (no ``test_`` prefix added)."""
        return tuple(r.name for r in self.responses)

    @property
    def epoch_columns(self) -> tuple[str, ...]:
        """Per-epoch values are whatever ``report`` was given; the export adds them as seen."""
        return ()

    def _declared(self, column: str) -> Response | None:
        return next((r for r in self.responses if r.name == column), None)

    def goal(self, column: str) -> Goal | None:
        found = self._declared(column)
        return found.goal if found is not None else None

    def bounds(self, column: str) -> tuple[float | None, float | None]:
        found = self._declared(column)
        return (found.low, found.high) if found is not None else (None, None)

    def is_response(self, column: str) -> bool:
        return self._declared(column) is not None

    def baselines(self, data: Dataset | None = None) -> dict[str, Baseline]:
        return {r.name: Baseline(r.baseline, r.baseline_what, r.examples)
                for r in self.responses if r.baseline is not None}  # fmt: skip
