"""The columns of every table an analysis holds, declared once: what the views, the JSON and
CSV exports and other tools may rely on. :func:`check` holds an analysis to them once, as it
is built (a table without a declared column is a bug of ablate's, caught where it is made,
not where a view reads it); the analysis's docstrings point here.

Tables whose columns depend on the study (``cells``, ``residuals``: the factors first) declare
the columns that follow them.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import pandas as pd

    from ablate.stats.result import Analysis

#: table -> the columns it holds, in order (the factors' columns come first where marked).
COLUMNS: dict[str, tuple[str, ...]] = {
    "coefficients": ("term", "label", "kind", "coef", "std_err", "t", "p", "p_adj", "ci_low",
                     "ci_high", "clear", "effect", "aliases"),
    "effects": ("factor", "low", "high", "effect", "std_err", "t", "p", "p_adj", "ci_low",
                "ci_high", "clear"),
    "anova": ("term", "df", "sum_sq", "mean_sq", "F", "p", "pct_ss"),
    "lack_of_fit": ("source", "df", "sum_sq", "mean_sq", "F", "p"),
    "marginal_means": ("factor", "level", "n", "observed_mean", "emmean", "std_err", "ci_low",
                       "ci_high"),
    "pairwise": ("factor", "level_a", "level_b", "diff", "std_err", "t", "p_tukey", "ci_low",
                 "ci_high", "clear"),
    "interaction_means": ("factor_a", "level_a", "factor_b", "level_b", "n", "mean"),
    "screening": ("term", "effect", "abs_effect", "half_normal_q", "factor", "label",
                  "t_or_pseudo_t", "active"),
    "aliases": ("term", "aliases", "partial", "label"),
    "correlations": ("column_a", "column_b", "r"),
    "importance": ("factor", "linear", "fanova", "ped_anova"),
    "equivalence": ("term", "estimate", "std_err", "ci_low", "ci_high", "margin", "p_tost",
                    "ci_tost_low", "ci_tost_high", "verdict", "replicates_to_decide"),
    "improvement": ("factor", "low", "high", "pairs", "p_improve", "ci_low", "ci_high",
                    "missing"),
}  # fmt: skip
#: Tables that hold the factors' columns first, then these.
AFTER_FACTORS: dict[str, tuple[str, ...]] = {
    "cells": ("n", "mean", "sd"),
    "residuals": ("fitted", "residual", "leverage", "studentized", "normal_q"),
}


def check(a: Analysis) -> None:
    """Every table the analysis holds has its declared columns (extra columns may follow:
    ``aliases`` on the effects of a fraction); raises RuntimeError naming what is missing."""
    factors = [f.name for f in a.factors]
    wanted = {**COLUMNS, **{name: (*factors, *cols) for name, cols in AFTER_FACTORS.items()}}
    for name, columns in wanted.items():
        table: pd.DataFrame | None = getattr(a, name)
        if table is None:
            continue
        absent = [c for c in columns if c not in table.columns]
        if absent:
            raise RuntimeError(f"ablate's {name} table lacks its declared columns {absent}; "
                               "this is a bug in ablate: please report it")  # fmt: skip
