"""What a study found, in words: each factor's verdict (:mod:`ablate.stats.verdicts`), then
what qualifies the answer.

A two-level factor *helps* or *hurts* when its effect's interval excludes zero (t test; in a
saturated model, Lenth's margin of error); with an equivalence margin it may instead be
*equivalent within ±D* or *inconclusive* (two one-sided tests). A factor of three or more
levels gets what its pairwise tests (Tukey HSD) support: which levels are worse than which,
and a best level only where one is clearly better than all others. A factor is also
*seed-sensitive* when its spread across seeds changes with its level (tests in
:mod:`ablate.stats.dispersion`), or spreads its results more at one level (an unreplicated
design: Box-Meyer). Then: trials that did not learn, a significant lack of fit (with the
interactions the data point to), marginal-mean intervals that leave the response's range,
and the cluster bootstrap where it disagrees with the normal model.
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING, TypedDict

import numpy as np
import pandas as pd

from ablate.designs.matrix import FactorInfo, build_matrix
from ablate.stats.equivalence import summary_line
from ablate.stats.screening import LENTH_MIN
from ablate.stats.verdicts import (
    FactorVerdict,
    Finding,
    Kind,
    LevelGroup,
    NextStep,
    SeedVerdict,
    clear,
    direction,
    letters,
    p_text,
    worded_ordering,
)

if TYPE_CHECKING:
    from numpy.typing import NDArray

    from ablate.stats.result import Analysis

MARGIN_STEP = NextStep(
    "margin", "D", "tests whether each effect that holds 0 is smaller than D (two one-sided "
    "tests): equivalent, or inconclusive with the replicates that would decide it",
)  # fmt: skip


class _Known(TypedDict):
    """A two-level factor's effect and interval, passed on to its :class:`FactorVerdict`."""

    estimate: float
    ci_low: float
    ci_high: float


def judge(
    a: Analysis, hints: list[tuple[str, float]], bounds: tuple[float | None, float | None]
) -> tuple[tuple[FactorVerdict, ...], tuple[Finding, ...], tuple[NextStep, ...]]:
    """Every factor's verdict, the findings in words, and the next steps they suggest;
    ``hints`` are interactions the data point to (name, p), ``bounds`` the values the
    response can take."""
    verdicts = tuple(_with_seeds(a, f, _verdict(a, f)) for f in a.factors)
    findings = [Finding("factor", v.text, v.factor) for v in verdicts]
    steps: list[NextStep] = []
    if a.options.margin is None and any(v.kind == "no clear effect" for v in verdicts):
        steps.append(MARGIN_STEP)
    if a.learned is not None and a.learned.not_learned:
        left = "; left out of the fit" if a.excluded.get("did not learn") else ""
        findings.append(Finding("learning", f"{a.learned.not_learned} of {len(a.learned.table)} "
                                f"trials did not learn (did not beat {a.learned.value:.4g}, "
                                f"{a.learned.what}){left}."))  # fmt: skip
    findings += _bootstrap(a)
    findings += _lack_of_fit(a, hints, steps)
    findings += _range(a, bounds, steps)
    return verdicts, tuple(findings), tuple(dict.fromkeys(steps))


def _verdict(a: Analysis, f: FactorInfo) -> FactorVerdict:
    if f.two_level:
        return _two_level(a, f)
    return _many_levels(a, f)


def _row(frame: pd.DataFrame, column: str, key: str) -> pd.Series:
    """The one row of ``frame`` whose ``column`` is ``key`` (each factor or term has one)."""
    row = frame.set_index(column).loc[key]
    assert isinstance(row, pd.Series), f"{key!r} is not unique in {column!r}"
    return row


def _two_level(a: Analysis, f: FactorInfo) -> FactorVerdict:
    effects = a.tested_effects
    e = _row(effects, "factor", f.name)
    est, lo, hi = float(e["effect"]), float(e["ci_low"]), float(e["ci_high"])
    known = _Known(estimate=est, ci_low=lo, ci_high=hi)
    moved = f"{f.level_label(f.low)} → {f.level_label(f.high)}: {est:+.3g}"
    equivalent = _equivalence(a, f.name, known)
    if equivalent is not None:
        return equivalent
    if a.fit.exact or a.saturated:
        return _without_residual(a, f, moved, known)
    ci = f"{a.confidence}% CI [{lo:.3g}, {hi:.3g}]"
    if not (math.isfinite(lo) and math.isfinite(hi)):
        return FactorVerdict(
            f.name,
            "not testable",
            f"{f.name}: {moved} (no interval: the fit leaves no noise to test it against)",
            "none",
            **known,
        )
    if hi - lo > a.fit.range > 0:
        return FactorVerdict(f.name, "no clear effect", f"{f.name}: no clear effect ({moved}, "
                             f"but its {ci} is wider than every value observed: too few "
                             "trials to say)", "t test", **known)  # fmt: skip
    p, p_adj = float(e["p"]), float(e["p_adj"])
    test = f"t test, {p_text(p)}"
    if not clear(lo, hi):
        return FactorVerdict(f.name, "no clear effect", f"{f.name}: no clear effect ({moved}, "
                             f"{ci}, which holds 0; {test})", test, **known)  # fmt: skip
    kind = direction(est, a.fit.goal)
    adjusted = ""
    only = a.options.adjust != "none" and not p_adj < a.options.alpha
    if only:
        adjusted = (f"; not clear after {a.options.adjust.replace('_', '-')} adjustment over "
                    f"the {len(effects)} effects, p adj = {p_adj:.3f}")  # fmt: skip
    text = f"{f.name}: {f.level_label(f.high)} {kind} ({moved}, {ci}; {test}{adjusted})"
    return FactorVerdict(f.name, kind, text, test, unadjusted_only=only, **known)


def _without_residual(a: Analysis, f: FactorInfo, moved: str, known: _Known) -> FactorVerdict:
    """An exact fit (no noise) or a saturated model (Lenth's method on the effects)."""
    est = known["estimate"]
    if a.fit.exact:
        if est == 0:
            return FactorVerdict(
                f.name,
                "no effect",
                f"{f.name}: no effect ({moved}; the fit is exact: the response has no noise)",
                "exact fit",
                **known,
            )
        kind = direction(est, a.fit.goal)
        return FactorVerdict(
            f.name,
            kind,
            f"{f.name}: {f.level_label(f.high)} {kind} ({moved} "
            "exactly; the response has no noise)",
            "exact fit",
            **known,
        )
    row = a.screening[a.screening["factor"] == f.name]
    few = len(a.screening) < LENTH_MIN
    if not len(row) or a.lenth is None or not a.lenth.pse > 0 or few:
        why = (f"Lenth's method needs {LENTH_MIN} or more effects, and this saturated model has "
               f"{len(a.screening)}" if few else "its effects give no noise estimate")  # fmt: skip
        return FactorVerdict(f.name, "not testable", f"{f.name}: {moved} (no test: {why}; "
                             "replicates would give one)", "none", **known)  # fmt: skip
    me = a.lenth.me
    test = f"Lenth's method: |effect| {abs(est):.3g} against ME {me:.3g}"
    if bool(row["active"].iloc[0]):
        kind = direction(est, a.fit.goal)
        return FactorVerdict(f.name, kind, f"{f.name}: {f.level_label(f.high)} {kind} ({moved}; "
                             f"{test})", test, **known)  # fmt: skip
    return FactorVerdict(f.name, "no clear effect", f"{f.name}: no clear effect ({moved}; {test})",
                         test, **known)  # fmt: skip


def _equivalence(a: Analysis, term: str, known: _Known) -> FactorVerdict | None:
    """With a margin, an effect's TOST verdict where it is not simply "different"."""
    if a.equivalence is None or term not in set(a.equivalence["term"]):
        return None
    row = _row(a.equivalence, "term", term)
    verdict = str(row["verdict"])
    kind: Kind
    if verdict.startswith("equivalent"):
        kind = "equivalent"
    elif verdict == "inconclusive":
        kind = "inconclusive"
    else:
        return None
    test = f"two one-sided tests against ±{row['margin']:g}, p = {row['p_tost']:.2g}"
    return FactorVerdict(term, kind, summary_line(term, row, alpha=a.options.alpha), test, **known)


def _many_levels(a: Analysis, f: FactorInfo) -> FactorVerdict:
    """The grouping the pairwise tests support, and the ANOVA's test of the factor."""
    row = a.anova[a.anova["term"] == f.name]
    p = float(row["p"].iloc[0]) if len(row) else math.nan
    means = a.marginal_means[a.marginal_means["factor"] == f.name]
    # best first: lowest first where lower is better; highest first otherwise (and without a
    # goal, where the words are "lower than")
    order_frame = means.sort_values("emmean", ascending=a.fit.goal == "min", kind="stable")
    order = [str(x) for x in order_frame["level"]]
    pairs = a.tested_pairwise[a.tested_pairwise["factor"] == f.name]
    told = _told_apart(pairs, order)
    groups = _groups(order_frame, order, told)
    anova = f"ANOVA {p_text(p)}"
    k = len(f.levels)
    if not len(pairs):
        kind: Kind = "levels differ" if p < a.options.alpha else "no clear effect"
        word = "its levels differ" if kind == "levels differ" else "no clear effect"
        return FactorVerdict(
            f.name,
            kind,
            f"{f.name}: {word} across its {k} levels ({anova}; "
            "no pairwise test without a residual)",
            anova,
            groups=groups,
        )
    if not told:
        tail = "its levels differ overall, but " if p < a.options.alpha else "no clear effect: "
        return FactorVerdict(f.name, "no clear effect", f"{f.name}: {tail}no pair of its {k} "
                             f"levels is told apart (Tukey HSD; {anova})", "Tukey HSD",
                             groups=groups)  # fmt: skip
    words, best = worded_ordering(order, told, a.fit.goal)
    rest = len(pairs) - len(told)
    tail = f"; no other pair of its {k} levels is told apart" if rest else ""
    lead = f"{best} is best: " if best is not None and a.fit.goal is not None else ""
    text = f"{f.name}: {lead}{words}{tail} ({anova})"
    text += _equivalent_pairs(a, f.name)
    return FactorVerdict(f.name, "levels differ", text, "Tukey HSD", groups=groups,
                         best=best if a.fit.goal is not None else None)  # fmt: skip


def _told_apart(pairs: pd.DataFrame, order: list[str]) -> list[tuple[str, str, float]]:
    """(better, worse, Tukey p) of every pair whose simultaneous interval excludes 0;
    "better" is the level earlier in ``order``."""
    rank = {level: i for i, level in enumerate(order)}
    out = []
    columns = (pairs["clear"], pairs["level_a"], pairs["level_b"], pairs["p_tukey"])
    for apart, level_a, level_b, p in zip(*columns, strict=True):
        if not apart:
            continue
        a, b = str(level_a), str(level_b)
        better, worse = (a, b) if rank[a] < rank[b] else (b, a)
        out.append((better, worse, float(p)))
    return out


def _groups(
    means: pd.DataFrame, order: list[str], told: list[tuple[str, str, float]]
) -> tuple[LevelGroup, ...]:
    marks = letters(order, [(b, w) for b, w, _ in told])
    emmean = dict(zip(means["level"].astype(str), means["emmean"], strict=True))
    return tuple(LevelGroup(level, float(emmean[level]), marks[level]) for level in order)


def _equivalent_pairs(a: Analysis, factor: str) -> str:
    if a.equivalence is None:
        return ""
    pairs = a.equivalence[a.equivalence["term"].str.startswith(f"{factor}: ")]
    same = pairs[pairs["verdict"].str.startswith("equivalent")]
    if not len(same):
        return ""
    return f"; {len(same)} of {len(pairs)} pairs of levels equivalent within ±{a.options.margin:g}"


def _with_seeds(a: Analysis, f: FactorInfo, v: FactorVerdict) -> FactorVerdict:
    """The verdict with its seed sensitivity, where the data can say."""
    from dataclasses import replace

    seed = _seed_verdict(a, f)
    if seed is None:
        return v
    return replace(v, seed=seed, text=v.text + (f"; {seed.text}" if seed.sensitive else ""))


def _seed_verdict(a: Analysis, f: FactorInfo) -> SeedVerdict | None:
    """Whether the factor changes the spread, said with the test that decided it."""
    if a.dispersion is not None:
        row = _row(a.dispersion.table, "factor", f.name)
        sensitive = bool(row["seed_sensitive"])
        words = _spread_words(row, a.options.alpha)
        lead = "seed-sensitive" if sensitive else "no clear change in its spread across seeds"
        return SeedVerdict(sensitive, f"{lead} ({words})")
    if a.box_meyer is not None and f.name in set(a.box_meyer["factor"]):
        row = _row(a.box_meyer, "factor", f.name)
        differs = bool(row["spread_differs"])
        where = row["high"] if row["f_star"] > 0 else row["low"]
        test = (f"Box-Meyer F* = {row['f_star']:+.2f}, residual SD {row['sd_low']:.3g} → "
                f"{row['sd_high']:.3g}, adjusted p ≈ {row['p_adj']:.2g}")  # fmt: skip
        lead = f"its results spread more at {where}" if differs else "no clear change in the "
        return SeedVerdict(differs, f"{lead}{'' if differs else 'residual spread'} ({test})")
    return None


def _spread_words(row: pd.Series, alpha: float) -> str:
    """The tests of a factor's effect on the spread across seeds, the deciding one first:
    Brown-Forsythe, and the ratio of the cells' geometric-mean SDs where its interval is a
    result."""
    parts = []
    if not math.isnan(row["bf_p"]):
        parts.append(f"Brown-Forsythe p = {row['bf_p']:.3g}, adjusted {row['bf_p_adj']:.3g}")
    if row["ratio_shown"]:
        parts.append(f"cell SD ×{row['ratio']:.3g} at {row['high']} (geometric means), "
                     f"{100 * (1 - alpha):g}% CI [{row['ratio_low']:.3g}, "
                     f"{row['ratio_high']:.3g}], adjusted p = {row['p_adj']:.3g}")  # fmt: skip
    by_ratio = row["ratio_shown"] and row["p_adj"] < alpha
    return "; ".join(parts[::-1] if by_ratio and not row["bf_p_adj"] < alpha else parts)


def _bootstrap(a: Analysis) -> list[Finding]:
    b = a.bootstrap
    if b is None or b.effects["agrees"].all():
        return []
    parts = [f"{row.factor} (OLS [{row.ci_low:.3g}, {row.ci_high:.3g}], bootstrap "
             f"[{row.boot_low:.3g}, {row.boot_high:.3g}])"
             for row in b.effects[~b.effects["agrees"]].itertuples()]  # fmt: skip
    return [
        Finding(
            "check",
            f"the cluster bootstrap over seeds disagrees with OLS on "
            f"{', '.join(parts)}: the normal model's intervals may mislead there.",
        )
    ]


def _lack_of_fit(
    a: Analysis, hints: list[tuple[str, float]], steps: list[NextStep]
) -> list[Finding]:
    lof = a.lack_of_fit
    if lof is None or "lack of fit" not in set(lof["source"]):
        return []
    p = float(lof.set_index("source")["p"].loc["lack of fit"])
    if not p < a.options.alpha:
        return []
    pointed = ", ".join(f"{t} (p = {q:.2g})" for t, q in hints) or "no single two-factor one"
    steps.append(NextStep("interactions", "2", "fits every two-factor interaction (or name "
                          "the ones the data point to as terms)"))  # fmt: skip
    return [Finding("warning", f"lack of fit is significant (p = {p:.2g}): the model misses "
                    f"structure in the cell means; the interactions the data point to: "
                    f"{pointed}.")]  # fmt: skip


def _range(
    a: Analysis, bounds: tuple[float | None, float | None], steps: list[NextStep]
) -> list[Finding]:
    low, high = bounds
    if (low is None and high is None) or a.options.log:
        return []
    m = a.marginal_means
    out = (m["ci_low"] < low) if low is not None else pd.Series(False, index=m.index)
    if high is not None:
        out |= m["ci_high"] > high
    if not out.any():
        return []
    worst = m.loc[out, ["ci_low", "ci_high"]].to_numpy()
    span = f"[{np.nanmin(worst):.3g}, {np.nanmax(worst):.3g}]"
    limits = (f"{'(-∞' if low is None else f'[{low:g}'}, "
              f"{'∞)' if high is None else f'{high:g}]'}")  # fmt: skip
    if low is not None and low >= 0:
        steps.append(NextStep("log", "", "analyses the log of a positive response"))
    count = int(out.sum())
    what = "marginal-mean interval leaves" if count == 1 else "marginal-mean intervals leave"
    return [Finding("warning", f"{count} {what} the values "
                    f"{a.response} can take {limits} (as far as {span}): the normal model fits "
                    "poorly near the bound.")]  # fmt: skip


def interaction_hints(
    frame: pd.DataFrame, y: NDArray[np.float64], factors: tuple[FactorInfo, ...],
    rss_main: float, df_main: int, alpha: float,
) -> list[tuple[str, float]]:  # fmt: skip
    """Two-factor interactions whose extra sum of squares over the main-effects model is
    significant (an F test against the model with it), most significant first."""
    from scipy import stats

    found = []
    for i, fa in enumerate(factors):
        for fb in factors[i + 1 :]:
            design = build_matrix(frame, factors, "sum", 1, ((fa.name, fb.name),))
            X = design.matrix.to_numpy(dtype=float)
            df = len(y) - X.shape[1]
            if df < 1 or np.linalg.matrix_rank(X) < X.shape[1]:
                continue
            beta, *_ = np.linalg.lstsq(X, y, rcond=None)
            rss = float(((y - X @ beta) ** 2).sum())
            extra_df = df_main - df
            if extra_df < 1 or rss <= 0:
                continue
            F = ((rss_main - rss) / extra_df) / (rss / df)
            p = float(stats.f.sf(F, extra_df, df))
            if p < alpha:
                found.append((f"{fa.name}×{fb.name}", p))
    return sorted(found, key=lambda t: t[1])
