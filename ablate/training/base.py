"""The trainer seam: how a study's trials are trained, stated once for every way of training.

A :class:`Trainer` is what the rest of ablate knows of training. The checks before a run, the
dry run, the worker and the export call it; :func:`ablate.training.trainers.trainer_for` is
the one place that picks one from the study. Its contract, as Optuna's ``BaseStorage`` states
Optuna's:

- :meth:`~Trainer.check` resolves and exercises what the study names before anything trains
  (a builder, a dataset, a training function, a command) and raises
  :class:`~ablate.errors.AblateError` naming what is wrong; it returns what it found
  (:class:`Checked`: the data, the trivial baselines, the model or program);
  :meth:`~Trainer.check_before_run` is the same for a coordinator, which must not hold a
  framework or a GPU (the Keras checks run in a child process);
- :meth:`~Trainer.describe` says in words what a run would train (the dry run);
- :meth:`~Trainer.group_size` trials are claimed at once, those with equal
  :meth:`~Trainer.group_key` trained together (fused training; 1 everywhere else);
- :meth:`~Trainer.prepare` runs once per worker before its first trial (a framework
  imported, the data loaded): no trial's time includes it;
- :meth:`~Trainer.train` trains a group and returns one
  :class:`~ablate.training.records.TrialResult` per trial, in order; it never raises for a
  failing trial (the result says ``failed`` or ``diverged``, with the error), reports every
  epoch and every sign of progress to each trial's :class:`Live`, and lets a stop request of
  its worker (``KeyboardInterrupt``: Ctrl-C, SIGTERM, a time limit) propagate, after it has
  stopped what it started (a command's processes, say): the worker then hands the trials back.
"""

from __future__ import annotations

import sys
from abc import ABC, abstractmethod
from collections.abc import Callable, Hashable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, ClassVar, Protocol

from ablate.study.grid import TrialSpec
from ablate.study.settings import Study
from ablate.training.records import EpochRecord, TrialResult

if TYPE_CHECKING:
    from ablate.tasks import Baseline


@dataclass(frozen=True)
class Checked:
    """What the checks before a run found: the data, the baselines a model must beat, and
    what trains (the first cell's model, the function, the program)."""

    data: str  # the dataset, described
    baselines: dict[str, Baseline]
    model: str = ""  # what trains, in words ("" when it was not built)


class Live(Protocol):
    """Where a training trial reports: every epoch, and signs of progress within one."""

    def epoch(self, record: EpochRecord) -> None:
        """An epoch finished, with its values."""

    def progress(self, images: int) -> None:
        """The trial made progress: ``images`` training examples since the last report
        (0: a sign of life without a count, as a line a command printed)."""

    def process(self, pid: int | None) -> None:
        """The trial runs a process group of its own, led by ``pid`` (None: it has ended):
        whoever ends the worker ends it too."""


#: Asked whether the worker is being stopped (a training function's ``report`` asks it).
StopRequested = Callable[[], bool]


class Trainer(ABC):
    """How the trials of one study are trained (see the module for the contract)."""

    #: The trainer's name, as the dry run and the results record it.
    kind: ClassVar[str]

    def __init__(self, study: Study) -> None:
        self.study = study

    @abstractmethod
    def check(self, *, build: bool = True) -> Checked:
        """Resolve and exercise what the study names, in this process (``build``: build and
        run the first cell's model too, where there is one); raises AblateError."""

    def check_before_run(self) -> Checked:
        """:meth:`check`, as a coordinator makes it (no framework kept in this process)."""
        return self.check()

    @abstractmethod
    def describe(self, checked: Checked) -> list[str]:
        """What a run would train, in words, for the dry run."""

    def group_size(self) -> int:
        """How many trials a worker claims and trains at once."""
        return 1

    def group_key(self, spec: TrialSpec) -> Hashable:
        """Trials with equal keys may train together (only asked where the size is above 1)."""
        return spec.key

    def prepare(self) -> None:  # noqa: B027 (optional: most trainers have nothing to load)
        """Once per worker, before its first trial."""

    def examples_per_epoch(self) -> int:
        """Training examples in an epoch, where the trainer knows them (0: it does not), for
        the throughput a run shows."""
        return 0

    @abstractmethod
    def train(
        self, specs: Sequence[TrialSpec], lives: Sequence[Live], stop: StopRequested
    ) -> list[TrialResult]:
        """Train these trials (see the module); one result each, in order."""

    def last_values(self) -> tuple[str, ...]:
        """Columns of the epochs table the trials table takes from a trial's last epoch (the
        Keras loop's running training loss; a function or command reports its own)."""
        return ()


def import_beside(study: Study) -> None:
    """Let a module that sits beside the study file (a builder, a dataset or a training
    function) be imported, as a Python script's folder is: by this process and by the
    workers it spawns (they inherit its import path)."""
    if study.source and Path(study.source).is_file():
        folder = str(Path(study.source).resolve().parent)
        if folder not in sys.path:
            sys.path.insert(0, folder)
