"""The quick study as README.md's first command runs it: its wall time and what it found.

    python bench/quick.py [--replicates 1] [--margin 0.005 --block replicate]

Runs the shipped quick study (``ablate run``, the command's own worker choice) in a fresh
folder, then ``ablate analyze``, and records the wall time, the machine, what every trial
scored against the trivial baseline, the findings and the first screen of the analysis. The
README, the getting-started page and the comments of studies/quick.yaml quote these figures;
tests/test_readme.py checks them against the newest result file (bench/results/quick-*.json),
so a figure in prose is one a run gave. Results go to bench/results/quick-<date>.json.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pandas as pd

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
sys.path.insert(0, str(ROOT))

from bench._machine import describe_machine, save, study_copy  # noqa: E402


def run(replicates: int, analysis: list[str]) -> dict[str, object]:
    """One run of the quick study (with ``replicates``) and its analysis."""
    with tempfile.TemporaryDirectory(prefix="ablate-quick-") as tmp:
        root = Path(tmp)
        study = study_copy(ROOT / "studies" / "quick.yaml", root, f"r{replicates}")
        text = study.read_text().replace("replicates: 1", f"replicates: {replicates}")
        study.write_text(text)
        start = time.monotonic()
        ran = subprocess.run([sys.executable, "-m", "ablate", "run", str(study)],
                             capture_output=True, text=True, check=True)  # fmt: skip
        seconds = time.monotonic() - start
        folder = root / study.stem
        screen = _analyze(folder, analysis)
        data = json.loads(_analyze(folder, [*analysis, "--format", "json"]))
        trials = pd.read_parquet(folder / "trials.parquet")
    learned = data["learned"]
    return {
        "replicates": replicates, "trials": len(trials), "seconds": round(seconds, 1),
        "last_line": ran.stdout.strip().splitlines()[-2],
        "test_loss_min": float(trials["test_loss"].min()),
        "test_loss_max": float(trials["test_loss"].max()),
        "test_recon_loss_min": float(trials["test_recon_loss"].min()),
        "test_recon_loss_max": float(trials["test_recon_loss"].max()),
        "baseline": learned["value"], "baseline_what": learned["what"],
        "learned_rule": learned["rule"], "not_learned": learned["not_learned"],
        "best": learned["best"], "analysis_options": analysis,
        "findings": [f["text"] for f in data["findings"]], "first_screen": screen,
    }  # fmt: skip


def _analyze(folder: Path, options: list[str]) -> str:
    done = subprocess.run([sys.executable, "-m", "ablate", "analyze", str(folder), *options],
                          capture_output=True, text=True, check=True)  # fmt: skip
    return done.stdout


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--replicates", type=int, default=1)
    parser.add_argument("--margin", type=float)
    parser.add_argument("--block")
    args = parser.parse_args()
    analysis = [*(["--margin", str(args.margin)] if args.margin else []),
                *(["--block", args.block] if args.block else [])]  # fmt: skip
    result = run(args.replicates, analysis)
    print(result["first_screen"])
    print(f"{result['trials']} trials in {result['seconds']} s")
    payload = {"machine": describe_machine(), "runs": [result]}
    print(save(HERE / "results", f"quick-r{args.replicates}", payload))


if __name__ == "__main__":
    main()
