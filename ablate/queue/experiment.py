"""A study in storage is one experiment: created once, and refused to a study file that would
mix other results into it.

A study is created with its response's direction and ablate's attributes (the schema version
of what ablate records, the experiment's settings and their fingerprint). Opening it again
checks that this ablate reads its records and that the study file describes the same
experiment: a trial's outcome depends on the task, model, factors, training, data and seed,
so a study file that changed any of them is refused, naming what changed.
"""

from __future__ import annotations

import time
from typing import TYPE_CHECKING, Any

from ablate.errors import AblateError, option
from ablate.study.settings import Study
from ablate.tasks import goal_of

if TYPE_CHECKING:
    from ablate.storage.opening import Storage

#: Version of what ablate records: the study's attributes in storage, its results' files.
SCHEMA_VERSION = 1


def open_study(study: Study, storage: Storage, *, create: bool) -> int:
    """The id of the study's experiment in storage, created if ``create``; refuses another
    experiment of the same name (see the module)."""
    name = study.name
    study_id = storage.study_id(name)
    if study_id is None:
        if not create:
            raise AblateError(
                f"the storage has no study named '{name}'. Start it first with "
                f"`ablate run STUDY.yaml` with {option('storage_url', 'URL', '--storage')} on one "
                "machine, then join it."
            )
        response = study.analysis.response
        study_id = storage.create_study(
            name,
            maximize=goal_of(response, study.task_spec) == "max",
            attrs={
                "ablate_response": response,
                "ablate_schema_version": SCHEMA_VERSION,
                "ablate_experiment": study.experiment(),
                "ablate_fingerprint": study.fingerprint(),
            },
        )
    check_same_experiment(study, _attrs(storage, study_id, name))
    return study_id


def _attrs(storage: Storage, study_id: int, name: str) -> dict[str, Any]:
    """The study's attributes, waiting a moment for a process that is creating it now."""
    attrs = storage.study_attrs(study_id)
    for _ in range(50):
        if attrs.get("ablate_schema_version") is not None:
            return attrs
        time.sleep(0.1)
        attrs = storage.study_attrs(study_id)
    raise AblateError(
        f"the storage has a study named '{name}' that ablate did not create; give the study "
        "another name."
    )


def check_same_experiment(study: Study, attrs: dict[str, Any]) -> None:
    """Refuse a stored study of another schema version or another experiment."""
    version = attrs.get("ablate_schema_version")
    if version != SCHEMA_VERSION:
        newer = isinstance(version, int) and version > SCHEMA_VERSION
        raise AblateError(
            f"the study '{study.name}' in storage has schema version {version}, and this "
            f"ablate reads version {SCHEMA_VERSION}; "
            + ("upgrade ablate." if newer else "use the ablate that wrote it.")
        )
    if attrs.get("ablate_fingerprint") == study.fingerprint():
        return
    changes = differences(
        attrs.get("ablate_experiment", {}), study.experiment(), study.experiment_defaults()
    )
    if changes:
        raise AblateError(
            f"the study '{study.name}' in storage was run with different settings "
            f"({'; '.join(changes[:5])}), so its results would not mix with these. Give the "
            "study a new name, or remove its results folder (and its study in storage) to "
            "start over."
        )


def differences(
    old: dict[str, Any], new: dict[str, Any], defaults: dict[str, Any], prefix: str = ""
) -> list[str]:
    """What differs between a stored experiment and this one.

    A key the stored experiment lacks was recorded before that setting existed, so it ran
    with the setting's default: only a value other than the default is a difference.
    """
    out = []
    for key in sorted(set(old) | set(new)):
        a, b, default = old.get(key), new.get(key), defaults.get(key)
        if key not in old and key in defaults and not isinstance(default, dict):
            a = default
        if isinstance(b, dict) and (isinstance(a, dict) or key not in old):
            sub_defaults = default if isinstance(default, dict) else {}
            out.extend(differences(a or {}, b, sub_defaults, f"{prefix}{key}."))
        elif a != b:
            out.append(f"{prefix}{key}: {a!r} then, {b!r} now")
    return out
