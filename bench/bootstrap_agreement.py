"""How often the cluster bootstrap disagrees with OLS by chance, by replicates per cell.

    python bench/bootstrap_agreement.py [--sims 2000]

Simulates studies where the normal model is exactly right (a 2 x 2 x 2 grid, main effects of
0.5, 0 and 0.3 in units of the noise SD, normal noise), analyses each with ablate's own
cluster bootstrap (:func:`ablate.stats.bootstrap.cluster_bootstrap`, intervals widened by
√(r/(r − 1))) and counts the effects it flags as disagreeing with OLS -- every flag is a
false alarm here. The rate per effect and the share of studies with any flag, at 2, 3, 4, 5
and 10 replicates per cell, set the replicates the analysis asks for before it shows the check
(:data:`ablate.stats.needs.CLUSTER_BOOTSTRAP`). Results go to
bench/results/bootstrap-agreement-<date>.json.
"""

from __future__ import annotations

import argparse
import itertools
import sys
from pathlib import Path

import numpy as np
import pandas as pd
from scipy import stats

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from ablate.designs.matrix import build_matrix, factor_infos, reference_grid
from ablate.stats import estimates
from ablate.stats.bootstrap import cluster_bootstrap
from ablate.stats.options import Options
from bench._machine import describe_machine, save

REPLICATES = (2, 3, 4, 5, 10)
TRUTH = np.array([0.5, 0.0, 0.3])  # the three effects, in noise SDs


def simulate(replicates: int, sims: int, seed: int = 0) -> dict[str, float]:
    """False alarms of the bootstrap check at ``replicates`` per cell."""
    rng = np.random.default_rng(seed)
    grid = pd.DataFrame(list(itertools.product([False, True], repeat=3)), columns=list("abc"))
    frame = pd.concat([grid] * replicates, ignore_index=True)
    factors = factor_infos(frame, list("abc"))
    design = build_matrix(frame, factors, "reference", 1, ())
    X = design.matrix.to_numpy(float)
    signal = frame[list("abc")].to_numpy(float) @ TRUTH
    opts, ref = Options(), reference_grid(factors)
    flagged, studies = 0, 0
    for s in range(sims):
        y = signal + rng.standard_normal(len(frame))
        beta = np.linalg.lstsq(X, y, rcond=None)[0]
        df = len(y) - X.shape[1]
        cov = float(((y - X @ beta) ** 2).sum() / df) * np.linalg.inv(X.T @ X)
        effects = estimates.effects(factors, ref, design.rows(ref), beta, cov, df,
                                    float(stats.t.ppf(0.975, df)), opts)  # fmt: skip
        checked = cluster_bootstrap(frame, y, factors, design, effects, opts, seed + s)
        assert checked is not None
        wrong = int((~checked.effects["agrees"]).sum())
        flagged += wrong
        studies += wrong > 0
    return {"replicates": replicates, "sims": sims, "effects_flagged": flagged / (3 * sims),
            "studies_flagged": studies / sims}  # fmt: skip


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sims", type=int, default=2000)
    args = parser.parse_args()
    runs = []
    for r in REPLICATES:
        runs.append(simulate(r, args.sims))
        print(runs[-1], flush=True)
    payload = {
        "machine": describe_machine(),
        "design": "2x2x2, main effects 0.5, 0, 0.3 SD",
        "rule": "disagrees: half-width ratio outside [2/3, 3/2] or one interval excludes "
        "0 and the other does not; bootstrap widened by sqrt(r/(r-1))",
        "runs": runs,
    }
    print(save(Path(__file__).resolve().parent / "results", "bootstrap-agreement", payload))


if __name__ == "__main__":
    main()
