"""Every tutorial of the documentation, run as written: its files written where it says, its
shell commands run in order in a fresh folder with the `ablate` command of this environment.

A tutorial page (``docs/tutorials/*.md``) holds three kinds of code blocks: a block whose first
line is ``# file: NAME`` is a file the reader writes; a ``bash`` block is commands the reader
runs, which must all succeed; any other block (``text``) is output shown for reading. A line
that ends in ``# your server`` names the reader's database: the test points it at its own.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from tests.helpers import ROOT

TUTORIALS = sorted((ROOT / "docs" / "tutorials").glob("*.md"))
BLOCK = re.compile(r"^```(\w*)\n(.*?)^```", re.S | re.M)
FILE = re.compile(r"^(?:#|//) file: (\S+)\n")
SERVER = re.compile(r"^(\w+)=\S+\s+# your server$", re.M)


def steps(page: Path) -> list[tuple[str, str]]:
    """The page's files to write (``("file:NAME", text)``) and commands to run (``("bash",
    script)``), in the order the page gives them."""
    found = []
    for language, body in BLOCK.findall(page.read_text()):
        named = FILE.match(body)
        if named:
            found.append((f"file:{named[1]}", body[named.end() :]))
        elif language == "bash":
            found.append(("bash", body))
    return found


def test_every_tutorial_has_commands_and_is_in_the_site() -> None:
    index = (ROOT / "docs" / "index.md").read_text()
    assert len(TUTORIALS) >= 5
    for page in TUTORIALS:
        assert any(kind == "bash" for kind, _ in steps(page)), page.name
        assert f"tutorials/{page.stem}\n" in index, page.name


@pytest.mark.slow
@pytest.mark.parametrize("page", TUTORIALS, ids=lambda p: p.stem)
def test_the_tutorial_runs_as_written(page: Path, tmp_path: Path, request: pytest.FixtureRequest)\
        -> None:  # fmt: skip
    text = page.read_text()
    database = request.getfixturevalue("postgres_url") if SERVER.search(text) else None
    env = {**os.environ, "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}",
           "ABLATE_OFFLINE": "1", "PYTHONPATH": str(tmp_path)}  # fmt: skip
    printed = []
    for kind, body in steps(page):
        if kind.startswith("file:"):
            path = tmp_path / kind.removeprefix("file:")
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(body)
            continue
        script = SERVER.sub(lambda m: f"{m[1]}={database}", body)
        done = subprocess.run(["bash", "-euo", "pipefail", "-c", script], cwd=tmp_path, env=env,
                              capture_output=True, text=True, timeout=600)  # fmt: skip
        assert done.returncode == 0, f"{page.name}:\n{script}\n{done.stdout}\n{done.stderr}"
        printed.append(done.stdout + done.stderr)
    said = " ".join(" ".join(printed).split())
    for finding in shown_findings(text):  # what the page quotes is what the run printed
        assert finding in said, (page.name, finding)


def shown_findings(text: str) -> list[str]:
    """The list items (``- ...`` with their continuation lines) of the page's output blocks,
    each as one line: the findings and next steps it quotes from a run."""
    found = []
    for language, body in BLOCK.findall(text):
        if language != "text":
            continue
        for line in body.splitlines():
            if line.startswith("- "):
                found.append(line)
            elif line.startswith("  ") and found and not line.startswith("   "):
                found[-1] += " " + line.strip()
    return [" ".join(f.split()) for f in found]
