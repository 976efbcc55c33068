"""The results folder's layout, and the two ways ablate writes into it: atomically, once prepared.

``results/<study>/`` holds ``study.yaml`` (the resolved study, a valid study file),
``manifest.json`` (schema version, ablate version, where the storage is), the storage's
journal unless the study uses a database, the parquet tables (:mod:`ablate.results.export`)
and each complete trial's saved model outputs. Every file is written to a temporary name,
synced, and renamed over the old one, which stays intact until the new one is complete.
"""

from __future__ import annotations

import dataclasses
import json
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING

from ablate.errors import AblateError
from ablate.fileio import write_atomic
from ablate.queue.experiment import SCHEMA_VERSION
from ablate.secrets import mask_url
from ablate.storage.base import JOURNAL_FILE
from ablate.version import __version__

if TYPE_CHECKING:
    from ablate.study import Study
    from ablate.tasks import Baseline

STUDY_FILE = "study.yaml"
MANIFEST_FILE = "manifest.json"
TRIALS_FILE = "trials.parquet"
EPOCHS_FILE = "epochs.parquet"
OUTPUTS_DIR = "outputs"
BASELINES_FILE = "baselines.json"  # what a model that learned nothing scores on the data
SPOOL_DIR = "spool"  # results a worker could not record while the storage was unreachable


def prepare_results_dir(study: Study, storage_url: str | None) -> Path:
    """Create the results folder and save the resolved study and the manifest beside it."""

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
        "ablate_version": __version__,
        "study": study.name,
        "fingerprint": study.fingerprint(),
        "storage": mask_url(storage_url) if storage_url else JOURNAL_FILE,
        "updated": datetime.now(UTC).isoformat(timespec="seconds"),
    }
    write_atomic(directory / MANIFEST_FILE, (json.dumps(manifest, indent=2) + "\n").encode())
    return directory


def write_baselines(directory: Path, dataset: str, baselines: dict[str, Baseline]) -> None:
    """Save the task's trivial baselines on the study's data, for the analysis to compare."""
    payload = {
        "dataset": dataset,
        "responses": {k: dataclasses.asdict(b) for k, b in baselines.items()},
    }
    write_atomic(directory / BASELINES_FILE, (json.dumps(payload, indent=2) + "\n").encode())
