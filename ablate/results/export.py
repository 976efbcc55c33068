"""Results on disk: parquet tables exported from storage, written atomically, read back checked.

A results folder ``results/<study>/`` holds

- ``study.yaml``: the resolved study (a valid study file);
- ``manifest.json``: schema version, ablate version, where the storage is (password masked);
- ``optuna.journal``: the trial storage, unless the study uses a database (``--storage``);
- ``trials.parquet``: one row per finished (cell, replicate);
- ``epochs.parquet``: one row per trial and epoch;
- ``outputs/<trial_key>.npz``: what each complete trial's model learned (latent codes of test
  digits, reconstructions, a decoded walk over the latent plane), for the charts.

The storage is the record of truth and the parquet files are exported from it, so a crash
while writing costs nothing: each file is written to a temporary name, synced, and renamed
over the old one, which stays intact until the new one is complete.
"""

from __future__ import annotations

import contextlib
import json
import os
from dataclasses import dataclass
from datetime import UTC, datetime
from importlib import metadata
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ablate.config import Study, load_study
from ablate.errors import AblateError

if TYPE_CHECKING:
    import numpy as np
    import pandas as pd

    from ablate.storage import Record, TrialQueue

SCHEMA_VERSION = 1
STUDY_FILE = "study.yaml"
MANIFEST_FILE = "manifest.json"
TRIALS_FILE = "trials.parquet"
EPOCHS_FILE = "epochs.parquet"
OUTPUTS_DIR = "outputs"
SPOOL_DIR = "spool"  # results a worker could not record while the storage was unreachable

#: Numeric result columns of trials.parquet that ``ablate analyze`` can take as a response.
RESPONSES = (
    "test_loss", "test_recon_loss", "test_kl_loss", "train_loss", "seconds",
    "train_seconds", "images_per_second",
)  # fmt: skip

EPOCH_COLUMNS = (
    "epoch", "train_loss", "train_recon_loss", "train_kl_loss", "test_loss",
    "test_recon_loss", "test_kl_loss", "learning_rate", "train_seconds", "eval_seconds",
)  # fmt: skip


@dataclass(frozen=True)
class Results:
    """A study's results as tables; ``study`` is None for a bare parquet or CSV file."""

    trials: pd.DataFrame
    epochs: pd.DataFrame | None
    study: Study | None
    source: Path


# ---------------------------------------------------------------------------------------------
# Writing


def prepare_results_dir(study: Study, storage_url: str | None) -> Path:
    """Create the results folder and save the resolved study and the manifest beside it."""
    from ablate.storage import JOURNAL_FILE, mask_url

    directory = study.results_dir
    try:
        directory.mkdir(parents=True, exist_ok=True)
    except OSError as err:
        raise AblateError(
            f"cannot create the results folder {directory} ({err.strerror}); choose another "
            "place with `results:` in the study file."
        ) from None
    write_atomic(directory / STUDY_FILE, study.to_yaml().encode())
    manifest = {
        "schema_version": SCHEMA_VERSION,
        "ablate_version": _ablate_version(),
        "study": study.name,
        "fingerprint": study.fingerprint(),
        "storage": mask_url(storage_url) if storage_url else JOURNAL_FILE,
        "updated": datetime.now(UTC).isoformat(timespec="seconds"),
    }
    write_atomic(directory / MANIFEST_FILE, (json.dumps(manifest, indent=2) + "\n").encode())
    return directory


def export(queue: TrialQueue, directory: Path) -> int:
    """Write trials.parquet and epochs.parquet from the storage; returns the row count."""
    records = queue.records()
    study = queue.study
    meta = {
        "ablate.schema_version": str(SCHEMA_VERSION),
        "ablate.study": study.name,
        "ablate.fingerprint": study.fingerprint(),
    }
    write_parquet(trials_frame(records, study), directory / TRIALS_FILE, meta)
    write_parquet(epochs_frame(records), directory / EPOCHS_FILE, meta)
    outputs = directory / OUTPUTS_DIR
    for record in records:
        target = outputs / f"{record.key}.npz"
        if record.outputs is not None and not target.exists():
            outputs.mkdir(exist_ok=True)
            write_atomic(target, record.outputs)
    return len(records)


def trials_frame(records: list[Record], study: Study) -> pd.DataFrame:
    """One row per finished (cell, replicate): its levels, losses and provenance."""
    import pandas as pd

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
        row.update({name: r.levels[name] for name in study.factor_names})
        row.update(
            test_recon_loss=res.test_recon_loss,
            test_kl_loss=res.test_kl_loss,
            test_loss=res.test_loss,
            train_loss=res.train_loss,
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
    frame = pd.DataFrame(rows, columns=_trial_columns(study))
    return _typed(frame, study)


def epochs_frame(records: list[Record]) -> pd.DataFrame:
    """One row per trial and epoch, failed and diverged trials included."""
    import pandas as pd

    rows = [
        {"trial_key": r.key, "replicate": r.replicate, **_epoch_dict(e)}
        for r in records
        for e in r.result.history
    ]
    frame = pd.DataFrame(rows, columns=["trial_key", "replicate", *EPOCH_COLUMNS])
    for col in EPOCH_COLUMNS:
        frame[col] = frame[col].astype("int64" if col == "epoch" else "float64")
    return frame.astype({"trial_key": "string", "replicate": "int64"})


def _epoch_dict(e: Any) -> dict[str, Any]:
    return {c: getattr(e, c) for c in EPOCH_COLUMNS}


def _trial_columns(study: Study) -> list[str]:
    return [
        "trial_key", "cell", "cell_index", "replicate", "seed", "status",
        *study.factor_names,
        "test_recon_loss", "test_kl_loss", "test_loss", "train_loss", "epochs", "params",
        "trainable_params", "seconds", "build_seconds", "train_seconds", "eval_seconds",
        "images_per_second", "attempts", "error", "traceback", "backend", "device", "host",
        "worker", "versions", "started_at", "finished_at", "optuna_trial",
    ]  # fmt: skip


def _typed(frame: pd.DataFrame, study: Study) -> pd.DataFrame:
    """Stable column types, also for an empty table: booleans stay booleans, text is text."""
    types: dict[str, str] = {
        "trial_key": "string", "cell": "string", "cell_index": "int64", "replicate": "int64",
        "seed": "int64", "status": "string", "epochs": "int64", "params": "Int64",
        "trainable_params": "Int64", "attempts": "int64", "error": "string",
        "traceback": "string", "backend": "string", "device": "string", "host": "string",
        "worker": "string", "versions": "string", "optuna_trial": "int64",
    }  # fmt: skip
    for col in ("test_recon_loss", "test_kl_loss", "test_loss", "train_loss", "seconds",
                "build_seconds", "train_seconds", "eval_seconds", "images_per_second"):  # fmt: skip
        types[col] = "float64"
    for f in study.factors:
        types[f.name] = {"bool": "bool", "string": "string"}.get(
            f.kind, "int64" if all(isinstance(v, int) for v in f.levels) else "float64"
        )
    frame = frame.astype(types)
    for col in ("started_at", "finished_at"):
        frame[col] = frame[col].astype("datetime64[us, UTC]")
    return frame


def _label(levels: dict[str, Any], study: Study) -> str:
    from ablate.grid import Cell

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


def write_atomic(path: Path, data: bytes) -> None:
    """Replace ``path`` with ``data`` all at once: the old file stays intact on any failure."""
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    try:
        with open(tmp, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
        with contextlib.suppress(OSError):  # make the rename itself durable
            dir_fd = os.open(path.parent, os.O_RDONLY)
            try:
                os.fsync(dir_fd)
            finally:
                os.close(dir_fd)
    except OSError as err:
        with contextlib.suppress(OSError):
            tmp.unlink()
        raise AblateError(
            f"could not write {path} ({err.strerror or err}); the previous version of the file, "
            "if any, is intact, and every finished trial is kept in the study's storage. Free "
            f"some space or fix the folder's permissions, then run `ablate export {path.parent}`."
        ) from None


# ---------------------------------------------------------------------------------------------
# Reading


def load_results(path: str | Path) -> Results:
    """A results folder (with its study) or a bare parquet/CSV table."""
    p = Path(path)
    if p.is_dir():
        study = load_study(p)
        _check_manifest(p)
        trials_path = p / TRIALS_FILE
        if not trials_path.is_file():
            raise AblateError(
                f"{p} has no {TRIALS_FILE} yet: no trial of this study has finished, or it was "
                f"never exported. Run `ablate export {p}` (or `ablate run` the study)."
            )
        trials = read_table(trials_path)
        epochs_path = p / EPOCHS_FILE
        epochs = read_table(epochs_path) if epochs_path.is_file() else None
        missing = [n for n in study.factor_names if n not in trials.columns]
        if missing:
            raise AblateError(
                f"{trials_path} lacks the factor columns {', '.join(missing)} of its study.yaml; "
                f"it does not belong to this study. Run `ablate export {p}` to rewrite it."
            )
        return Results(trials=trials, epochs=epochs, study=study, source=p)
    if not p.exists():
        raise AblateError(f"{p}: no such file or folder.")
    return Results(trials=read_table(p), epochs=None, study=None, source=p)


def _check_manifest(directory: Path) -> None:
    path = directory / MANIFEST_FILE
    try:
        manifest = json.loads(path.read_text())
    except FileNotFoundError:
        return  # written by hand or copied without it: the parquet metadata still tells
    except (OSError, ValueError) as err:
        raise AblateError(
            f"{path} cannot be read ({_short(err)}); `ablate export` rewrites it."
        ) from None
    check_schema_version(manifest.get("schema_version"), str(directory))


def read_table(path: Path) -> pd.DataFrame:
    """A parquet or CSV file as a DataFrame, refusing damaged or newer-schema files clearly."""
    import pandas as pd

    suffix = path.suffix.lower()
    if suffix == ".csv":
        try:
            return pd.read_csv(path)
        except Exception as err:
            raise AblateError(f"{path} cannot be read as CSV ({_short(err)}).") from None
    if suffix not in (".parquet", ".pq"):
        raise AblateError(
            f"{path}: ablate reads results folders, .parquet and .csv files; this is neither."
        )
    import pyarrow.parquet as pq

    try:
        table = pq.read_table(path)
    except Exception as err:
        raise AblateError(
            f"{path} is not a readable parquet file ({_short(err)}); it may be truncated or "
            "damaged. If it is in a results folder, `ablate export` rewrites it from storage."
        ) from None
    meta = table.schema.metadata or {}
    version = meta.get(b"ablate.schema_version")
    if version is not None:
        check_schema_version(version.decode(errors="replace"), str(path))
    return table.to_pandas()


def check_schema_version(version: object, what: str) -> None:
    """Refuse results of another schema version, naming it and the way out."""
    try:
        number = int(str(version))
    except ValueError:
        number = None
    if number == SCHEMA_VERSION:
        return
    if number is not None and number > SCHEMA_VERSION:
        raise AblateError(
            f"{what} was written by a newer ablate (results schema version {number}; this one "
            f"reads version {SCHEMA_VERSION}); upgrade ablate to read it."
        )
    raise AblateError(
        f"{what} has results schema version {version}, which this ablate does not read (it "
        f"reads version {SCHEMA_VERSION}). If the study's storage is at hand, `ablate export` "
        "rewrites the results in the current version; otherwise read them with the ablate "
        "that wrote them."
    )


def load_outputs(directory: Path, key: str) -> dict[str, np.ndarray] | None:
    """A trial's saved model outputs (None if it has none); never unpickles anything."""
    import numpy as np

    path = Path(directory) / OUTPUTS_DIR / f"{key}.npz"
    if not path.is_file():
        return None
    try:
        with np.load(path, allow_pickle=False) as f:
            return {name: f[name] for name in f.files}
    except Exception as err:
        raise AblateError(
            f"{path} cannot be read ({_short(err)}); delete it and run `ablate export "
            f"{directory}` to write it again from storage."
        ) from None


def _short(err: BaseException) -> str:
    text = str(err).strip().splitlines()
    return (text[0] if text else type(err).__name__)[:200]


def _ablate_version() -> str:
    try:
        return metadata.version("ablate")
    except metadata.PackageNotFoundError:
        return "unknown"
