"""ablate's own Keras loop as a trainer: a trial at a time, or a fused group of them under JAX.

The checks are :mod:`~ablate.training.keras_checks`' (the data, the builder, the first cell's
model run forward); a worker imports Keras and loads the data once (:meth:`prepare`), then
trains each trial with :func:`~ablate.training.trial.train_trial`, or a group of trials that
may share one compiled program with :func:`~ablate.training.fused.train_group`
(:mod:`~ablate.training.fusion` says which, and how many).
"""

from __future__ import annotations

import sys
from collections.abc import Hashable, Sequence
from dataclasses import replace

from ablate.data import Dataset, load_dataset
from ablate.errors import AblateError
from ablate.study.grid import TrialSpec
from ablate.study.settings import Study
from ablate.training import backend, fusion
from ablate.training.base import Checked, Live, StopRequested, Trainer, import_beside
from ablate.training.keras_checks import check_data, check_fuse, check_model, model_in_child, sample
from ablate.training.records import TrialResult


class KerasTrainer(Trainer):
    """A built-in model or the user's builder, trained by ablate's Keras loop."""

    kind = "keras"
    dataset: Dataset | None = None

    def check(self, *, build: bool = True) -> Checked:
        study = self.study
        require_keras(study)
        check_fuse(study)
        data = check_data(study)
        model = check_model(study, sample(data)) if build else ""
        return Checked(data.describe(), study.task_spec.baselines(data), model)

    def check_before_run(self) -> Checked:
        """The data here, the model in a child process unless Keras is imported here."""
        study = self.study
        import_beside(study)  # also for the workers this process spawns later
        require_keras(study)
        check_fuse(study)
        data = check_data(study)
        checked = Checked(data.describe(), study.task_spec.baselines(data))
        probe = check_model if "keras" in sys.modules else model_in_child
        return replace(checked, model=probe(study, sample(data)))

    def describe(self, checked: Checked) -> list[str]:
        study = self.study
        return [f"Task {study.task} with the {study.model.builder} model on {checked.data}.",
                f"Model: {checked.model}, and runs forward on training examples."]  # fmt: skip

    def group_size(self) -> int:
        return fusion.group_size(self.study)

    def group_key(self, spec: TrialSpec) -> Hashable:
        return fusion.group_key(self.study, spec)

    def prepare(self) -> None:
        require_keras(self.study)  # a worker elsewhere (a SLURM node) may lack it
        backend.import_keras()  # once per worker, so that no trial's time includes it
        self.dataset = load_dataset(self.study.data, self.study.seed)

    def examples_per_epoch(self) -> int:
        return len(self.dataset.x_train) if self.dataset is not None else 0

    def train(
        self, specs: Sequence[TrialSpec], lives: Sequence[Live], stop: StopRequested
    ) -> list[TrialResult]:
        from ablate.training.fused import train_group
        from ablate.training.trial import train_trial

        if self.dataset is None:
            self.prepare()
        assert self.dataset is not None
        if len(specs) == 1:  # a group of one trains as any single trial does
            live = lives[0]
            return [train_trial(self.study, specs[0], self.dataset, on_epoch=live.epoch,
                                on_progress=live.progress)]  # fmt: skip

        def progress(images: int) -> None:
            for live in lives:
                live.progress(images)

        epochs = [live.epoch for live in lives]
        return train_group(self.study, list(specs), self.dataset, on_epoch=epochs,
                           on_progress=progress)  # fmt: skip

    def last_values(self) -> tuple[str, ...]:
        return ("train_loss",)


def require_keras(study: Study) -> None:
    """Refuse, with the install command that fixes it, a Keras study where Keras cannot run."""
    missing = backend.missing_keras()
    if missing is None:
        return
    why, fix = missing
    raise AblateError(
        f"{study.source or study.name}: this study trains the {study.model.builder} model "
        f"with ablate's Keras loop, and {why}: {fix}, then run it again. (A study whose "
        "trainer is your own function or program, under trainer:, needs no framework.)"
    )
