"""Factorial effects with statsmodels: coefficients, effects, ANOVA, replicates, marginal means.

``analyze`` fits OLS to the response of the complete trials on an explicit design matrix
(:mod:`ablate.designs.matrix`) and returns an :class:`Analysis`: plain tables (DataFrames) that the
CLI prints, the report embeds and the charts draw. Everything here is computed once; nothing
downstream computes statistics of its own.

What it holds, beyond the coefficients of the reference analysis:

- for every two-level factor its *effect*: the change in the response from its low (off)
  to its high (on) level, averaged over the other factors (a contrast of marginal means, so
  it means the same in every coding and with interactions);
- an ANOVA table (Type II by default; Type III with sum coding), with each term's share of
  the total sum of squares;
- with replicates, the residual split into pure error and lack of fit, and the seed-to-seed
  standard deviation of every cell;
- with a saturated model (no residual degrees of freedom), Lenth's pseudo standard error,
  margin of error and simultaneous margin of error instead of t tests;
- 95% intervals, optional HC3 robust errors, p values adjusted for multiple testing,
  estimated marginal means of every factor with Tukey-adjusted pairwise comparisons;
- fit statistics (R², adjusted and predicted R², residual SD) and the formula.
"""

from __future__ import annotations

from dataclasses import replace
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from ablate.designs.aliases import correlations, dependency, model_aliases, structure
from ablate.designs.matrix import (
    FactorInfo,
    ModelMatrix,
    build_matrix,
    factor_infos,
    reference_grid,
)
from ablate.errors import AblateError, option
from ablate.results import Results
from ablate.stats import (
    anova,
    equivalence,
    estimates,
    fit,
    learned,
    more_findings,
    needs,
    rows,
    schema,
    screening,
)
from ablate.stats.blocks import fit_blocks
from ablate.stats.bootstrap import cluster_bootstrap
from ablate.stats.components import variance_components
from ablate.stats.dispersion import box_meyer, dispersion
from ablate.stats.findings import interaction_hints, judge
from ablate.stats.importance import importance, model_intervals
from ablate.stats.improvement import probability_of_improvement
from ablate.stats.options import ADJUSTMENTS, Options, check_options, merge
from ablate.stats.result import Analysis, Goal
from ablate.stats.screening import Screened
from ablate.tasks import bounds_of, goal_of

if TYPE_CHECKING:
    from numpy.typing import NDArray

__all__ = ["ADJUSTMENTS", "Analysis", "Options", "analyze"]


# ---------------------------------------------------------------------------------------------
# Entry point


def analyze(results: Results, options: Options | None = None, **overrides: Any) -> Analysis:
    """Fit the factorial model to a results folder or a bare table."""
    opts = merge(options, overrides)
    if results.study is not None:  # the study file's defaults, where the options say nothing
        chosen = results.study.analysis
        opts = replace(opts, margin=opts.margin if opts.margin is not None else chosen.margin,
                       block=opts.block or chosen.block)  # fmt: skip
    check_options(opts)
    frame, names, response, declared, baselines = rows.inputs(results, opts)
    notes: list[str] = []
    frame, y_raw, excluded = rows.usable_rows(results, frame, names, response, notes)
    task = results.study.task_spec if results.study else None
    goal = goal_of(response, task)
    verdicts = learned.judge(frame, names, response, y_raw.to_numpy(dtype=float),
                             results.baselines.get(response), goal, opts.alpha)  # fmt: skip
    if verdicts is not None and verdicts.not_learned:
        notes.append(verdicts.note)
        if opts.exclude_unlearned:
            frame, y_raw = _learned_only(frame, y_raw, verdicts, excluded, notes)
    y, label = _transformed(y_raw, response, opts, notes)
    factors = factor_infos(frame, names, declared=declared, baselines=baselines)
    rows.check_varies(y, label)
    design = build_matrix(frame, factors, opts.coding, opts.interactions, opts.terms)
    notes.extend(design.notes)
    n, p = design.matrix.shape
    if np.linalg.matrix_rank(design.matrix.to_numpy(dtype=float)) < p:
        raise AblateError(_not_estimable(frame, factors, opts, n, p))
    opts = replace(opts, response=response, factors=tuple(names))  # as resolved
    analysis = _assemble(frame, y, label, opts, factors, design, excluded, notes, goal)
    analysis = replace(analysis, learned=verdicts)
    seed = results.study.seed if results.study is not None else 0
    analysis = _with_seeds(analysis, frame, y, seed)
    analysis = _with_improvement(analysis, frame, y, declared, seed)
    analysis = _with_components(analysis, frame, y, results, seed)
    analysis = _with_importance(analysis, results, frame, y, goal)
    return _judged(analysis, frame, y, bounds_of(response, task))


def _with_improvement(
    a: Analysis, frame: pd.DataFrame, y: NDArray[np.float64],
    declared: dict[str, tuple[str, tuple[Any, ...]]], seed: int,
) -> Analysis:  # fmt: skip
    """The probability of improvement per contrast, where trials pair by seed (a replicate
    column) and the response has a better direction; its interval only from as many seeds as
    the cluster bootstrap needs (:data:`ablate.stats.needs.CLUSTER_BOOTSTRAP`)."""
    if a.fit.goal is None or "replicate" not in frame.columns or a.fit.replicates_max < 2:
        return a
    rows_ = frame.assign(_y=y)
    table = probability_of_improvement(
        rows_, [f.name for f in a.factors], "_y", a.fit.goal, declared=declared, seed=seed,
        baselines={f.name: f.baseline for f in a.factors}, alpha=a.options.alpha,
    )  # fmt: skip
    if needs.CLUSTER_BOOTSTRAP.missing(a.fit.replicates_min) is not None:
        table = table.assign(ci_low=np.nan, ci_high=np.nan)
    return replace(a, improvement=table)


def _with_components(
    a: Analysis, frame: pd.DataFrame, y: NDArray[np.float64], results: Results, seed: int
) -> Analysis:
    """With seed streams, the seed-to-seed variance split by source (per scope: all cells,
    each factor's levels), and its ratios between a factor's two levels at a Bonferroni level
    over every ratio tested (many are: one per factor and source)."""
    study = results.study
    if study is None or not study.streams.counts or "cell" not in frame.columns:
        return a
    streams = study.streams.names
    if any(f"stream_{s}" not in frame.columns for s in streams):
        return a
    rows_, names, alpha = frame.assign(_y=y), [f.name for f in a.factors], a.options.alpha
    found = variance_components(rows_, "_y", streams, names, alpha=alpha, seed=seed)
    tested = len(found.ratios)
    if tested > 1:
        strict = variance_components(rows_, "_y", streams, names, alpha=alpha / tested, seed=seed)
        found = replace(found, ratios=strict.ratios, ratio_tests=tested)
    return replace(a, components=replace(found, response=a.response))


def _learned_only(
    frame: pd.DataFrame, y: pd.Series, verdicts: learned.Learned, excluded: dict[str, int],
    notes: list[str],
) -> tuple[pd.DataFrame, pd.Series]:  # fmt: skip
    """``--exclude-unlearned``: the rows of the trials that learned."""
    keep = verdicts.table["learned"].to_numpy(dtype=bool)
    if not keep.any():
        raise AblateError(
            f"{option('exclude_unlearned')} leaves nothing: no trial learned (none beats the "
            f"trivial "
            "baseline by the test above). Drop the option to compare the failed models."
        )
    excluded["did not learn"] = int((~keep).sum())
    notes.append(f"left out, as asked: {int((~keep).sum())} trials that did not learn.")
    return frame[keep], y[keep]


def _with_seeds(a: Analysis, frame: pd.DataFrame, y: NDArray[np.float64], seed: int) -> Analysis:
    """Blocks (and the blocked ANOVA), dispersion, the bootstrap check and equivalence, each
    where the data can support it (:mod:`ablate.stats.needs`)."""
    opts, notes, missing = a.options, list(a.notes), list(a.missing)
    blocks, table = None, a.anova
    if opts.block:
        blocks = fit_blocks(frame, y, a.factors, a.model_matrix, a.fit.rss, a.fit.df_resid,
                            opts)  # fmt: skip
        notes += blocks.notes
        table = anova.anova(frame, y, a.factors, opts, a.fit.rss, a.fit.df_resid,
                            float(((y - y.mean()) ** 2).sum()), a.fit.exact, [],
                            block=frame[str(opts.block)].to_numpy())  # fmt: skip
    reps = a.fit.replicates_min
    spread = None
    if a.fit.replicates_max > 1:
        lacking = needs.SEED_SENSITIVITY.missing(reps)
        spread = dispersion(frame, y, a.factors, opts, notes) if lacking is None else None
        missing += [lacking] if lacking is not None else []
    unreplicated = a.fit.replicates_max == 1 and a.fit.df_resid > 0
    residual = a.residuals["residual"].to_numpy(dtype=float)
    by_residuals = box_meyer(a.residuals, residual, a.factors, opts) if unreplicated else None
    verdicts = None
    if opts.margin is not None:
        effects = blocks.effects if blocks is not None else a.effects
        pairs = blocks.pairwise if blocks is not None else a.pairwise
        df = blocks.df_resid if blocks is not None else a.fit.df_resid
        verdicts = equivalence.table(effects, pairs, opts.margin, opts.alpha, df, reps,
                                     a.fit.cells)  # fmt: skip
    checked = None
    if a.fit.replicates_max > 1:
        lacking = needs.CLUSTER_BOOTSTRAP.missing(reps)
        checked = (cluster_bootstrap(frame, y, a.factors, a.model_matrix, a.effects, opts, seed)
                   if lacking is None else None)  # fmt: skip
        missing += [lacking] if lacking is not None else []
    return replace(a, blocks=blocks, anova=table, dispersion=spread, box_meyer=by_residuals,
                   equivalence=verdicts, bootstrap=checked, notes=tuple(notes),
                   missing=tuple(missing))  # fmt: skip


def _judged(
    a: Analysis,
    frame: pd.DataFrame,
    y: NDArray[np.float64],
    bounds: tuple[float | None, float | None],
) -> Analysis:
    """The analysis with its verdicts, findings and next steps."""
    hints: list[tuple[str, float]] = []
    if a.lack_of_fit is not None and a.options.interactions == 1 and not a.options.terms:
        hints = interaction_hints(frame, y, a.factors, a.fit.rss, a.fit.df_resid,
                                  a.options.alpha)  # fmt: skip
    verdicts, found, steps = judge(a, hints, bounds)
    found = (*found, *more_findings.components(a.components))
    more = needs.cure(a.missing)
    steps += (more,) if more is not None else ()
    schema.check(a)  # once, as the analysis is made
    return replace(a, verdicts=verdicts, findings=found, next_steps=tuple(dict.fromkeys(steps)))


def _transformed(
    y_raw: pd.Series, response: str, opts: Options, notes: list[str]
) -> tuple[NDArray[np.float64], str]:
    """The response as analysed (its log with ``--log``) and its label."""
    if not opts.log:
        return y_raw.to_numpy(dtype=float), response
    if (y_raw <= 0).any():
        raise AblateError(
            f"{option('log')} needs a positive response, but {response} has "
            f"{(y_raw <= 0).sum()} values at or below zero; drop {option('log')} or choose "
            "another response."
        )
    notes.append(
        f"the response is log({response}): effects are differences of logs, and "
        "exp(effect) is the ratio high/low (shown as 'ratio')."
    )
    return np.log(y_raw.to_numpy(dtype=float)), f"log({response})"


def _assemble(
    frame: pd.DataFrame,
    y: NDArray[np.float64],
    label: str,
    opts: Options,
    factors: tuple[FactorInfo, ...],
    design: ModelMatrix,
    excluded: dict[str, int],
    notes: list[str],
    goal: Goal | None,
) -> Analysis:
    """Fit the model and derive every table from the one fit."""
    fitted = fit.ols(y, design, label, opts, notes)
    coefficients, effects, effect_coded, alias_table = _estimates(frame, opts, factors, design,
                                                                  fitted)  # fmt: skip
    runs = structure(frame, factors)
    if runs.kind != "full factorial":
        notes.append(
            f"the runs form a {runs.title}: each effect estimates itself plus what it is "
            "aliased with (see the alias table)."
        )
    grid = reference_grid(factors)
    grid_rows = design.rows(grid)
    args = (fitted.beta, fitted.cov, fitted.df_resid)
    means = estimates.marginal_means(frame, y, factors, grid, grid_rows, *args, fitted.t_crit)
    anova_table = anova.anova(frame, y, factors, opts, fitted.rss, fitted.df_resid, fitted.sst,
                              fitted.exact, notes)  # fmt: skip
    lof, cells = anova.replicates(frame, y, factors, fitted.rss, fitted.df_resid, notes)
    screened = screening.screening(frame, y, factors, opts, fitted.df_resid, fitted.rss,
                                   fitted.exact, effects)  # fmt: skip
    effects = _effects_judged(effects, screened, fitted)
    stats = fit.statistics(fitted, y, label, design, opts, cells, goal, notes)
    return Analysis(
        response=label, options=opts, factors=factors, model_matrix=design, n_used=len(y),
        excluded=excluded, coefficients=coefficients, effects=effects, anova=anova_table,
        lack_of_fit=lof, cells=cells, marginal_means=means,
        pairwise=estimates.pairwise(factors, grid, grid_rows, *args, opts),
        interaction_means=estimates.interaction_means(frame, y, factors),
        screening=screened.table, screening_se=screened.se, pareto_critical=screened.critical,
        lenth=screened.lenth, residuals=fit.residuals(frame, factors, design, fitted),
        fit=stats, summary=fitted.summary, notes=tuple(notes), structure=runs,
        aliases=alias_table, correlations=correlations(effect_coded),
    )  # fmt: skip


def _effects_judged(effects: pd.DataFrame, screened: Screened, fitted: fit.Fitted) -> pd.DataFrame:
    """The effects' ``clear`` column where their intervals cannot say: an exact fit (clear
    when not zero) or a saturated model (Lenth's margin of error, as the screening judged)."""
    if not (fitted.exact or fitted.df_resid == 0) or not len(effects):
        return effects
    active = dict(zip(screened.table["factor"], screened.table["active"], strict=True))
    out = effects.copy()
    out["clear"] = [bool(active.get(f, False)) for f in out["factor"]]
    if fitted.exact:  # rounding is no effect: 0 where the fit says 0
        scale = float(np.abs(out["effect"]).max()) or 1.0
        out["effect"] = np.round(out["effect"] / scale, 10) * scale
    return out


def _estimates(
    frame: pd.DataFrame,
    opts: Options,
    factors: tuple[FactorInfo, ...],
    design: ModelMatrix,
    fitted: fit.Fitted,
) -> tuple[pd.DataFrame, pd.DataFrame, ModelMatrix, pd.DataFrame]:
    """Coefficients and effects, each with what it is aliased with (effect coding)."""
    args = (fitted.beta, fitted.cov, fitted.df_resid, fitted.t_crit)
    coefficients = estimates.coefficients(design, *args, opts)
    grid = reference_grid(factors)
    effects = estimates.effects(factors, grid, design.rows(grid), *args, opts)
    coefficients["effect"] = [
        estimates.effect_of_column(col, design, factors, effects) for col in coefficients["term"]
    ]
    effect_coded = build_matrix(frame, factors, "sum", opts.interactions, opts.terms)
    alias_table = model_aliases(frame, factors, effect_coded)
    by_column = dict(zip(alias_table["term"], alias_table["aliases"], strict=True))
    coefficients["aliases"] = [by_column.get(col, "") for col in coefficients["term"]]
    effects["aliases"] = [by_column.get(estimates.main_column(f, effect_coded), "")
                          for f in factors if f.two_level]  # fmt: skip
    return coefficients, effects, effect_coded, alias_table


def _with_importance(
    analysis: Analysis, results: Results, frame: pd.DataFrame, y: NDArray[np.float64],
    goal: str | None,
) -> Analysis:  # fmt: skip
    """The analysis with the importance table, where asked for and where it can be had."""
    if not analysis.options.importance:
        return analysis
    seed = results.study.seed if results.study is not None else 0
    boot = analysis.bootstrap
    table, why = importance(frame, y, analysis.factors, analysis.anova, goal, seed,
                            replicated=boot is not None)  # fmt: skip
    if boot is not None:  # every reading's interval, from the same resamples
        models = model_intervals(boot.cells, boot.means, analysis.factors, goal, seed)
        table = table.merge(boot.importance, on="factor", how="left")
        table = table.merge(models, on="factor", how="left")
    return replace(analysis, importance=table, notes=(*analysis.notes, *why))


def _not_estimable(
    frame: pd.DataFrame, factors: tuple[FactorInfo, ...], opts: Options, n: int, p: int
) -> str:
    """Why the model cannot be fitted, naming the term and what it is aliased with."""
    found = dependency(build_matrix(frame, factors, "sum", opts.interactions, opts.terms))
    shape = structure(frame, factors)
    runs = f"{shape.runs} distinct runs of the {shape.cells}-cell grid: {shape.title}"
    few = f"{n} usable rows are too few for its {p} coefficients, and " if n < p else ""
    what = found.text if found is not None else "some of its columns are combinations of others"
    return (
        f"the model cannot be fitted: {few}{what} in these runs ({runs}), so the data cannot "
        f"tell them apart. Fit one term of each alias chain (lower {option('interactions')}, and "
        f"name the interactions you want with {option('terms', 'a:b')}), analyse fewer factors, "
        "or run the runs that "
        "separate them (a fold-over, more runs of the design, the missing cells)."
    )
