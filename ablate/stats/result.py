"""The result of an analysis: every table of a factorial analysis, as typed data.

:func:`ablate.stats.analysis.analyze` computes it once; nothing downstream computes statistics
of its own. :mod:`ablate.views.sections` and :mod:`ablate.views.tables` lay it out and render
it, :mod:`ablate.views` draws it. What each factor does, in words, is in ``verdicts`` and
``findings`` (:mod:`ablate.stats.verdicts`): every output takes its labels from there.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

import pandas as pd

from ablate.designs.aliases import Structure
from ablate.designs.matrix import FactorInfo, ModelMatrix
from ablate.stats.blocks import Blocks
from ablate.stats.bootstrap import Bootstrap
from ablate.stats.components import Components
from ablate.stats.dispersion import Dispersion
from ablate.stats.learned import Learned
from ablate.stats.options import Options
from ablate.stats.screening import Lenth
from ablate.stats.trends import OverEpochs
from ablate.stats.verdicts import FactorVerdict, Finding, Missing, NextStep

Goal = Literal["min", "max"]


@dataclass(frozen=True)
class FitSummary:
    """What describes the fit: its size, R²s, residual SD, formula and the options it used."""

    response: str  # as analysed, e.g. "log(test_loss)"
    response_column: str  # the results column, e.g. "test_loss"
    n_used: int
    n_params: int
    df_resid: int
    r2: float
    adj_r2: float
    pred_r2: float
    resid_sd: float
    rss: float
    formula: str
    coding: str
    interactions: int
    anova_type: int
    robust: str
    adjust: str
    alpha: float
    mean: float  # of the response as analysed
    range: float  # max − min of the response as analysed
    replicates_min: int  # trials per cell, fewest and most
    replicates_max: int
    cells: int
    exact: bool  # the residuals are zero to rounding: no noise to test against
    goal: Goal | None = None  # which direction is better, where the response has one


@dataclass(frozen=True)
class Analysis:
    """Every table of a factorial analysis, as data (columns are listed by each table's
    builder; :mod:`ablate.stats.schema` declares them and the analysis checks them once)."""

    response: str  # as analysed, e.g. "log(test_loss)"
    options: Options
    factors: tuple[FactorInfo, ...]
    model_matrix: ModelMatrix  # what the coefficients were fitted on
    n_used: int
    excluded: dict[str, int]
    coefficients: pd.DataFrame  # term, kind, coef, std_err, t, p, p_adj, ci_*, clear, effect
    effects: pd.DataFrame  # factor, low, high, effect, std_err, t, p, p_adj, ci_*, clear
    anova: pd.DataFrame  # term, df, sum_sq, mean_sq, F, p, pct_ss
    lack_of_fit: pd.DataFrame | None  # source, df, sum_sq, mean_sq, F, p
    cells: pd.DataFrame  # factor levels, n, mean, sd (seed to seed)
    marginal_means: pd.DataFrame  # factor, level, n, observed_mean, emmean, std_err, ci_*
    pairwise: pd.DataFrame  # factor, level_a, level_b, diff, std_err, t, p_tukey, ci_*, clear
    interaction_means: pd.DataFrame  # factor_a, level_a, factor_b, level_b, n, mean
    screening: pd.DataFrame  # term, label, effect, abs_effect, half_normal_q, t, active
    screening_se: float | None  # standard error of a screening effect (PSE when saturated)
    pareto_critical: float | None  # the |t| (or pseudo-t) beyond which a term is active
    lenth: Lenth | None  # of the screening effects
    residuals: pd.DataFrame  # fitted, residual, studentized, leverage, normal_q, factors
    fit: FitSummary
    summary: str  # statsmodels' OLS summary table
    notes: tuple[str, ...] = field(default=())
    structure: Structure | None = None  # what design the runs form (from the runs alone)
    aliases: pd.DataFrame | None = None  # term, aliases, partial, label (effect coding)
    correlations: pd.DataFrame | None = None  # column_a, column_b, r between terms' columns
    importance: pd.DataFrame | None = None  # factor, linear, fanova, ped_anova
    learned: Learned | None = None  # every trial against the trivial baseline
    blocks: Blocks | None = None  # a block (the replicate, say) beside the factors
    dispersion: Dispersion | None = None  # seed sensitivity, with replicates
    box_meyer: pd.DataFrame | None = None  # unreplicated: dispersion from residuals (F*)
    equivalence: pd.DataFrame | None = None  # with a margin: TOST verdicts of effects, pairs
    bootstrap: Bootstrap | None = None  # the cluster bootstrap's intervals beside OLS's
    #: P(a trial at one level beats its partner at the same seed), per contrast:
    #: factor, low, high, pairs, p_improve, ci_low, ci_high, missing (stats.improvement)
    improvement: pd.DataFrame | None = None
    over_epochs: OverEpochs | None = None  # the effects at every epoch (stats.overall)
    components: Components | None = None  # seed streams: the seed-to-seed variance by source
    verdicts: tuple[FactorVerdict, ...] = ()  # what each factor does, by a named test
    findings: tuple[Finding, ...] = ()  # the verdicts and what qualifies them, in words
    missing: tuple[Missing, ...] = ()  # statistics left out for want of data, and the cure
    next_steps: tuple[NextStep, ...] = ()  # what would sharpen the answer

    @property
    def confidence(self) -> str:
        """The intervals' confidence level in percent, as labels show it ("95")."""
        return f"{100 * (1 - self.options.alpha):g}"

    @property
    def saturated(self) -> bool:
        return self.fit.df_resid == 0

    @property
    def tested_effects(self) -> pd.DataFrame:
        """The effects the verdicts rest on: with the blocks in the model where there are
        blocks, else the plain fit's."""
        return self.blocks.effects if self.blocks is not None else self.effects

    @property
    def tested_pairwise(self) -> pd.DataFrame:
        """The pairwise (Tukey) comparisons the verdicts rest on, as :attr:`tested_effects`."""
        return self.blocks.pairwise if self.blocks is not None else self.pairwise

    def verdict(self, factor: str) -> FactorVerdict:
        """The verdict on one factor."""
        return next(v for v in self.verdicts if v.factor == factor)
