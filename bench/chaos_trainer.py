"""The chaos benchmark's stand-in for a training run: a fraction of a second of "training"
(reported every 50 ms, so that its progress shows) and a response with a known effect."""

from __future__ import annotations

import time
from collections.abc import Callable

import numpy as np


def quick(wide: bool, deep: bool, seed: int, report: Callable[..., None]) -> dict[str, float]:
    """0.05 to 0.3 s per trial, drawn from the seed; score = 0.5 + 0.2 wide - 0.1 deep + noise."""
    rng = np.random.default_rng(seed + 1000 * wide + 2000 * deep)
    seconds = float(rng.uniform(0.05, 0.3))
    steps = max(1, round(seconds / 0.05))
    for epoch in range(1, steps + 1):
        time.sleep(seconds / steps)
        report(epoch, progress=epoch / steps)
    score = 0.5 + 0.2 * wide - 0.1 * deep + float(rng.normal(0, 0.01))
    return {"score": score}
