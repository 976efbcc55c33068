"""Which rows of a results table the analysis uses: the factor and response columns, and the
trials that are valid measurements (complete, a finite response, every factor's level)."""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd

from ablate.errors import AblateError, option
from ablate.results import Results
from ablate.stats.options import Options
from ablate.study.reading import RESERVED_NAMES, reserved_message


def inputs(
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
                f"{results.source} is a bare table: name its factor columns with "
                f"{option('factors', 'a,b,c')} (and the response with "
                f"{option('response', 'COLUMN')})."
            )
        names, declared, baselines = list(opts.factors), {}, {}
        response = opts.response or "test_loss"
    baselines.update(dict(opts.baselines))
    missing = [c for c in [*names, response] if c not in frame.columns]
    if missing:
        raise AblateError(
            f"{results.source} has no column {', '.join(repr(m) for m in missing)}; its columns "
            f"are {', '.join(map(str, frame.columns))}."
        )
    if len(set(names)) != len(names):
        raise AblateError(f"a factor is named twice in {option('factors')}.")
    clash = [n for n in names if n in RESERVED_NAMES]
    if clash:
        raise AblateError(f"{option('factors')}: {reserved_message('column', clash[0])} "
                          f"(rename the "
                          "column in the table).")  # fmt: skip
    unknown = [b for b in baselines if b not in names]
    if unknown:
        raise AblateError(f"{option('baselines')} names {', '.join(unknown)}, which is not a "
                          f"factor "
                          "here.")  # fmt: skip
    return frame, names, response, declared, baselines


#: Responses beyond this size overflow the sums of squares (1e154² is near the float limit).
_HUGE = 1e150


def usable_rows(
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
    y = numeric_response(frame, response)
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
    if len(frame) == 1:
        left = f" ({', '.join(f'{n} {why}' for why, n in excluded.items())})" if excluded else ""
        raise AblateError(
            f"{results.source} has one usable trial of {len(frame) + sum(excluded.values())}"
            f"{left}: one trial estimates nothing; there is nothing to analyse yet."
        )
    return frame, y, excluded


def numeric_response(frame: pd.DataFrame, response: str) -> pd.Series:
    column = frame[response]
    if column.dtype == bool or not pd.api.types.is_numeric_dtype(column):
        raise AblateError(
            f"the response column '{response}' is not numeric (it holds {column.dtype} values); "
            f"choose a numeric column with {option('response')}, such as test_loss."
        )
    return column.astype(float)


def check_varies(y: np.ndarray, label: str) -> None:
    """Refuse a response that is the same in every trial: there is nothing to estimate."""
    if len(y) > 1 and np.ptp(y) == 0:
        raise AblateError(
            f"{label} is {y[0]:.6g} in every one of the {len(y)} trials used: no factor changes "
            "it, so there is nothing to estimate; analyse another response."
        )
