"""The whole analysis (ablate.analyze): the final fit with the effects over epochs and the
probability of improvement, worded in the findings and shown the same way in every format."""

from __future__ import annotations

import itertools
import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from ablate.results import Results
from ablate.stats.options import Options
from ablate.stats.overall import analyze
from ablate.views.tables import render

OPTIONS = Options(factors=("a", "b"), response="test_loss", importance=False)


def _table(replicates: int = 6) -> Results:
    """a: hurts late (its effect on the loss is -0.2 at epoch 1, +0.3 from epoch 2 on);
    b: a small effect that most pairs show (+0.004 at every seed but one, where it is -0.05)."""
    rng = np.random.default_rng(3)
    trials, epochs = [], []
    for i, (r, a, b) in enumerate(itertools.product(range(replicates), (False, True),
                                                    (False, True))):  # fmt: skip
        key, seed_luck = f"k{i:02d}", rng.normal(0, 0.02)
        for e in (1, 2, 3):
            loss = 1.0 / e + a * (-0.2 if e == 1 else 0.3) + seed_luck + rng.normal(0, 0.01)
            loss += b * (0.004 if r else -0.05)
            epochs.append({"trial_key": key, "replicate": r, "epoch": e, "test_loss": loss})
        trials.append({"trial_key": key, "replicate": r, "status": "complete", "a": a, "b": b,
                       "test_loss": epochs[-1]["test_loss"]})  # fmt: skip
    return Results(pd.DataFrame(trials), pd.DataFrame(epochs), None, Path("table.parquet"))


def test_the_effects_over_epochs_are_found_worded_and_shown() -> None:
    a = analyze(_table(), OPTIONS)
    assert a.over_epochs is not None and a.over_epochs.epochs == (1, 2, 3)
    trend = next(t for t in a.over_epochs.effects if t.factor == "a")
    assert trend.settled_from == 2 and trend.word == "hurts"  # a loss: lower is better
    texts = [f.text for f in a.findings]
    line = next(t for t in texts if t.startswith("a over epochs (false → true)"))
    assert "hurts from epoch 2 on" in line and "t test at each epoch" in line
    text = render(a, "text", full=True)
    assert "Effects over epochs" in text and "a: false → true" in text
    assert line.split(" (")[0] in " ".join(text.split())  # the same words in the text output
    data = json.loads(render(a, "json"))
    assert data["over_epochs"]["effects"][0]["factor"] == "a"
    assert len(data["over_epochs"]["table"]) == 3 * 2  # 3 epochs x 2 effects


@pytest.mark.slow  # a few seconds (the fast part stays under 3 minutes)
def test_the_probability_of_improvement_is_a_direct_count_of_paired_trials() -> None:
    results = _table()
    a = analyze(results, OPTIONS)
    assert a.improvement is not None
    row = a.improvement.set_index("factor").loc["b"]
    t = results.trials
    wide = t.pivot_table(index=["replicate", "a"], columns="b", values="test_loss")
    lower = (wide[True] < wide[False]).mean()  # a loss: lower is better; no ties here
    assert row["pairs"] == 12 and row["p_improve"] == lower
    assert row["ci_low"] <= lower <= row["ci_high"]  # 6 seeds: an interval is given
