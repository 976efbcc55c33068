"""ablate as a user who installs the wheel meets it, not as a clone: the wheel builds without
a packaging warning, installs into a fresh environment (alone, then with the TensorFlow extra),
and the getting-started steps run from the studies it ships (`ablate init quick`, `ablate run
quick`, `ablate analyze`)."""

from __future__ import annotations

import subprocess
import sys
import tomllib
from pathlib import Path

import pytest

from tests.helpers import ROOT


def _run(*args: str | Path, cwd: Path, timeout: float = 900) -> subprocess.CompletedProcess[str]:
    return subprocess.run([str(a) for a in args], cwd=cwd, capture_output=True, text=True,
                          timeout=timeout)  # fmt: skip


@pytest.mark.slow
def test_the_wheel_installs_and_starts_from_its_shipped_studies(tmp_path: Path) -> None:
    dist = tmp_path / "dist"
    built = _run(sys.executable, "-m", "pip", "wheel", ROOT, "--no-deps", "-w", dist, "-v",
                 cwd=tmp_path)  # fmt: skip
    assert built.returncode == 0, built.stderr
    log = (built.stdout + built.stderr).lower()
    assert "deprecat" not in log and "buildbackendwarning" not in log
    version = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["version"]
    (wheel,) = dist.glob(f"ablate-{version}-*.whl")

    env = tmp_path / "env"
    made = _run(getattr(sys, "_base_executable", sys.executable), "-m", "venv", env, cwd=tmp_path)
    assert made.returncode == 0, made.stderr
    installed = _run(env / "bin" / "pip", "install", "--quiet", wheel, cwd=tmp_path)
    assert installed.returncode == 0, installed.stderr
    ablate = env / "bin" / "ablate"
    work = tmp_path / "work"  # no clone here: nothing but what the wheel brought
    work.mkdir()
    assert _run(ablate, "--version", cwd=work).stdout.strip() == f"ablate {version}"

    init = _run(ablate, "init", "quick", cwd=work)
    assert init.returncode == 0 and (work / "quick.yaml").is_file(), init.stderr
    lean = _run(ablate, "run", "quick", cwd=work)  # the core install has no Keras: it says so
    assert lean.returncode == 2 and "pip install 'ablate[tensorflow]'" in lean.stderr
    assert "Traceback" not in lean.stderr and not (work / "results" / "quick").exists()
    extra = _run(env / "bin" / "pip", "install", "--quiet", f"{wheel}[tensorflow]", cwd=tmp_path)
    assert extra.returncode == 0, extra.stderr
    run = _run(ablate, "run", "quick", cwd=work)
    assert run.returncode == 0, run.stderr
    assert "quick: 32/32 complete" in run.stdout
    analysis = _run(ablate, "analyze", "results/quick", cwd=work)
    assert analysis.returncode == 0, analysis.stderr
    words = " ".join(analysis.stdout.split())
    assert analysis.stdout.startswith("Findings") and "every trial learned" in words
