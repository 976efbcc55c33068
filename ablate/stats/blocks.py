"""Seeds as blocks: the replicate as a block shared by every cell, fixed and random.

Replicate r of every cell trains with seed ``study.seed + r`` (the same initial draws where the
models share shapes, the same data order), so a good or bad seed may lift or sink every cell of
its replicate alike. Fitting the replicate as a *block* takes that shared part out of the noise
the effects are judged against:

- as a fixed effect: the model matrix plus sum-coded block columns (they average to zero over
  the blocks, so the effects keep their meaning), with the block's ANOVA line (its extra sum of
  squares given the factors), the residual SD with and without blocks, and the relative
  efficiency of blocking (Fisher's degrees-of-freedom correction times the ratio of residual
  variances: above 1, blocking paid for the degrees of freedom it took);
- as a random intercept (statsmodels ``MixedLM``, REML): the variance components of the block
  and of the residual and the intra-class correlation, the share of the seed-to-seed variance
  that every cell of a replicate shares.
"""

from __future__ import annotations

import math
import warnings
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, cast

import numpy as np
import pandas as pd

from ablate.designs.matrix import FactorInfo, ModelMatrix, reference_grid
from ablate.errors import AblateError, option
from ablate.stats import estimates
from ablate.stats.options import Options

if TYPE_CHECKING:
    from numpy.typing import NDArray


@dataclass(frozen=True)
class Blocks:
    """The block, fitted fixed and random."""

    column: str
    levels: int
    anova: dict[str, float]  # df, sum_sq, mean_sq, F, p: the block's line
    resid_sd: float  # with blocks
    resid_sd_unblocked: float
    df_resid: int  # with blocks
    relative_efficiency: float
    effects: pd.DataFrame  # as Analysis.effects, with blocks in the model
    pairwise: pd.DataFrame  # as Analysis.pairwise (Tukey), with blocks in the model
    mixed: dict[str, float] = field(default_factory=dict)  # block_var, resid_var, icc
    notes: tuple[str, ...] = ()


def check_block(frame: pd.DataFrame, column: str, factors: tuple[FactorInfo, ...]) -> None:
    """A block must be a column, not a factor, with two or more values."""
    if column in {f.name for f in factors}:
        raise AblateError(f"{option('block', column)} is a factor of the analysis; a block is not.")
    if column not in frame.columns:
        raise AblateError(
            f"{option('block', column)}: the table has no such column; a results folder's "
            f"replicates are "
            f"in 'replicate' (its columns: {', '.join(map(str, frame.columns))})."
        )
    if frame[column].isna().any():
        raise AblateError(
            f"{option('block', column)}: {int(frame[column].isna().sum())} trials used have "
            f"no {column}; "
            "fill it in, or block on another column."
        )
    if frame[column].nunique(dropna=True) < 2:
        raise AblateError(
            f"{option('block', column)}: every trial used has the same {column}, so there is "
            f"no block "
            "to fit; blocks need two or more replicates."
        )


def fit_blocks(
    frame: pd.DataFrame, y: NDArray[np.float64], factors: tuple[FactorInfo, ...],
    design: ModelMatrix, rss: float, df_resid: int, opts: Options,
) -> Blocks:  # fmt: skip
    """The block ``opts.block`` fitted beside ``design``, whose fit left ``rss`` on
    ``df_resid`` degrees of freedom."""
    from scipy import stats

    column = str(opts.block)
    check_block(frame, column, factors)
    block = frame[column].to_numpy()
    levels = sorted(pd.unique(block).tolist())
    X = design.matrix.to_numpy(dtype=float)
    beta, cov_unit, rss_b, df_b = _within_blocks(X, y, block)
    ss_block, df_block = max(rss - rss_b, 0.0), len(levels) - 1
    mse_b = rss_b / df_b
    f_block = (ss_block / df_block) / mse_b if mse_b > 0 else math.nan
    line = {"df": df_block, "sum_sq": ss_block, "mean_sq": ss_block / df_block, "F": f_block,
            "p": float(stats.f.sf(f_block, df_block, df_b)) if mse_b > 0 else math.nan}  # fmt: skip
    mse_u = rss / df_resid if df_resid > 0 else math.nan
    grid = reference_grid(factors)
    t_crit = float(stats.t.ppf(1 - opts.alpha / 2, df_b))
    cov = cov_unit * mse_b
    effects = estimates.effects(factors, grid, design.rows(grid), beta, cov, df_b, t_crit, opts)
    pairs = estimates.pairwise(factors, grid, design.rows(grid), beta, cov, df_b, opts)
    notes: list[str] = []
    mixed = _mixed(y, X, block, notes)
    return Blocks(
        column=column, levels=len(levels), anova=line, resid_sd=math.sqrt(mse_b),
        resid_sd_unblocked=math.sqrt(mse_u) if mse_u == mse_u else math.nan, df_resid=df_b,
        relative_efficiency=_relative_efficiency(df_b, df_resid, mse_b, mse_u),
        effects=effects, pairwise=pairs, mixed=mixed, notes=tuple(notes),
    )  # fmt: skip


def _within_blocks(
    X: NDArray[np.float64], y: NDArray[np.float64], block: np.ndarray
) -> tuple[NDArray[np.float64], NDArray[np.float64], float, int]:
    """The factors' fit with a block effect absorbed (Frisch-Waugh-Lovell: regress the
    within-block deviations of y on those of X), without a column per block -- 100,000 trials
    in 3,125 blocks fit in a second. Returns the coefficients (minimum-norm where the blocks
    absorb the intercept: every effect, a contrast, is estimable all the same), their
    covariance per unit of residual variance, the residual sum of squares and its df."""
    Xw, yw, rss, df = absorb(X, y, block)
    # numpy's stubs say floating[Any] where float64 arrays give float64
    beta = cast("NDArray[np.float64]", np.linalg.lstsq(Xw, yw, rcond=None)[0])
    return beta, cast("NDArray[np.float64]", np.linalg.pinv(Xw.T @ Xw)), rss, df


def absorb(
    X: NDArray[np.float64], y: NDArray[np.float64], block: NDArray[np.generic]
) -> tuple[NDArray[np.float64], NDArray[np.float64], float, int]:
    """X and y as deviations from their block means (any fit on them is a fit with the blocks
    in the model), and the residual sum of squares and df of the full fit; refused where the
    blocks cannot be told apart from the factors."""
    codes = pd.factorize(block)[0]
    counts = np.bincount(codes).astype(float)

    def within(a: NDArray[np.float64]) -> NDArray[np.float64]:
        sums = np.stack([np.bincount(codes, weights=col) for col in a.T], axis=1)
        means: NDArray[np.float64] = sums / counts[:, None]
        return a - means[codes]

    Xw, yw = within(X), within(y[:, None])[:, 0]
    rank_x, rank_w = np.linalg.matrix_rank(X), np.linalg.matrix_rank(Xw)
    ones = np.ones(len(y))
    spans_intercept = np.linalg.norm(
        ones - X @ np.linalg.lstsq(X, ones, rcond=None)[0]
    ) < 1e-8 * len(y)
    df = len(y) - rank_w - len(counts)
    if rank_w < rank_x - int(spans_intercept) or df < 1:
        raise AblateError(
            "the blocks cannot be told apart from the factors in these trials (each block "
            "holds too few of the cells), or no degrees of freedom are left; block on a column "
            "that every cell shares, or add replicates."
        )
    beta = np.linalg.lstsq(Xw, yw, rcond=None)[0]
    resid = yw - Xw @ beta
    return Xw, yw, float(resid @ resid), int(df)


def _relative_efficiency(df_b: int, df_u: int, mse_b: float, mse_u: float) -> float:
    """How many unblocked trials one blocked trial is worth (Fisher's correction for the
    degrees of freedom the blocks take: (df_b + 1)(df_u + 3) / ((df_b + 3)(df_u + 1)))."""
    if not (mse_b > 0 and mse_u == mse_u and df_u > 0):
        return math.nan
    return (df_b + 1) * (df_u + 3) / ((df_b + 3) * (df_u + 1)) * mse_u / mse_b


def _mixed(
    y: NDArray[np.float64], X: NDArray[np.float64], block: np.ndarray, notes: list[str]
) -> dict[str, float]:
    """The block as a random intercept (REML): variance components and the ICC."""
    from statsmodels.regression.mixed_linear_model import MixedLM

    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        result, error = None, None
        # The gradient methods fail (a singular Hessian, or no convergence from the start
        # values) when the block variance is at its boundary, 0; Powell's gradient-free search
        # then finds that boundary.
        for method in ("bfgs", "lbfgs", "powell"):
            try:
                result = MixedLM(y, X, groups=block).fit(reml=True, method=method)
            except (np.linalg.LinAlgError, ValueError) as err:
                error = err
                continue
            if result.converged:
                break
        if result is None:
            notes.append(f"the random-intercept model could not be fitted ({error}).")
            return {}
    block_var = max(float(np.asarray(result.cov_re)[0, 0]), 0.0)
    resid_var = float(result.scale)
    if block_var <= 1e-6 * resid_var:
        notes.append(
            "the random-intercept fit put the block variance at its boundary, 0: the blocks "
            "share nothing beyond noise."
        )
    elif not result.converged or any("converge" in str(w.message) for w in caught):
        notes.append(
            "the random-intercept fit did not fully converge (statsmodels warned): its variance "
            "components and intra-class correlation are approximate."
        )
    total = block_var + resid_var
    return {"block_var": block_var, "resid_var": resid_var,
            "icc": block_var / total if total > 0 else math.nan}  # fmt: skip
