"""Designed studies end to end: train a fraction, analyse it, fold it over, train only the new
runs; an optimal design of the reference's four factors. Real models, real storage."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import pandas as pd
import pytest

from ablate.execution.runner import run_study
from ablate.results import load_results
from ablate.stats.analysis import analyze
from ablate.study import parse_study

FLAGS = """\
name: flags
task: regression
model: {{builder: 'tests.user_flags:build'}}
factors:
  wide: [false, true]
  deep: [false, true]
  tanh: [false, true]
  bias: [false, true]
  batch_norm: [false, true]
  dropout: [false, true]
  layer_norm: [false, true]
design: {{type: fractional, resolution: IV{fold}}}
training: {{epochs: 1, batch_size: 32, learning_rate: 0.01, decay: 0}}
data: {{dataset: 'tests.user_regression:linear', options: {{n: 300}}}}
results: {results}
run: {{heartbeat_seconds: 0.5}}
"""


def _cli(capsys: pytest.CaptureFixture[str], *args: str) -> subprocess.CompletedProcess[str]:
    """``ablate ARGS`` through the command line's own entry point, in this process (a fresh
    process for each would cost seconds of imports)."""
    from ablate.cli import main

    code = main(list(args))
    out, err = capsys.readouterr()
    return subprocess.CompletedProcess(list(args), code, out, err)


@pytest.mark.slow
def test_a_resolution_iv_fraction_of_seven_factors_then_its_fold_over(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / "flags.yaml"
    path.write_text(FLAGS.format(fold="", results=tmp_path / "results"))
    dry = _cli(capsys, "run", str(path), "--dry-run")
    assert dry.returncode == 0, dry.stderr
    assert "16 runs of the 128-cell grid x 1 replicate(s) = 16 trials" in dry.stdout
    assert "2^(7-3) fraction, resolution IV" in dry.stdout
    study = parse_study(path.read_text(), source=str(path))
    first = run_study(study, workers=2, live=False)
    assert (first.complete, first.total, first.trained) == (16, 16, 16)
    results = study.results_dir
    keys = set(pd.read_parquet(results / "trials.parquet")["trial_key"])
    saved = parse_study((results / "study.yaml").read_text())
    assert len(saved.design.table) == 16  # the resolved study lists the runs
    a = analyze(load_results(results))
    assert a.structure.kind == "regular fraction" and a.structure.resolution == 4
    assert a.structure.relation.word_length_pattern() == [0, 7, 0, 0, 0]
    assert all(al.startswith("+ ") and al.count("×") >= 2 for al in a.effects["aliases"])
    out = _cli(capsys, "analyze", str(results))
    assert out.returncode == 0, out.stderr
    assert "Aliases of the estimated terms" in out.stdout
    assert "defining relation: I = " in out.stdout
    assert "wide (+ " in out.stdout and "fANOVA" not in out.stdout  # importance: --full
    assert "fANOVA" in _cli(capsys, "analyze", str(results), "--full").stdout
    refused = _cli(capsys, "analyze", str(results), "--interactions", "2")
    assert refused.returncode == 2 and "is aliased with" in refused.stderr
    # the fold-over on one factor: a rerun trains only its 16 new runs
    path.write_text(FLAGS.format(fold=", fold: [wide]", results=tmp_path / "results"))
    study = parse_study(path.read_text(), source=str(path))
    second = run_study(study, workers=2, live=False)
    assert (second.complete, second.total, second.trained) == (32, 32, 16)
    trials = pd.read_parquet(results / "trials.parquet")
    assert keys <= set(trials["trial_key"]) and trials["trial_key"].is_unique
    both = analyze(load_results(results))
    assert both.structure.title == "2^(7-2) fraction, resolution IV"
    chains = [set(c.replace(" = ", "×").split("×")) for c in both.structure.chains]
    assert all("wide" not in c for c in chains)  # wide's interactions are free now
    as_json = json.loads(_cli(capsys, "analyze", str(results), "--format", "json").stdout)
    assert as_json["structure"]["runs"] == 32


REFERENCE = """\
name: optimal
model: {{units: [8, 6, 4, 2], depth: 1}}
factors:
  batch_norm: [true, false]
  dropout: [true, false]
  spatial_attention: [true, false]
  activation: [elu, relu, selu, sigmoid]
design: {{type: optimal, runs: 12, model: main}}
training: {{epochs: 1, batch_size: 32}}
data: {{dataset: mnist-sample, train_size: 96, test_size: 64}}
results: {results}
run: {{heartbeat_seconds: 0.5}}
"""


@pytest.mark.slow
def test_an_optimal_design_of_the_reference_factors(tmp_path: Path) -> None:
    study = parse_study(REFERENCE.format(results=tmp_path / "results"))
    summary = run_study(study, workers=2, live=False)
    assert (summary.complete, summary.total) == (12, 12)
    a = analyze(load_results(study.results_dir), coding="sum")
    assert a.structure.kind == "general" and a.structure.runs == 12
    assert a.structure.d_efficiency == pytest.approx(65.068, abs=1e-3)
    assert set(a.effects["factor"]) == {"batch_norm", "dropout", "spatial_attention"}
    assert a.effects["std_err"].notna().all()  # 12 runs, 7 coefficients: 5 residual df
    assert len(a.marginal_means[a.marginal_means["factor"] == "activation"]) == 4
    # the D-optimal 12 runs keep the main effects orthogonal (the activation's levels are
    # unbalanced instead: 4, 4, 2, 2 runs), and the analysis says so
    assert a.correlations.empty and a.structure.max_correlation == pytest.approx(0.0, abs=1e-9)
    assert "none (they are orthogonal)" in "\n".join(a.structure.lines())
