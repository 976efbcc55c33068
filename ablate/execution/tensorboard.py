"""TensorBoard event files, a run per trial, where a study asks for them (``run.tensorboard``).

Each trial's epochs are written as scalars (step = epoch) to
``results/<study>/tensorboard/<cell> r<replicate>/``, as its worker hears of them, whatever
trains it (ablate's Keras loop, a training function that reports, a program that writes an
epochs file); ``tensorboard --logdir results/<study>/tensorboard`` shows them side by side,
live. tensorboardX writes the files, so that no TensorFlow is needed: it is a small, maintained
library that does exactly this, where writing TensorBoard's record format and protobufs by
hand would be code of our own to keep in step with TensorBoard.
"""

from __future__ import annotations

import importlib.util
import math
from pathlib import Path
from typing import Any

from ablate.errors import AblateError
from ablate.study.grid import TrialSpec
from ablate.study.settings import Study
from ablate.training.records import EpochRecord

#: The folder of the event files, in the study's results folder.
TENSORBOARD_DIR = "tensorboard"


def check(study: Study) -> None:
    """Refuse ``run.tensorboard`` where tensorboardX is not installed (before anything trains)."""
    if study.run.tensorboard and importlib.util.find_spec("tensorboardX") is None:
        raise AblateError(
            f"{study.source or study.name}: run.tensorboard writes TensorBoard event files with "
            "tensorboardX, which is not installed: pip install 'ablate[tensorboard]', or set "
            "run.tensorboard: false."
        )


def run_folder(study: Study, spec: TrialSpec) -> Path:
    """A trial's TensorBoard run: its cell and replicate, as TensorBoard lists them."""
    return study.results_dir / TENSORBOARD_DIR / f"{spec.cell.label} r{spec.replicate}"


class EventFiles:
    """One trial's event file: opened at its first epoch, flushed at each, closed at the end.
    An attempt that is tried again starts its run afresh (the folder is emptied)."""

    def __init__(self, study: Study, spec: TrialSpec) -> None:
        self._folder = run_folder(study, spec)
        self._writer: Any = None

    def epoch(self, record: EpochRecord) -> None:
        if self._writer is None:
            from tensorboardX import SummaryWriter

            for old in self._folder.glob("events.out.tfevents.*"):  # an earlier attempt's
                old.unlink()
            self._writer = SummaryWriter(str(self._folder), flush_secs=5)
        for name, value in record.values.items():
            if value is not None and math.isfinite(value):
                self._writer.add_scalar(name, value, record.epoch)
        if record.learning_rate:
            self._writer.add_scalar("learning_rate", record.learning_rate, record.epoch)
        self._writer.flush()

    def close(self) -> None:
        if self._writer is not None:
            self._writer.close()
            self._writer = None
