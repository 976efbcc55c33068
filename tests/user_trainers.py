"""Users' training functions for the trainer seam's tests: one that learns a known answer, and
one for each way a training function can go wrong. No framework: they run in milliseconds."""

from __future__ import annotations

import random
from collections.abc import Callable
from pathlib import Path

import numpy as np

#: What ``noisy`` returns on average: 0.5 + 0.2 for wide, -0.1 for deep (then seed noise).
TRUTH = {"wide": 0.2, "deep": -0.1}


def noisy(wide: bool, deep: bool, seed: int, report: Callable[..., None],
          epochs: int = 3, noise: float = 0.01) -> dict[str, object]:  # fmt: skip
    """A response with known effects plus noise drawn from the seed ablate set globally."""
    for epoch in range(1, epochs + 1):
        report(epoch, train_loss=1.0 / epoch)
    drawn = np.random.normal(0.0, noise)  # ablate seeded NumPy's global generator
    score = 0.5 + TRUTH["wide"] * wide + TRUTH["deep"] * deep + drawn
    return {"score": score, "loss": 1 - score, "weights": np.full(3, seed, dtype=float)}


def raises(wide: bool, deep: bool) -> dict[str, float]:
    raise ValueError(f"no data for wide={wide}")


def nan(wide: bool, deep: bool) -> dict[str, float]:
    return {"score": float("nan"), "loss": 0.0}


def omits(wide: bool, deep: bool) -> dict[str, float]:
    return {"score": 0.5}


def extra(wide: bool, deep: bool) -> dict[str, float]:
    return {"score": 0.5, "loss": 0.5, "accuracy": 0.9}


def not_a_mapping(wide: bool, deep: bool) -> float:
    return 0.5


def narrow(wide: bool) -> dict[str, float]:  # does not take the factor deep
    return {"score": 0.5, "loss": 0.5}


def seeds(wide: bool, deep: bool, seed: int) -> dict[str, float]:
    """Returns what Python's and NumPy's global generators give after ablate seeded them."""
    return {"score": random.random(), "loss": float(np.random.random())}


def keeps_a_file(wide: bool, deep: bool, tmp: str) -> dict[str, object]:
    path = Path(tmp) / f"notes-{wide}-{deep}.txt"
    path.write_text(f"wide={wide}")
    return {"score": 0.5, "loss": 0.5, "notes": path}


def sleepy(wide: bool, deep: bool, seed: int, report: Callable[..., None],
           seconds: float = 4.0) -> dict[str, float]:  # fmt: skip
    """A trial that takes ``seconds``, reporting every half second (a worker stopped meanwhile
    hands it back at the next report)."""
    import time

    steps = max(1, round(seconds / 0.5))
    for epoch in range(1, steps + 1):
        time.sleep(0.5)
        report(epoch, progress=epoch / steps)
    return {"score": 0.5 + 0.2 * wide, "loss": 0.5 - 0.2 * wide}


def hangs_once(wide: bool, deep: bool, seed: int, report: Callable[..., None], marks: str,
               how: str = "silent") -> dict[str, float]:  # fmt: skip
    """The wide and deep cell's first attempt never returns: ``how`` = "silent" blocks without
    a sign of progress (a deadlock), "busy" reports progress forever (an endless loop); every
    other trial, and the second attempt, takes half a second."""
    import threading
    import time

    mark = Path(marks) / f"hung-{seed}"
    if wide and deep and not mark.exists():
        mark.write_text("hung")
        if how == "silent":
            threading.Event().wait()  # never set
        epoch = 0
        while True:
            epoch += 1
            time.sleep(0.2)
            report(epoch, progress=0.0)
    time.sleep(0.5)
    report(1, progress=1.0)
    return {"score": 0.5 + 0.2 * wide, "loss": 0.5 - 0.2 * wide}


def streams(wide: bool, deep: bool, seed_init: int, seed_data_order: int) -> dict[str, float]:
    """A trial whose score is drawn from two seed streams apart: the init stream shifts it by
    N(0, 0.3) in every cell alike, the data-order stream by N(0, 0.1), plus the cell's effect."""
    init = np.random.default_rng(seed_init).normal(0.0, 0.3)
    order = np.random.default_rng(seed_data_order).normal(0.0, 0.1)
    score = 0.5 + 0.2 * wide + init + order
    return {"score": score, "loss": 1.0 - score}
