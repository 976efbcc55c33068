"""Fused training: the same computation as unfused trials, and nothing lost when it dies.

The JAX checks run tests/fused_checks.py in the TensorFlow-free environment that .ci/run
builds (ABLATE_TEST_JAX_PYTHON), in the background from the session's start; every test here
is slow, so that a fast run starts none of them (the grouping and the data order, which need
no JAX: tests/training/test_fusion.py).
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from statsmodels.stats.weightstats import ttost_ind

from ablate.queue.claims import open_queue
from ablate.study.parse import load_study
from tests import background
from tests.background import Job
from tests.helpers import ROOT, start_cli
from tests.training.test_fusion import tiny_fused_study

JAX_PYTHON = os.environ.get("ABLATE_TEST_JAX_PYTHON")
CHECKS = ROOT / "tests" / "fused_checks.py"
_ENV = {**os.environ, "KERAS_BACKEND": "jax", "PYTHONPATH": str(ROOT)}

#: One training step of float32 arithmetic, vmapped or not: XLA may fuse and order the
#: operations differently, so values agree to rounding, not bit for bit (measured: at most
#: 2e-7 relative on the test loss after one step, replicate and mixed-cell groups alike).
STEP_TOLERANCE = 1e-5

#: The KL term is recorded as the loss minus the cross-entropy: after one step it is about
#: 1e-6, and that difference of two numbers near 0.7 is exact only to their rounding.
KL_TOLERANCE = 1e-6

#: Fused and unfused test losses after four epochs must be equivalent within this margin
#: (response units: binary cross-entropy per pixel plus KL, about 0.49 here; the replicates
#: spread by about 0.01, and training is chaotic: trajectories part after a few dozen steps).
MARGIN = 0.02


def _check(kind: str) -> Job | None:
    if not JAX_PYTHON:
        return None
    return [([JAX_PYTHON, str(CHECKS), kind], {"env": _ENV, "timeout": 1500})]


BACKGROUND = {
    "fused-steps": lambda: _check("steps"),
    "fused-equivalence": lambda: _check("equivalence"),
}
needs_jax = pytest.mark.skipif(not JAX_PYTHON, reason="set ABLATE_TEST_JAX_PYTHON (.ci/run does)")


def _output(name: str, kind: str) -> dict:
    (proc,) = background.results(name, lambda: _check(kind))
    assert proc.returncode == 0, proc.stderr[-3000:]
    return json.loads(proc.stdout.strip().splitlines()[-1])


@pytest.mark.slow
@needs_jax
@pytest.mark.parametrize("group", ["replicates", "mixed"])
def test_one_fused_step_is_each_trials_own_step(group: str) -> None:
    """(a) and (b): after one step, every trial's test values fused equal its own, alone --
    which needs the same batch, forward, gradients, BatchNorm statistics, update and random
    draws; (d): each mode gives the same numbers twice."""
    out = _output("fused-steps", "steps")[group]
    alone, fused = out["alone"], out["fused"]
    assert alone[0] == alone[1] and fused[0] == fused[1]  # deterministic run to run
    assert len(fused[0]) == (3 if group == "replicates" else 4)
    for own, together in zip(alone[0], fused[0], strict=True):
        assert together["fused"]["group"] == len(fused[0])
        for column in ("test_loss", "test_recon_loss", "test_kl_loss", "train_loss"):
            expected = pytest.approx(own[column], rel=STEP_TOLERANCE, abs=KL_TOLERANCE)
            assert together[column] == expected, column
    losses = [t["test_loss"] for t in fused[0]]
    assert len(set(losses)) == len(losses)  # trials differ: seeds, masks and cells are their own


@pytest.mark.slow
@needs_jax
def test_fused_and_unfused_results_are_equivalent_across_replicates() -> None:
    """(c): two one-sided tests (TOST) on 8 replicates per mode, margin MARGIN."""
    out = _output("fused-equivalence", "equivalence")
    alone = np.array([t["test_loss"] for t in out["alone"]])
    fused = np.array([t["test_loss"] for t in out["fused"]])
    p, _, _ = ttost_ind(fused, alone, -MARGIN, MARGIN)
    assert p < 0.05, (p, alone.tolist(), fused.tolist())


def _jax_run(study_path: Path, *args: str) -> subprocess.Popen[str]:
    return start_cli("run", str(study_path), *args, cwd=study_path.parent, env=_ENV,
                     python=JAX_PYTHON)  # fmt: skip


@pytest.mark.slow
@needs_jax
def test_a_fused_worker_killed_mid_group_loses_no_trial_and_duplicates_none() -> None:
    folder = Path(tempfile.mkdtemp(prefix="ablate-fused-kill-"))
    study_path = tiny_fused_study(folder, 4)
    study = load_study(study_path)
    proc = _jax_run(study_path, "--workers", "1")
    victim, deadline = None, time.monotonic() + 600
    while victim is None and time.monotonic() < deadline and proc.poll() is None:
        time.sleep(0.5)
        if not (study.results_dir / "optuna.journal").exists():
            continue
        try:
            running = open_queue(study, None, create=False).summary().running
        except Exception:  # being created right now
            continue
        if len(running) >= 2:  # a group in training
            victim = int(running[0].worker["pid"])
    assert victim is not None, "no fused group started"
    os.kill(victim, signal.SIGKILL)
    proc.communicate(timeout=900)
    again = _jax_run(study_path)  # anything the kill left behind
    _, err = again.communicate(timeout=900)
    assert again.returncode == 0, err[-3000:]
    trials = pd.read_parquet(study.results_dir / "trials.parquet")
    assert len(trials) == 8 and trials["trial_key"].is_unique
    assert (trials["status"] == "complete").all()
    assert open_queue(study, None, create=False).summary().running == ()
