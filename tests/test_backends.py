"""Backends without TensorFlow: a study runs end to end under JAX in an environment with no
TensorFlow installed (``.ci/run`` builds one and names its Python in ABLATE_TEST_JAX_PYTHON),
in the background from the session's start (tests/background.py)."""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

import pandas as pd
import pytest

from tests import background
from tests.background import Job
from tests.helpers import ROOT, tiny_study_text

JAX_PYTHON = os.environ.get("ABLATE_TEST_JAX_PYTHON")


def _jax_study() -> Job | None:
    """The TensorFlow-free environment's check, then a study run, analysed and plotted."""
    if not JAX_PYTHON:
        return None
    folder = Path(tempfile.mkdtemp(prefix="ablate-jax-study-"))
    study = folder / "tiny.yaml"
    study.write_text(tiny_study_text(folder / "results", epochs=2, replicates=1))
    results = folder / "results" / "tiny"
    options = {"cwd": folder, "timeout": 900,
               "env": {**os.environ, "KERAS_BACKEND": "jax", "PYTHONPATH": str(ROOT)}}  # fmt: skip
    probe = "import importlib.util as u; print(u.find_spec('tensorflow'))"
    return [
        ([JAX_PYTHON, "-c", probe], options),
        ([JAX_PYTHON, "-m", "ablate", "run", str(study)], options),
        ([JAX_PYTHON, "-m", "ablate", "analyze", str(results)], options),
        ([JAX_PYTHON, "-m", "ablate", "plot", str(results)], options),
    ]


#: Started when the session starts (tests/background.py).
BACKGROUND = {"jax-study": _jax_study}


@pytest.mark.slow
@pytest.mark.skipif(not JAX_PYTHON, reason="set ABLATE_TEST_JAX_PYTHON (.ci/run does)")
def test_a_study_runs_end_to_end_under_jax_without_tensorflow() -> None:
    probe, run, *views = background.results("jax-study", _jax_study)
    assert probe.stdout.strip() == "None", "this environment must not have TensorFlow"
    assert run.returncode == 0, run.stderr
    assert "tiny: 4/4 complete" in run.stdout
    results = Path(run.args[-1]).parent / "results" / "tiny"
    trials = pd.read_parquet(results / "trials.parquet")
    assert (trials["backend"] == "jax").all() and (trials["status"] == "complete").all()
    assert trials["test_loss"].notna().all()
    assert len(views) == 2
    for proc in views:
        assert proc.returncode == 0, proc.stderr
    assert (results / "plots" / "learned_best.png").exists()
