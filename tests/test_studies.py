"""The shipped attention studies: valid as shipped, and a tiny version of each end to end
through the command line: `ablate run` as a user runs it, then analyze, plot and report
through the same entry point in this process (each fresh process would cost seconds)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pandas as pd
import pytest
import yaml

from ablate.study import parse_study
from tests.helpers import ROOT, run_cli

STUDIES = {
    "attention": ("reconstruction", "vae", {"attention": 5, "batch_norm": 2, "activation": 2}),
    "multiscale": ("classification", "multiscale_cnn",
                   {"multi_scale": 2, "attention": 2, "activation": 2}),
    "lstm-attention": ("classification", "lstm_attention",
                       {"attention": 3, "activation": 2, "units": 2}),
}  # fmt: skip


@pytest.mark.parametrize("name", list(STUDIES))
def test_each_shipped_study_is_valid_with_replicates(name: str) -> None:
    path = ROOT / "studies" / f"{name}.yaml"
    study = parse_study(path.read_text(), source=str(path))
    task, builder, levels = STUDIES[name]
    assert (study.name, study.task, study.model.builder) == (name, task, builder)
    assert {f.name: len(f.levels) for f in study.factors} == levels
    assert study.replicates >= 2
    assert study.results == "results"
    if name == "attention":
        assert set(study.factor("attention").levels) == {"none", "spatial", "channel", "cbam",
                                                         "stn"}  # fmt: skip
    if name == "lstm-attention":
        assert study.analysis.response == "test_accuracy"
        assert study.data.dataset == "attention-sequences"


# The tiny version of each study: every factor at two of its levels (the levels with the most
# to draw), the others fixed, so 4 trials; tiny data, one epoch, one replicate.
TINY = {
    "attention": ({"attention": ["cbam", "stn"], "batch_norm": [True, False]},
                  {"activation": "relu", "units": [6, 5, 4, 2], "depth": 1}),
    "multiscale": ({"multi_scale": [True, False], "attention": [True, False]},
                   {"activation": "tanh", "filters": [4, 4, 4, 3]}),
    "lstm-attention": ({"attention": ["additive", "block"], "units": [8, 32]},
                       {"activation": "tanh"}),
}  # fmt: skip


def _tiny(name: str, results: Path) -> dict[str, Any]:
    """The shipped study with tiny data, one epoch, one replicate and 4 of its cells."""
    spec = yaml.safe_load((ROOT / "studies" / f"{name}.yaml").read_text())
    factors, fixed = TINY[name]
    assert set(factors) <= set(spec["factors"])  # the shipped study's factors, fewer levels
    assert all(set(v) <= set(spec["factors"][k]) for k, v in factors.items())
    spec["factors"] = factors
    spec["model"].update(fixed)
    spec["analysis"] = {"response": spec["analysis"]["response"]}
    spec.update(replicates=1, results=str(results), run={"heartbeat_seconds": 0.5})
    spec["training"].update(epochs=1, batch_size=16)
    if name == "lstm-attention":
        spec["data"]["options"].update(n=64, n_test=32)
    else:
        spec["data"].update(train_size=64, test_size=32)
    return spec


def _cli(capsys: pytest.CaptureFixture[str], *args: str) -> str:
    """``ablate ARGS`` in this process (the command line's own entry point): its output."""
    from ablate.cli import main

    code = main(list(args))
    out, err = capsys.readouterr()
    assert code == 0, err
    return out


@pytest.mark.slow
@pytest.mark.parametrize("name", list(STUDIES))
def test_a_tiny_version_runs_end_to_end_through_the_cli(
    name: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / f"{name}.yaml"
    path.write_text(yaml.safe_dump(_tiny(name, tmp_path / "results")))
    run = run_cli("run", str(path), "--workers", "2", timeout=900)
    assert run.returncode == 0, run.stderr[-3000:]
    results = tmp_path / "results" / name
    trials = pd.read_parquet(results / "trials.parquet")
    assert len(trials) == 4 and (trials["status"] == "complete").all()

    assert "trivial baseline" in _cli(capsys, "analyze", str(results))
    _cli(capsys, "plot", str(results))
    for chart in ("learned_best.png", "attention_best.png", "attention_worst.png"):
        assert (results / "plots" / chart).read_bytes()[:4] == b"\x89PNG", chart
    _cli(capsys, "report", str(results))
    page = (results / "report.html").read_text()
    assert 'id="chart-attention_best"' in page and "attended to" in page
