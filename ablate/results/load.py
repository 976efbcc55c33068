"""Reading results back: a results folder with its study, or any parquet/CSV table, checked.

Damaged files, tables of another schema version and outputs that would need unpickling are
refused with a message that names the file and the way out.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from ablate.errors import AblateError
from ablate.results.files import (
    BASELINES_FILE,
    EPOCHS_FILE,
    MANIFEST_FILE,
    OUTPUTS_DIR,
    SCHEMA_VERSION,
    TRIALS_FILE,
)
from ablate.study import Study, load_study
from ablate.tasks.base import Baseline

if TYPE_CHECKING:
    import numpy as np
    import pandas as pd


@dataclass(frozen=True)
class Results:
    """A study's results as tables; ``study`` is None for a bare parquet or CSV file."""

    trials: pd.DataFrame
    epochs: pd.DataFrame | None
    study: Study | None
    source: Path
    #: response -> what a model that learned nothing scores (baselines.json)
    baselines: dict[str, Baseline] = field(default_factory=dict)


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
        return Results(trials, epochs, study, p, _read_baselines(p / BASELINES_FILE))
    if not p.exists():
        raise AblateError(f"{p}: no such file or folder.")
    return Results(trials=read_table(p), epochs=None, study=None, source=p)


def _read_baselines(path: Path) -> dict[str, Baseline]:
    """The saved baselines (none for results written before ablate recorded them; no test-set
    size for those written before it was recorded)."""
    try:
        responses = json.loads(path.read_text())["responses"]
        return {
            k: Baseline(float(v["value"]), str(v["what"]), _count(v.get("examples")))
            for k, v in responses.items()
        }
    except FileNotFoundError:
        return {}
    except (OSError, ValueError, KeyError, TypeError) as err:
        raise AblateError(
            f"{path} cannot be read ({_short(err)}); `ablate run` writes it again."
        ) from None


def _count(value: object) -> int | None:
    return int(value) if isinstance(value, int) and value > 0 else None


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
    frame: pd.DataFrame = table.to_pandas()  # pyarrow has no type information
    return frame


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
