"""Error rates of replicates until decided: alpha spending against looking at the full α.

    python bench/sequential_decided.py [--sims 20000] [--margin 0.5 1.0] [--max 20] [--seed 0]

Simulates studies of a 2^3 full factorial (8 cells, noise SD 1, every effect -- A, B, C and
their interactions -- estimated as mean(high) − mean(low) from the cell means, with the pooled
within-cell variance on 8(r − 1) degrees of freedom) that follow the rule of
:mod:`ablate.sequential.decided`: looks at 2, 3, 5, 8, 12 and 20 replicates (× 1.5), each
effect tested against 0 (two-sided) and against ±D (two one-sided tests), the first verdict
kept, the rounds stopped when every effect is decided. The cells' replicates are drawn once
per study and the looks read growing prefixes of them, as a study that adds replicates does.

Rules: the O'Brien-Fleming-type spending (the default), the Pocock type, "naive" (every look
at the full α) and "fixed" (one look at the maximum, at α: no sequential looks, the reference).

Which verdicts are wrong, by the true effect θ (in units of the margin D):
θ = 0: "different" (the type I error of the test against 0); 0 < |θ| < D: none -- the effect
differs from 0 and lies within ±D, so both verdicts are true and only staying undecided costs;
|θ| ≥ D: "equivalent" (at |θ| = D the type I error of the two one-sided tests). Rates are per
effect, averaged over the effects of a study with that θ, then over studies; their Monte Carlo
standard errors are the SD of the per-study shares over √studies (a study's effects share its
SD and its stopping, so they are not independent). Results go to
bench/results/sequential-decided-<date>.json.
"""

from __future__ import annotations

import argparse
import itertools
import math
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np
from numpy.typing import NDArray

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from ablate.sequential.decided import UNDECIDED, Rule, decide_many, keep
from bench._machine import describe_machine, save, table

TERMS = ("A", "B", "C", "AB", "AC", "BC", "ABC")
#: The 8 cells' ±1 contrasts, one column per term.
_MAIN = np.array(list(itertools.product((-1, 1), repeat=3)), dtype=float)
X = np.column_stack([np.prod(_MAIN[:, list(c)], axis=1)
                     for k in (1, 2, 3) for c in itertools.combinations(range(3), k)])  # fmt: skip
#: The true effects of every term, in units of the margin D.
SCENARIOS = {
    "null": (0.0,) * 7,
    "between (D/2)": (0.5,) * 7,
    "at margin (D)": (1.0,) * 7,
    "beyond (2D)": (2.0,) * 7,
    "mixed": (2.0, 1.0, 0.5, 0.0, 0.0, 0.0, 0.0),
}
Looks = list[tuple[int, float]]  # (replicates, level) of every look


def rules(alpha: float, margin: float, start: int, most: int) -> dict[str, Looks]:
    """Each rule's looks: the spending rules' schedule and levels, the naive rule's schedule
    at the full α, the fixed-sample look at the maximum."""
    found = {}
    for name in ("obrien-fleming", "pocock"):
        rule = Rule(margin, most, alpha, start, spending=name)
        found[name] = list(zip(rule.schedule(), rule.levels(), strict=True))
    found["naive"] = [(r, alpha) for r, _ in found["obrien-fleming"]]
    found["fixed"] = [(most, alpha)]
    return found


def draw(effects: NDArray[np.float64], sims: int, most: int, rng: np.random.Generator) -> Any:
    """Running sums of every cell's replicates and of their squares, (sims, 8, most) each."""
    y = rng.standard_normal((sims, 8, most)) + (X @ effects / 2)[None, :, None]
    return np.cumsum(y, axis=2), np.cumsum(y * y, axis=2)


def estimates(sums: Any, r: int) -> tuple[NDArray[np.float64], NDArray[np.float64], int]:
    """Every study's effects, their common SE and the residual df after r replicates."""
    s1, s2 = sums[0][:, :, r - 1], sums[1][:, :, r - 1]
    means = s1 / r
    df = 8 * (r - 1)
    var = (s2 - r * means**2).sum(axis=1) / df
    return means @ X / 4, np.sqrt(var / (2 * r)), df


def follow(sums: Any, looks: Looks, margin: float) -> tuple[NDArray[np.str_], NDArray[np.int_]]:
    """Every study through the looks: the final decisions (sims, 7) and replicates used."""
    sims = sums[0].shape[0]
    decisions = np.full((sims, len(TERMS)), UNDECIDED, dtype="<U12")
    used = np.zeros(sims, dtype=int)
    active = np.ones(sims, dtype=bool)
    for r, level in looks:
        est, se, df = estimates(sums, r)
        now = decide_many(est, se[:, None], df, margin, level)
        decisions = np.where(active[:, None], keep(decisions, now), decisions)
        used = np.where(active, r, used)
        active &= (decisions == UNDECIDED).any(axis=1)
    return decisions, used


def check(sums: Any, margin: float, alpha: float, start: int, most: int, n: int) -> None:
    """The vectorised loop agrees with :meth:`Rule.look`, study by study, on the first ``n``."""
    for name in ("obrien-fleming", "pocock"):
        rule = Rule(margin, most, alpha, start, spending=name)
        looks = list(zip(rule.schedule(), rule.levels(), strict=True))
        fast, used = follow((sums[0][:n], sums[1][:n]), looks, margin)
        for i in range(n):
            look, r = None, start
            while True:
                est, se, df = estimates((sums[0][i : i + 1], sums[1][i : i + 1]), r)
                look = rule.look(r, TERMS, est[0], se[0], df, before=look)
                if look.stop or look.next_replicates is None:
                    break
                r = look.next_replicates
            assert look.decisions == tuple(fast[i]) and look.replicates == used[i], (name, i)


def _share(hit: NDArray[np.bool_]) -> tuple[float, float]:
    """A per-study share's mean and Monte Carlo SE (hit: studies × effects)."""
    per = hit.mean(axis=1)
    return float(per.mean()), float(per.std(ddof=1) / math.sqrt(len(per)))


def summarise(
    theta: NDArray[np.float64], decisions: NDArray[np.str_], used: NDArray[np.int_]
) -> list[dict[str, Any]]:
    """One row per distinct true effect (in units of D): the decisions' shares, the wrong
    verdict's rate, and the study's replicates and undecided share."""
    study = {
        "mean_replicates": float(used.mean()),
        "mean_replicates_se": float(used.std(ddof=1) / math.sqrt(len(used))),
        "undecided_at_max": _share((decisions == UNDECIDED).any(axis=1)[:, None]),
    }
    rows = []
    for value in sorted(set(theta.tolist())):
        cols = decisions[:, theta == value]
        row: dict[str, Any] = {"theta_in_margins": value, "effects": int(cols.shape[1])}
        for word in ("different", "equivalent", UNDECIDED):
            row[word] = _share(cols == word)
        wrong = "different" if value == 0 else "equivalent" if abs(value) >= 1 else None
        row["wrong_verdict"] = wrong
        row["wrong_rate"] = row[wrong] if wrong else None
        row["any_wrong_in_study"] = _share((cols == wrong).any(axis=1)[:, None]) if wrong else None
        rows.append({**row, **study})
    return rows


def simulate(args: argparse.Namespace) -> list[dict[str, Any]]:
    """Every margin and scenario under every rule, the rules on the same draws."""
    out = []
    for j, margin in enumerate(args.margin):
        looks = rules(args.alpha, margin, args.start, args.max)
        for i, (scenario, units) in enumerate(SCENARIOS.items()):
            theta = np.asarray(units)
            rng = np.random.default_rng([args.seed, j, i])
            sums = draw(theta * margin, args.sims, args.max, rng)
            check(sums, margin, args.alpha, args.start, args.max, args.check)
            for name, rule_looks in looks.items():
                decisions, used = follow(sums, rule_looks, margin)
                for row in summarise(theta, decisions, used):
                    out.append({"margin": margin, "scenario": scenario, "rule": name, **row})
    return out


def _pm(pair: tuple[float, float] | None, digits: int = 4) -> str | None:
    return None if pair is None else f"{pair[0]:.{digits}f}±{pair[1]:.{digits}f}"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sims", type=int, default=20000, help="studies per scenario")
    parser.add_argument("--margin", type=float, nargs="+", default=[0.5, 1.0],
                        help="D, in noise SDs")  # fmt: skip
    parser.add_argument("--alpha", type=float, default=0.05)
    parser.add_argument("--start", type=int, default=2)
    parser.add_argument("--max", type=int, default=20)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--check", type=int, default=300, help="studies checked against Rule")
    args = parser.parse_args()
    began = time.perf_counter()
    runs = simulate(args)
    seconds = time.perf_counter() - began
    shown = [{**r, "theta": f"{r['theta_in_margins']:g}D", "wrong": _pm(r["wrong_rate"]),
              "undecided": _pm(r[UNDECIDED], 3), "replicates": _pm((r["mean_replicates"],
              r["mean_replicates_se"]), 2), "at_max": _pm(r["undecided_at_max"], 3)}
             for r in runs]  # fmt: skip
    print(table(shown, [("margin", "D", "g"), ("scenario", "scenario", "s"), ("rule", "rule", "s"),
                        ("theta", "θ", "s"), ("wrong_verdict", "wrong verdict", "s"),
                        ("wrong", "wrong rate", "s"), ("undecided", "effects undecided", "s"),
                        ("replicates", "mean replicates", "s"),
                        ("at_max", "studies undecided", "s")]))  # fmt: skip
    looks = {m: rules(args.alpha, m, args.start, args.max) for m in args.margin}
    payload = {
        "what": "error rates of `--until-decided`: alpha spending against the naive rule",
        "machine": describe_machine(),
        "settings": {**vars(args), "terms": TERMS, "noise_sd": 1.0,
                     "scenarios_in_margins": SCENARIOS, "looks_by_margin": looks,
                     "model": "2^3 full factorial, cell means, residual df 8(r - 1)"},
        "seconds": round(seconds, 1),
        "runs": runs,
    }  # fmt: skip
    print(f"{seconds:.1f} s;", save(Path(__file__).resolve().parent / "results",
                                    "sequential-decided", payload))  # fmt: skip


if __name__ == "__main__":
    main()
