"""What an analysis is asked: ``ablate analyze``'s options, merged and checked."""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Any

from ablate.designs.matrix import CODINGS, Coding
from ablate.errors import AblateError, option

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
    margin: float | None = None  # equivalence margin in response units (TOST verdicts)
    block: str | None = None  # a column fitted as a block, e.g. "replicate"
    exclude_unlearned: bool = False  # leave out the trials that did not beat the baseline


def merge(options: Options | None, overrides: dict[str, Any]) -> Options:
    opts = options or Options()
    if "factors" in overrides and overrides["factors"] is not None:
        overrides["factors"] = tuple(overrides["factors"])
    return replace(opts, **{k: v for k, v in overrides.items() if v is not None})


def check_options(opts: Options) -> None:
    if opts.coding not in CODINGS:
        raise AblateError(f"{option('coding')} must be one of {', '.join(CODINGS)}, not "
                          f"{opts.coding!r}.")  # fmt: skip
    if opts.adjust not in ADJUSTMENTS:
        raise AblateError(f"{option('adjust')} must be one of {', '.join(ADJUSTMENTS)}.")
    if opts.robust not in (None, "hc3"):
        raise AblateError(f"{option('robust')} takes hc3 (heteroscedasticity-consistent errors).")
    if opts.anova_type not in (2, 3):
        raise AblateError(f"{option('anova_type')} must be 2 or 3.")
    if opts.anova_type == 3 and opts.coding != "sum":
        raise AblateError(
            "Type III sums of squares are only meaningful with sum (effect) coding; add "
            f"{option('coding', 'sum')}, or use the default Type II."
        )
    if not 0 < opts.alpha < 1:
        raise AblateError("alpha must lie between 0 and 1.")
    if opts.margin is not None and not (0 < opts.margin < float("inf")):
        raise AblateError(
            f"{option('margin')} must be a positive number in the response's units, not "
            f"{opts.margin}."
        )
