"""The checks before a run: everything the user supplies is resolved and exercised once.

A study file that parses can still not run: the builder named as ``package.module:function``
may not exist or not take the study's factors, the dataset function may raise, the data may
not fit the task, the first cell's model may return the wrong thing or an output of the
wrong shape, a training function may not take the keywords ablate passes, a command may
name a field no factor fills. The study's trainer (:mod:`ablate.training.base`) finds each
of these before any worker starts -- so that a mistake costs seconds, not a study's worth of
failed trials -- and reports it as the user's (exit code 2), with the user's own traceback
where their code raised. For ablate's Keras loop (:mod:`ablate.training.keras_checks`):

1. the data is loaded once (a dataset function is called) and checked against itself, the
   task and the model's declared inputs; the task's trivial baselines are computed on it;
2. a user's builder is imported and its signature checked against what ablate passes;
3. the first cell's model is built on the data's input shape and run forward once on a few
   training examples: its output must have the task's shape and be finite.

Steps 2 and 3 import Keras. ``ablate run`` makes them in a short-lived child process, sent a
few examples of the data (:func:`checked_before_run`), so that the coordinator never holds a
framework or a GPU; where the calling process has imported Keras already (a notebook, the
tests), they run there.
"""

from __future__ import annotations

from ablate.execution import tensorboard
from ablate.study.settings import Study
from ablate.training.base import Checked
from ablate.training.trainers import trainer_for

__all__ = ["Checked", "checked_before_run", "preflight"]


def preflight(study: Study, *, build: bool = True) -> Checked:
    """The checks, all in this process (``build``: the first cell's model built and run
    too, where there is one); raises AblateError."""
    tensorboard.check(study)
    return trainer_for(study).check(build=build)


def checked_before_run(study: Study) -> Checked:
    """The checks as ``ablate run``'s coordinator makes them: no framework kept here."""
    tensorboard.check(study)
    return trainer_for(study).check_before_run()
