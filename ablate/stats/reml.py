"""REML for the variance components of seed streams (:mod:`ablate.stats.components`):
the usable trials of a scope laid out by cell and seed indices, and the estimates for data
with trials missing -- statsmodels' MixedLM, then Fisher scoring on from its fit, and the same
scoring vectorised over the parametric bootstrap's resamples (see that module's docstring)."""

from __future__ import annotations

import itertools
import warnings
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np

if TYPE_CHECKING:
    from numpy.typing import NDArray

#: A REML variance under this share of the total is on the boundary 0.
BOUNDARY = 1e-6


@dataclass(frozen=True)
class Layout:
    """A scope's usable trials (cells of two or more), sorted by cell, then seed indices."""

    y: NDArray[np.float64]
    cell: NDArray[np.int64]  # 0 .. cells - 1
    codes: NDArray[np.int64]  # (trials, streams): each stream's seed index code
    levels: tuple[int, ...]  # per stream: its highest seed index code + 1

    @property
    def cells(self) -> int:
        return int(self.cell.max()) + 1 if len(self.cell) else 0


@dataclass(frozen=True)
class Fit:
    sources: tuple[str, ...]
    estimate: NDArray[np.float64]
    truncated: NDArray[np.bool_]
    draws: NDArray[np.float64]  # (resamples, sources)


def within(layout: Layout) -> tuple[NDArray[np.float64], int]:
    """Each trial's deviation from its cell's mean, and the within-cell degrees of freedom."""
    sums = np.bincount(layout.cell, layout.y)
    counts = np.bincount(layout.cell)
    return layout.y - (sums / counts)[layout.cell], len(layout.y) - layout.cells


def fit_reml(layout: Layout, names: list[str], rng: np.random.Generator, resamples: int,
             missing: list[str], scope: str, residual: str) -> Fit:  # fmt: skip
    """Unbalanced data: MixedLM's REML estimates, and REML refits of simulated resamples."""
    d, df = within(layout)
    even = np.full(len(names) + 1, float(d @ d) / df / (len(names) + 1))
    starts = [_reml_refits(layout.y[None, :], layout, even)[0]]  # scoring from an even split
    result = _mixedlm(layout, names, starts[0])
    if result is None:
        missing.append(f"{scope}: statsmodels MixedLM failed; REML by Fisher scoring alone")
    else:
        starts.append(np.r_[np.asarray(result.vcomp, float), float(result.scale)])
    y = np.tile(layout.y, (len(starts), 1))
    climbed = _reml_refits(y, layout, np.array(starts))  # on from each: the higher kept
    estimate = climbed[np.argmax(_reml_score(y, _kernels(layout), climbed, derivatives=False)[0])]
    truncated = np.r_[estimate[:-1] <= BOUNDARY * estimate.sum(), False]
    estimate[truncated] = 0.0
    draws = _reml_refits(_simulate(layout, estimate, rng, resamples), layout, estimate)
    return Fit((*names, residual), estimate, truncated, draws)


def _mixedlm(layout: Layout, names: list[str], start: NDArray[np.float64]) -> Any:
    """MixedLM's REML fit from ``start`` (None where it fails): a group per cell with the
    cell's mean as a fixed effect, no group intercept, a variance component per stream."""
    from statsmodels.regression.mixed_linear_model import MixedLM, MixedLMParams, VCSpec

    rows = [np.flatnonzero(layout.cell == c) for c in range(layout.cells)]
    mats = [[np.eye(L)[layout.codes[r, j]] for r in rows] for j, L in enumerate(layout.levels)]
    colnames = [[[f"{s}[{i}]" for i in range(L)] for _ in rows]
                for s, L in zip(names, layout.levels, strict=True)]  # fmt: skip
    means = np.eye(layout.cells)[layout.cell]
    model = MixedLM(layout.y, means, layout.cell, exog_vc=VCSpec(names, colnames, mats))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # boundary and convergence notes: climbed on from
        try:
            vcomp = np.maximum(start[:-1], 1e-4 * start[-1]) / start[-1]  # off the boundary
            begin = MixedLMParams.from_components(np.zeros(layout.cells), np.zeros((0, 0)),
                                                  vcomp=vcomp)  # fmt: skip
            return model.fit(reml=True, start_params=begin)
        except (np.linalg.LinAlgError, ValueError):
            return None


def _simulate(layout: Layout, theta: NDArray[np.float64], rng: np.random.Generator,
              resamples: int) -> NDArray[np.float64]:  # fmt: skip
    """(resamples, trials) responses drawn from the components ``theta`` (streams, rest)."""
    y = rng.normal(0.0, np.sqrt(theta[-1]), (resamples, len(layout.y)))
    for j, L in enumerate(layout.levels):
        effects = rng.normal(0.0, np.sqrt(theta[j]), (resamples, layout.cells, L))
        y += effects[:, layout.cell, layout.codes[:, j]]
    return y


def _reml_refits(y: NDArray[np.float64], layout: Layout, start: NDArray[np.float64],
                 iterations: int = 100) -> NDArray[np.float64]:  # fmt: skip
    """REML estimates (streams, rest) for each row of ``y`` (trials in ``layout``'s order),
    the cells' means profiled out: Fisher scoring from ``start`` (one row, or one per row of
    ``y``), all rows at once, a component held at 0 where the likelihood rises only below it,
    and a step halved until the likelihood does not fall (so each row climbs to the maximum
    nearest its start)."""
    parts = _kernels(layout)
    theta = np.broadcast_to(np.asarray(start, float), (len(y), len(layout.levels) + 1)).copy()
    tol = 1e-10 * float(np.mean(theta.sum(axis=1)))
    for _ in range(iterations):
        ll, score, info = _reml_score(y, parts, theta)
        fixed = (theta <= tol) & (score <= 0)
        fixed[:, -1] = False
        step = _newton(info, score, fixed)
        crossing = (theta + step < 0) & ~fixed
        crossing[:, -1] = False
        if crossing.any():  # held at 0 too, the others' step taken without them
            fixed |= crossing
            step = _newton(info, score, fixed)
        new = np.where(fixed, 0.0, np.maximum(theta + step, 0.0))
        new[:, -1] = np.maximum(new[:, -1], tol)
        for _ in range(30):
            worse = _reml_score(y, parts, new, derivatives=False)[0] < ll - 1e-12 * np.abs(ll)
            if not worse.any():
                break
            new[worse] = (theta[worse] + new[worse]) / 2
        done = np.abs(new - theta).max() <= tol
        theta = new
        if done:
            break
    return theta


def _kernels(layout: Layout) -> list[tuple[NDArray[np.float64], NDArray[np.int64]]]:
    """Per group of alike cells: each source's covariance pattern G (streams, then the rest's
    identity) and the cells' rows."""
    parts = []
    for codes, idx in patterns(layout):
        blocks = [np.eye(L)[codes[:, j]] for j, L in enumerate(layout.levels)]
        parts.append((np.stack([*(b @ b.T for b in blocks), np.eye(len(codes))]), idx))
    return parts


def _newton(info: NDArray[np.float64], score: NDArray[np.float64],
            fixed: NDArray[np.bool_]) -> NDArray[np.float64]:  # fmt: skip
    """The scoring step info⁻¹ score of each row with the ``fixed`` components held still."""
    info = np.where(fixed[:, :, None] | fixed[:, None, :], np.eye(info.shape[1]), info)
    rhs = np.where(fixed, 0.0, score)[..., None]
    try:
        return np.asarray(np.linalg.solve(info, rhs)[..., 0], float)
    except np.linalg.LinAlgError:  # a singular row: its least-squares step
        return np.asarray((np.linalg.pinv(info) @ rhs)[..., 0], float)


def _reml_score(
    y: NDArray[np.float64], parts: list[tuple[NDArray[np.float64], NDArray[np.int64]]],
    theta: NDArray[np.float64], *, derivatives: bool = True,
) -> tuple[NDArray[np.float64], NDArray[np.float64], NDArray[np.float64]]:  # fmt: skip
    """The REML log-likelihood (less its constant), score and expected information in the
    variances, per row of ``y``. With V = Σ θ_q G_q a cell's covariance and P its projection
    V⁻¹ − V⁻¹1(1'V⁻¹1)⁻¹1'V⁻¹: −½(log|V| + log 1'V⁻¹1 + y'Py), ½(y'PG_qPy − tr PG_q) and
    ½ tr(PG_q PG_r), summed over the cells."""
    ll = np.zeros(len(theta))
    score = np.zeros_like(theta)
    info = np.zeros((*theta.shape, theta.shape[1]))
    for kernels, idx in parts:
        (m, n), q = idx.shape, len(kernels)
        v = (theta @ kernels.reshape(q, n * n)).reshape(-1, n, n)
        vi = np.linalg.inv(v)
        v1 = vi.sum(axis=2)
        p = vi - v1[:, :, None] * v1[:, None, :] / v1.sum(axis=1)[:, None, None]
        yc = y[:, idx]
        py = yc @ p  # P is symmetric
        ll -= 0.5 * (m * (np.linalg.slogdet(v)[1] + np.log(v1.sum(axis=1)))
                     + (py * yc).sum(axis=(1, 2)))  # fmt: skip
        if derivatives:
            pg = p[:, None] @ kernels[None]  # (rows, sources, n, n): PG_q
            pk = pg.reshape(-1, q, n * n)
            outer = (py.transpose(0, 2, 1) @ py).reshape(-1, n * n)  # Σ_m Py (Py)'
            score += 0.5 * (outer @ kernels.reshape(q, n * n).T
                            - m * pk[:, :, :: n + 1].sum(axis=2))  # fmt: skip
            pkt = pg.transpose(0, 1, 3, 2).reshape(-1, q, n * n)
            info += 0.5 * m * (pk @ pkt.transpose(0, 2, 1))
    return ll, score, info


def patterns(layout: Layout) -> list[tuple[NDArray[np.int64], NDArray[np.int64]]]:
    """Cells grouped by the seed indices they hold: (codes of one such cell, (cells, trials)
    row numbers of all of them)."""
    changes = np.flatnonzero(np.diff(layout.cell)) + 1
    bounds = np.r_[0, changes, len(layout.y)] if len(layout.y) else np.zeros(1, int)
    groups: dict[tuple[int, bytes], list[int]] = {}
    for a, b in itertools.pairwise(bounds):
        groups.setdefault((b - a, layout.codes[a:b].tobytes()), []).append(a)
    return [(layout.codes[first[0] : first[0] + n], np.array(first)[:, None] + np.arange(n))
            for (n, _), first in groups.items()]  # fmt: skip
