"""End to end through the real `ablate` command: run, resume, analyze, plot."""

from __future__ import annotations

import itertools
import json
import signal
from pathlib import Path

import pandas as pd
import pytest

from tests.helpers import run_cli, start_cli, tiny_study_text


@pytest.mark.slow
def test_run_analyze_plot_and_a_second_run_trains_nothing(tmp_path: Path) -> None:
    study = tmp_path / "tiny.yaml"
    study.write_text(tiny_study_text(tmp_path / "results"))
    proc = run_cli("run", str(study), cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    assert "tiny: 4/4 complete; 4 trained in this run" in proc.stdout
    results = tmp_path / "results" / "tiny"
    trials = pd.read_parquet(results / "trials.parquet")
    assert len(trials) == 4 and (trials["status"] == "complete").all()
    assert trials["trial_key"].is_unique
    assert len(pd.read_parquet(results / "epochs.parquet")) == 4  # 1 epoch each

    again = run_cli("run", str(study), cwd=tmp_path)
    assert again.returncode == 0 and "0 trained in this run" in again.stdout
    assert pd.read_parquet(results / "trials.parquet").equals(trials)

    table = run_cli("analyze", str(results))
    assert table.returncode == 0, table.stderr
    for term in ("Findings", "batch_norm", "activation: ", "ANOVA", "--full"):
        assert term in table.stdout
    assert "OLS Regression" not in table.stdout  # one screen by default
    full = run_cli("analyze", str(results), "--full")
    for term in ("mean at activation=relu", "OLS Regression"):
        assert term in full.stdout
    only = run_cli("analyze", str(results), "--section", "anova")
    assert only.stdout.startswith("ANOVA") and "Findings" not in only.stdout
    as_json = run_cli("analyze", str(results), "--format", "json")
    terms = json.loads(as_json.stdout)["coefficients"]
    assert [t["term"] for t in terms] == ["batch_norm", "activation[relu]", "activation[sigmoid]"]

    plotted = run_cli("plot", str(results))
    assert plotted.returncode == 0, plotted.stderr
    png = results / "plots" / "effects.png"
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


@pytest.mark.slow
def test_ctrl_c_then_rerun_finishes_exactly_the_missing_trials(tmp_path: Path) -> None:
    study = tmp_path / "tiny.yaml"
    study.write_text(tiny_study_text(tmp_path / "results", replicates=2))  # 8 trials
    proc = start_cli("run", str(study), cwd=tmp_path)
    assert proc.stderr is not None
    for line in proc.stderr:  # progress lines: "[k/8] complete ..."
        if line.startswith("[2/8]"):
            break
    proc.send_signal(signal.SIGINT)
    _, err = proc.communicate(timeout=120)
    assert proc.returncode == 130, err
    assert "run the same command again" in err
    done = pd.read_parquet(tmp_path / "results" / "tiny" / "trials.parquet")
    assert 2 <= len(done) < 8 and (done["status"] == "complete").all(), done[["status", "error"]]

    rerun = run_cli("run", str(study), cwd=tmp_path)
    assert rerun.returncode == 0, rerun.stderr
    assert f"{8 - len(done)} trained in this run" in rerun.stdout
    final = pd.read_parquet(tmp_path / "results" / "tiny" / "trials.parquet")
    assert len(final) == 8 and final["trial_key"].is_unique
    assert (final["status"] == "complete").all()
    pairs = sorted(zip(final["replicate"], final["cell_index"], strict=True))
    assert pairs == [(r, c) for r in range(2) for c in range(4)]
    # the trials finished before the interruption were kept, not trained again
    kept = final.set_index("trial_key").loc[done["trial_key"], "finished_at"]
    assert (kept.to_numpy() == done["finished_at"].to_numpy()).all()


@pytest.mark.slow  # moved out of the fast suite (3-minute budget); .ci/run runs it
def test_analyze_a_bare_csv_with_every_option(tmp_path: Path) -> None:
    rows = []
    for r, bn, act in itertools.product(range(2), [True, False], ["relu", "elu", "selu"]):
        rows.append({"bn": bn, "act": act, "loss": 0.5 - 0.1 * bn + 0.01 * len(act) + 0.001 * r})
    table = tmp_path / "runs.csv"
    pd.DataFrame(rows).to_csv(table, index=False)
    out = tmp_path / "report.md"
    matrix = tmp_path / "X.csv"
    proc = run_cli(
        "analyze", str(table), "--factors", "bn,act", "--response", "loss",
        "--coding", "reference", "--baseline", "act=relu", "--interactions", "2",
        "--format", "markdown", "--output", str(out), "--design-matrix", str(matrix),
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    text = out.read_text()
    # a mean per level of the first factor with more than two levels (no intercept), the
    # interactions against the baseline level relu
    assert "### Coefficients" in text and "mean at act=relu" in text and "bn:act[elu]" in text
    assert "bn:act[relu]" not in text
    assert pd.read_csv(matrix).columns.tolist() == [
        "bn", "act[elu]", "act[relu]", "act[selu]", "bn:act[elu]", "bn:act[selu]",
    ]  # fmt: skip
    csv = run_cli("analyze", str(table), "--factors", "bn,act", "--response", "loss",
                  "--format", "csv", "--table", "effects")  # fmt: skip
    assert csv.stdout.splitlines()[0].startswith("factor,low,high,effect")
    bad = run_cli("analyze", str(table), "--factors", "bn,act", "--response", "loss",
                  "--anova-type", "3")  # fmt: skip
    assert bad.returncode == 2 and "--coding sum" in bad.stderr
    missing = run_cli("analyze", str(table), "--response", "loss")
    assert missing.returncode == 2 and "--factors" in missing.stderr


def test_init_copies_a_shipped_study_and_run_finds_one_by_name(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    import tomllib

    from ablate import __version__
    from ablate.cli import main
    from ablate.study import load_study

    assert main(["init", "quick", "--to", str(tmp_path)]) == 0
    shipped = Path(__file__).parents[1] / "studies" / "quick.yaml"
    assert (tmp_path / "quick.yaml").read_text() == shipped.read_text()
    assert main(["init", "quick", "--to", str(tmp_path)]) == 2  # never overwrites
    assert main(["init", "nosuch"]) == 2
    assert (
        "ships attention, lstm-attention, multiscale, quick, quick-streams, reference"
        in capsys.readouterr().err
    )
    monkeypatch.chdir(tmp_path / "..")  # no file called "quick" here: the shipped one
    assert load_study("quick").name == "quick"
    with pytest.raises(SystemExit) as stopped:
        main(["--version"])
    assert stopped.value.code == 0 and capsys.readouterr().out.strip() == f"ablate {__version__}"
    pyproject = tomllib.loads((Path(__file__).parents[1] / "pyproject.toml").read_text())
    assert __version__ == pyproject["project"]["version"]


def test_a_mistyped_command_or_option_gets_a_suggestion() -> None:
    from ablate.cli import main

    for argv, meant in ((["anlyze", "x"], "'analyze'"), (["analyze", "x", "--fll"], "'--full'"),
                        (["run", "x", "--dryrun"], "'--dry-run'")):  # fmt: skip
        proc = run_cli(*argv)
        assert proc.returncode == 2 and f"did you mean {meant}?" in proc.stderr, proc.stderr
    with pytest.raises(SystemExit):
        main(["analyze", "x", "--coding", "treatment"])  # one coding, offered once


def test_init_without_a_name_lists_the_shipped_studies() -> None:
    from ablate.study import library

    proc = run_cli("init")
    assert proc.returncode == 0
    for name in library.names():
        assert f"  {name} " in proc.stdout


@pytest.mark.slow  # two dry runs load the dataset and Keras: about 15 s
def test_run_name_prefers_the_file_here_and_says_which(tmp_path: Path) -> None:
    shipped = run_cli("run", "quick", "--dry-run", cwd=tmp_path)
    assert "running the study ablate ships as 'quick'" in shipped.stderr
    (tmp_path / "quick.yaml").write_text(tiny_study_text(tmp_path / "results", name="quick"))
    local = run_cli("run", "quick", "--dry-run", cwd=tmp_path)
    assert local.returncode == 0, local.stderr
    assert "running quick.yaml, not the study ablate ships as 'quick'" in local.stderr
    assert "4 cells x 1 replicate(s)" in local.stdout
