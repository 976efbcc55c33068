"""Results that finished while the storage was unreachable: kept on disk, recorded later.

A worker whose storage stays unreachable past its timeout keeps the result it has just
finished as a JSON file in the results folder's ``spool/`` (the outputs base64-encoded), and
stops; the next ``ablate run`` (or ``ablate doctor --repair``) records it on a pending trial
of its key, unless the key completed meanwhile.
"""

from __future__ import annotations

import base64
import dataclasses
import json
import logging
import os
from pathlib import Path
from typing import Any

from ablate.errors import AblateError
from ablate.queue.claims import Claim, TrialQueue
from ablate.queue.experiment import SCHEMA_VERSION
from ablate.queue.workers import WorkerIdentity
from ablate.study.grid import TrialSpec
from ablate.training.records import TrialResult

_log = logging.getLogger("ablate.storage")


def spool_result(
    spool: Path, queue: TrialQueue, claim: Claim, result: TrialResult, worker: WorkerIdentity
) -> Path:
    """Keep a result the storage could not take, for :func:`import_spool`."""
    spec = claim.spec
    entry = {
        "schema_version": SCHEMA_VERSION,
        "study": queue.policy.study,
        "fingerprint": queue.policy.fingerprint,
        "attrs": {
            "trial_key": spec.key, "levels": spec.cell.as_dict(), "cell_index": spec.cell.index,
            "replicate": spec.replicate, "seed": spec.seed, "attempt": claim.attempt,
            "payload": spec.to_payload(),
        },
        "worker": worker.to_dict(),
        "result": result.to_dict(),
        "outputs": base64.b64encode(result.outputs).decode("ascii") if result.outputs else None,
    }  # fmt: skip
    spool.mkdir(parents=True, exist_ok=True)
    path = spool / f"{spec.key}-{os.getpid()}-{claim.trial_id}.json"
    tmp = path.with_suffix(".tmp")
    tmp.write_text(json.dumps(entry))
    os.replace(tmp, path)
    return path


def import_spool(queue: TrialQueue, spool: Path) -> list[str]:
    """Record results a worker kept in ``spool`` while the storage was unreachable.

    A spooled result is recorded on a pending trial of its key (or a new one) unless the key
    is complete already; it stays in the spool while another worker is training its key.
    Returns the cell labels recorded.
    """
    recorded = []
    for path in sorted(spool.glob("*.json")) if spool.is_dir() else []:
        try:
            entry = json.loads(path.read_text())
            spec = queue.spec(entry["attrs"])
            result = TrialResult.from_dict(entry["result"])
            outputs = _decode(entry.get("outputs"))
        except (OSError, ValueError, KeyError, TypeError, AblateError) as err:
            _log.warning("%s cannot be read (%s); it stays where it is", path, err)
            continue
        if entry.get("fingerprint") != queue.policy.fingerprint:
            continue  # another study's, or another version of this one
        claim = _claim_for(queue, spec, entry)
        if claim is None:
            if "complete" in {e.state for e in queue.store.entries_of(spec.key)}:
                path.unlink(missing_ok=True)  # recorded meanwhile
            continue
        if queue.finish(claim, dataclasses.replace(result, outputs=outputs)):
            path.unlink(missing_ok=True)
            recorded.append(spec.cell.label)
    return recorded


def _claim_for(queue: TrialQueue, spec: TrialSpec, entry: dict[str, Any]) -> Claim | None:
    """A pending trial of the key (a new one if none), claimed for the spooled result's
    worker; None if the key is complete, being trained, or taken this very moment."""
    store = queue.store
    mine = store.entries_of(spec.key, confirm=True)
    states = {e.state for e in mine}
    if "complete" in states or "running" in states:
        return None  # recorded meanwhile, or being trained again: decide once it has finished
    if "waiting" not in states:
        queue.enqueue([spec], attempt=len(mine) + 1)
    waiting = sorted(
        (e for e in store.entries_of(spec.key) if e.state == "waiting"), key=lambda e: e.number
    )
    if not waiting or not store.take(waiting[0], entry["worker"]):
        return None  # a worker claimed it this very moment: try again next time
    attempt = int(entry["attrs"].get("attempt", 1))
    return Claim(waiting[0].trial_id, waiting[0].number, spec, attempt)


def _decode(encoded: str | None) -> bytes | None:
    if not encoded:
        return None
    try:
        return base64.b64decode(encoded, validate=True)
    except (ValueError, TypeError):
        return None
