"""Effects over training time: would the conclusion survive longer training?

:func:`~ablate.stats.analysis.analyze` fits the final values of the trials table. Here the same
fit is made at every recorded epoch: for each epoch, a copy of the results whose trials table
holds that epoch's value of the response (the trials that did not record it left out) goes
through ``analyze`` with the same options, so each estimate, interval and p value is the one
``analyze`` would report had training stopped at that epoch -- nothing is refitted another way.
The effects are those ``analyze`` reports: each two-level factor's effect (high − low; with the
blocks, where there are blocks) and, for a factor of three or more levels, each level against
the baseline with Tukey's simultaneous interval (the chart of effects draws these, and the
other pairs Tukey's test tells apart).

Per effect it says from which epoch on the conclusion holds (``settled_from``: the interval
excludes 0, with the same sign, at that epoch and every later one) and whether it is still
moving: the same model fitted to each trial's change over the last step (its value at the last
epoch minus the one before, per epoch), whose interval is far narrower than that of the
difference of two epochs' effects, because the seed-to-seed spread cancels within a trial.
"""

from __future__ import annotations

import math
from dataclasses import replace
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from ablate.errors import AblateError
from ablate.results import Results
from ablate.stats import rows
from ablate.stats.analysis import analyze
from ablate.stats.options import Options
from ablate.stats.trends import COLUMNS, EffectTrend, OverEpochs, SkippedEpoch
from ablate.stats.verdicts import direction
from ablate.tasks import goal_of

if TYPE_CHECKING:
    from ablate.stats.result import Analysis, Goal


def effects_over_epochs(results: Results, options: Options | None = None) -> OverEpochs:
    """``analyze``'s effects at every recorded epoch, with each effect's course (see the
    module's docstring). Where the data cannot support it, ``missing`` says why."""
    # importance and the multiple-testing adjustment change nothing reported here (only the
    # p_adj columns), and cost most of each fit's time
    opts = replace(options or Options(), importance=False, adjust="none")
    _, names, response, _, _ = rows.inputs(results, opts)
    goal = goal_of(response, results.study.task_spec if results.study is not None else None)
    values, why = _epoch_values(results, response)
    if values is None:
        return OverEpochs(response, goal, opts.alpha, _empty(), (), missing=why)
    recorded = len(values.columns)
    values = values[_spaced([int(e) for e in values.columns])]
    fits: dict[int, Analysis] = {}
    skipped: list[SkippedEpoch] = []
    for epoch in values.columns:
        try:
            fits[int(epoch)] = analyze(_at(results, values[epoch], response), opts)
        except AblateError as err:
            skipped.append(SkippedEpoch(int(epoch), str(err)))
    if not fits:
        first = skipped[0]
        why = f"no epoch could be analysed (at epoch {first.epoch}: {first.reason})"
        return OverEpochs(response, goal, opts.alpha, _empty(), (), skipped=tuple(skipped),
                          missing=why)  # fmt: skip
    table = pd.concat([_table_at(e, a) for e, a in fits.items()], ignore_index=True)
    last = max(fits)
    previous = max((e for e in fits if e < last), default=None)
    change = _last_change(results, values, fits[last], previous, last, names, response, opts)
    gaps = {s.epoch for s in skipped}
    trends = _trends(table, sorted({*fits, *gaps}), change, previous, goal)
    notes = _notes(results, values, response, table)
    if len(values.columns) < recorded:
        notes = (*notes, f"fitted at {len(values.columns)} of the {recorded} recorded epochs, "
                 "evenly spaced, the last two always among them")  # fmt: skip
    return OverEpochs(fits[last].response, goal, opts.alpha, table, trends,
                      fits[last].options.margin, tuple(skipped), notes)  # fmt: skip


#: The most epochs fitted (each is a whole analysis): evenly spaced where there are more.
AT_MOST = 20


def _spaced(epochs: list[int]) -> list[int]:
    """At most :data:`AT_MOST` of the epochs, evenly spaced, the first and last two kept."""
    if len(epochs) <= AT_MOST:
        return epochs
    picks = np.linspace(0, len(epochs) - 2, AT_MOST - 1).round().astype(int)
    return sorted({*(epochs[i] for i in picks), epochs[-1]})


def _empty() -> pd.DataFrame:
    return pd.DataFrame(columns=list(COLUMNS))


# ---------------------------------------------------------------------------------------------
# The values per epoch


def _epoch_values(results: Results, response: str) -> tuple[pd.DataFrame | None, str]:
    """The response per complete trial (rows, by trial key) and epoch (columns, ascending);
    None, with what is missing, where there is no course over epochs to fit."""
    epochs = results.epochs
    if epochs is None or epochs.empty:
        if results.study is None:
            return None, (f"{results.source} is a bare table, without epochs: effects over "
                          "training time need a results folder with its epochs table")  # fmt: skip
        return None, (f"{results.source} has no epochs table (epochs.parquet): `ablate export "
                      f"{results.source}` writes it from the study's storage")  # fmt: skip
    if "trial_key" not in results.trials.columns:
        return None, f"the trials table of {results.source} has no trial_key to join epochs on"
    if response not in epochs.columns or not epochs[response].notna().any():
        return None, _unreported(results, response)
    trials = results.trials
    if "status" in trials.columns:
        trials = trials[trials["status"].astype("string") == "complete"]
    keys = trials["trial_key"].astype(str)
    long = epochs.assign(trial_key=epochs["trial_key"].astype(str))
    long = long[long["trial_key"].isin(keys) & np.isfinite(long[response].astype(float))]
    long = long.drop_duplicates(["trial_key", "epoch"], keep="last")
    values = long.pivot(index="trial_key", columns="epoch", values=response).astype(float)
    values = values.sort_index(axis=1)
    if values.shape[1] == 0:
        return None, f"no complete trial recorded a finite {response} at any epoch"
    if values.shape[1] == 1:
        return None, (f"{response} is recorded at one epoch only (epoch {int(values.columns[0])})"
                      ": effects over training time need two or more epochs, each recording "
                      "it")  # fmt: skip
    return values, ""


def _unreported(results: Results, response: str) -> str:
    """Why the epochs table holds no value of the response, by who trains the trials."""
    head = f"the epochs table holds no {response}"
    study = results.study
    trainer = study.trainer if study is not None else None
    if trainer is not None and trainer.command is not None:
        return (f"{head}: a program must write {response} each epoch, in a line of its epochs "
                f'file such as {{"epoch": 1, "{response}": 0.5}}')  # fmt: skip
    if trainer is not None:
        return (f"{head}: a training function must report {response} each epoch "
                f"(report(epoch, {response}=...))")  # fmt: skip
    if study is not None and not study.training.validate_each_epoch:
        return (f"{head}: ablate's training loop evaluates on the test set after every epoch "
                "only with training.validate_each_epoch: true")  # fmt: skip
    return f"{head}: the trainer must record {response} each epoch"


def _at(results: Results, values: pd.Series, response: str) -> Results:
    """The results with the trials table's response replaced by ``values`` (by trial key),
    the trials without a value left out."""
    values = values.dropna()
    trials = results.trials
    keys = trials["trial_key"].astype(str)
    trials = trials[keys.isin(values.index)].copy()
    trials[response] = trials["trial_key"].astype(str).map(values).astype(float)
    return replace(results, trials=trials)


# ---------------------------------------------------------------------------------------------
# The contrasts of one fit


def _contrasts(a: Analysis) -> list[dict[str, Any]]:
    """The contrasts ``analyze`` reports: two-level factors' effects, and each level of a
    factor of three or more against its baseline (Tukey's interval), high − low each."""
    out: list[dict[str, Any]] = [
        {"factor": r["factor"], "low": r["low"], "high": r["high"], "effect": r["effect"],
         "ci_low": r["ci_low"], "ci_high": r["ci_high"], "p": r["p"], "clear": bool(r["clear"]),
         "two_level": True}
        for r in a.tested_effects.to_dict("records")
    ]  # fmt: skip
    pairs = a.tested_pairwise
    for f in (f for f in a.factors if not f.two_level):
        base = f.level_label(f.baseline)
        mine = pairs[pairs["factor"] == f.name].to_dict("records")
        for level in (f.level_label(v) for v in f.levels if v != f.baseline):
            for r in (r for r in mine if {r["level_a"], r["level_b"]} == {base, level}):
                sign = 1.0 if r["level_a"] == base else -1.0
                low, high = sorted((sign * r["ci_low"], sign * r["ci_high"]))
                out.append({"factor": f.name, "low": base, "high": level,
                            "effect": sign * r["diff"], "ci_low": low, "ci_high": high,
                            "p": r["p_tukey"], "clear": bool(r["clear"]),
                            "two_level": False})  # fmt: skip
    return out


def _table_at(epoch: int, a: Analysis) -> pd.DataFrame:
    frame = pd.DataFrame(_contrasts(a))
    frame.insert(0, "epoch", epoch)
    frame["n"] = a.n_used
    return frame[list(COLUMNS)]


# ---------------------------------------------------------------------------------------------
# What each effect does over training


def _last_change(
    results: Results, values: pd.DataFrame, last_fit: Analysis, previous: int | None, last: int,
    names: list[str], response: str, opts: Options,
) -> Analysis | str:  # fmt: skip
    """The model fitted to each trial's change per epoch from ``previous`` to ``last`` (on the
    scale analysed: differences of logs with the log option), the trials the last epoch's fit
    used; or why it cannot be."""
    if previous is None:
        return "only one epoch could be analysed, so there is no step to measure a change over"
    both = values[[previous, last]].dropna()
    kept = _learned_keys(_at(results, values[last], response), last_fit, names, response)
    if kept is not None:
        both = both[both.index.isin(kept)]
    if opts.log:
        if (both <= 0).to_numpy().any():
            return f"the log of {response} needs positive values at epochs {previous} and {last}"
        both = both.transform(np.log)
    step = (both[last] - both[previous]) / (last - previous)
    changed = replace(_at(results, step, response), baselines={})  # no baseline for a change
    try:
        return analyze(changed, replace(opts, log=False, exclude_unlearned=False))
    except AblateError as err:
        return f"the change from epoch {previous} to {last} cannot be fitted: {err}"


def _learned_keys(
    at_last: Results, fitted: Analysis, names: list[str], response: str
) -> pd.Index | None:
    """With the option to leave out trials that did not learn: the keys of the trials the last
    epoch's fit kept (its verdicts follow the usable rows' order); else None (all)."""
    if not fitted.options.exclude_unlearned or fitted.learned is None:
        return None
    frame, _, _ = rows.usable_rows(at_last, at_last.trials, names, response, [])
    keep = fitted.learned.table["learned"].to_numpy(dtype=bool)
    return pd.Index(frame["trial_key"].astype(str)[keep])


def _trends(
    table: pd.DataFrame, epochs: list[int], change: Analysis | str, previous: int | None,
    goal: Goal | None,
) -> tuple[EffectTrend, ...]:  # fmt: skip
    """Each contrast of the last fitted epoch with its settled epoch and its last change."""
    last = int(table["epoch"].max())
    changes = {}
    if not isinstance(change, str):
        changes = {(c["factor"], c["low"], c["high"]): c for c in _contrasts(change)}
    out = []
    for r in table[table["epoch"] == last].to_dict("records"):
        key = (r["factor"], r["low"], r["high"])
        mine = table[(table["factor"] == r["factor"]) & (table["low"] == r["low"])
                     & (table["high"] == r["high"])]  # fmt: skip
        signs = {
            int(e): float(np.sign(x)) * bool(c)
            for e, x, c in zip(mine["epoch"], mine["effect"], mine["clear"], strict=True)
        }
        settled = _settled(signs, [e for e in epochs if e <= last])
        effect = float(r["effect"])
        trend = EffectTrend(str(r["factor"]), str(r["low"]), str(r["high"]),
                            bool(r["two_level"]), last, effect, float(r["ci_low"]),
                            float(r["ci_high"]), settled,
                            direction(effect, goal) if settled is not None else None,
                            previous)  # fmt: skip
        out.append(_with_change(trend, changes.get(key), change))
    return tuple(out)


def _settled(signs: dict[int, float], epochs: list[int]) -> int | None:
    """The first epoch from which every later epoch's interval excludes 0 with the last
    epoch's sign (``signs``: the sign of each clear epoch's effect, 0 where it is not clear;
    an epoch without a fit breaks the run); None where the last epoch is not clear."""
    start = None
    last = signs.get(epochs[-1], 0.0)
    for epoch in reversed(epochs):
        if last == 0 or signs.get(epoch, 0.0) != last:
            break
        start = epoch
    return start


def _with_change(
    trend: EffectTrend, found: dict[str, Any] | None, change: Analysis | str
) -> EffectTrend:
    """The trend with its change over the last step, or why it has none."""
    if isinstance(change, str):
        return replace(trend, change_missing=change)
    if found is None:
        return replace(trend, change_missing="the change's fit has no such contrast")
    low, high, p = float(found["ci_low"]), float(found["ci_high"]), float(found["p"])
    return replace(trend, change=float(found["effect"]), change_ci_low=low, change_ci_high=high,
                   change_p=None if math.isnan(p) else p, moving=bool(found["clear"]))  # fmt: skip


def _notes(
    results: Results, values: pd.DataFrame, response: str, table: pd.DataFrame
) -> tuple[str, ...]:
    """What qualifies the course: trials that stopped early, final values the epochs differ
    from."""
    notes = []
    counts = table.groupby("epoch")["n"].first()
    if counts.nunique() > 1:
        notes.append(f"the number of trials fitted differs between epochs ({int(counts.min())} "
                     f"to {int(counts.max())}): each epoch's fit uses the trials usable at it "
                     "(that recorded the response there, and learned, where the trials that "
                     "did not learn are left out)")  # fmt: skip
    trials = results.trials.assign(trial_key=results.trials["trial_key"].astype(str))
    final = trials.set_index("trial_key")[response].reindex(values.index).to_numpy(float)
    own_last = values.ffill(axis=1).iloc[:, -1].to_numpy(float)
    both = np.isfinite(final) & np.isfinite(own_last)
    differ = int((~np.isclose(final[both], own_last[both], rtol=1e-9, atol=0.0)).sum())
    if differ:
        notes.append(f"{differ} trials' final {response} differs from their last epoch's value "
                     "(the trainer reports its final value apart from its epochs): the last "
                     "epoch here is not the final analysis")  # fmt: skip
    return tuple(notes)
