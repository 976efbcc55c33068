"""`ablate analyze` on a large table: the default analysis against ``--no-importance``.

    python bench/analyze_large.py [--rows 100000] [--repeat 3]

A bare parquet table of ``--rows`` trials of the reference grid (2 x 2 x 2 x 4 = 32 cells,
known effects plus noise of SD 0.01, a ``replicate`` column) is analysed by fresh `ablate
analyze` processes: with ``--no-importance`` (the baseline), with the defaults (the importance
evaluators included), and with ``--margin 0.001 --block replicate`` (equivalence, blocks fixed
and random). Reports the median wall time of each and its ratio to the baseline; results go
to bench/results/analyze-large-<date>.json.
"""

from __future__ import annotations

import argparse
import itertools
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))

from bench._machine import describe_machine, save  # noqa: E402

FACTORS = "batch_norm,dropout,spatial_attention,activation"
VARIANTS = {"no-importance": ["--no-importance"], "default": [],
            "margin+block": ["--margin", "0.001", "--block", "replicate"]}  # fmt: skip


def table(rows: int, path: Path) -> None:
    rng = np.random.default_rng(0)
    cells = list(itertools.product([True, False], [True, False], [True, False],
                                   ["elu", "relu", "selu", "sigmoid"]))  # fmt: skip
    frame = pd.DataFrame([cells[i] for i in rng.integers(0, 32, rows)], columns=FACTORS.split(","))
    level = frame["activation"].map({"elu": 0.30, "relu": 0.31, "selu": 0.33, "sigmoid": 0.36})
    shifts = 0.02 * frame["batch_norm"] + 0.01 * frame["dropout"]
    shifts += 0.005 * frame["spatial_attention"]
    frame["test_loss"] = level - shifts + rng.normal(0, 0.01, rows)
    frame["replicate"] = np.arange(rows) // 32
    frame.to_parquet(path)


def timed(path: Path, extra: list[str]) -> float:
    start = time.perf_counter()
    subprocess.run([sys.executable, "-m", "ablate", "analyze", str(path), "--factors", FACTORS,
                    *extra], check=True, capture_output=True)  # fmt: skip
    return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=100_000)
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "large.parquet"
        table(args.rows, path)
        seconds = {name: statistics.median(timed(path, extra) for _ in range(args.repeat))
                   for name, extra in VARIANTS.items()}  # fmt: skip
    base = seconds["no-importance"]
    runs = [{"variant": k, "seconds": round(v, 3), "ratio": round(v / base, 3)}
            for k, v in seconds.items()]  # fmt: skip
    for run in runs:
        print(run)
    payload = {"machine": describe_machine(), "rows": args.rows, "repeat": args.repeat,
               "runs": runs}  # fmt: skip
    print(save(HERE / "results", "analyze-large", payload))


if __name__ == "__main__":
    main()
