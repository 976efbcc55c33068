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


@pytest.mark.slow  # seconds: the fast part stays under 3 minutes
def test_the_output_it_shows_is_laid_out_as_the_analysis_prints_it(tiny_results: Path) -> None:
    """The same sections, lines and table header, on a real (tiny) study's analysis."""
    printed = run_cli("analyze", str(tiny_results)).stdout
    findings, effects = _blocks("text")
    assert printed.startswith("Findings\n========\n- ")
    design = "Design\n======\nresponse: test_loss (lower is better)\ntrivial baseline: "
    assert design in findings and design in printed
    learned = "trials did not learn (learned = at most"  # wherever the lines wrap
    assert learned in " ".join(findings.split()) and learned in " ".join(printed.split())
    header = effects.splitlines()[0].split()
    assert any(line.split() == header for line in printed.splitlines()), header
