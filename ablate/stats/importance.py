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
) -> tuple[pd.DataFrame, list[str]]:
    """One row per factor (factor, linear, fanova, ped_anova) and notes on what was left out."""
    ss = anova.set_index("term")["sum_sq"]
    main = np.array([float(ss.get(f.name, 0.0)) for f in factors])
    total = main.sum()
    table = pd.DataFrame(
        {
            "factor": [f.name for f in factors],
            "linear": main / total if total > 0 else np.full(len(main), math.nan),
        }
    )
    notes: list[str] = []
    names = [f.name for f in factors]
    cells = frame[names].drop_duplicates()
    if len(y) > CELL_MEANS_ABOVE and len(y) >= 10 * len(cells):
        grouped = frame[names].assign(_y=y).groupby(names, sort=False, observed=True)
        data = grouped["_y"].mean()
        frame, y = data.index.to_frame(index=False), data.to_numpy(dtype=float)
        notes.append(
            f"importance: fANOVA and PED-ANOVA ran on the {len(y)} cell means, not on every "
            "trial (many trials per cell; see ablate.stats.importance)."
        )
    study = _optuna_study(frame, y, factors, goal)
    fanova = _evaluate(study, "fanova", names, seed, len(y), notes)
    ped = _evaluate(study, "ped_anova", names, seed, len(y), notes)
    table["fanova"] = [fanova.get(n, math.nan) if fanova else math.nan for n in names]
    table["ped_anova"] = [ped.get(n, math.nan) if ped else math.nan for n in names]
    return table, notes


def _optuna_study(
    frame: pd.DataFrame, y: NDArray[np.float64], factors: Sequence[FactorInfo], goal: str | None
) -> Any:
    import optuna
    from optuna.distributions import CategoricalDistribution
    from optuna.trial import create_trial

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    distributions = {
        f.name: CategoricalDistribution([_plain(v) for v in f.levels]) for f in factors
    }
    study = optuna.create_study(direction="maximize" if goal == "max" else "minimize")
    values = frame[[f.name for f in factors]].to_numpy()
    for row, value in zip(values, y, strict=True):
        params = {f.name: _plain(v) for f, v in zip(factors, row, strict=True)}
        study.add_trial(create_trial(params=params, distributions=distributions, value=value))
    return study


def _evaluate(
    study: Any, which: str, names: list[str], seed: int, n: int, notes: list[str]
) -> dict[str, float] | None:
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
        evaluator: Any = FanovaImportanceEvaluator(seed=seed)
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
