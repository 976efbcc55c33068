"""Learning curves: each complete trial's values epoch by epoch, and their median per level."""

from __future__ import annotations

import numpy as np
import pandas as pd

from ablate.designs.matrix import FactorInfo
from ablate.results import Results


def learning_curves(
    results: Results, factors: tuple[FactorInfo, ...], metric: str = "loss"
) -> tuple[pd.DataFrame, pd.DataFrame] | None:
    """Per-epoch values of one metric for every complete trial, and their median per level.

    Returns (per_trial, per_level): per_trial has trial_key, epoch, train, test (the
    ``train_<metric>`` and ``test_<metric>`` columns of epochs.parquet) and the factor columns
    (as level labels); per_level has factor, level, epoch and the median train and test values
    over the trials at that level (the median, because one diverging trial can move a mean of
    losses by orders of magnitude). None without an epochs table or without that metric.
    """
    epochs = results.epochs
    if epochs is None or epochs.empty or f"test_{metric}" not in epochs.columns:
        return None
    trials = results.trials
    if "status" in trials.columns:
        trials = trials[trials["status"] == "complete"]
    names = [f.name for f in factors]
    values = epochs.rename(columns={f"train_{metric}": "train", f"test_{metric}": "test"})
    if "train" not in values.columns:
        values["train"] = np.nan
    per_trial = values.merge(trials[["trial_key", *names]], on="trial_key")
    for f in factors:
        per_trial[f.name] = [f.level_label(v) for v in per_trial[f.name]]
    per_trial = per_trial[["trial_key", "epoch", "train", "test", *names]]
    levels = []
    for f in factors:
        grouped = per_trial.groupby([f.name, "epoch"], sort=False)
        means = grouped[["train", "test"]].median().reset_index()
        means = means.rename(columns={f.name: "level"})
        means.insert(0, "factor", f.name)
        levels.append(means)
    return per_trial, pd.concat(levels, ignore_index=True)
