"""Which trainer trains a study: the one place that tells the ways of training apart.

The rest of ablate asks :func:`trainer_for` and then speaks only the
:class:`~ablate.training.base.Trainer` seam; the implementations are imported here, on demand,
so that a study trained by a program never imports the Keras loop's modules.
"""

from __future__ import annotations

from ablate.study.settings import Study
from ablate.training.base import Trainer


def trainer_for(study: Study) -> Trainer:
    """The study's trainer: its command, its training function, or ablate's Keras loop (fused
    where ``run.fuse`` asks for it). The one place that tells them apart."""
    if study.trainer is not None and study.trainer.command is not None:
        from ablate.training.command import CommandTrainer

        return CommandTrainer(study)
    if study.trainer is not None:
        from ablate.training.function_trainer import FunctionTrainer

        return FunctionTrainer(study)
    from ablate.training.keras_trainer import KerasTrainer

    return KerasTrainer(study)
