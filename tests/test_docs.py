"""The documentation site: built by Sphinx with warnings as errors, its generated reference
pages complete (every study-file key, every command's every option, every column ablate
writes), and no page citing a file the repository does not have."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest

from tests.helpers import ROOT

pytest.importorskip("sphinx", reason="the docs extra is not installed (.ci/run installs it)")


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("docs")
    built = subprocess.run(
        [sys.executable, "-m", "sphinx", "-W", "--keep-going", "-q", "-b", "html",
         str(ROOT / "docs"), str(out)],
        capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    assert built.returncode == 0, built.stderr  # a warning is an error
    return out


def _page(name: str) -> str:
    return (ROOT / "docs" / "reference" / "generated" / name).read_text()


def test_the_site_builds_in_strict_mode_with_every_page(site: Path) -> None:
    for page in ("index", "getting-started", "reference/generated/study-file",
                 "reference/generated/cli", "reference/generated/results"):  # fmt: skip
        assert (site / f"{page}.html").is_file(), page


def test_the_generated_reference_pages_hold_every_key_option_and_column(site: Path) -> None:
    from ablate.cli.reference import commands, options
    from ablate.results.export import EPOCH_TIMES, KEYS, MEANINGS, PROVENANCE
    from ablate.study.reference import keys

    study_file = _page("study-file.md")
    for key in keys():
        assert f"`{key.path}`" in study_file, key.path
    cli = _page("cli.md")
    for name, (command, _) in commands().items():
        assert f"## `ablate {name}`" in cli
        for action in options(command):
            for option in action.option_strings:
                assert f"`{option}" in cli, (name, option)
    results = _page("results.md")
    for column in (*KEYS, *PROVENANCE, *EPOCH_TIMES):
        assert f"`{column}`" in results and column in MEANINGS, column


def test_no_page_cites_a_file_the_repository_does_not_have() -> None:
    cited = re.compile(r"`((?:[\w.-]+/)*[\w.-]+\.(?:md|py|yaml|json|png))`")
    for page in (ROOT / "docs").rglob("*.md"):
        for path in cited.findall(page.read_text()):
            if "/" in path or path.endswith(".md"):
                assert (ROOT / path).exists(), f"{page.name} cites {path}"
