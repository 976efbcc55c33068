"""Exporting a study's results from its storage: trials.parquet, epochs.parquet, model outputs.

The storage is the record of truth and the parquet files are exported from it, so a crash
while writing costs nothing (see :func:`ablate.fileio.write_atomic`). Model outputs are
copied from the storage's output store (:class:`ablate.storage.base.OutputStore`) once per
trial.
"""

from __future__ import annotations

import json
from dataclasses import replace
from datetime import UTC
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ablate.fileio import sync_folder, write_atomic
from ablate.queue.experiment import SCHEMA_VERSION
from ablate.results.files import EPOCHS_FILE, OUTPUTS_DIR, TRIALS_FILE
from ablate.study.grid import Cell
from ablate.study.streams import replicate_numbers
from ablate.training.trainers import trainer_for

if TYPE_CHECKING:
    import pandas as pd

    from ablate.queue.outcomes import Record
    from ablate.storage.base import OutputStore
    from ablate.study import Study

#: Columns of trials.parquet before the factors, and their types.
KEYS: dict[str, str] = {
    "trial_key": "string", "cell": "string", "cell_index": "int64", "replicate": "int64",
    "seed": "int64", "status": "string",
}  # fmt: skip
#: Columns of trials.parquet after the task's values, and their types.
PROVENANCE: dict[str, str] = {
    "epochs": "int64", "params": "Int64", "trainable_params": "Int64", "seconds": "float64",
    "build_seconds": "float64", "train_seconds": "float64", "eval_seconds": "float64",
    "images_per_second": "float64", "attempts": "int64", "error": "string",
    "traceback": "string", "backend": "string", "device": "string", "host": "string",
    "worker": "string", "versions": "string", "started_at": "datetime64[us, UTC]",
    "finished_at": "datetime64[us, UTC]", "optuna_trial": "int64",
}  # fmt: skip
#: Per-epoch columns besides the task's values.
EPOCH_TIMES = ("learning_rate", "train_seconds", "eval_seconds")
#: What each of ablate's own columns holds (the documentation's schema page is generated
#: from this, KEYS, PROVENANCE and EPOCH_TIMES; a test checks that none lacks a meaning).
MEANINGS: dict[str, str] = {
    "trial_key": "the trial's key: its cell and replicate, the same on every run and machine",
    "cell": "the cell's levels in words", "cell_index": "the cell's place in the study's grid",
    "replicate": "0, 1, ...: the trial's replicate of its cell",
    "seed": "the trial's seed: the study's seed + the replicate (with seed streams, the seed "
    "of what no stream names)",
    "status": "complete, failed or diverged (trials still to run are not exported)",
    "epochs": "epochs completed", "params": "the model's parameters (Keras count_params)",
    "trainable_params": "its trainable parameters",
    "seconds": "the trial's wall time", "build_seconds": "building and compiling the model",
    "train_seconds": "training steps (per epoch: that epoch's)",
    "eval_seconds": "evaluation on the test set (per epoch: that epoch's)",
    "images_per_second": "training examples per second of training",
    "attempts": "how many times the trial was started (retries and lost workers included)",
    "error": "a failed or diverged trial's error, in one line",
    "traceback": "a failed trial's traceback (the user's frames, where the user's code raised)",
    "backend": "tensorflow, jax or torch (or python: a training function without PyTorch)",
    "device": "cpu, or gpu:NAME", "host": "the machine that trained it",
    "worker": "the worker that trained it (w1, w2, ...)",
    "versions": "the versions of Python, ablate and the frameworks, as JSON",
    "started_at": "when its last attempt started (UTC)", "finished_at": "when it finished (UTC)",
    "optuna_trial": "its trial number in the Optuna study",
    "epoch": "the epoch, from 1", "learning_rate": "the learning rate at the epoch's end",
}  # fmt: skip


def export(study: Study, records: list[Record], outputs: OutputStore, directory: Path) -> int:
    """Write trials.parquet and epochs.parquet of these final ``records`` (the storage's
    record of truth, read once) and copy the saved outputs the folder lacks from ``outputs``;
    returns the row count."""
    meta = {
        "ablate.schema_version": str(SCHEMA_VERSION),
        "ablate.study": study.name,
        "ablate.fingerprint": study.fingerprint(),
    }
    records = numbered(records, study)
    write_parquet(trials_frame(records, study), directory / TRIALS_FILE, meta)
    write_parquet(epochs_frame(records, study), directory / EPOCHS_FILE, meta)
    export_outputs(outputs, records, directory / OUTPUTS_DIR)
    return len(records)


def numbered(records: list[Record], study: Study) -> list[Record]:
    """With seed streams, each trial's replicate number from its stream indices as the study
    file now crosses them (a stream grown since renumbers the crossing; the trials and their
    keys stay): see :func:`ablate.study.streams.replicate_numbers`."""
    if not study.streams.counts:
        return records
    numbers = replicate_numbers([r.streams for r in records], study.streams)
    return [replace(r, replicate=n) for r, n in zip(records, numbers, strict=True)]


def export_outputs(outputs: OutputStore, records: list[Record], folder: Path) -> int:
    """Copy the saved model outputs of complete trials that ``folder`` lacks from the output
    store; returns how many were written."""
    # (an empty file is what a power cut can leave of a copy not yet on disk: written again)
    files = folder.glob("*.npz") if folder.is_dir() else ()
    present = {p.stem for p in files if p.stat().st_size}
    wanted = [r.key for r in records if r.status == "complete" and r.key not in present]
    if not wanted:
        return 0
    stored = outputs.keys()
    copied = [key for key in wanted if key in stored]
    if not copied:
        return 0
    folder.mkdir(exist_ok=True)
    # Copies of what the storage keeps, so not synced one by one: the folder once, at the end.
    written = outputs.copy_into(folder, copied)
    sync_folder(folder)
    return written


def trials_frame(records: list[Record], study: Study) -> pd.DataFrame:
    """One row per finished (cell, replicate): its levels, the task's values, provenance."""
    import pandas as pd

    values = value_columns(records, study)
    details = sorted({k for r in records for k in r.result.details})
    rows = []
    for r in records:
        res = r.result
        row: dict[str, Any] = {
            "trial_key": r.key,
            "cell": _label(r.levels, study),
            "cell_index": r.cell_index,
            "replicate": r.replicate,
            "seed": r.seed,
            "status": r.status,
        }
        row.update({f"stream_{name}": r.streams.get(name) for name in study.streams.names})
        row.update({name: r.levels[name] for name in study.factor_names})
        row.update({c: res.value(c) for c in values})
        row.update({f"test_{k}": _json(res.details.get(k)) for k in details})
        row.update(
            epochs=res.epochs,
            params=res.params,
            trainable_params=res.trainable_params,
            seconds=res.seconds,
            build_seconds=res.build_seconds,
            train_seconds=res.train_seconds,
            eval_seconds=res.eval_seconds,
            images_per_second=res.images_per_second,
            attempts=r.attempts,
            error=res.error,
            traceback=res.traceback,
            backend=res.backend or None,
            device=res.device or None,
            host=r.worker.get("host"),
            worker=r.worker.get("name"),
            versions=json.dumps(res.versions, sort_keys=True) if res.versions else None,
            started_at=_utc(r.started),
            finished_at=_utc(r.finished),
            optuna_trial=r.trial_number,
        )
        rows.append(row)
    streams = [f"stream_{name}" for name in study.streams.names]
    columns = [*KEYS, *streams, *study.factor_names, *values,
               *(f"test_{k}" for k in details), *PROVENANCE]  # fmt: skip
    types: dict[str, str] = {
        **KEYS, **{c: "Int64" for c in streams}, **{c: "float64" for c in values},
        **{f"test_{k}": "string" for k in details}, **PROVENANCE,
    }  # fmt: skip
    for f in study.factors:
        types[f.name] = {"bool": "bool", "string": "string"}.get(
            f.kind, "int64" if all(isinstance(v, int) for v in f.levels) else "float64"
        )
    return pd.DataFrame(rows, columns=columns).astype(types)


def schema_markdown() -> str:
    """The parquet files' columns as the documentation shows them (from the declarations)."""
    trials = [f"| `{c}` | {t} | {MEANINGS[c]} |" for c, t in KEYS.items()]
    trials += [
        "| `stream_<name>` (*each seed stream*) | Int64 | the trial's index in that stream, "
        "where replicates crosses seed streams |",
        "| *each factor* | its levels' type | the trial's level |",
        "| *each response* (`test_loss`, ...) | float64 | the trial's test value |",
        "| `train_loss` | float64 | the last epoch's training loss (Keras studies) |",
    ]
    trials += [f"| `{c}` | {t} | {MEANINGS[c]} |" for c, t in PROVENANCE.items()]
    epochs = [
        f"| `{c}` | {KEYS.get(c, 'int64')} | {MEANINGS[c]} |"
        for c in ("trial_key", "replicate", "epoch")
    ]
    epochs += [
        "| *each value per epoch* (`train_loss`, `test_loss`, ...) | float64 | "
        "the epoch's value (a training function: what it reported) |"
    ]
    epochs += [f"| `{c}` | float64 | {MEANINGS[c]} |" for c in EPOCH_TIMES]
    head = ["| column | type | meaning |", "| --- | --- | --- |"]
    return "\n".join(["## `trials.parquet`", "", "One row per finished trial.", "", *head,
                      *trials, "", "## `epochs.parquet`", "", "One row per trial and epoch.",
                      "", *head, *epochs, ""])  # fmt: skip


def value_columns(records: list[Record], study: Study) -> list[str]:
    """The task's test values in declared order, then further ones the trials recorded (per
    class: test_recall_0, test_recall_1, …, in numeric order), then the training loss."""
    declared = list(study.task_spec.result_columns)
    last = list(trainer_for(study).last_values())  # a function or command reports its own
    extra = {c for r in records for c in r.result.values} - {*declared, *last}
    return [*declared, *sorted(extra, key=_natural), *last]


def epochs_frame(records: list[Record], study: Study) -> pd.DataFrame:
    """One row per trial and epoch, failed and diverged trials included."""
    import pandas as pd

    values = list(study.task_spec.epoch_columns)
    reported = {c for r in records for e in r.result.history for c in e.values} - set(values)
    values += sorted(reported, key=_natural)  # what a training function reported
    rows = [
        {
            "trial_key": r.key,
            "replicate": r.replicate,
            "epoch": e.epoch,
            **{c: e.get(c) for c in values},
            **{c: getattr(e, c) for c in EPOCH_TIMES},
        }
        for r in records
        for e in r.result.history
    ]
    columns = ["trial_key", "replicate", "epoch", *values, *EPOCH_TIMES]
    types = {"trial_key": "string", "replicate": "int64", "epoch": "int64"}
    types.update({c: "float64" for c in (*values, *EPOCH_TIMES)})
    return pd.DataFrame(rows, columns=columns).astype(types)


def _natural(column: str) -> tuple[str, int]:
    """test_recall_10 after test_recall_9."""
    stem, _, number = column.rpartition("_")
    return (stem, int(number)) if number.isdigit() else (column, -1)


def _json(value: Any) -> str | None:
    return None if value is None else json.dumps(value)


def _label(levels: dict[str, Any], study: Study) -> str:

    return Cell(0, tuple((n, levels[n]) for n in study.factor_names)).label


def _utc(value: Any) -> Any:
    """Optuna's naive local datetimes as aware UTC ones (None stays None)."""
    if value is None:
        return None
    return value.astimezone(UTC)


def write_parquet(frame: pd.DataFrame, path: Path, metadata: dict[str, str]) -> None:
    """Write a table atomically, with ablate's metadata in the parquet schema."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    table = pa.Table.from_pandas(frame, preserve_index=False)
    ours = {k.encode(): v.encode() for k, v in metadata.items()}
    table = table.replace_schema_metadata({**(table.schema.metadata or {}), **ours})
    sink = pa.BufferOutputStream()
    pq.write_table(table, sink, compression="zstd")
    write_atomic(path, sink.getvalue().to_pybytes())
