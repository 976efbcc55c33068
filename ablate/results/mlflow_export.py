"""Exporting a finished study to MLflow: the study a parent run, each trial a child run.

The results folder stays the record of truth; MLflow gets a copy to browse and compare. The
parent run holds the study's settings (params) and the caller's files (artifacts); a trial's
run holds its levels (params), its responses and final values (metrics), its per-epoch values
(metric histories, step = epoch) and its bookkeeping (``ablate.*`` tags). Exported again,
runs are found by their tags and only what MLflow lacks is added, in one ``log_batch`` per
run. mlflow is imported only when an export runs: ablate does not depend on it.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import numbers
import os
import socket
import time
from collections.abc import Iterator, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, NamedTuple
from urllib.parse import urlsplit

from ablate.errors import AblateError
from ablate.results.export import EPOCH_TIMES, KEYS
from ablate.results.load import Results, load_results

if TYPE_CHECKING:
    import pandas as pd

    from ablate.study import Study

#: The longest failed trial's error kept as a tag.
ERROR_CHARS = 500
#: MLflow's limit on a param's value (longer values are cut to it, ending in "...").
PARAM_CHARS = 6000
#: Columns of trials.parquet that are bookkeeping (tags), not measurements (metrics).
NOT_METRICS = frozenset({*KEYS, "attempts", "optuna_trial"})
#: MLflow's run status for each trial status.
RUN_STATUS = {"complete": "FINISHED", "failed": "FAILED", "diverged": "FAILED"}
#: A tag with a digest of every metric point a trial's run was given (equal: nothing to read)
DIGEST = "ablate.metrics_digest"
#: The most things one MLflow request logs (a bigger batch goes in several).
BATCH = 1000
#: Trials exported at once (each waits on the server most of its time).
THREADS = 8
#: A trial's point: (metric key, step) -> value.
Points = dict[tuple[str, int], float]


@dataclass(frozen=True)
class MlflowExport:
    """What an export did: where the runs are, and how much it created or added."""

    uri: str
    experiment_id: str
    parent_run_id: str
    child_run_ids: Mapping[str, str]  # by trial key
    runs_created: int  # the parent included, when it was new
    runs_updated: int  # runs found again that got metrics, params, changed tags or status
    metrics_logged: int  # points logged now (not those MLflow held already)


class _Synced(NamedTuple):
    """One run brought up to date: its id, whether it is new, whether anything was added."""

    run_id: str
    created: bool
    changed: bool
    points: int


def export_to_mlflow(
    folder: Path, uri: str, *, artifacts: Sequence[Path] = (), experiment: str | None = None
) -> MlflowExport:
    """Export the study in the results ``folder`` to the MLflow tracking server at ``uri``,
    into ``experiment`` (default ``ablate/<study name>``), the files ``artifacts`` attached to
    the study's run; run again, it adds only what MLflow lacks."""
    results = _results(folder)
    files = _files(artifacts, results.source)
    client = _client(uri)
    study = results.study
    assert study is not None  # _results refuses a bare table
    with _mlflow_errors(uri), _quiet():
        experiment_id = _experiment(client, experiment or f"ablate/{study.name}")
        parent = _parent(client, experiment_id, results)
        trials = _sync_trials(client, experiment_id, parent.run_id, results)
        for path in files:
            client.log_artifact(parent.run_id, str(path))
    done = [parent, *trials.values()]
    return MlflowExport(
        uri, experiment_id, parent.run_id, {key: t.run_id for key, t in trials.items()},
        runs_created=sum(d.created for d in done),
        runs_updated=sum(d.changed and not d.created for d in done),
        metrics_logged=sum(d.points for d in done),
    )  # fmt: skip


def _results(folder: Path) -> Results:
    """The folder's results, refusing a bare table or a study without finished trials."""
    results = load_results(folder)
    if results.study is None:
        raise AblateError(
            f"{folder} is a table, not a results folder; the MLflow export needs the folder "
            "(with its study.yaml), e.g. results/<study name>."
        )
    if results.trials.empty:
        raise AblateError(
            f"{folder} holds no finished trials yet, so there is nothing to export to MLflow. "
            f"Run the study first (`ablate run`), then export it."
        )
    return results


def _files(artifacts: Sequence[Path], source: Path) -> list[Path]:
    """The study's own study.yaml and the caller's ``artifacts``, each checked to exist."""
    files = [source / "study.yaml"] if (source / "study.yaml").is_file() else []
    for path in map(Path, artifacts):
        if not path.is_file():
            raise AblateError(
                f"{path} cannot be attached to the MLflow run: no such file. Write it first "
                "(e.g. `ablate analyze`), or leave it out."
            )
        files.append(path)
    return files


def _client(uri: str) -> Any:
    """An MlflowClient for ``uri``, once an http(s) server there is known to answer."""
    try:
        from mlflow.tracking import MlflowClient
    except ImportError:
        raise AblateError(
            "exporting to MLflow needs MLflow's client, which is not installed: "
            "`pip install 'ablate[mlflow]'` (or mlflow itself), then export again."
        ) from None
    parts = urlsplit(uri)
    if parts.scheme in ("http", "https"):
        port = parts.port or (443 if parts.scheme == "https" else 80)
        try:
            socket.create_connection((parts.hostname or "localhost", port), timeout=5).close()
        except (OSError, ValueError) as err:
            raise AblateError(
                f"no MLflow tracking server answers at {uri} ({_short(err)}). Start one "
                "(`pip install mlflow`, then `mlflow server` serves http://127.0.0.1:5000) or "
                "check the URI."
            ) from None
    with _mlflow_errors(uri):
        return MlflowClient(tracking_uri=uri)


@contextlib.contextmanager
def _mlflow_errors(uri: str) -> Iterator[None]:
    """MLflow's and the network's errors as an AblateError that names the server."""
    from mlflow.exceptions import MlflowException
    from requests.exceptions import RequestException

    try:
        yield
    except (MlflowException, RequestException, OSError) as err:
        raise AblateError(
            f"MLflow could not take the export at {uri}: {_short(err)}. Check the URI (a "
            "tracking server's http://HOST:PORT, or a database like sqlite:///mlflow.db) and "
            "that the server runs (`mlflow server`), then export again: what was exported "
            "already is kept, not duplicated."
        ) from None


@contextlib.contextmanager
def _quiet() -> Iterator[None]:
    """Keep MLflow from printing a "View run" link (and fetching the run for it) per trial."""
    name = "MLFLOW_SUPPRESS_PRINTING_URL_TO_STDOUT"
    before = os.environ.get(name)
    os.environ[name] = "true"
    try:
        yield
    finally:
        os.environ.pop(name) if before is None else os.environ.update({name: before})


def _experiment(client: Any, name: str) -> str:
    """The id of the experiment ``name``, created if it does not exist."""
    found = client.get_experiment_by_name(name)
    if found is None:
        return str(client.create_experiment(name))
    if found.lifecycle_stage == "deleted":
        raise AblateError(
            f"the MLflow experiment {name!r} (id {found.experiment_id}) is deleted; restore "
            "it (in the MLflow UI, or `mlflow experiments restore`), delete it for good "
            "(`mlflow gc`), or export into another experiment."
        )
    return str(found.experiment_id)


def _parent(client: Any, experiment_id: str, results: Results) -> _Synced:
    """The study's run (found again by its tags, or created), brought up to date."""
    study = results.study
    assert study is not None
    name = study.name
    query = f"tags.`ablate.study` = '{name}' and tags.`ablate.role` = 'study'"
    found = client.search_runs([experiment_id], query, max_results=1,
                               order_by=["attributes.start_time ASC"])  # fmt: skip
    trials = results.trials
    tags = {
        "ablate.role": "study", "ablate.study": name, "ablate.fingerprint": study.fingerprint(),
        "ablate.results": str(results.source.resolve()), "ablate.trials": str(len(trials)),
    }  # fmt: skip
    if study.description:
        tags["mlflow.note.content"] = study.description
    started, finished = _millis(trials["started_at"].min()), _millis(trials["finished_at"].max())
    run = found[0] if found else None
    run_id, created = _run(client, experiment_id, run, name, tags, started)
    params, changed = _new_params(run, _study_params(study))
    tags.update({f"ablate.param.{k}": v for k, v in changed.items()})
    changes = _log(client, run_id, run, tags, params, {}, finished, {})
    if run is None or run.info.status != "FINISHED":
        client.set_terminated(run_id, "FINISHED", finished)
        changes += 1
    return _Synced(run_id, created, changes > 0, 0)


def _study_params(study: Study) -> dict[str, str]:
    """The study's fixed settings worth seeing beside its runs, as MLflow params."""
    plain = study.to_dict()
    params: dict[str, Any] = {
        "factors": {f.name: list(f.levels) for f in study.factors},
        "cells": study.n_cells, "replicates": study.replicates, "seed": study.seed,
        "design": plain.get("design", {}).get("type", "full"), "task": study.task,
        "responses": ", ".join(study.task_spec.result_columns),
        "response": study.analysis.response, "epochs": study.planned_epochs,
    }  # fmt: skip
    params.update({k: plain[k] for k in ("trainer", "model", "training", "data") if k in plain})
    return {k: _text(v, PARAM_CHARS) for k, v in params.items() if v is not None}


def _children(client: Any, experiment_id: str, name: str) -> dict[str, Any]:
    """The study's trial runs already in the experiment, by trial key (the first of any twin)."""
    query = f"tags.`ablate.study` = '{name}' and tags.`ablate.trial_key` LIKE '%'"
    runs: dict[str, Any] = {}
    token = None
    while True:
        page = client.search_runs(
            [experiment_id], query, max_results=1000, page_token=token,
            order_by=["attributes.start_time ASC"],
        )  # fmt: skip
        for run in page:
            runs.setdefault(run.data.tags["ablate.trial_key"], run)
        token = page.token
        if not token:
            return runs


def _sync_trials(
    client: Any, experiment_id: str, parent_id: str, results: Results
) -> dict[str, _Synced]:
    """Bring every trial's run up to date, several at once (each waits on the server)."""
    study = results.study
    assert study is not None
    found = _children(client, experiment_id, study.name)
    groups = _epochs_by_trial(results.epochs)
    with ThreadPoolExecutor(THREADS) as pool:
        jobs = {}
        for row in results.trials.to_dict("records"):
            key = str(row["trial_key"])
            args = (experiment_id, parent_id, row, groups.get(key), study, found.get(key))
            jobs[key] = pool.submit(_sync_trial, client, *args)
        return {key: job.result() for key, job in jobs.items()}


def _sync_trial(
    client: Any, experiment_id: str, parent_id: str, row: Mapping[Any, Any],
    epochs: pd.DataFrame | None, study: Study, run: Any,
) -> _Synced:  # fmt: skip
    """Create or update a trial's run so that it holds all the trial has."""
    status = str(row["status"])
    tags = {
        "mlflow.parentRunId": parent_id, "ablate.role": "trial", "ablate.study": study.name,
        "ablate.trial_key": str(row["trial_key"]), "ablate.cell": str(row["cell"]),
        "ablate.cell_index": str(row["cell_index"]), "ablate.replicate": str(row["replicate"]),
        "ablate.seed": str(row["seed"]), "ablate.status": status,
        "ablate.attempts": str(row["attempts"]),
    }  # fmt: skip
    if _present(row.get("error")):
        tags["ablate.error"] = _text(row["error"], ERROR_CHARS)
    name = f"{row['cell']} r{row['replicate']}"
    finished = _millis(row.get("finished_at"))
    run_id, created = _run(client, experiment_id, run, name, tags, _millis(row.get("started_at")))
    params, _ = _new_params(run, {f: _text(row[f], PARAM_CHARS) for f in study.factor_names})
    points = _points(row, epochs)
    digest = {DIGEST: _digest(points)}
    if run is not None and run.data.tags.get(DIGEST) == digest[DIGEST]:
        points = {}  # all logged before: no need to read the history
    elif run is not None:
        logged = _logged(client, run, {key for key, _ in points})
        points = {at: v for at, v in points.items() if at not in logged}
    changes = _log(client, run_id, run, tags, params, points, finished, digest)
    wanted = RUN_STATUS.get(status, "FINISHED")
    if run is None or run.info.status != wanted:
        client.set_terminated(run_id, wanted, finished)
        changes += 1
    return _Synced(run_id, created, changes > 0, len(points))


def _run(
    client: Any, experiment_id: str, run: Any, name: str, tags: dict[str, str], start: int | None
) -> tuple[str, bool]:
    """The run's id, and whether it was created now (with ``tags``)."""
    if run is not None:
        return str(run.info.run_id), False
    made = client.create_run(experiment_id, start_time=start, tags=tags, run_name=name)
    return str(made.info.run_id), True


def _log(
    client: Any, run_id: str, run: Any, tags: dict[str, str], params: dict[str, str],
    points: Points, when: int | None, after: Mapping[str, str],
) -> int:  # fmt: skip
    """Log in one batch what the run lacks: ``params``, ``points`` and the tags that differ
    from its own (all when it is new), and then the tags ``after`` (in the same request when
    it is one: MLflow cuts a batch of over 1000 things in several); returns the count."""
    from mlflow.entities import Metric, Param, RunTag

    have = run.data.tags if run is not None else tags
    new_tags = [RunTag(k, v) for k, v in tags.items() if have.get(k) != v]
    last = [RunTag(k, v) for k, v in after.items() if have.get(k) != v]
    stamp = when or int(time.time() * 1000)
    metrics = [Metric(k, v, stamp, step) for (k, step), v in sorted(points.items())]
    params_ = [Param(k, v) for k, v in params.items()]
    if len(metrics) + len(params_) + len(new_tags) + len(last) <= BATCH:
        new_tags, last = new_tags + last, []
    client.log_batch(run_id, metrics=metrics, params=params_, tags=new_tags)
    client.log_batch(run_id, tags=last)  # (nothing is sent when it is empty)
    return len(new_tags) + len(metrics) + len(params_) + len(last)


def _new_params(run: Any, wanted: dict[str, str]) -> tuple[dict[str, str], dict[str, str]]:
    """The params the run lacks, and those it holds with another value (MLflow never changes
    a param: the caller keeps the new value as a tag)."""
    have = run.data.params if run is not None else {}
    new = {k: v for k, v in wanted.items() if k not in have}
    changed = {k: v for k, v in wanted.items() if k in have and have[k] != v}
    return new, changed


def _points(row: Mapping[Any, Any], epochs: pd.DataFrame | None) -> Points:
    """The trial's metric points: each per-epoch value at step = its epoch, then each response
    and final value at the last epoch of its history (a value without one at step 0)."""
    points: Points = {}
    if epochs is not None:
        for column in epochs.columns.drop(["trial_key", "replicate", "epoch"], errors="ignore"):
            values = epochs[column]
            if column in EPOCH_TIMES and not (values.fillna(0) != 0).any():
                continue  # nothing measured (a training function has no learning rate)
            timing = column in EPOCH_TIMES and column.endswith("_seconds")
            key = f"epoch_{column}" if timing else column  # the trial's total has the name
            for epoch, value in zip(epochs["epoch"], values, strict=True):
                if _present(value):
                    points[(key, int(epoch))] = float(value)
    last: dict[str, int] = {}
    for key, step in points:
        last[key] = max(step, last.get(key, step))
    for column, value in row.items():
        if column not in NOT_METRICS and _number(value):
            points[(column, last.get(column, 0))] = float(value)
    return points


def _logged(client: Any, run: Any, keys: set[str]) -> set[tuple[str, int]]:
    """The (key, step) points of ``keys`` the run holds already (read from its history)."""
    held = [key for key in sorted(keys) if key in run.data.metrics]
    return {
        (m.key, int(m.step)) for k in held for m in client.get_metric_history(run.info.run_id, k)
    }


def _digest(points: Points) -> str:
    """A short digest of the points: keys, steps and values."""
    text = json.dumps(sorted([k, step, repr(v)] for (k, step), v in points.items()))
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def _epochs_by_trial(epochs: pd.DataFrame | None) -> dict[str, pd.DataFrame]:
    """epochs.parquet split by trial key, each part in epoch order."""
    if epochs is None or epochs.empty:
        return {}
    ordered = epochs.sort_values(["trial_key", "epoch"])
    return {str(key): part for key, part in ordered.groupby("trial_key", sort=False)}


def _number(value: Any) -> bool:
    """A measurement: a number that is not missing, not a bool (factor levels are params)."""
    boolean = isinstance(value, bool) or type(value).__name__ == "bool_"
    return not boolean and isinstance(value, numbers.Real) and _present(value)


def _present(value: Any) -> bool:
    """Not None, NaN, NaT or pandas' NA (a scalar of a trials.parquet row)."""
    import pandas as pd

    return not bool(pd.isna(value))


def _millis(value: Any) -> int | None:
    """A timestamp as MLflow's milliseconds since the epoch (None when missing)."""
    return int(value.timestamp() * 1000) if _present(value) else None


def _text(value: Any, limit: int) -> str:
    """A value as MLflow's text: JSON for lists and mappings, cut to ``limit`` characters."""
    text = json.dumps(value, default=str) if isinstance(value, dict | list) else str(value)
    return text if len(text) <= limit else text[: limit - 3] + "..."


def _short(err: BaseException) -> str:
    lines = str(err).strip().splitlines()
    return (lines[0] if lines else type(err).__name__)[:300]
