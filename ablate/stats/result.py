"""The result of an analysis: every table of a factorial analysis, as data.

:func:`ablate.stats.analysis.analyze` computes it; :mod:`~ablate.stats.layout` and
:mod:`~ablate.stats.tables` lay it out and render it, :mod:`ablate.views` draws it.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import pandas as pd

from ablate.designs.aliases import Structure
from ablate.designs.matrix import FactorInfo, ModelMatrix
from ablate.stats.blocks import Blocks
from ablate.stats.bootstrap import Bootstrap
from ablate.stats.dispersion import Dispersion
from ablate.stats.learned import Learned
from ablate.stats.options import Options


@dataclass(frozen=True)
class Analysis:
    """Every table of a factorial analysis, as data."""

    response: str  # as analysed, e.g. "log(test_loss)"
    options: Options
    factors: tuple[FactorInfo, ...]
    model_matrix: ModelMatrix  # what the coefficients were fitted on
    n_used: int
    excluded: dict[str, int]
    coefficients: pd.DataFrame  # term, coef, std_err, t, p, p_adj, ci_low, ci_high, effect
    effects: pd.DataFrame  # factor, low, high, effect, std_err, t, p, p_adj, ci_low, ci_high
    anova: pd.DataFrame  # term, df, sum_sq, mean_sq, F, p, pct_ss
    lack_of_fit: pd.DataFrame | None  # source, df, sum_sq, mean_sq, F, p
    cells: pd.DataFrame  # factor levels, n, mean, sd (seed to seed)
    marginal_means: pd.DataFrame  # factor, level, n, observed_mean, emmean, std_err, ci_*
    pairwise: pd.DataFrame  # factor, level_a, level_b, diff, std_err, t, p_tukey, ci_*
    interaction_means: pd.DataFrame  # factor_a, level_a, factor_b, level_b, n, mean
    screening: pd.DataFrame  # term, effect, abs_effect, half_normal_q, t_or_pseudo_t, active
    screening_se: float | None  # standard error of a screening effect (PSE when saturated)
    pareto_critical: float | None  # the |t| (or pseudo-t) beyond which a term is significant
    lenth: dict[str, float] | None  # pse, me, sme, df: for a saturated model
    residuals: pd.DataFrame  # fitted, residual, studentized, leverage, normal_q, factors
    fit: dict[str, Any]  # n_used, n_params, df_resid, r2, adj_r2, pred_r2, resid_sd, formula
    summary: str  # statsmodels' OLS summary table
    notes: tuple[str, ...] = field(default=())
    structure: Structure | None = None  # what design the runs form (from the runs alone)
    aliases: pd.DataFrame | None = None  # term, aliases, partial, label (effect coding)
    correlations: pd.DataFrame | None = None  # column_a, column_b, r between terms' columns
    importance: pd.DataFrame | None = None  # factor, linear, fanova, ped_anova
    learned: Learned | None = None  # every trial against the trivial baseline
    blocks: Blocks | None = None  # --block: the replicate (or a column) as a block
    dispersion: Dispersion | None = None  # seed sensitivity, with replicates
    box_meyer: pd.DataFrame | None = None  # unreplicated: dispersion from residuals (F*)
    equivalence: pd.DataFrame | None = None  # --margin: TOST verdicts of effects and pairs
    bootstrap: Bootstrap | None = None  # the cluster bootstrap's intervals beside OLS's
    findings: tuple[str, ...] = ()  # what the study found, in words, one line per factor

    @property
    def confidence(self) -> str:
        """The intervals' confidence level in percent, as labels show it ("95")."""
        return f"{100 * (1 - self.options.alpha):g}"

    @property
    def saturated(self) -> bool:
        return self.fit["df_resid"] == 0
