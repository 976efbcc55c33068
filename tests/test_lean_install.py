"""The core install (`pip install ablate`, no extras) in an environment of its own, which .ci/run
builds (ABLATE_TEST_CORE_PYTHON): it imports no deep-learning framework, runs a study whose
trainer is a program (examples/command) and analyses and reports it, and refuses a Keras study
with the command that installs what it needs."""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import pytest

from tests.helpers import ROOT

CORE = os.environ.get("ABLATE_TEST_CORE_PYTHON")
pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(not CORE, reason="set ABLATE_TEST_CORE_PYTHON (.ci/run does)"),
]

FRAMEWORKS = ("tensorflow", "keras", "jax", "torch")


def _ablate(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    assert CORE is not None
    command = [str(Path(CORE).with_name("ablate")), *args]
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "KERAS_BACKEND")}
    return subprocess.run(command, cwd=cwd, capture_output=True, text=True, timeout=600, env=env)


def test_the_core_install_has_no_framework_and_imports_none() -> None:
    assert CORE is not None
    code = (
        "import importlib.util, sys, ablate\n"
        "import ablate.cli, ablate.stats.analysis, ablate.views.report, ablate.execution.runner\n"
        f"print([n for n in {FRAMEWORKS!r} if importlib.util.find_spec(n)],"
        f" [n for n in {FRAMEWORKS!r} if n in sys.modules])\n"
    )  # fmt: skip
    done = subprocess.run([CORE, "-c", code], capture_output=True, text=True, timeout=120,
                          cwd=ROOT.parent)  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "[] []"  # none installed, none imported


def test_the_core_install_runs_a_programs_study_and_analyses_it(tmp_path: Path) -> None:
    folder = tmp_path / "command"
    shutil.copytree(ROOT / "examples" / "command", folder, ignore=shutil.ignore_patterns("results"))
    run = _ablate("run", "study.yaml", cwd=folder)
    assert run.returncode == 0, run.stderr
    assert "simulated: 32/32 complete" in run.stdout
    analysis = _ablate("analyze", "results/simulated", cwd=folder)
    assert analysis.returncode == 0, analysis.stderr
    words = " ".join(analysis.stdout.split())
    assert "width: wide helps" in words and "warmup: true helps" in words
    assert "schedule: equivalent within ±1.5" in words
    report = _ablate("report", "results/simulated", cwd=folder)
    assert report.returncode == 0, report.stderr
    assert "Findings" in (folder / "results" / "simulated" / "report.html").read_text()


def test_a_keras_study_in_the_core_install_says_what_to_install(tmp_path: Path) -> None:
    done = _ablate("run", "quick", cwd=tmp_path)
    assert done.returncode == 2, done.stderr
    words = " ".join(done.stderr.split())
    assert "Keras is not installed: install Keras with a backend (pip install " \
        "'ablate[tensorflow]'" in words  # fmt: skip
    assert "Traceback" not in done.stderr and not (tmp_path / "results").exists()


def test_a_study_that_asks_for_tensorboard_without_tensorboardx_is_refused(tmp_path: Path) -> None:
    shutil.copytree(ROOT / "examples" / "command", tmp_path, dirs_exist_ok=True)
    text = (tmp_path / "study.yaml").read_text() + "run: {tensorboard: true}\n"
    (tmp_path / "study.yaml").write_text(text)
    done = _ablate("run", "study.yaml", cwd=tmp_path)
    assert done.returncode == 2, done.stderr
    assert "tensorboardX, which is not installed: pip install 'ablate[tensorboard]'" in " ".join(
        done.stderr.split()
    )
