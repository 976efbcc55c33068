"""README.md is a first screen that tells the truth: its commands are the ones CI runs, its
study file is a valid study, its links lead to files the repository has, and what it shows the
analysis print is what the analysis prints."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from ablate.study import parse_study
from ablate.study.grid import expand_trials
from tests.helpers import ROOT, run_cli

README = (ROOT / "README.md").read_text()


def _blocks(language: str) -> list[str]:
    return re.findall(rf"^```{language}\n(.*?)^```", README, re.S | re.M)


def test_it_is_one_screen_that_starts_with_what_ablate_is() -> None:
    assert len(README.splitlines()) <= 160
    first = README.split("```", 1)[0]
    assert "ablate answers" in first and "design choices" in first


def test_the_two_commands_are_what_ci_installs_and_runs() -> None:
    commands = _blocks("bash")[0]
    ci = (ROOT / ".ci" / "run").read_text()
    test_command = commands.strip().splitlines()[-1]
    assert test_command == ".venv/bin/python -m pytest"
    assert f"\n{test_command}\n" in ci  # exactly the README's test command
    setup = next(line for line in commands.splitlines() if line.startswith("python3 -m venv"))
    assert "ablate run studies/quick.yaml" in setup and "ablate analyze results/quick" in setup


def test_the_study_file_it_shows_is_a_valid_study_of_about_ten_lines() -> None:
    shown = _blocks("yaml")[0]
    assert len(shown.splitlines()) <= 12
    study = parse_study(shown)
    assert study.name == "quick" and len(list(expand_trials(study))) == 32


def test_every_link_leads_to_a_file_of_the_repository() -> None:
    links = re.findall(r"\]\(([^)#]+)(?:#[^)]*)?\)", README)
    assert len(links) >= 20
    for link in links:
        assert (ROOT / link).exists(), link


def newest_quick_run() -> dict[str, object]:
    """The newest run of the quick study by bench/quick.py (bench/results/quick-r1-*.json)."""
    import json

    found = sorted((ROOT / "bench" / "results").glob("quick-r1-*.json"))
    assert found, "run bench/quick.py: README quotes its figures"
    return json.loads(found[-1].read_text())["runs"][0]


def test_what_it_shows_the_analysis_print_is_what_a_run_printed() -> None:
    """Every line of the README's output block is a line of the quick study's first screen as
    bench/quick.py recorded it, and the figures in its prose are that run's."""
    run = newest_quick_run()
    printed = str(run["first_screen"]).splitlines()
    (shown,) = _blocks("text")
    for line in shown.splitlines():
        assert line in printed, line
    prose = " ".join(README.split())
    assert f"({round(float(run['seconds']))} s measured" in prose
    losses = f"{float(run['test_loss_min']):.3f} to {float(run['test_loss_max']):.3f}"
    assert losses in prose and f"{float(run['baseline']):.3f} for the mean" in prose
    assert run["not_learned"] == 0 and "Every model learned" in prose


def test_the_quick_study_comments_are_a_runs() -> None:
    """studies/quick.yaml's comments quote the same run."""
    run = newest_quick_run()
    comments = " ".join(
        line.lstrip("# ") for line in (ROOT / "studies" / "quick.yaml").read_text().splitlines()
        if line.startswith("#")
    )  # fmt: skip
    comments = " ".join(comments.split())
    assert f"all {run['trials']} of the 32 beat" in comments
    assert f"{float(run['baseline']):.4f} per pixel" in comments
    assert f"one replicate took {round(float(run['seconds']))} s" in comments


@pytest.mark.slow  # seconds: the fast part stays under 3 minutes
def test_the_output_it_shows_is_laid_out_as_the_analysis_prints_it(tiny_results: Path) -> None:
    """The same sections, lines and table headers, on a real (tiny) study's analysis."""
    printed = run_cli("analyze", str(tiny_results)).stdout
    (shown,) = _blocks("text")
    assert printed.startswith("Findings\n========\n- ")
    for title in ("Design\n======\n", "Effects (from each factor's baseline to its other level"):
        assert title in shown and title in printed, title
    assert "Levels of activation" in shown  # the tiny study's activation has two levels only
    header = next(line for line in shown.splitlines() if line.startswith("factor ")).split()
    assert any(line.split() == header for line in printed.splitlines()), header
