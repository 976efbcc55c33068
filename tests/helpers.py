"""Helpers shared by the tests: the tiny study and running the real `ablate` command."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]

TINY = """\
name: {name}
model: {{units: [8, 6, 4, 2], depth: 1}}
factors:
  batch_norm: [true, false]
  activation: [relu, sigmoid]
training: {{epochs: {epochs}, batch_size: 32}}
data: {{dataset: mnist-sample, train_size: 96, test_size: 64}}
replicates: {replicates}
results: {results}
run: {{heartbeat_seconds: 0.5}}
"""


def tiny_study_text(results: Path, name: str = "tiny", epochs: int = 1, replicates: int = 1) -> str:
    """A 4-cell study of a ~14k-parameter VAE that trains in about a second per trial."""
    return TINY.format(name=name, epochs=epochs, replicates=replicates, results=results)


def run_cli(*args: str, cwd: Path | None = None, env: dict[str, str] | None = None,
            timeout: float = 300) -> subprocess.CompletedProcess[str]:  # fmt: skip
    """Run the real `ablate` command in a fresh process, as a user would."""
    return subprocess.run(
        [sys.executable, "-m", "ablate", *args],
        cwd=cwd,
        env={**os.environ, **(env or {})},
        capture_output=True,
        text=True,
        timeout=timeout,
    )
