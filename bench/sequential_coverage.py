"""Coverage of the 95% interval when replicates are added until it is narrow enough.

    python bench/sequential_coverage.py [--sims 4000]

Simulates studies of one two-level factor (2 runs, true effect 0, SD 1) that follow the rule of
``ablate run --until-halfwidth`` (:mod:`ablate.sequential.rounds`: after each round, grow to
:func:`ablate.stats.precision.replicates_for` replicates, at least one more, until the effect's
95% half-width is at most the target), and counts how often the final interval covers the true
effect. Stopping on the width, not on the estimate, keeps coverage near 95%; a first round with
few residual degrees of freedom costs a few points. Results go to
bench/results/sequential-coverage-<date>.json.
"""

from __future__ import annotations

import argparse
import math
import sys
from pathlib import Path

import numpy as np
from scipy import stats

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from ablate.stats.precision import replicates_for
from bench._machine import describe_machine, save

CASES = ((1.0, 2), (0.6, 3), (0.5, 6), (0.3, 10))  # (target half-width, first replicates)
MOST = 400


def _critical(df: float) -> float:
    return float(stats.t.ppf(0.975, df))


def simulate(target: float, first: int, sims: int, seed: int = 0) -> dict[str, float]:
    """One case: coverage, mean final replicates, residual df of the first round."""
    rng = np.random.default_rng(seed)
    covered, finals = 0, []
    for _ in range(sims):
        data = rng.standard_normal((2, MOST))
        r = first
        while True:
            x = data[:, :r]
            df = 2 * (r - 1)
            half = _critical(df) * math.sqrt(x.var(axis=1, ddof=1).mean() * 2 / r)
            if half <= target or r >= MOST:
                break
            nxt = replicates_for(half, _critical, (df, r, 2), target, MOST)
            r = MOST if nxt is None else max(nxt, r + 1)
        covered += abs(x[1].mean() - x[0].mean()) <= half
        finals.append(r)
    return {"target": target, "first_replicates": first, "first_df": 2 * (first - 1),
            "coverage": float(covered / sims),
            "mean_final_replicates": float(np.mean(finals))}  # fmt: skip


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sims", type=int, default=4000)
    args = parser.parse_args()
    runs = [simulate(t, r, args.sims) for t, r in CASES]
    for run in runs:
        print(run)
    payload = {"machine": describe_machine(), "sims": args.sims, "runs": runs}
    print(save(Path(__file__).resolve().parent / "results", "sequential-coverage", payload))


if __name__ == "__main__":
    main()
