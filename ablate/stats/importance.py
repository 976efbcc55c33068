"""Factor importance three ways, on the same trials: the linear model, fANOVA, PED-ANOVA.

- **linear**: each factor's main-effect sum of squares (Type II, from the analysis's ANOVA)
  as a share of all the factors' main-effect sums of squares: how much of the variation the
  fitted model explains each factor's main effect accounts for;
- **fanova** (Optuna's ``FanovaImportanceEvaluator``, Hutter et al. 2014): a random forest
  fitted to the trials, its prediction's variance decomposed functionally; a factor's share of
  the variance of the forest's prediction over the whole grid (main effect only);
- **ped_anova** (Optuna's ``PedAnovaImportanceEvaluator``, Watanabe et al. 2023): how much the
  distribution of a factor's levels among the best trials (the top ``target_quantile``)
  differs from the distribution among all trials: what matters *for doing well*, not for the
  average.

Optuna normalises its importances to sum to one over the factors; the linear share is
normalised the same way so the three columns read alike. The evaluators run on an in-memory
Optuna study built from the complete trials (``optuna.trial.create_trial``), in the
direction of the response (lower or higher is better). A large table with many trials per
cell (above :data:`CELL_MEANS_ABOVE` trials, ten or more per cell) is summarised first: the
evaluators then see one trial per cell, its mean -- what a forest fitted to all the trials
predicts for the cell anyway, and the best *cells* for PED-ANOVA rather than the seeds that
came out best -- in a fraction of the time (on 100,000 trials of 32 cells, building the Optuna
study alone took 7.6 s).

Where every cell has two or more trials, each reading gets a 95% interval from the cluster
bootstrap (:mod:`ablate.stats.bootstrap`): the linear share from all its resamples; fANOVA and
PED-ANOVA from the first :data:`MODEL_RESAMPLES` of them, each resample's cell means evaluated
as a study of one trial per cell (fANOVA with a forest of :data:`MODEL_TREES` trees, so its
interval holds the forest's own randomness too). Two factors whose intervals overlap widely are
not told apart by the study, whatever the order of their point estimates.
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from ablate.designs.matrix import FactorInfo

if TYPE_CHECKING:
    from numpy.typing import NDArray

PED_MIN_TRIALS = 10  # PED-ANOVA needs at least 5 trials in its top quantile (at most half)
PED_TARGET_TRIALS = 8  # trials its top quantile should hold (Optuna's docs: at least 5)
CELL_MEANS_ABOVE = 2000  # trials beyond which the evaluators see cell means (see the module)
MODEL_RESAMPLES = 40  # bootstrap resamples that fANOVA and PED-ANOVA are evaluated on
MODEL_TREES = 8  # trees in each resample's fANOVA forest (Optuna's default is 64)


def ped_quantile(n: int) -> float:
    """PED-ANOVA's ``target_quantile`` for n trials: Optuna's default 0.1 once it holds 8
    trials (n ≥ 80), otherwise enough for 8 trials, at most the better half."""
    return min(0.5, max(0.1, PED_TARGET_TRIALS / n))


def importance(
    frame: pd.DataFrame,
    y: NDArray[np.float64],
    factors: Sequence[FactorInfo],
    anova: pd.DataFrame,
    goal: str | None,
    seed: int = 0,
    replicated: bool = False,
) -> tuple[pd.DataFrame, list[str]]:
    """One row per factor (factor, linear, fanova, ped_anova) and notes on what was left out.

    ``replicated`` (every cell has two or more trials): PED-ANOVA reads the cell means, where
    there are enough cells, so that its point estimate and its bootstrap interval
    (:func:`model_intervals`) answer the same question: what sets the best *configurations*
    apart, rather than the seeds that came out best."""
    ss = anova.set_index("term")["sum_sq"]
    main = np.array([float(ss.get(f.name, 0.0)) for f in factors])
    total = main.sum()
    names = [f.name for f in factors]
    table = pd.DataFrame(
        {"factor": names, "linear": main / total if total > 0 else np.full(len(main), math.nan)}
    )
    notes: list[str] = []
    grouped = frame[names].assign(_y=y).groupby(names, sort=False, observed=True)["_y"].mean()
    cells, means = grouped.index.to_frame(index=False), grouped.to_numpy(dtype=float)
    if len(y) > CELL_MEANS_ABOVE and len(y) >= 10 * len(cells):
        frame, y = cells, means
        notes.append(
            f"importance: fANOVA and PED-ANOVA ran on the {len(y)} cell means, not on every "
            "trial (many trials per cell; see ablate.stats.importance)."
        )
    study = _optuna_study(frame, y, factors, goal)
    fanova = _evaluate(study, "fanova", names, seed, len(y), notes)
    ped_trials = len(y)
    if replicated and len(cells) >= PED_MIN_TRIALS and len(y) > len(cells):
        study, ped_trials = _optuna_study(cells, means, factors, goal), len(cells)
        notes.append(f"importance: PED-ANOVA ran on the {len(cells)} cell means (the best "
                     "configurations, not the seeds that came out best).")  # fmt: skip
    ped = _evaluate(study, "ped_anova", names, seed, ped_trials, notes)
    table["fanova"] = [fanova.get(n, math.nan) if fanova else math.nan for n in names]
    table["ped_anova"] = [ped.get(n, math.nan) if ped else math.nan for n in names]
    return table, notes


def model_intervals(
    cells: pd.DataFrame, means: NDArray[np.float64], factors: Sequence[FactorInfo],
    goal: str | None, seed: int = 0,
) -> pd.DataFrame:  # fmt: skip
    """fanova_low/high and ped_anova_low/high per factor: the 2.5 and 97.5 percentiles of each
    evaluator over bootstrap resamples of the cell means (see the module); NaN where an
    evaluator cannot run on this many cells."""
    names = [f.name for f in factors]
    draws: dict[str, list[list[float]]] = {"fanova": [], "ped_anova": []}
    for b in range(min(MODEL_RESAMPLES, means.shape[1])):
        study = _optuna_study(cells, means[:, b], factors, goal)
        for which in draws:
            got = _evaluate(study, which, names, seed + b, len(cells), [], MODEL_TREES)
            if got is not None:
                draws[which].append([got.get(n, math.nan) for n in names])
    table = pd.DataFrame({"factor": names})
    for which, rows in draws.items():
        low, high = (np.percentile(rows, [2.5, 97.5], axis=0) if len(rows) >= 10
                     else np.full((2, len(names)), math.nan))  # fmt: skip
        table[f"{which}_low"], table[f"{which}_high"] = low, high
    return table


def _optuna_study(
    frame: pd.DataFrame, y: NDArray[np.float64], factors: Sequence[FactorInfo], goal: str | None
) -> Any:
    import optuna
    from optuna.distributions import BaseDistribution, CategoricalDistribution
    from optuna.trial import create_trial

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    distributions: dict[str, BaseDistribution] = {
        f.name: CategoricalDistribution([_plain(v) for v in f.levels]) for f in factors
    }
    study = optuna.create_study(direction="maximize" if goal == "max" else "minimize")
    values = frame[[f.name for f in factors]].to_numpy()
    study.add_trials(
        [create_trial(params={f.name: _plain(v) for f, v in zip(factors, row, strict=True)},
                      distributions=distributions, value=float(value))
         for row, value in zip(values, y, strict=True)]
    )  # fmt: skip
    return study


def _evaluate(
    study: Any, which: str, names: list[str], seed: int, n: int, notes: list[str],
    trees: int = 64,
) -> dict[str, float] | None:  # fmt: skip
    from optuna.importance import (
        FanovaImportanceEvaluator,
        PedAnovaImportanceEvaluator,
        get_param_importances,
    )

    if which == "fanova":
        try:
            import sklearn  # noqa: F401  (Optuna's fANOVA fits scikit-learn's random forest)
        except ImportError:
            notes.append("fANOVA importance needs scikit-learn (pip install scikit-learn).")
            return None
        evaluator: Any = FanovaImportanceEvaluator(n_trees=trees, seed=seed)
    else:
        if n < PED_MIN_TRIALS:
            notes.append(
                f"PED-ANOVA importance needs at least {PED_MIN_TRIALS} trials (5 in its top "
                f"quantile); there are {n}."
            )
            return None
        evaluator = PedAnovaImportanceEvaluator(target_quantile=ped_quantile(n))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # Optuna's ExperimentalWarning and small-sample notes
        try:
            return dict(get_param_importances(study, evaluator=evaluator, params=names))
        except (RuntimeError, ValueError, ZeroDivisionError) as err:  # degenerate trials
            label = "fANOVA" if which == "fanova" else "PED-ANOVA"
            notes.append(f"{label} importance could not be computed on these trials ({err}).")
            return None


def _plain(value: Any) -> Any:
    """NumPy scalars as Python values, which Optuna's distributions take."""
    return value.item() if isinstance(value, np.generic) else value
