"""Replicate planning: how many seeds per run a design needs to detect an effect of size D.

For a design of N distinct runs, each trained r times (r replicates, n = rN trials), and a
model of p coefficients fitted by OLS, the estimate of a contrast L'β (a two-level factor's
effect high − low, or the difference between two levels of a factor, averaged over the other
factors, as ``ablate analyze`` reports it) has variance σ²·v/r, where v = L'(X'X)⁻¹L for one
replicate of the runs (v = 4/N for an orthogonal two-level design). Its two-sided t test on
n − p residual degrees of freedom detects a true difference D with power

    P(|T| > t(1 − α/2, n − p)),  T ~ noncentral t(n − p, δ),  δ = D / (σ·√(v/r)).

statsmodels computes it: ``FTestPowerF2().power`` with one numerator degree of freedom (F = T²),
``df_denom = n − p`` and Cohen's f² = δ²/n with ``ncc = p − 1``, so that its noncentrality
f²·(df_num + df_denom + ncc) is δ². The smallest r that gives every factor's weakest contrast
the power asked for is the answer. The noise σ is given, or taken from a pilot study: its pure
error (seed-to-seed SD within runs) when it has replicates, else its residual SD.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from ablate.designs.build import Run, infos_of
from ablate.designs.matrix import build_matrix, reference_grid
from ablate.errors import AblateError, option
from ablate.results import load_results
from ablate.stats.analysis import analyze
from ablate.study.run_settings import DESIGN_MODELS
from ablate.study.runs import design_runs
from ablate.study.settings import MAX_TRIALS, Study

MAX_REPLICATES = 10_000


@dataclass(frozen=True)
class Noise:
    """σ, where it came from, and a pilot's trial times (for the wall time)."""

    sd: float
    source: str
    seconds_per_trial: float | None = None  # mean over the pilot's complete trials
    time_source: str = ""
    warning: str = ""  # one run that dominates the pilot's pure error, and σ without it


@dataclass(frozen=True)
class ReplicatePlan:
    """The answer of ``ablate plan``, as data."""

    study: str
    design: str  # the design in words
    runs: int
    model: str
    parameters: int
    effect: float
    response: str
    noise: Noise
    alpha: float
    power: float
    replicates: int | None  # needed; None if more than MAX_REPLICATES
    table: pd.DataFrame  # replicates, trials, df_resid, power, weakest
    contrasts: pd.DataFrame  # factor, contrast, v (per replicate), power at the answer
    workers: int | None = None
    wall_seconds: float | None = None

    @property
    def trials(self) -> int | None:
        return None if self.replicates is None else self.replicates * self.runs


def contrast_power(
    effect: float, sd: float, v: float, runs: int, replicates: int, p: int, alpha: float
) -> float:
    """Power of the two-sided t test of a contrast of variance σ²·v/r (see the module)."""
    from statsmodels.stats.power import FTestPowerF2

    n = runs * replicates
    df = n - p
    if df < 1 or sd <= 0:
        return math.nan if df < 1 else 1.0
    delta = effect / (sd * math.sqrt(v / replicates))
    return float(
        FTestPowerF2().power(
            effect_size=delta**2 / n, df_num=1, df_denom=df, alpha=alpha, ncc=p - 1
        )
    )


def plan_replicates(
    study: Study,
    effect: float,
    *,
    power: float = 0.8,
    alpha: float = 0.05,
    noise: Noise,
    model: str | None = None,
    workers: int | Callable[[int], int] = 1,
) -> ReplicatePlan:
    """Replicates per run that detect ``effect`` with ``power`` in every factor's contrasts.

    ``workers``: how many trials run at once, for the wall time (or a function giving that
    for a number of trials: the run's worker planning, which never starts more workers than
    trials)."""
    _check_request(effect, power, alpha, noise)
    built = design_runs(study)
    model = model or built.model
    if model not in DESIGN_MODELS:
        raise AblateError(f"{option('model')} must be one of {', '.join(DESIGN_MODELS)}.")
    table, runs, p = contrast_variances(study, built.runs, model)
    weakest = int(table["v"].argmax())  # the largest variance has the least power

    def weakest_power(r: int) -> float:
        return contrast_power(effect, noise.sd, table["v"].iloc[weakest], runs, r, p, alpha)

    limit = min(MAX_REPLICATES, max(1, MAX_TRIALS // runs))
    needed = next((r for r in range(1, limit + 1) if weakest_power(r) >= power), None)
    shown = _shown_replicates(needed, limit)
    name = f"{table['factor'].iloc[weakest]} {table['contrast'].iloc[weakest]}"
    powers = pd.DataFrame(
        [
            {"replicates": r, "trials": r * runs, "df_resid": r * runs - p,
             "power": weakest_power(r), "weakest": name}
            for r in shown
        ]
    )  # fmt: skip
    at = needed or shown[-1]
    table["power"] = [contrast_power(effect, noise.sd, v, runs, at, p, alpha) for v in table["v"]]
    wall = n_workers = None
    if needed is not None and noise.seconds_per_trial is not None:
        n_workers = workers(needed * runs) if callable(workers) else workers
        wall = needed * runs * noise.seconds_per_trial / n_workers
    return ReplicatePlan(
        study=study.name, design=built.description, runs=runs, model=model, parameters=p,
        effect=effect, response=study.analysis.response, noise=noise, alpha=alpha,
        power=power, replicates=needed, table=powers, contrasts=table, workers=n_workers,
        wall_seconds=wall,
    )  # fmt: skip


def _check_request(effect: float, power: float, alpha: float, noise: Noise) -> None:
    if not effect > 0:
        raise AblateError(f"{option('effect')} must be a positive difference in the response's "
                          "units.")  # fmt: skip
    if not 0 < power < 1 or not 0 < alpha < 1:
        raise AblateError(f"{option('power')} and {option('alpha')} must lie between 0 and 1.")
    if not noise.sd > 0:
        raise AblateError(f"the noise SD must be positive ({option('sd')}, or a pilot with some "
                          "spread).")  # fmt: skip


def contrast_variances(
    study: Study, runs: Sequence[Run], model: str
) -> tuple[pd.DataFrame, int, int]:
    """Every pairwise contrast of every factor's marginal means, with ``v``: its variance per
    σ² with one replicate of ``runs`` (divide by r for r replicates); and the number of runs
    and of coefficients of ``model``."""
    infos = infos_of(study.factors)
    frame = pd.DataFrame(list(runs), columns=list(study.factor_names))
    order = 2 if model == "main+2fi" else 1
    design = build_matrix(frame, list(infos), "sum", min(order, len(infos)))
    X = design.matrix.to_numpy(dtype=float)
    n_runs, p = X.shape
    if np.linalg.matrix_rank(X) < p:
        raise AblateError(
            f"the design's {n_runs} runs cannot estimate the {model} model ({p} coefficients); "
            f"plan for the main-effects model ({option('model', 'main')}) or a design with "
            f"more runs."
        )
    inverse = np.linalg.inv(X.T @ X)
    grid = reference_grid(infos)
    rows = design.rows(grid)
    contrasts = []
    for f in infos:
        means = {v: rows[(grid[f.name] == v).to_numpy()].mean(axis=0) for v in f.levels}
        for a, b in itertools.combinations(f.levels, 2):
            L = means[b] - means[a]
            label = f"{f.level_label(b)} − {f.level_label(a)}"
            contrasts.append({"factor": f.name, "contrast": label, "v": float(L @ inverse @ L)})
    return pd.DataFrame(contrasts), n_runs, p


def _shown_replicates(needed: int | None, limit: int) -> list[int]:
    last = needed if needed is not None else min(limit, 10)
    if last <= 8:
        return list(range(1, last + 1))
    return [1, 2, 3, 4, last - 2, last - 1, last]


def noise_from_pilot(path: str | Path, study: Study, response: str | None = None) -> Noise:
    """σ from a pilot's results (pure error, else the residual SD) and its mean trial time."""
    pilot = load_results(path)
    column = response or study.analysis.response
    factors = [n for n in study.factor_names if n in pilot.trials.columns]
    a = analyze(pilot, response=column, factors=factors, importance=False)
    lof = a.lack_of_fit
    warning = ""
    if lof is not None and "pure error" in set(lof["source"]):
        row = lof.set_index("source").loc["pure error"]
        assert isinstance(row, pd.Series)  # the ANOVA has one "pure error" line
        sd = math.sqrt(row["mean_sq"])
        source = (
            f"the pure error of {path}: the seed-to-seed SD within its runs, {int(row['df'])} df"
        )
        warning = _dominant_run(a.cells, [f.name for f in a.factors], row)
    elif a.fit.df_resid > 0:
        sd = a.fit.resid_sd
        source = (
            f"the residual SD of {path}'s main-effects fit ({a.fit.df_resid} df; it has no "
            "replicates, so this includes any lack of fit: an upper bound)"
        )
    else:
        raise AblateError(
            f"{path} gives no estimate of the noise: it has no replicates and its main-effects "
            f"fit is saturated. Run the pilot with replicates: 2, or give {option('sd')}."
        )
    trials = pilot.trials
    seconds = None
    time_source = ""
    if "seconds" in trials.columns:
        done = trials[trials["status"] == "complete"] if "status" in trials else trials
        times = pd.to_numeric(done["seconds"], errors="coerce").dropna()
        if len(times):
            seconds = float(times.mean())
            time_source = f"mean {seconds:.3g} s per trial over {len(times)} pilot trials"
            if pilot.study is not None and pilot.study.training.epochs != study.training.epochs:
                scale = study.training.epochs / pilot.study.training.epochs
                seconds *= scale
                time_source += (
                    f", scaled by {scale:.3g} for {study.training.epochs} epochs instead of "
                    f"{pilot.study.training.epochs}"
                )
    return Noise(sd, source, seconds, time_source, warning)


def _dominant_run(cells: pd.DataFrame, names: list[str], pure: pd.Series) -> str:
    """A warning when one run holds most of the pure error (a seed that blew up, say), with
    σ from the other runs."""
    repeated = cells[cells["n"] > 1]
    if len(repeated) < 3 or not pure["sum_sq"] > 0:
        return ""
    ss = (repeated["n"] - 1) * repeated["sd"] ** 2
    top = int(ss.argmax())  # the position of the run with the most
    share = ss.iloc[top] / pure["sum_sq"]
    if share <= 0.5:
        return ""
    rest_df = pure["df"] - (repeated["n"].iloc[top] - 1)
    rest = math.sqrt((pure["sum_sq"] - ss.iloc[top]) / rest_df) if rest_df > 0 else math.nan
    run = " ".join(f"{n}={repeated[n].iloc[top]}" for n in names)
    return (
        f"one run ({run}) holds {100 * share:.0f}% of the pure error (its trials' SD is "
        f"{repeated['sd'].iloc[top]:.4g}); look at its trials before trusting σ: without it, "
        f"σ = {rest:.4g} (pass {option('sd', f'{rest:.4g}')} if that run is a fluke)"
    )
