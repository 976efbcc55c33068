"""Replicates until precise enough, on a real study whose noise is known (tests/user_noise.py):
``ablate run --until-halfwidth`` stops at the round the planning formula predicts.

The prediction is recomputed here from the trials alone, with scipy's t quantiles: after a
round with r replicates of the 2 runs, the effect's 95% half-width is t(0.975, 2r − 2)·s·√(2/r)
(s: the pooled SD of the round's trials), and the next round has the fewest r' > r whose
half-width t(0.975, 2r' − 2)·s·√(2/r') reaches the target.
"""

from __future__ import annotations

import itertools
import math
import re
from pathlib import Path

import pandas as pd
import pytest
from scipy import stats

from tests.helpers import ROOT, run_cli

STUDY = """\
name: noisy
task: regression
model: {{builder: 'tests.user_noise:offset', options: {{sd: {sd}}}}}
factors:
  shift: [false, true]
training: {{epochs: 1, batch_size: 32, learning_rate: 1.0e-9, decay: 0}}
data: {{dataset: 'tests.user_noise:zeros'}}
replicates: 2
results: {results}
run: {{heartbeat_seconds: 0.5, workers: 2}}
analysis: {{response: test_mae}}
"""


def _halfwidth(values: pd.DataFrame, r: int) -> float:
    cells = values[values["replicate"] < r].groupby("shift")["test_mae"]
    s2 = cells.var(ddof=1).mean()  # equal cells: the pooled variance
    return float(stats.t.ppf(0.975, 2 * r - 2) * math.sqrt(s2 * 2 / r))


@pytest.mark.slow
def test_until_halfwidth_stops_where_the_planning_formula_says(tmp_path: Path) -> None:
    target = 0.15
    study = tmp_path / "noisy.yaml"
    study.write_text(STUDY.format(sd=0.1, results=tmp_path / "results"))
    run = run_cli("run", str(study), "--until-halfwidth", str(target), "--max-replicates", "12",
                  cwd=tmp_path, env={"PYTHONPATH": str(ROOT)}, timeout=900)  # fmt: skip
    assert run.returncode == 0, run.stderr[-3000:]
    rounds = [int(n) for n in re.findall(r"round at (\d+) replicate", run.stdout)]
    assert rounds[0] == 2 and len(rounds) >= 2, run.stdout
    assert "target met" in run.stdout
    trials = pd.read_parquet(tmp_path / "results" / "noisy" / "trials.parquet")
    assert len(trials) == 2 * rounds[-1] and (trials["status"] == "complete").all()
    sd = float(trials.groupby("shift")["test_mae"].std().mean())
    assert sd == pytest.approx(0.1, rel=0.6)  # the noise is the one built in
    for before, after in itertools.pairwise(rounds):
        now = _halfwidth(trials, before)
        assert now > target
        s = now / stats.t.ppf(0.975, 2 * before - 2) / math.sqrt(2 / before)
        widths = {r: stats.t.ppf(0.975, 2 * r - 2) * s * math.sqrt(2 / r) for r in range(3, 13)}
        predicted = next(r for r in range(before + 1, 13) if widths[r] <= target)
        assert after == predicted
    assert _halfwidth(trials, rounds[-1]) <= target


@pytest.mark.slow
def test_replicates_until_decided_stop_on_their_own_and_say_why(tmp_path: Path) -> None:
    """examples/command (planted effects +6, +3, 0; margin 1.5) from 2 replicates, at most
    12: the looks follow the schedule (2, 3, 5, 8, 12) and stop once every effect is decided,
    or at the maximum; each look analyses only the replicates it has reached."""
    import shutil

    from ablate.sequential.decided import Rule

    shutil.copytree(ROOT / "examples" / "command", tmp_path, dirs_exist_ok=True,
                    ignore=shutil.ignore_patterns("results"))  # fmt: skip
    study = tmp_path / "study.yaml"
    study.write_text(study.read_text().replace("replicates: 4", "replicates: 2"))
    done = run_cli("run", "study.yaml", "--until-decided", "--max-replicates", "12", cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    looks = [int(m) for m in re.findall(r"^look at (\d+) replicates per run", done.stdout, re.M)]
    schedule = Rule(1.5, 12, start_replicates=2).schedule()
    assert schedule == (2, 3, 5, 8, 12) and tuple(looks) == schedule[: len(looks)]
    last = done.stdout.split("look at")[-1]
    if looks[-1] < 12:
        assert "every effect decided at" in done.stdout and "0 inconclusive" in last
    else:
        assert "still inconclusive at the maximum" in done.stdout
    trials = pd.read_parquet(tmp_path / "results" / "simulated" / "trials.parquet")
    assert trials["replicate"].max() + 1 == looks[-1] and len(trials) == 8 * looks[-1]
    study.write_text(study.read_text().replace("  margin: 1.5", ""))
    none = run_cli("run", "study.yaml", "--until-decided", cwd=tmp_path)
    assert none.returncode == 2 and "need the margin" in none.stderr and "--margin D" in none.stderr
