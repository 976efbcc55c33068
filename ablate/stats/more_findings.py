"""Findings beyond the final effects, in the words every output uses: how each effect went
over the epochs, and where the probability of improvement says more than the mean does.

Each sentence names the test that supports it, as the factors' verdicts do
(:mod:`ablate.stats.findings`): an effect's sign is *settled from epoch k* when its t test's
interval excludes 0, with that sign, at epoch k and at every later epoch fitted; it is *still
growing* or *shrinking* when the t test of the change over the last step (the same model fitted
to each trial's change) excludes 0; a probability of improvement is *clear* when its cluster
bootstrap interval over seeds excludes 1/2.
"""

from __future__ import annotations

import math

import pandas as pd

from ablate.stats.components import Components
from ablate.stats.improvement import tells_more
from ablate.stats.trends import EffectTrend, OverEpochs
from ablate.stats.verdicts import FactorVerdict, Finding, p_text


def epochs(over: OverEpochs | None) -> list[Finding]:
    """A line per effect whose sign settled later than the first epoch or that still moves at
    the last one (an effect settled from the first epoch and steady says nothing the final
    verdict does not)."""
    if over is None or over.missing is not None or len(over.epochs) < 2:
        return []
    first = over.epochs[0]
    out = []
    for trend in over.effects:
        late = trend.settled_from is not None and trend.settled_from > first
        if late or trend.moving:
            out.append(Finding("factor", _course(trend, over), trend.factor))
    return out


def _course(t: EffectTrend, over: OverEpochs) -> str:
    head = f"{t.factor} over epochs ({t.low} → {t.high})"
    if t.settled_from is not None:
        sign = f"{t.word} from epoch {t.settled_from} on"
    else:
        sign = f"no settled sign by epoch {t.last_epoch}"
    at_end = (f"{t.effect:+.3g} at epoch {t.last_epoch}, {over.confidence}% CI "
              f"[{t.ci_low:.3g}, {t.ci_high:.3g}]; t test at each epoch")  # fmt: skip
    text = f"{head}: {sign} ({at_end})"
    if t.moving and t.change is not None:
        ci = f"{over.confidence}% CI [{t.change_ci_low:.3g}, {t.change_ci_high:.3g}]"
        p = p_text(t.change_p if t.change_p is not None else math.nan)
        test = f"t test of the change from epoch {t.previous_epoch}, {p}"
        text += (f"; still {t.trend} at epoch {t.last_epoch}: {t.change:+.3g} per epoch ({ci}; "
                 f"{test})")  # fmt: skip
    return text


def improvement(
    table: pd.DataFrame | None, verdicts: tuple[FactorVerdict, ...], confidence: str
) -> list[Finding]:
    """A line per two-level factor whose probability of improvement says more than its mean
    effect (:func:`ablate.stats.improvement.tells_more`): clearly away from 1/2 where the
    effect is not clear, or near 1/2 or the other way where it is."""
    if table is None:
        return []
    kinds = {v.factor: v.kind for v in verdicts}
    two_level = table["factor"].value_counts().loc[lambda n: n == 1].index
    out = []
    for row in table[table["factor"].isin(two_level)].to_dict("records"):
        factor, p, lo, hi = str(row["factor"]), *(float(row[c]) for c in COLUMNS)
        if not math.isfinite(lo) or factor not in kinds:
            continue
        kind = kinds[factor]
        clear = kind in ("helps", "hurts", "raises", "lowers")
        if not tells_more(p, (lo, hi), clear, kind == "helps" if clear else None):
            continue
        but = "though its mean effect is not clear"
        if clear:
            but = f"though the mean says it {kind}: a few large differences carry the mean"
        out.append(Finding("factor", f"{factor}: {row['high']} beats {row['low']} in "
                           f"{100 * p:.0f}% of {row['pairs']} pairs at the same seed "
                           f"({confidence}% CI [{100 * lo:.0f}%, {100 * hi:.0f}%]; probability "
                           f"of improvement, cluster bootstrap over seeds), {but}",
                           factor))  # fmt: skip
    return out


#: The improvement table's numbers a finding quotes: the probability and its interval.
COLUMNS = ("p_improve", "ci_low", "ci_high")


def components(found: Components | None) -> list[Finding]:
    """With seed streams: how the seed-to-seed variance splits by source over all cells, and
    each two-level factor that changes a source's variance (its ratio's interval excludes 1)."""
    if found is None or not found.scopes:
        return []
    level = f"{100 * found.confidence:g}"
    every = found.scopes[0]
    shares = ", ".join(f"{100 * c.share:.0f}% {c.source} ([{100 * c.share_low:.0f}%, "
                       f"{100 * c.share_high:.0f}%])" for c in every.components)  # fmt: skip
    out = [Finding("check", f"seeds: of the seed-to-seed variance within a cell (SD "
                   f"{every.sd:.3g}), {shares}; {level}% intervals; {found.method.split(' (')[0]}, "
                   "parametric bootstrap", None)]  # fmt: skip
    adjusted = (f", Bonferroni over the {found.ratio_tests} ratios" if found.ratio_tests > 1
                else "")  # fmt: skip
    for r in found.ratios:
        if not r.excludes_one:
            continue
        word = _ratio_word(r.ratio)
        out.append(Finding("factor", f"{r.factor}: {r.high} {word} the variance due to "
                           f"{r.source} against {r.low} (×{r.ratio:.2g}, {level}% CI "
                           f"[{r.ci_low:.2g}, {r.ci_high:.2g}]{adjusted}; ratio of variance "
                           "components, parametric bootstrap)", r.factor))  # fmt: skip
    return out


def _ratio_word(ratio: float) -> str:
    """A clear ratio in words: halves, doubles, or multiplies."""
    if 0.4 <= ratio <= 0.6:
        return "halves"
    if 1.7 <= ratio <= 2.3:
        return "doubles"
    return "cuts" if ratio < 1 else "raises"
