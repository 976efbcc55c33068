"""The user's own training function as a trainer (``trainer: {function: ...}``): PyTorch,
scikit-learn, anything that Python can call. :mod:`~ablate.training.user` calls it."""

from __future__ import annotations

from collections.abc import Sequence

from ablate.errors import AblateError
from ablate.study.grid import TrialSpec
from ablate.targets import check_keywords
from ablate.tasks.declared import DeclaredTask
from ablate.training.base import Checked, Live, StopRequested, Trainer, import_beside
from ablate.training.records import TrialResult
from ablate.training.user import PROTOCOL, train_with_function, training_function


class FunctionTrainer(Trainer):
    """Calls the study's training function once per trial (see :mod:`ablate.training.user`)."""

    kind = "function"

    @property
    def target(self) -> str:
        assert self.study.trainer is not None and self.study.trainer.function is not None
        return self.study.trainer.function

    def check(self, *, build: bool = True) -> Checked:
        """Import the function and check its signature against the keywords ablate passes
        (``trainer.options``, the factors; ``seed`` and ``report`` where it names them).
        Nothing trains: the function's data and model are its own."""
        study = self.study
        import_beside(study)
        assert study.trainer is not None
        options = tuple(name for name, _ in study.trainer.options)
        factors, streams = study.factor_names, tuple(f"seed_{n}" for n in study.streams.names)
        try:
            check_keywords(
                training_function(self.target), role="the training function",
                target=self.target, given=(*options, *factors, *streams), protocol=PROTOCOL,
                origin=lambda n: _origin(n, factors, streams),
            )  # fmt: skip
        except AblateError as err:
            where = study.source or study.name
            raise AblateError(f"{where}: trainer: {err.raw}", err.detail) from None
        responses = ", ".join(r.name for r in study.responses)
        what = f"{self.target} (your training function, returning {responses})"
        task = study.task_spec
        assert isinstance(task, DeclaredTask)  # a study with a trainer: its declared responses
        return Checked("the data your training function loads", task.baselines(), what)

    def describe(self, checked: Checked) -> list[str]:
        return [f"Trained by {checked.model}; it takes every factor."]

    def train(
        self, specs: Sequence[TrialSpec], lives: Sequence[Live], stop: StopRequested
    ) -> list[TrialResult]:
        (spec,), (live,) = specs, lives
        return [train_with_function(self.study, spec, on_epoch=live.epoch, stop_requested=stop)]


def _origin(name: str, factors: tuple[str, ...], streams: tuple[str, ...]) -> str:
    """Where a keyword the function must take comes from, for the message."""
    if name in factors:
        return " (a factor)"
    if name in streams:
        return f" (the seed of the stream {name.removeprefix('seed_')}, named in replicates)"
    return " (in trainer.options)"
