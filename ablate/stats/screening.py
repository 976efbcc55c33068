"""Effect screening: every term as a contrast on a common scale, for the Pareto and half-normal
charts, with its test (a t test on the residual; Lenth's method where a saturated model leaves
none) and Lenth's pseudo standard error of the effects, the half-normal plot's reference line.

A two-level factor's effect is its high − low difference; a factor of k levels enters as k − 1
orthogonal (Helmert) contrasts, each level against the mean of those before it, so that no
level *mean* is ever plotted as an effect. Whether a term is *active* follows the one rule of
:mod:`ablate.stats.verdicts`: a two-level factor's main effect takes its verdict from the
effects table (the same t, the same interval), every other term its own t test.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass

import numpy as np
import pandas as pd
from numpy.typing import NDArray

from ablate.designs.matrix import FactorInfo, build_matrix
from ablate.stats.options import Options

#: The fewest effects Lenth's method judges: its pseudo standard error is a median of the
#: effects, and with fewer it is the effects themselves (Lenth 1989 used 15; 7 is the smallest
#: common screening design's count).
LENTH_MIN = 6


@dataclass(frozen=True)
class Lenth:
    """Lenth's (1989) pseudo standard error of a set of effects, and its margins of error."""

    s0: float
    pse: float
    df: float
    me: float  # margin of error: |effect| beyond it is active, one effect at a time
    sme: float  # simultaneous margin of error: over all the effects at once


@dataclass(frozen=True)
class Screened:
    """Effects on a common scale, the standard error of one, and the |t| beyond which a term
    is active (Lenth's numbers where the model is saturated)."""

    #: term, label, factor (a two-level main effect's factor, else ""), effect, abs_effect,
    #: half_normal_q, t_or_pseudo_t, active (and active_simultaneous when saturated)
    table: pd.DataFrame
    se: float | None
    critical: float | None
    lenth: Lenth | None  # of the effects; what the saturated model's tests use


def screening(
    frame: pd.DataFrame, y: NDArray[np.float64], factors: tuple[FactorInfo, ...], opts: Options,
    df_resid: int, rss: float, exact: bool, effects: pd.DataFrame,
) -> Screened:  # fmt: skip
    """Effects on a common scale, for the Pareto and half-normal charts.

    The Helmert-coded columns are orthogonalised (QR, in term order) so that every effect has
    the same variance; an effect is then 2·γ/√n, which for a balanced two-level column is
    exactly its high − low difference. With residual degrees of freedom each gets a t value
    (a two-level main effect: the effects table's); in a saturated model, Lenth's pseudo
    standard error (PSE) stands in for the missing σ.
    """
    from scipy import stats

    design = build_matrix(frame, factors, "helmert", opts.interactions, opts.terms)
    table, gamma = _orthogonal_effects(design.matrix.to_numpy(dtype=float), y, design.columns)
    main = {f.name: _main_column(f) for f in factors if f.two_level}
    table["factor"] = [next((n for n, col in main.items() if col == t), "") for t in table["term"]]
    table["label"] = [_label(t) for t in table["term"]]
    effects_by = effects.set_index("factor") if len(effects) else None
    n = len(y)
    lenth = lenth_pse(table["effect"].to_numpy(float), opts.alpha) if len(table) else None
    critical: float | None
    if exact:  # nothing to test against: an effect is there or not (beyond rounding)
        scale = float(np.abs(y).max()) or 1.0
        table["effect"] = np.round(table["effect"] / scale, 12) * scale
        table["abs_effect"] = table["effect"].abs()
        table["t_or_pseudo_t"] = math.nan
        table["active"] = table["abs_effect"] > 0
        se, critical = None, None
    elif df_resid > 0:
        sigma = math.sqrt(rss / df_resid)
        se = 2.0 * sigma / math.sqrt(n)
        t = gamma / sigma
        if effects_by is not None:  # a two-level main effect: the effects table's own t
            t = np.array([effects_by.loc[f, "t"] if f else v for f, v in
                          zip(table["factor"], t, strict=True)], dtype=float)  # fmt: skip
        table["t_or_pseudo_t"] = t
        critical = float(stats.t.ppf(1 - opts.alpha / 2, df_resid))
        table["active"] = table["t_or_pseudo_t"].abs() > critical
    else:
        assert lenth is not None
        pse = lenth.pse if len(table) >= LENTH_MIN else 0.0  # too few to judge: no tests
        se = pse if pse > 0 else None
        table["t_or_pseudo_t"] = table["effect"] / pse if pse > 0 else math.nan
        critical = lenth.me / pse if pse > 0 else None
        table["active"] = table["abs_effect"] > lenth.me if pse > 0 else False
        table["active_simultaneous"] = table["abs_effect"] > lenth.sme if pse > 0 else False
    table = table.sort_values("abs_effect", ascending=False, ignore_index=True)
    return Screened(table, se, critical, lenth)


def _main_column(f: FactorInfo) -> str:
    """A two-level factor's column, as the matrix names it (its name, when "on" is high)."""
    return f.name if f.kind == "bool" and f.high is True else f"{f.name}[{f.level_label(f.high)}]"


def _orthogonal_effects(
    X: NDArray[np.float64], y: NDArray[np.float64], columns: list[str]
) -> tuple[pd.DataFrame, NDArray[np.float64]]:
    """Each non-intercept column's effect after QR orthogonalisation, its half-normal
    quantile, and the coordinates γ of y in the orthonormal basis."""
    from scipy import stats

    q, r = np.linalg.qr(X)
    signs = np.sign(np.diag(r))
    signs[signs == 0] = 1.0
    gamma = ((q * signs).T @ y)[1:]  # intercept first
    effects = 2.0 * gamma / math.sqrt(len(y))
    table = pd.DataFrame({"term": columns[1:], "effect": effects, "abs_effect": np.abs(effects)})
    m = len(effects)
    order = np.argsort(table["abs_effect"].to_numpy(), kind="stable")
    ranks = np.empty(m)
    ranks[order] = np.arange(1, m + 1)
    table["half_normal_q"] = stats.norm.ppf(0.5 + 0.5 * (ranks - 0.5) / max(m, 1))
    return table, gamma


_HELMERT = re.compile(r"^(\w+)\[(.+) − (?:mean\((.+)\)|(.+))\]$")


def _label(term: str) -> str:
    """A term as charts show it: interactions with ×; a factor's Helmert contrast as "which
    level against which" (its value is scaled to a two-level effect's variance, so that it
    lines up with them; it is not the difference of the means)."""
    parts = []
    for part in term.split(":"):
        found = _HELMERT.match(part)
        parts.append(f"{found[1]}: {found[2]} vs {found[3] or found[4]}" if found else part)
    return " × ".join(parts)


def lenth_pse(effects: NDArray[np.float64], alpha: float = 0.05) -> Lenth:
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
    me = float(stats.t.ppf(1 - alpha / 2, d)) * pse
    return Lenth(s0=s0, pse=pse, df=d, me=me, sme=float(stats.t.ppf(gamma, d)) * pse)
