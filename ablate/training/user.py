"""One trial trained by the user's own function (``trainer:``): PyTorch, scikit-learn, anything.

The function is called once per trial with the trial's factor levels and ``trainer.options``
as keyword arguments, and, where its signature names them, with

- ``seed``: the trial's seed (replicate r of a cell: the study's seed + r); Python's
  ``random``, NumPy's global generator and, where it is imported, PyTorch are seeded with it
  before the call;
- ``report``: ``report(epoch, **values)`` records one epoch's values (the epochs table,
  Optuna's intermediate values, live progress, the heartbeat). When the worker is being
  stopped (Ctrl-C, SIGTERM from SLURM before preemption) it raises :class:`TrialStopped`,
  which ablate catches to hand the trial back to the queue untouched.

It returns a mapping with every response the study file declares (``responses:``), each a
number (a Python or NumPy scalar, or anything with ``.item()``); NumPy arrays under other keys
are kept as the trial's outputs (``outputs/<trial>.npz``), and a ``pathlib.Path`` to a file is
kept there as its bytes. Outcomes: an exception fails the trial with the function's own
traceback; a response that is NaN or infinite marks it *diverged*; a declared response missing
from the mapping, or an undeclared number in it, fails it naming the key.
"""

from __future__ import annotations

import math
import random
import sys
import time
import traceback
from collections.abc import Callable, Mapping
from functools import cache
from pathlib import Path
from typing import Any

import numpy as np

from ablate.errors import AblateError
from ablate.study.grid import TrialSpec
from ablate.study.settings import Study
from ablate.targets import import_target, protocol_arguments, user_frames
from ablate.tasks.base import npz_bytes
from ablate.training import backend
from ablate.training.failures import describe_exception, is_transient
from ablate.training.records import EpochRecord, TrialResult

EpochCallback = Callable[[EpochRecord], None]
#: The arguments ablate passes only where the function's signature names them.
PROTOCOL = ("seed", "report")


class TrialStopped(KeyboardInterrupt):
    """Raised by ``report`` when the worker is asked to stop: the trial goes back to the queue.

    A ``KeyboardInterrupt``, so that ``except Exception`` in the user's loop lets it through."""


@cache
def training_function(target: str) -> Callable[..., Any]:
    """The user's function, imported once per worker (an :class:`AblateError` if it cannot)."""
    return import_target(target, "the training function")


def train_with_function(
    study: Study,
    spec: TrialSpec,
    on_epoch: EpochCallback | None = None,
    stop_requested: Callable[[], bool] = lambda: False,
) -> TrialResult:
    """Call the study's training function for one trial; never raises for a failing trial
    (a stop request propagates as :class:`TrialStopped`)."""
    assert study.trainer is not None and study.trainer.function is not None
    function = training_function(study.trainer.function)
    history: list[EpochRecord] = []
    start = time.perf_counter()
    report = _reporter(history, on_epoch, stop_requested, start)
    seed_everything(spec.seed)
    protocol = {"seed": spec.seed, "report": report}
    kwargs = {**dict(study.trainer.options), **spec.cell.as_dict(), **stream_seeds(spec)}
    try:
        returned = function(**protocol_arguments(function, protocol), **kwargs)
    except Exception as err:
        return TrialResult(
            status="failed", epochs=len(history), history=tuple(history),
            seconds=time.perf_counter() - start, error=describe_exception(err),
            error_type=type(err).__name__, transient=is_transient(err, "train"),
            traceback=user_frames(err) or traceback.format_exc(), **_provenance(),
        )  # fmt: skip
    return outcome(study, returned, tuple(history), time.perf_counter() - start)


def stream_seeds(spec: TrialSpec) -> dict[str, int]:
    """Each seed stream's seed, by the name a trainer receives it under (``seed_init``)."""
    return {f"seed_{name}": seed for name, _, seed in spec.streams}


def _reporter(
    history: list[EpochRecord], on_epoch: EpochCallback | None,
    stop_requested: Callable[[], bool], start: float,
) -> Callable[..., None]:  # fmt: skip
    last = [start]

    def report(epoch: int, **values: Any) -> None:
        """Record epoch ``epoch`` (1-based) with its values, e.g. report(3, train_loss=0.2)."""
        if stop_requested():
            raise TrialStopped("the worker was asked to stop; the trial goes back to the queue")
        now = time.perf_counter()
        numbers = {k: _number(v) for k, v in values.items()}
        record = EpochRecord(epoch=int(epoch), values=numbers, learning_rate=0.0,
                             train_seconds=now - last[0], eval_seconds=0.0)  # fmt: skip
        last[0] = now
        history.append(record)
        if on_epoch is not None:
            on_epoch(record)

    return report


def outcome(
    study: Study, returned: Any, history: tuple[EpochRecord, ...], seconds: float,
    source: str = "the training function", provenance: dict[str, Any] | None = None,
) -> TrialResult:  # fmt: skip
    """What the function returned (or a program wrote: ``source``, ``provenance`` its
    backend, device and versions), as the trial's result (see the module for the rules)."""
    provenance = provenance or _provenance()
    common: dict[str, Any] = {"epochs": len(history), "history": history, "seconds": seconds,
                              "train_seconds": seconds, **provenance}  # fmt: skip
    try:
        values, arrays = _split(study, returned, source)
    except AblateError as err:
        return TrialResult(status="failed", error=str(err), error_type="AblateError", **common)
    bad = [k for k, v in values.items() if v is None or not math.isfinite(v)]
    if bad:
        return TrialResult(status="diverged", values=values, error=f"{source} returned a "
                           f"non-finite {', '.join(bad)}", **common)  # fmt: skip
    return TrialResult(status="complete", values=values, outputs=npz_bytes(arrays), **common)


def _split(
    study: Study, returned: Any, source: str = "the training function"
) -> tuple[dict[str, float | None], dict[str, np.ndarray]]:
    """The declared responses as numbers, and what is kept as outputs; AblateError naming
    the key where the mapping does not match the declaration."""
    declared = [r.name for r in study.responses]
    if not isinstance(returned, Mapping):
        raise AblateError(f"{source} returned {type(returned).__name__}, not a mapping of its "
                          f"responses ({', '.join(declared)})")  # fmt: skip
    missing = [name for name in declared if name not in returned]
    if missing:
        raise AblateError(
            f"{source} returned no {', '.join(missing)}, which responses: declares; return it, "
            "or remove it from responses:"
        )
    values, arrays = {}, {}
    for key, value in returned.items():
        if key in declared:
            values[key] = _number(value)
            if values[key] is None:
                raise AblateError(f"{source} returned {key} = {value!r}, not a number")
        elif isinstance(value, np.ndarray):
            arrays[str(key)] = value
        elif isinstance(value, Path) and value.is_file():
            arrays[str(key)] = np.frombuffer(value.read_bytes(), dtype=np.uint8)
        else:
            raise AblateError(f"{source} returned {key}, which responses: does not declare (it "
                              f"declares {', '.join(declared)}); declare it there, or return "
                              "arrays and files only under other keys")  # fmt: skip
    return values, arrays


def _number(value: object) -> float | None:
    """A float from a Python or NumPy scalar or a one-element tensor (``.item()``); None if
    it is not a number."""
    if hasattr(value, "item") and not isinstance(value, (int, float)):
        try:
            value = value.item()
        except (TypeError, ValueError, RuntimeError):
            return None
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return None
    return float(value)


def seed_everything(seed: int) -> None:
    """Seed Python's ``random``, NumPy's global generator and PyTorch where it is imported."""
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch = sys.modules.get("torch")
    if torch is not None:
        torch.manual_seed(seed)


def _provenance() -> dict[str, Any]:
    """Where the trial ran: the versions :func:`backend.versions` records (and scikit-learn's
    where the function imported it), the device PyTorch trains on, else the CPU."""
    versions = backend.versions()
    if "sklearn" in sys.modules:
        versions["scikit-learn"] = str(sys.modules["sklearn"].__version__)
    torch = sys.modules.get("torch")
    device = "cpu"
    if torch is not None and torch.cuda.is_available():
        device = f"gpu:{torch.cuda.get_device_name(0)}"
    return {"backend": "torch" if torch is not None else "python", "device": device,
            "versions": versions}  # fmt: skip
