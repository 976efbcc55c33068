"""Backends without TensorFlow: a study runs end to end under JAX in an environment with no
TensorFlow installed (``.ci/run`` builds one and names its Python in ABLATE_TEST_JAX_PYTHON)."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pandas as pd
import pytest

from tests.helpers import ROOT, tiny_study_text

JAX_PYTHON = os.environ.get("ABLATE_TEST_JAX_PYTHON")


def _jax(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "KERAS_BACKEND": "jax", "PYTHONPATH": str(ROOT)}
    return subprocess.run([JAX_PYTHON, *args], cwd=cwd, env=env, capture_output=True, text=True,
                          timeout=900)  # fmt: skip


@pytest.mark.slow
@pytest.mark.skipif(not JAX_PYTHON, reason="set ABLATE_TEST_JAX_PYTHON (.ci/run does)")
def test_a_study_runs_end_to_end_under_jax_without_tensorflow(tmp_path: Path) -> None:
    probe = "import importlib.util as u; print(u.find_spec('tensorflow'))"
    missing = _jax("-c", probe, cwd=tmp_path)
    assert missing.stdout.strip() == "None", "this environment must not have TensorFlow"
    study = tmp_path / "tiny.yaml"
    study.write_text(tiny_study_text(tmp_path / "results", epochs=2, replicates=1))
    run = _jax("-m", "ablate", "run", str(study), cwd=tmp_path)
    assert run.returncode == 0, run.stderr
    assert "tiny: 4/4 complete" in run.stdout
    results = tmp_path / "results" / "tiny"
    trials = pd.read_parquet(results / "trials.parquet")
    assert (trials["backend"] == "jax").all() and (trials["status"] == "complete").all()
    assert trials["test_loss"].notna().all()
    for command in (("analyze", str(results)), ("plot", str(results))):
        proc = _jax("-m", "ablate", *command, cwd=tmp_path)
        assert proc.returncode == 0, proc.stderr
    assert (results / "plots" / "learned_best.png").exists()
