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

import math
import warnings
from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from ablate.designs.aliases import Structure, correlations, dependency, model_aliases, structure
from ablate.designs.matrix import (
    CODINGS,
    Coding,
    FactorInfo,
    ModelMatrix,
    build_matrix,
    factor_infos,
    reference_grid,
)
from ablate.errors import AblateError
from ablate.results import Results
from ablate.tasks import goal_of

if TYPE_CHECKING:
    from numpy.typing import NDArray

ADJUSTMENTS = ("holm", "fdr_bh", "none")


@dataclass(frozen=True)
class Options:
    """What to fit: ``ablate analyze``'s options."""

    response: str | None = None  # default: the study's analysis.response, else test_loss
    factors: tuple[str, ...] | None = None  # default: the study's factors
    coding: Coding = "reference"
    baselines: tuple[tuple[str, Any], ...] = ()  # on top of the study's analysis.baseline
    interactions: int = 1  # highest interaction order; 1 = main effects only
    anova_type: int = 2
    robust: str | None = None  # "hc3"
    adjust: str = "holm"
    log: bool = False
    alpha: float = 0.05
    terms: tuple[tuple[str, ...], ...] = ()  # interactions named besides --interactions
    importance: bool = True  # the linear model's importance beside Optuna's evaluators


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

    @property
    def confidence(self) -> str:
        """The intervals' confidence level in percent, as labels show it ("95")."""
        return f"{100 * (1 - self.options.alpha):g}"

    @property
    def saturated(self) -> bool:
        return self.fit["df_resid"] == 0


# ---------------------------------------------------------------------------------------------
# Entry point


def analyze(results: Results, options: Options | None = None, **overrides: Any) -> Analysis:
    """Fit the factorial model to a results folder or a bare table."""
    opts = _merge(options, overrides)
    _check_options(opts)
    frame, names, response, declared, baselines = _inputs(results, opts)
    notes: list[str] = []

    frame, y_raw, excluded = _usable_rows(results, frame, names, response, notes)
    goal = goal_of(response, results.study.task_spec if results.study else None)
    against = against_baseline(results, response, y_raw.to_numpy(dtype=float), goal)
    if against is not None and against["not_beating"]:
        notes.append(against["note"])
    label = response
    if opts.log:
        if (y_raw <= 0).any():
            raise AblateError(
                f"--log needs a positive response, but {response} has {(y_raw <= 0).sum()} "
                "values at or below zero; drop --log or choose another response."
            )
        y_raw = np.log(y_raw)
        label = f"log({response})"
        notes.append(
            f"the response is log({response}): effects are differences of logs, and "
            "exp(effect) is the ratio high/low (shown as 'ratio')."
        )
    factors = factor_infos(frame, names, declared=declared, baselines=baselines)
    design = build_matrix(frame, factors, opts.coding, opts.interactions, opts.terms)
    notes.extend(design.notes)
    y = y_raw.to_numpy(dtype=float)
    X = design.matrix.to_numpy(dtype=float)
    n, p = X.shape
    if np.linalg.matrix_rank(X) < p:
        raise AblateError(_not_estimable(frame, factors, opts, n, p))
    opts = replace(opts, response=response, factors=tuple(names))  # as resolved
    analysis = _fit(results, frame, y, label, opts, factors, design, n, p, excluded, notes)
    analysis.fit.update(goal=goal, baseline=against)
    if opts.importance and np.ptp(y) == 0:
        notes = [*analysis.notes, "importance: left out, as the response does not vary."]
        analysis = replace(analysis, notes=tuple(notes))
    elif opts.importance:
        from ablate.stats.importance import importance

        table, why = importance(frame, y, factors, analysis.anova, goal, _seed(results))
        notes = [*analysis.notes, *why]
        analysis = replace(analysis, importance=table, notes=tuple(notes))
    return analysis


def _seed(results: Results) -> int:
    return results.study.seed if results.study is not None else 0


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
        "tell them apart. Fit one term of each alias chain (lower --interactions, and name the "
        "interactions you want with --terms a:b), analyse fewer factors, or run the runs that "
        "separate them (a fold-over, more runs of the design, the missing cells)."
    )


def against_baseline(
    results: Results, response: str, y: NDArray[np.float64], goal: str | None
) -> dict[str, Any] | None:
    """The response's trivial baseline (what a model that learned nothing scores), the best
    trial, and how many trials fail to beat the baseline; None without a baseline."""
    if response not in results.baselines or goal is None or len(y) == 0:
        return None
    value, what = results.baselines[response]
    better = y < value if goal == "min" else y > value
    best = float(y.min() if goal == "min" else y.max())
    failing = int((~better).sum())
    if failing == 0:
        verdict = f"every one of the {len(y)} trials beats it (best {best:.4g})"
    elif failing == len(y):
        verdict = (
            f"NO trial beats it (best {best:.4g}): these models did not learn, and the effects "
            "below compare models that failed"
        )
    else:
        verdict = f"{failing} of {len(y)} trials do not beat it (best {best:.4g})"
    note = (
        f"trivial baseline: a model that learned nothing scores {response} = {value:.4g} ({what}; "
        f"{'lower' if goal == 'min' else 'higher'} is better); {verdict}."
    )
    return {"value": value, "what": what, "best": best, "not_beating": failing, "note": note}


def _merge(options: Options | None, overrides: dict[str, Any]) -> Options:
    opts = options or Options()
    if "factors" in overrides and overrides["factors"] is not None:
        overrides["factors"] = tuple(overrides["factors"])
    return replace(opts, **{k: v for k, v in overrides.items() if v is not None})


def _check_options(opts: Options) -> None:
    if opts.coding not in CODINGS:
        raise AblateError(f"--coding must be one of {', '.join(CODINGS)}, not {opts.coding!r}.")
    if opts.adjust not in ADJUSTMENTS:
        raise AblateError(f"--adjust must be one of {', '.join(ADJUSTMENTS)}.")
    if opts.robust not in (None, "hc3"):
        raise AblateError("--robust takes hc3 (heteroscedasticity-consistent errors).")
    if opts.anova_type not in (2, 3):
        raise AblateError("--anova-type must be 2 or 3.")
    if opts.anova_type == 3 and opts.coding != "sum":
        raise AblateError(
            "Type III sums of squares are only meaningful with sum (effect) coding; add "
            "--coding sum, or use the default Type II."
        )
    if not 0 < opts.alpha < 1:
        raise AblateError("alpha must lie between 0 and 1.")


def _inputs(
    results: Results, opts: Options
) -> tuple[pd.DataFrame, list[str], str, dict[str, Any], dict[str, Any]]:
    frame = results.trials
    study = results.study
    if study is not None:
        names = list(opts.factors or study.factor_names)
        response = opts.response or study.analysis.response
        declared = {f.name: (f.kind, f.levels) for f in study.factors}
        baselines = dict(study.analysis.baseline)
    else:
        if not opts.factors:
            raise AblateError(
                f"{results.source} is a bare table: name its factor columns with --factors "
                "a,b,c (and the response with --response COLUMN)."
            )
        names, response, declared, baselines = list(opts.factors), opts.response, {}, {}
        response = response or "test_loss"
    baselines.update(dict(opts.baselines))
    missing = [c for c in [*names, response] if c not in frame.columns]
    if missing:
        raise AblateError(
            f"{results.source} has no column {', '.join(repr(m) for m in missing)}; its columns "
            f"are {', '.join(map(str, frame.columns))}."
        )
    if len(set(names)) != len(names):
        raise AblateError("a factor is named twice in --factors.")
    unknown = [b for b in baselines if b not in names]
    if unknown:
        raise AblateError(f"--baseline names {', '.join(unknown)}, which is not a factor here.")
    return frame, names, response, declared, baselines


#: Responses beyond this size overflow the sums of squares (1e154² is near the float limit).
_HUGE = 1e150


def _usable_rows(
    results: Results, frame: pd.DataFrame, names: list[str], response: str, notes: list[str]
) -> tuple[pd.DataFrame, pd.Series, dict[str, int]]:
    """The rows that are valid measurements: complete trials with a finite response and
    every factor's level; the others counted by why they are left out."""
    if frame.empty:
        raise AblateError(f"{results.source} has no rows: there is nothing to analyse yet.")
    excluded: dict[str, int] = {}
    if "status" in frame.columns:
        statuses = frame["status"].astype("string")
        for status, count in statuses[statuses != "complete"].value_counts().items():
            excluded[str(status)] = int(count)
        frame = frame[statuses == "complete"]
        if excluded:
            notes.append(
                "left out: "
                + ", ".join(f"{n} {s} trial{'s' if n > 1 else ''}" for s, n in excluded.items())
                + " (their losses are not valid measurements)."
            )
    y = _numeric_response(frame, response)
    reasons = {
        "missing response": y.isna().to_numpy(),
        "infinite response": np.isinf(y.to_numpy(dtype=float)),
        "missing factor level": frame[names].isna().any(axis=1).to_numpy(),
    }
    keep = np.ones(len(frame), dtype=bool)
    for reason, bad in reasons.items():
        count = int((bad & keep).sum())
        if count:
            excluded[reason] = count
            article = "an" if reason[0] in "aeiou" else "a"
            notes.append(
                f"left out: {count} trial{'s' if count > 1 else ''} with {article} {reason}."
            )
        keep &= ~bad
    frame, y = frame[keep], y[keep]
    largest = float(np.abs(y).max()) if len(y) else 0.0
    if largest > _HUGE:
        raise AblateError(
            f"the response {response} holds values as large as {largest:.3g}, whose sums of "
            "squares overflow; rescale the column."
        )
    if frame.empty:
        raise AblateError(
            f"no usable rows in {results.source}: every trial is "
            f"{', '.join(excluded) or 'missing'}; there is nothing to analyse yet."
        )
    return frame, y, excluded


def _numeric_response(frame: pd.DataFrame, response: str) -> pd.Series:
    column = frame[response]
    if column.dtype == bool or not pd.api.types.is_numeric_dtype(column):
        raise AblateError(
            f"the response column '{response}' is not numeric (it holds {column.dtype} values); "
            "choose a numeric column with --response, such as test_loss."
        )
    return column.astype(float)


# ---------------------------------------------------------------------------------------------
# The fit and everything derived from it


def _fit(
    results: Results,
    frame: pd.DataFrame,
    y: NDArray[np.float64],
    label: str,
    opts: Options,
    factors: tuple[FactorInfo, ...],
    design: ModelMatrix,
    n: int,
    p: int,
    excluded: dict[str, int],
    notes: list[str],
) -> Analysis:
    from scipy import stats
    from statsmodels.regression.linear_model import OLS

    X = design.matrix.to_numpy(dtype=float)
    df_resid = n - p
    leverage = _leverage(X)
    robust = opts.robust == "hc3" and df_resid > 0
    if robust and np.any(leverage > 1 - 1e-10):
        raise AblateError(
            "HC3 robust errors are undefined here: some trials have leverage 1 (a cell with a "
            "single trial that only its own coefficient fits). Drop --robust, lower "
            "--interactions, or add replicates."
        )
    model = OLS(y, X)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # small-sample and saturated-fit warnings: handled here
        fitted = model.fit(cov_type="HC3", use_t=True) if robust else model.fit()
        summary = fitted.summary(yname=label, xname=design.columns, alpha=opts.alpha).as_text()
    beta = np.asarray(fitted.params, dtype=float)
    residual = y - X @ beta
    rss = float(residual @ residual) if df_resid > 0 else 0.0  # saturated: exact fit
    sst = float(((y - y.mean()) ** 2).sum())
    exact = df_resid > 0 and (np.ptp(y) == 0 or rss <= _EXACT * sst)  # no noise to test
    if exact:  # what is left is rounding: make it zero
        rss, scale = 0.0, float(np.abs(y).max()) or 1.0
        beta = np.round(beta / scale, 12) * scale
        residual = y - X @ beta
        summary = "(left out: the fit is exact, so statsmodels' tests have no meaning here)"
        notes.append(_exact_note(label, y, sst))
    cov = np.asarray(fitted.cov_params(), dtype=float) if df_resid > 0 and not exact else None
    t_crit = float(stats.t.ppf(1 - opts.alpha / 2, df_resid)) if df_resid > 0 else math.nan
    if robust:
        notes.append("standard errors, intervals and tests use HC3 robust covariance.")

    coefficients = _coefficients(design, beta, cov, df_resid, t_crit, opts)
    grid = reference_grid(factors)
    grid_rows = design.rows(grid)
    effects = _effects(factors, grid, grid_rows, beta, cov, df_resid, t_crit, opts)
    coefficients["effect"] = [
        _effect_of_column(col, design, factors, effects) for col in coefficients["term"]
    ]
    effect_coded = build_matrix(frame, factors, "sum", opts.interactions, opts.terms)
    alias_table = model_aliases(frame, factors, effect_coded)
    by_column = dict(zip(alias_table["term"], alias_table["aliases"], strict=True))
    coefficients["aliases"] = [by_column.get(col, "") for col in coefficients["term"]]
    effects["aliases"] = [by_column.get(_main_column(f, effect_coded), "")
                          for f in factors if f.two_level]  # fmt: skip
    runs = structure(frame, factors)
    if runs.kind != "full factorial":
        notes.append(
            f"the runs form a {runs.title}: each effect estimates itself plus what it is "
            "aliased with (see the alias table)."
        )
    means = _marginal_means(frame, y, factors, grid, grid_rows, beta, cov, df_resid, t_crit)
    pairwise = _pairwise(factors, grid, grid_rows, beta, cov, df_resid, opts)
    anova, anova_notes = _anova(frame, y, factors, opts, rss, df_resid, sst, exact)
    notes.extend(anova_notes)
    lof, cells, lof_notes = _replicates(frame, y, factors, rss, df_resid)
    notes.extend(lof_notes)
    screening, se, critical, lenth, s_notes = _screening(
        frame, y, factors, opts, df_resid, rss, exact
    )
    notes.extend(s_notes)

    mse = rss / df_resid if df_resid > 0 else math.nan
    press = (
        float(((residual / (1 - leverage)) ** 2).sum()) if np.all(leverage < 1 - 1e-10) else None
    )
    fit = {
        "response": label,
        "response_column": opts.response,
        "n_used": n,
        "n_params": p,
        "df_resid": df_resid,
        "r2": 1 - rss / sst if sst > 0 else math.nan,
        "adj_r2": 1 - mse / (sst / (n - 1)) if df_resid > 0 and sst > 0 else math.nan,
        "pred_r2": 1 - press / sst if press is not None and sst > 0 else math.nan,
        "resid_sd": math.sqrt(mse) if df_resid > 0 else math.nan,
        "formula": f"{label} ~ {design.formula}",
        "coding": opts.coding,
        "interactions": opts.interactions,
        "anova_type": opts.anova_type,
        "robust": opts.robust or "none",
        "adjust": opts.adjust,
        "alpha": opts.alpha,
        "excluded": dict(excluded),
        "replicates_min": int(cells["n"].min()),
        "replicates_max": int(cells["n"].max()),
        "cells": len(cells),
        "mean": float(y.mean()),
    }
    if press is None:
        notes.append(
            "predicted R² is undefined: some trial has leverage 1 (its cell is fitted exactly)."
        )
    if df_resid == 0:
        notes.append(
            "the model is saturated (as many coefficients as trials): no t tests are possible, "
            "so active effects are judged by Lenth's pseudo standard error (screening table)."
        )
    resid_frame = frame[[f.name for f in factors]].copy()
    resid_frame["fitted"] = X @ beta
    resid_frame["residual"] = residual
    resid_frame["leverage"] = leverage
    with np.errstate(divide="ignore", invalid="ignore"):
        resid_frame["studentized"] = (
            math.nan if exact else residual / (math.sqrt(mse) * np.sqrt(1 - leverage))
        )
    # normal quantile of each studentized residual's rank (Blom), for the QQ plot
    ranks = stats.rankdata(resid_frame["studentized"].fillna(0.0), method="ordinal")
    resid_frame["normal_q"] = stats.norm.ppf((ranks - 0.375) / (n + 0.25))
    return Analysis(
        response=label,
        options=opts,
        factors=factors,
        model_matrix=design,
        n_used=n,
        excluded=excluded,
        coefficients=coefficients,
        effects=effects,
        anova=anova,
        lack_of_fit=lof,
        cells=cells,
        marginal_means=means,
        pairwise=pairwise,
        interaction_means=_interaction_means(frame, y, factors),
        screening=screening,
        screening_se=se,
        pareto_critical=critical,
        lenth=lenth,
        residuals=resid_frame.reset_index(drop=True),
        fit=fit,
        summary=summary,
        notes=tuple(notes),
        structure=runs,
        aliases=alias_table,
        correlations=correlations(effect_coded),
    )


#: A residual sum of squares below this share of the total is rounding: the fit is exact.
_EXACT = 1e-20


def _exact_note(label: str, y: NDArray[np.float64], sst: float) -> str:
    if sst == 0:
        return (
            f"{label} is the same for every trial used ({y[0]:.6g}): no factor changes it, so "
            "every effect is zero and there is nothing to test or rank."
        )
    return (
        f"the model fits every trial exactly (the residuals are zero to rounding): {label} is "
        "a function of the factors without noise, so the effects are exact and there are no "
        "standard errors, tests or intervals."
    )


def _main_column(f: FactorInfo, design: ModelMatrix) -> str:
    """The column of a two-level factor's main effect."""
    term = next(t for t in design.terms if t.factors == (f.name,))
    return term.columns[0]


def _leverage(X: NDArray[np.float64]) -> NDArray[np.float64]:
    """Diagonal of the hat matrix X (X'X)^-1 X', via a QR decomposition."""
    q, _ = np.linalg.qr(X)
    return np.clip((q * q).sum(axis=1), 0.0, 1.0)


def _adjust(p: NDArray[np.float64], method: str) -> NDArray[np.float64]:
    from statsmodels.stats.multitest import multipletests

    out = np.full(len(p), np.nan)
    ok = ~np.isnan(p)
    if method == "none" or not ok.any():
        out[ok] = p[ok]
        return out
    out[ok] = multipletests(p[ok], method=method)[1]
    return out


def _contrast(
    L: NDArray[np.float64],
    beta: NDArray[np.float64],
    cov: NDArray[np.float64] | None,
    df_resid: int,
    t_crit: float,
) -> dict[str, float]:
    """Estimate, standard error, t, p and interval of the linear combination L·β."""
    from scipy import stats

    est = float(L @ beta)
    if cov is None:
        return {"estimate": est, "std_err": math.nan, "t": math.nan, "p": math.nan,
                "ci_low": math.nan, "ci_high": math.nan}  # fmt: skip
    se = math.sqrt(max(float(L @ cov @ L), 0.0))
    t = est / se if se > 0 else math.nan
    p = float(2 * stats.t.sf(abs(t), df_resid)) if se > 0 else math.nan
    return {"estimate": est, "std_err": se, "t": t, "p": p,
            "ci_low": est - t_crit * se, "ci_high": est + t_crit * se}  # fmt: skip


def _coefficients(
    design: ModelMatrix,
    beta: NDArray[np.float64],
    cov: NDArray[np.float64] | None,
    df_resid: int,
    t_crit: float,
    opts: Options,
) -> pd.DataFrame:
    rows = []
    for j, name in enumerate(design.columns):
        L = np.zeros(len(beta))
        L[j] = 1.0
        c = _contrast(L, beta, cov, df_resid, t_crit)
        rows.append({"term": name, "coef": c["estimate"], "std_err": c["std_err"], "t": c["t"],
                     "p": c["p"], "ci_low": c["ci_low"], "ci_high": c["ci_high"]})  # fmt: skip
    table = pd.DataFrame(rows)
    # The intercept (or the level columns standing in for it) tests "is the loss zero?",
    # which nobody asks: it stays out of the family of tests that is adjusted.
    family = ~table["term"].isin(design.intercept_columns)
    p_adj = np.full(len(table), np.nan)
    p_adj[family.to_numpy()] = _adjust(table.loc[family, "p"].to_numpy(float), opts.adjust)
    table.insert(5, "p_adj", p_adj)
    return table


def _grid_mean(grid: pd.DataFrame, rows: NDArray[np.float64], mask: Any) -> NDArray[np.float64]:
    return rows[np.asarray(mask)].mean(axis=0)


def _effects(
    factors: tuple[FactorInfo, ...],
    grid: pd.DataFrame,
    rows: NDArray[np.float64],
    beta: NDArray[np.float64],
    cov: NDArray[np.float64] | None,
    df_resid: int,
    t_crit: float,
    opts: Options,
) -> pd.DataFrame:
    """High minus low of every two-level factor, averaged over the other factors' levels."""
    out = []
    for f in factors:
        if not f.two_level:
            continue
        L = _grid_mean(grid, rows, grid[f.name] == f.high) - _grid_mean(
            grid, rows, grid[f.name] == f.low
        )
        c = _contrast(L, beta, cov, df_resid, t_crit)
        row = {"factor": f.name, "low": f.level_label(f.low), "high": f.level_label(f.high),
               "effect": c["estimate"], "std_err": c["std_err"], "t": c["t"], "p": c["p"],
               "ci_low": c["ci_low"], "ci_high": c["ci_high"]}  # fmt: skip
        if opts.log:
            row.update(ratio=math.exp(c["estimate"]), ratio_low=math.exp(c["ci_low"]),
                       ratio_high=math.exp(c["ci_high"]))  # fmt: skip
        out.append(row)
    columns = ["factor", "low", "high", "effect", "std_err", "t", "p", "ci_low", "ci_high"]
    if opts.log:
        columns += ["ratio", "ratio_low", "ratio_high"]
    table = pd.DataFrame(out, columns=columns)
    table.insert(7, "p_adj", _adjust(table["p"].to_numpy(float), opts.adjust))
    return table


def _effect_of_column(
    column: str, design: ModelMatrix, factors: tuple[FactorInfo, ...], effects: pd.DataFrame
) -> float:
    """The effect (high − low) belonging to a two-level factor's main-effect column."""
    for term in design.terms:
        if len(term.factors) == 1 and term.columns == (column,):
            row = effects[effects["factor"] == term.factors[0]]
            if len(row):
                return float(row["effect"].iloc[0])
    return math.nan


def _marginal_means(
    frame: pd.DataFrame,
    y: NDArray[np.float64],
    factors: tuple[FactorInfo, ...],
    grid: pd.DataFrame,
    rows: NDArray[np.float64],
    beta: NDArray[np.float64],
    cov: NDArray[np.float64] | None,
    df_resid: int,
    t_crit: float,
) -> pd.DataFrame:
    """Estimated marginal means (equal weight to every combination of the other factors)."""
    out = []
    for f in factors:
        values = frame[f.name].to_numpy()
        for level in f.levels:
            L = _grid_mean(grid, rows, grid[f.name] == level)
            c = _contrast(L, beta, cov, df_resid, t_crit)
            observed = y[values == level]
            out.append({"factor": f.name, "level": f.level_label(level), "n": len(observed),
                        "observed_mean": float(observed.mean()), "emmean": c["estimate"],
                        "std_err": c["std_err"], "ci_low": c["ci_low"],
                        "ci_high": c["ci_high"]})  # fmt: skip
    return pd.DataFrame(out)


def _pairwise(
    factors: tuple[FactorInfo, ...],
    grid: pd.DataFrame,
    rows: NDArray[np.float64],
    beta: NDArray[np.float64],
    cov: NDArray[np.float64] | None,
    df_resid: int,
    opts: Options,
) -> pd.DataFrame:
    """All pairs of levels of every factor with 3+ levels, Tukey-adjusted (studentized range)."""
    from scipy import stats

    out = []
    for f in factors:
        k = len(f.levels)
        if k < 3 or cov is None:
            continue
        q_crit = float(stats.studentized_range.ppf(1 - opts.alpha, k, df_resid))
        means = {v: _grid_mean(grid, rows, grid[f.name] == v) for v in f.levels}
        for i, a in enumerate(f.levels):
            for b in f.levels[i + 1 :]:
                L = means[b] - means[a]
                est = float(L @ beta)
                se = math.sqrt(max(float(L @ cov @ L), 0.0))
                t = est / se if se > 0 else math.nan
                p = float(stats.studentized_range.sf(abs(t) * math.sqrt(2), k, df_resid))
                half = q_crit / math.sqrt(2) * se
                out.append({"factor": f.name, "level_a": f.level_label(a),
                            "level_b": f.level_label(b), "diff": est, "std_err": se, "t": t,
                            "p_tukey": p, "ci_low": est - half, "ci_high": est + half})  # fmt: skip
    columns = ["factor", "level_a", "level_b", "diff", "std_err", "t", "p_tukey", "ci_low",
               "ci_high"]  # fmt: skip
    return pd.DataFrame(out, columns=columns)


def _interaction_means(
    frame: pd.DataFrame, y: NDArray[np.float64], factors: tuple[FactorInfo, ...]
) -> pd.DataFrame:
    """Observed mean response for every pair of factors and pair of levels (interaction plots)."""
    data = frame[[f.name for f in factors]].copy()
    data["_y"] = y
    out = []
    for i, fa in enumerate(factors):
        for fb in factors[i + 1 :]:
            for (a, b), group in data.groupby([fa.name, fb.name], sort=False):
                out.append({"factor_a": fa.name, "level_a": fa.level_label(a),
                            "factor_b": fb.name, "level_b": fb.level_label(b),
                            "n": len(group), "mean": float(group["_y"].mean())})  # fmt: skip
    columns = ["factor_a", "level_a", "factor_b", "level_b", "n", "mean"]
    return pd.DataFrame(out, columns=columns)


# ---------------------------------------------------------------------------------------------
# ANOVA


def _rss(X: NDArray[np.float64], y: NDArray[np.float64]) -> float:
    beta, *_ = np.linalg.lstsq(X, y, rcond=None)
    r = y - X @ beta
    return float(r @ r)


def _anova(
    frame: pd.DataFrame,
    y: NDArray[np.float64],
    factors: tuple[FactorInfo, ...],
    opts: Options,
    rss_full: float,
    df_resid: int,
    sst: float,
    exact: bool = False,
) -> tuple[pd.DataFrame, list[str]]:
    """Type II (hierarchical) or Type III (marginal, sum coding) sums of squares per term.

    Computed from nested least-squares fits on a design with an explicit intercept: Type II
    SS(A) = RSS(without A and every term containing A) − RSS(without every term containing A
    but with A); Type III SS(A) = RSS(without A) − RSS(full).
    """
    from scipy import stats
    from statsmodels.regression.linear_model import OLS

    notes: list[str] = []
    coding: Coding = "sum" if opts.coding == "sum" else "treatment"
    design = build_matrix(frame, factors, coding, opts.interactions, opts.terms)
    X = design.matrix.to_numpy(dtype=float)
    index = {c: i for i, c in enumerate(design.columns)}
    terms = [t for t in design.terms if t.factors]
    ms_resid = rss_full / df_resid if df_resid > 0 else math.nan
    robust = opts.robust == "hc3" and df_resid > 0
    rows = []
    for term in terms:
        containing = [t for t in terms if set(term.factors) < set(t.factors)]
        drop_higher = {c for t in containing for c in t.columns}
        if opts.anova_type == 2:
            keep_with = [c for c in design.columns if c not in drop_higher]
        else:
            keep_with = list(design.columns)
        keep_without = [c for c in keep_with if c not in term.columns]
        X_with = X[:, [index[c] for c in keep_with]]
        X_without = X[:, [index[c] for c in keep_without]]
        ss = max(_rss(X_without, y) - _rss(X_with, y), 0.0)
        df = len(term.columns)
        row = {"term": term.label, "df": df, "sum_sq": ss, "mean_sq": ss / df}
        if df_resid > 0 and not exact:
            if robust:
                sub = OLS(y, X_with).fit(cov_type="HC3", use_t=True)
                R = np.zeros((df, X_with.shape[1]))
                for i, c in enumerate(term.columns):
                    R[i, keep_with.index(c)] = 1.0
                test = sub.f_test(R)
                row["F"], row["p"] = float(np.squeeze(test.fvalue)), float(test.pvalue)
            else:
                row["F"] = (ss / df) / ms_resid
                row["p"] = float(stats.f.sf(row["F"], df, df_resid))
        else:
            row["F"], row["p"] = math.nan, math.nan
        rows.append(row)
    rows.append({"term": "residual", "df": df_resid, "sum_sq": rss_full, "mean_sq": ms_resid,
                 "F": math.nan, "p": math.nan})  # fmt: skip
    rows.append({"term": "total", "df": len(y) - 1, "sum_sq": sst, "mean_sq": math.nan,
                 "F": math.nan, "p": math.nan})  # fmt: skip
    table = pd.DataFrame(rows)
    table["pct_ss"] = 100.0 * table["sum_sq"] / sst if sst > 0 else math.nan
    if robust:
        notes.append(
            "ANOVA F and p are Wald tests with HC3 covariance; sums of squares are classical."
        )
    explained = sum(r["sum_sq"] for r in rows if r["term"] not in ("residual", "total"))
    if opts.anova_type == 2 and abs(explained + rss_full - sst) > 1e-9 * max(sst, 1e-300):
        notes.append(
            "the design is unbalanced (cells with different numbers of trials, or runs whose "
            "terms are not orthogonal): Type II sums of squares do not add up to the total."
        )
    return table, notes


# ---------------------------------------------------------------------------------------------
# Replicates: pure error, lack of fit, seed-to-seed spread


def _replicates(
    frame: pd.DataFrame,
    y: NDArray[np.float64],
    factors: tuple[FactorInfo, ...],
    rss: float,
    df_resid: int,
) -> tuple[pd.DataFrame | None, pd.DataFrame, list[str]]:
    from scipy import stats

    names = [f.name for f in factors]
    data = frame[names].copy()
    data["_y"] = y
    grouped = data.groupby(names, sort=False, observed=True)["_y"]
    cells = grouped.agg(n="size", mean="mean", sd="std").reset_index()
    cells["sd"] = cells["sd"].where(cells["n"] > 1)
    for f in factors:
        cells[f.name] = [f.level_label(v) for v in cells[f.name]]
    ss_pe = float(grouped.apply(lambda g: ((g - g.mean()) ** 2).sum()).sum())
    df_pe = len(y) - len(cells)
    notes: list[str] = []
    if df_pe == 0:
        notes.append(
            "one trial per cell: no pure-error estimate (add replicates to test lack of fit)."
        )
        return None, cells, notes
    df_lof = df_resid - df_pe
    ms_pe = ss_pe / df_pe
    rows = []
    if df_lof > 0:
        ss_lof = max(rss - ss_pe, 0.0)
        f_lof = (ss_lof / df_lof) / ms_pe if ms_pe > 0 else math.nan
        rows.append({"source": "lack of fit", "df": df_lof, "sum_sq": ss_lof,
                     "mean_sq": ss_lof / df_lof, "F": f_lof,
                     "p": float(stats.f.sf(f_lof, df_lof, df_pe))})  # fmt: skip
    else:
        notes.append("the model fits every cell mean exactly: the residual is all pure error.")
    rows.append({"source": "pure error", "df": df_pe, "sum_sq": ss_pe, "mean_sq": ms_pe,
                 "F": math.nan, "p": math.nan})  # fmt: skip
    notes.append(
        f"seed-to-seed standard deviation (pooled within cells): {math.sqrt(ms_pe):.4g} "
        f"({df_pe} df)."
    )
    return pd.DataFrame(rows), cells, notes


# ---------------------------------------------------------------------------------------------
# Effect screening: half-normal effects, Pareto of |t|, and Lenth's method when saturated


def _screening(
    frame: pd.DataFrame,
    y: NDArray[np.float64],
    factors: tuple[FactorInfo, ...],
    opts: Options,
    df_resid: int,
    rss: float,
    exact: bool = False,
) -> tuple[pd.DataFrame, float | None, float | None, dict[str, float] | None, list[str]]:
    """Effects on a common scale, for the Pareto and half-normal charts.

    The sum-coded columns are orthogonalised (QR, in term order) so that every effect has the
    same variance; an effect is then 2·γ/√n, which for a balanced two-level column is exactly
    its high − low difference. With residual degrees of freedom each gets a t value; in a
    saturated model, Lenth's pseudo standard error (PSE) stands in for the missing σ.
    """
    from scipy import stats

    design = build_matrix(frame, factors, "sum", opts.interactions, opts.terms)
    X = design.matrix.to_numpy(dtype=float)
    n = len(y)
    q, r = np.linalg.qr(X)
    signs = np.sign(np.diag(r))
    signs[signs == 0] = 1.0
    gamma = (q * signs).T @ y  # coordinates of y in the orthonormal basis, intercept first
    effects = 2.0 * gamma[1:] / math.sqrt(n)
    terms = design.columns[1:]
    m = len(effects)
    table = pd.DataFrame({"term": terms, "effect": effects, "abs_effect": np.abs(effects)})
    order = np.argsort(table["abs_effect"].to_numpy(), kind="stable")
    ranks = np.empty(m)
    ranks[order] = np.arange(1, m + 1)
    table["half_normal_q"] = stats.norm.ppf(0.5 + 0.5 * (ranks - 0.5) / m)
    notes: list[str] = []
    lenth = None
    if exact:  # nothing to test against: an effect is there or not (beyond rounding)
        scale = float(np.abs(y).max()) or 1.0
        table["effect"] = np.round(effects / scale, 12) * scale
        table["abs_effect"] = table["effect"].abs()
        table["t_or_pseudo_t"] = math.nan
        table["active"] = table["abs_effect"] > 0
        se, critical = None, None
    elif df_resid > 0:
        sigma = math.sqrt(rss / df_resid)
        se: float | None = 2.0 * sigma / math.sqrt(n)
        table["t_or_pseudo_t"] = gamma[1:] / sigma
        critical = float(stats.t.ppf(1 - opts.alpha / 2, df_resid))
        table["active"] = table["t_or_pseudo_t"].abs() > critical
    else:
        lenth = lenth_pse(effects, opts.alpha)
        se = lenth["pse"] if lenth["pse"] > 0 else None
        table["t_or_pseudo_t"] = effects / lenth["pse"] if lenth["pse"] > 0 else math.nan
        critical = lenth["me"] / lenth["pse"] if lenth["pse"] > 0 else None
        table["active"] = table["abs_effect"] > lenth["me"]
        table["active_simultaneous"] = table["abs_effect"] > lenth["sme"]
        if any(not f.two_level for f in factors):
            notes.append(
                "multi-level factors enter the screening as orthogonalised contrasts, so that "
                "all effects share one variance (Lenth's method assumes it)."
            )
    table = table.sort_values("abs_effect", ascending=False, ignore_index=True)
    return table, se, critical, lenth, notes


def lenth_pse(effects: NDArray[np.float64], alpha: float = 0.05) -> dict[str, float]:
    """Lenth's (1989) pseudo standard error, margin of error and simultaneous margin of error.

    s0 = 1.5·median|c|; PSE = 1.5·median of the |c| below 2.5·s0; with d = m/3 degrees of
    freedom, ME = t(1 − α/2, d)·PSE and SME = t(γ, d)·PSE, γ = (1 + (1 − α)^(1/m))/2.
    """
    from scipy import stats

    c = np.abs(np.asarray(effects, dtype=float))
    m = len(c)
    s0 = 1.5 * float(np.median(c))
    pse = 1.5 * float(np.median(c[c < 2.5 * s0])) if np.any(c < 2.5 * s0) else s0
    d = m / 3.0
    gamma = (1 + (1 - alpha) ** (1 / m)) / 2
    return {
        "s0": s0,
        "pse": pse,
        "df": d,
        "me": float(stats.t.ppf(1 - alpha / 2, d)) * pse,
        "sme": float(stats.t.ppf(gamma, d)) * pse,
    }


# ---------------------------------------------------------------------------------------------
# Learning curves


def learning_curves(
    results: Results, factors: tuple[FactorInfo, ...], metric: str = "loss"
) -> tuple[pd.DataFrame, pd.DataFrame] | None:
    """Per-epoch values of one metric for every complete trial, and their median per level.

    Returns (per_trial, per_level): per_trial has trial_key, epoch, train, test (the
    ``train_<metric>`` and ``test_<metric>`` columns of epochs.parquet) and the factor columns
    (as level labels); per_level has factor, level, epoch and the median train and test values
    over the trials at that level (the median, because one diverging trial can move a mean of
    losses by orders of magnitude). None without an epochs table or without that metric.
    """
    epochs = results.epochs
    if epochs is None or epochs.empty or f"test_{metric}" not in epochs.columns:
        return None
    trials = results.trials
    if "status" in trials.columns:
        trials = trials[trials["status"] == "complete"]
    names = [f.name for f in factors]
    values = epochs.rename(columns={f"train_{metric}": "train", f"test_{metric}": "test"})
    if "train" not in values.columns:
        values["train"] = np.nan
    per_trial = values.merge(trials[["trial_key", *names]], on="trial_key")
    for f in factors:
        per_trial[f.name] = [f.level_label(v) for v in per_trial[f.name]]
    per_trial = per_trial[["trial_key", "epoch", "train", "test", *names]]
    levels = []
    for f in factors:
        grouped = per_trial.groupby([f.name, "epoch"], sort=False)
        means = grouped[["train", "test"]].median().reset_index()
        means = means.rename(columns={f.name: "level"})
        means.insert(0, "factor", f.name)
        levels.append(means)
    return per_trial, pd.concat(levels, ignore_index=True)
