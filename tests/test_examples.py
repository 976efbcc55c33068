"""The worked examples (examples/), run exactly as a user runs them: the real `ablate` command."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest

from tests.helpers import ROOT

ABLATE = Path(sys.executable).with_name("ablate")  # the console script: no cwd on sys.path


def _ablate(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run([str(ABLATE), *args], cwd=cwd, capture_output=True, text=True,
                          timeout=900)  # fmt: skip


@pytest.mark.slow
@pytest.mark.skipif(not ABLATE.exists(), reason="needs the installed `ablate` command")
def test_the_readme_user_classifier_example_runs_end_to_end(tmp_path: Path) -> None:
    folder = tmp_path / "classifier"
    shutil.copytree(ROOT / "examples" / "classifier", folder,
                    ignore=shutil.ignore_patterns("results", "digits.npz"))  # fmt: skip
    made = subprocess.run([sys.executable, "make_digits.py"], cwd=folder, capture_output=True,
                          text=True, timeout=120)  # fmt: skip
    assert made.returncode == 0, made.stderr

    run = _ablate("run", "digits.yaml", cwd=folder)
    assert run.returncode == 0, run.stderr
    assert "digits: 8/8 complete" in run.stdout
    results = folder / "results" / "digits"
    trials = pd.read_parquet(results / "trials.parquet")
    assert {"test_accuracy", "test_balanced_accuracy", "test_recall_9", "test_confusion"} <= set(
        trials.columns
    )
    baselines = json.loads((results / "baselines.json").read_text())["responses"]
    chance = baselines["test_balanced_accuracy"]["value"]
    assert chance == pytest.approx(0.1)
    assert (trials["test_balanced_accuracy"] > 3 * chance).all()  # every model learned
    assert (trials["test_accuracy"] > baselines["test_accuracy"]["value"] + 0.4).all()

    analysis = _ablate("analyze", "results/digits", "--response", "test_accuracy", "--full",
                       cwd=folder)  # fmt: skip
    assert analysis.returncode == 0, analysis.stderr
    assert "response: test_accuracy (higher is better)" in analysis.stdout
    assert "trivial baseline" in analysis.stdout
    words = " ".join(analysis.stdout.split())  # the text report wraps long lines
    assert "0 trials did not learn" in words
    for term in ("dropout", "activation[relu]", "activation[tanh]"):
        assert term in analysis.stdout

    plotted = _ablate("plot", "results/digits", cwd=folder)
    assert plotted.returncode == 0, plotted.stderr
    for chart in ("learned_best.png", "learned_worst.png", "learning_curves.png"):
        assert (results / "plots" / chart).read_bytes()[:4] == b"\x89PNG"

    report = _ablate("report", "results/digits", cwd=folder)
    assert report.returncode == 0, report.stderr
    page = (results / "report.html").read_text()
    assert "confusion matrix" in page.lower() and 'id="chart-learned_best"' in page


def _copy_example(name: str, tmp_path: Path) -> Path:
    folder = tmp_path / name
    shutil.copytree(ROOT / "examples" / name, folder, ignore=shutil.ignore_patterns("results"))
    return folder


def _run_analyse_report(folder: Path, study: str) -> tuple[pd.DataFrame, str]:
    """`ablate run`, `analyze` and `report` in the example's folder, as its README says."""
    run = _ablate("run", "study.yaml", cwd=folder)
    assert run.returncode == 0, run.stderr
    assert f"{study}: 48/48 complete" in run.stdout
    analysis = _ablate("analyze", f"results/{study}", cwd=folder)
    assert analysis.returncode == 0, analysis.stderr
    report = _ablate("report", f"results/{study}", cwd=folder)
    assert report.returncode == 0, report.stderr
    page = (folder / "results" / study / "report.html").read_text()
    assert "Findings" in page and 'id="chart-learning_curves"' in page
    return pd.read_parquet(folder / "results" / study / "trials.parquet"), " ".join(
        analysis.stdout.split()
    )


@pytest.mark.slow
@pytest.mark.skipif(not ABLATE.exists(), reason="needs the installed `ablate` command")
def test_the_sklearn_example_trains_with_its_own_function_and_beats_its_baselines(
    tmp_path: Path,
) -> None:
    folder = _copy_example("sklearn", tmp_path)
    trials, words = _run_analyse_report(folder, "digits-mlp")
    assert (trials["status"] == "complete").all()
    assert (trials["test_accuracy"] > 0.1019 + 0.6).all()  # far above the majority class
    assert (trials["test_log_loss"] < 2.3025 / 2).all()
    assert "every trial learned" in words
    assert "hidden: 64 helps" in words and "alpha: equivalent within ±0.01" in words


@pytest.mark.slow
@pytest.mark.skipif(not ABLATE.exists(), reason="needs the installed `ablate` command")
def test_the_pytorch_example_trains_with_its_own_loop_and_beats_its_baselines(
    tmp_path: Path,
) -> None:
    pytest.importorskip("torch", reason="PyTorch is not installed (.ci/run installs its CPU build)")
    folder = _copy_example("pytorch", tmp_path)
    trials, words = _run_analyse_report(folder, "mnist-cnn")
    assert (trials["status"] == "complete").all()
    assert (trials["test_accuracy"] > 0.099 + 0.5).all()
    assert (trials["test_loss"] < 2.2999 / 2).all()
    assert trials["backend"].eq("torch").all()
    assert "every trial learned" in words and "batch_norm: true helps" in words
    epochs = pd.read_parquet(folder / "results" / "mnist-cnn" / "epochs.parquet")
    assert len(epochs) == 48 * 3 and epochs[["train_loss", "test_accuracy"]].notna().all().all()


@pytest.mark.slow
@pytest.mark.skipif(not ABLATE.exists(), reason="needs the installed `ablate` command")
def test_the_pytorch_script_runs_as_a_command_and_beats_its_baselines(tmp_path: Path) -> None:
    pytest.importorskip("torch", reason="PyTorch is not installed (.ci/run installs its CPU build)")
    folder = _copy_example("pytorch", tmp_path)
    run = _ablate("run", "command.yaml", cwd=folder)
    assert run.returncode == 0, run.stderr
    assert "mnist-cnn-script: 16/16 complete" in run.stdout
    results = folder / "results" / "mnist-cnn-script"
    trials = pd.read_parquet(results / "trials.parquet")
    assert (trials["status"] == "complete").all() and trials["backend"].eq("command").all()
    assert (trials["test_accuracy"] > 0.099 + 0.4).all()
    epochs = pd.read_parquet(results / "epochs.parquet")
    assert len(epochs) == 16 * 2 and epochs["train_loss"].notna().all()
    analysis = _ablate("analyze", "results/mnist-cnn-script", cwd=folder)
    words = " ".join(analysis.stdout.split())
    assert "batch_norm: true helps" in words, analysis.stdout + analysis.stderr


@pytest.mark.slow
@pytest.mark.skipif(not ABLATE.exists(), reason="needs the installed `ablate` command")
def test_the_awk_program_runs_as_a_command_and_its_planted_effects_are_found(
    tmp_path: Path,
) -> None:
    folder = _copy_example("command", tmp_path)
    run = _ablate("run", "study.yaml", cwd=folder)
    assert run.returncode == 0, run.stderr
    analysis = _ablate("analyze", "results/simulated", "--format", "json", cwd=folder)
    assert analysis.returncode == 0, analysis.stderr
    effects = {row["factor"]: row for row in json.loads(analysis.stdout)["effects"]}
    for factor, planted in (("width", 6.0), ("warmup", 3.0), ("schedule", 0.0)):
        row = effects[factor]
        assert row["ci_low"] <= planted <= row["ci_high"], (factor, row)  # the truth is inside
    text = _ablate("analyze", "results/simulated", cwd=folder).stdout
    words = " ".join(text.split())
    assert "width: wide helps" in words and "warmup: true helps" in words
    assert "schedule: equivalent within ±1.5" in words
