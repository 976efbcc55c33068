"""D-optimal designs: the runs of the grid that estimate a stated model most precisely.

Candidates are the cells of the full grid, each coded as a row of the model's columns in
effect (sum) coding, the coding of the analysis: ±1 for a two-level factor, k − 1 columns for
a factor of k levels, products of them for two-factor interactions. pydoe's DETMAX exchange
(``optimal_design``) maximises det(X'X). Its result depends on the order of the candidates
(its greedy start breaks ties by position), so ablate runs it from several orders drawn from
the study's seed and keeps the best: the same study always gets the same runs, and a poor
start (which can leave the design singular) does not decide it.

Runs are distinct cells: training the same cell twice with the same seed gives the same
result, so repeats come from replicates (new seeds), never from the design.

pydoe cannot keep runs that have already been trained, so augmenting a design (``augment:``)
is a small exchange here: each new run is added where it raises det(X'X) most given every run
before it, then new runs are swapped for unused cells while that raises it further.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from ablate.errors import AblateError

STARTS = 5  # DETMAX runs from different candidate orders


@dataclass(frozen=True)
class Choice:
    """Which candidate rows a design uses, and its D-efficiency as pydoe reports it."""

    indices: tuple[int, ...]  # into the candidates, ascending
    d_efficiency: float  # 100 · det(X'X / n)^(1/p), X with its intercept column
    parameters: int


def d_optimal(model: np.ndarray, runs: int, seed: int) -> Choice:
    """The best of several DETMAX searches for ``runs`` distinct rows of ``model``.

    ``model``: candidates × columns, the intercept first (it is dropped for pydoe, which adds
    its own with ``degree=1``).
    """
    import pydoe

    n_cand, p = model.shape
    if runs > n_cand:
        raise AblateError(
            f"an optimal design of {runs} runs needs {runs} distinct cells, and the grid has "
            f"{n_cand}; lower runs (for repeats, add replicates)"
        )
    if runs < p:
        raise AblateError(
            f"{runs} runs cannot estimate the model's {p} coefficients; ask for at least {p}"
        )
    columns = model[:, 1:]
    index = {tuple(row): i for i, row in enumerate(columns)}
    rng = np.random.default_rng(seed)
    best: Choice | None = None
    for _ in range(STARTS):
        order = rng.permutation(n_cand)
        design, info = pydoe.optimal_design(
            columns[order], n_points=runs, degree=1, criterion="D", method="detmax"
        )
        chosen = tuple(sorted(index[tuple(row)] for row in design))
        if best is None or info["D_eff"] > best.d_efficiency + 1e-9:
            best = Choice(chosen, float(info["D_eff"]), int(info["p_columns"]))
    assert best is not None
    if best.d_efficiency <= 0:
        raise AblateError(
            f"no {runs}-run design found estimates the model's {p} coefficients; ask for more runs"
        )
    return best


def augment(model: np.ndarray, fixed: Sequence[int], runs: int, seed: int) -> tuple[int, ...]:
    """``runs`` more distinct rows of ``model`` chosen to maximise det(X'X) with ``fixed``."""
    n_cand, p = model.shape
    fixed = list(fixed)
    used = set(fixed)
    pool = [int(i) for i in np.random.default_rng(seed).permutation(n_cand) if i not in used]
    if runs > len(pool):
        raise AblateError(
            f"{runs} more runs need {runs} cells not yet in the design, and only {len(pool)} are "
            "left; lower the number (for repeats, add replicates)"
        )
    ridge = 1e-6 * np.eye(p)  # keeps the greedy start defined while X'X is still singular
    chosen: list[int] = []
    for _ in range(runs):
        rows = model[fixed + chosen]
        inverse = np.linalg.inv(rows.T @ rows + ridge)
        free = [i for i in pool if i not in chosen]
        gains = [model[i] @ inverse @ model[i] for i in free]  # det grows by (1 + gain)
        chosen.append(free[int(np.argmax(gains))])
    best = _logdet(model[fixed + chosen])
    improved = True
    while improved:
        improved = False
        for slot in range(len(chosen)):
            for candidate in pool:
                if candidate in chosen:
                    continue
                trial = [*chosen[:slot], candidate, *chosen[slot + 1 :]]
                value = _logdet(model[fixed + trial])
                if value > best + 1e-9:
                    chosen, best, improved = trial, value, True
    return tuple(sorted(chosen))


def d_efficiency(model: np.ndarray) -> float:
    """pydoe's D-efficiency of a model matrix (intercept included): 100·det(X'X/n)^(1/p)."""
    import pydoe

    return float(pydoe.d_efficiency(np.asarray(model, dtype=float)))


def _logdet(rows: np.ndarray) -> float:
    sign, value = np.linalg.slogdet(rows.T @ rows)
    return float(value) if sign > 0 else -np.inf
