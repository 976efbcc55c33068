"""How the analysis's tables show numbers: the section type and the cell formats."""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import pandas as pd

WIDTH = 100  # columns of text output
FIRST_COLUMN_MAX = 28


@dataclass(frozen=True)
class Section:
    """A titled table (or, with ``table`` None, a block of text lines)."""

    key: str
    title: str
    table: pd.DataFrame | None = None
    lines: tuple[str, ...] = ()


def fmt_p(value: float) -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return ""
    return "<0.001" if value < 0.001 else f"{value:.3f}"


def fmt_g(value: object) -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return ""
    if isinstance(value, (int, np.integer)):
        return str(int(value))
    return f"{value:.4g}"


def fmt_ci(low: float, high: float, digits: int = 4) -> str:
    if math.isnan(low) or math.isnan(high):
        return ""
    return f"[{low:.{digits}g}, {high:.{digits}g}]"


def fmt_cis(table: pd.DataFrame, digits: int = 4) -> list[str]:
    return [fmt_ci(lo, hi, digits) for lo, hi in zip(table["ci_low"], table["ci_high"],
                                                      strict=True)]  # fmt: skip


def fmt_f(value: float) -> str:
    return "" if math.isnan(value) else f"{value:.2f}"
