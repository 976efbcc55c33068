"""What one trial produced, as plain data that survives JSON: its epochs and its result.

Values are keyed by their result column (``test_loss``, ``train_accuracy``, ``test_recall_3``
…), whatever the task, so the records, the storage and the parquet export need no change
when a task gains a metric. Results recorded by ablate before tasks existed (fixed fields
``test_recon_loss``, ``test_kl_loss``, ``test_loss``) are read into the same form.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field, fields
from typing import Any, Literal

Status = Literal["complete", "diverged", "failed"]


@dataclass(frozen=True)
class EpochRecord:
    """One epoch: training values (running means over the epoch) and test-set values."""

    epoch: int  # 1-based
    values: dict[str, float | None]  # train_<metric>, test_<metric> (None: not measured)
    learning_rate: float
    train_seconds: float  # training steps only, validation excluded
    eval_seconds: float

    def get(self, column: str) -> float | None:
        return self.values.get(column)

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> EpochRecord:
        return cls(
            epoch=int(d["epoch"]),
            values=dict(d.get("values") or {}),
            learning_rate=float(d.get("learning_rate") or 0.0),
            train_seconds=float(d.get("train_seconds") or 0.0),
            eval_seconds=float(d.get("eval_seconds") or 0.0),
        )


@dataclass(frozen=True)
class TrialResult:
    """Everything one trial produced, as plain data that survives JSON."""

    status: Status
    values: dict[str, float | None] = field(default_factory=dict)  # test_*, train_loss
    details: dict[str, Any] = field(default_factory=dict)  # e.g. the confusion matrix
    epochs: int = 0  # epochs completed
    history: tuple[EpochRecord, ...] = ()
    params: int | None = None  # count_params(): BatchNorm moving statistics included
    trainable_params: int | None = None
    seconds: float = 0.0  # wall time of the whole trial
    build_seconds: float = 0.0  # model build, compile and optimizer set-up
    train_seconds: float = 0.0
    eval_seconds: float = 0.0
    images_per_second: float | None = None  # training examples per second of training
    backend: str = ""
    device: str = ""
    versions: dict[str, str] = field(default_factory=dict)
    error: str | None = None
    error_type: str | None = None  # the exception's class, e.g. "ValueError"
    transient: bool = False  # a failure that trying again may cure (ablate.training.failures)
    traceback: str | None = None
    outputs: bytes | None = field(default=None, repr=False)  # what the model learned (.npz)

    def value(self, column: str) -> float | None:
        """A result column's value (a test response, ``train_loss``); None if not measured."""
        return self.values.get(column)

    def to_dict(self) -> dict[str, Any]:
        """JSON-safe: non-finite floats become None (the status says what happened).

        ``outputs`` is left out: the storage keeps it apart (see :mod:`ablate.storage.base`).
        (Field by field rather than ``dataclasses.asdict``, which copied a 25-epoch history
        several times over: 4 ms for every trial recorded.)
        """
        out = {f.name: getattr(self, f.name) for f in fields(self) if f.name != "outputs"}
        out["history"] = [
            {f.name: getattr(e, f.name) for f in fields(EpochRecord)} for e in self.history
        ]
        return {k: _finite(v) for k, v in out.items()}

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> TrialResult:
        known = {k: v for k, v in d.items() if k in cls.__dataclass_fields__}
        known["values"] = dict(d.get("values") or {})
        known["history"] = tuple(EpochRecord.from_dict(e) for e in d.get("history", ()))
        return cls(**known)


def _finite(value: object) -> object:
    """Replace NaN and infinities, anywhere in nested data, with None."""
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, dict):
        return {k: _finite(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_finite(v) for v in value]
    return value
