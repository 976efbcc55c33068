"""Results that finished while the storage was unreachable, kept on disk until the next run."""

from __future__ import annotations

import base64
import json
import os
from pathlib import Path
from typing import TYPE_CHECKING

from ablate.results.files import SCHEMA_VERSION

if TYPE_CHECKING:
    from ablate.engine.queue import Claim, TrialQueue
    from ablate.engine.records import TrialResult
    from ablate.engine.workers import WorkerIdentity


def spool_result(
    spool: Path, queue: TrialQueue, claim: Claim, result: TrialResult, worker: WorkerIdentity
) -> Path:
    """Keep a result the storage could not take, for :meth:`TrialQueue.import_spool`."""
    spec = claim.spec
    entry = {
        "schema_version": SCHEMA_VERSION,
        "study": queue.study.name,
        "fingerprint": queue.study.fingerprint(),
        "attrs": {
            "trial_key": spec.key, "levels": spec.cell.as_dict(), "cell_index": spec.cell.index,
            "replicate": spec.replicate, "seed": spec.seed, "attempt": claim.attempt,
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
