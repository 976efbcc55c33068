"""``ablate doctor``: check a study's results against its storage; repair what is safe to repair.

Checks, in order: the results folder's schema version; the journal file (a record cut short
by a crash or a full disk); the study in storage; trials of the grid that were never
enqueued; trials completed twice; duplicated waiting trials; RUNNING trials whose worker is
gone; results kept in the spool while the storage was unreachable; and whether the parquet
files and saved model outputs agree with the storage. ``--repair`` fixes each of these
except a trial completed twice (the first result is the one used, and both are kept); no
repair deletes a finished result, and a damaged journal is copied aside before it is cut.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from ablate.errors import AblateError, option
from ablate.queue.claims import TrialQueue, opened_queue
from ablate.queue.experiment import SCHEMA_VERSION
from ablate.queue.spool import import_spool
from ablate.results.export import export
from ablate.results.files import MANIFEST_FILE, OUTPUTS_DIR, SPOOL_DIR, TRIALS_FILE
from ablate.results.load import read_table
from ablate.storage.base import JOURNAL_FILE
from ablate.storage.journal_file import cut_incomplete_record
from ablate.study import load_study
from ablate.study.grid import TrialSpec, expand_trials
from ablate.study.settings import Study

Severity = Literal["ok", "problem", "repaired"]


@dataclass(frozen=True)
class Finding:
    """One check's outcome; ``repair`` says what ``--repair`` does (or did) about it."""

    severity: Severity
    text: str
    repair: str | None = None


def diagnose(directory: Path, storage_url: str | None, repair: bool = False) -> list[Finding]:
    """Every check on a results folder; with ``repair``, problems fixed where it is safe."""
    directory = Path(directory)
    study = load_study(directory)
    findings = [_schema(directory)]
    if storage_url is None:
        findings.append(_journal(directory / JOURNAL_FILE, repair))
        if findings[-1].severity == "problem":
            return findings  # the storage cannot be opened until the journal is repaired
    with opened_queue(study, storage_url, create=False) as queue:
        findings += [
            _never_enqueued(queue, expand_trials(study), repair),
            _completed_twice(queue),
            _duplicate_waiting(queue, repair),
            _orphans(queue, repair),
            _spool(queue, directory, repair),
            _exported(study, queue, directory, repair),
        ]
    return findings


def _schema(directory: Path) -> Finding:
    path = directory / MANIFEST_FILE
    try:
        version = json.loads(path.read_text()).get("schema_version")
    except (OSError, ValueError):
        return Finding("problem", f"{path} is missing or unreadable", "rerun `ablate run`")
    if version != SCHEMA_VERSION:
        return Finding(
            "problem",
            f"results schema version {version}; this ablate writes version {SCHEMA_VERSION}",
        )
    return Finding("ok", f"results schema version {version}")


def _journal(path: Path, repair: bool) -> Finding:
    """Every journal line must be one complete JSON record; a cut-off last one can go."""
    if not path.exists():
        where = option("storage_url", "URL", "--storage")
        return Finding("problem", f"{path} does not exist: this study's storage is elsewhere "
                       f"(pass {where}) or was deleted")  # fmt: skip
    data = path.read_bytes()
    good_end = 0  # byte offset just after the last complete, valid record
    bad_line = None
    for number, line in enumerate(data.splitlines(keepends=True), start=1):
        try:
            if not line.endswith(b"\n"):
                raise ValueError("cut short")
            json.loads(line)
        except ValueError:
            bad_line = number
            break
        good_end += len(line)
    if bad_line is None:
        records = data.count(b"\n")
        return Finding("ok", f"{path.name}: {records} complete records")
    if good_end + len(data[good_end:].splitlines(keepends=True)[0]) < len(data):
        return Finding(
            "problem",
            f"{path.name}: record {bad_line} is damaged and more follow; this is not a crash "
            "while writing. Restore the file from a backup",
        )
    if not repair:
        return Finding(
            "problem",
            f"{path.name}: its last record ({bad_line}) was cut short, as by a crash or a full "
            "disk while writing",
            "copy the journal aside and cut the incomplete record",
        )
    backup = cut_incomplete_record(path)
    return Finding(
        "repaired", f"{path.name}: cut the incomplete record {bad_line}; the original is {backup}"
    )


def _never_enqueued(queue: TrialQueue, specs: list[TrialSpec], repair: bool) -> Finding:
    present = queue.keys()
    missing = [s for s in specs if s.key not in present]
    if not missing:
        return Finding("ok", f"all {len(specs)} trials of the grid are in storage")
    if repair:
        queue.populate(specs)
        return Finding("repaired", f"enqueued {len(missing)} trials that were never enqueued")
    return Finding(
        "problem",
        f"{len(missing)} trials of the grid were never enqueued (a run stopped while filling "
        "the queue)",
        "enqueue them",
    )


def _completed_twice(queue: TrialQueue) -> Finding:
    twice = queue.summary().duplicates
    if not twice:
        return Finding("ok", "no trial completed twice")
    return Finding(
        "problem",
        f"{twice} trials completed twice; the first result of each is the one exported and "
        "analysed, and both stay in storage",
    )


def _duplicate_waiting(queue: TrialQueue, repair: bool) -> Finding:
    duplicates = queue.duplicate_waiting()
    if not duplicates:
        return Finding("ok", "no duplicated waiting trial")
    if repair:
        for trial_id in duplicates:
            queue.drop_waiting(trial_id)
        return Finding("repaired", f"set aside {len(duplicates)} duplicated waiting trials")
    return Finding(
        "problem",
        f"{len(duplicates)} waiting trials duplicate another of the same key (workers would "
        "skip them)",
        "mark them as duplicates",
    )


def _orphans(queue: TrialQueue, repair: bool) -> Finding:
    orphans = queue.lost_trials()
    if not orphans:
        return Finding("ok", f"{len(queue.summary().running)} running trials, all alive")
    if repair:
        recovered = queue.recover_lost()
        return Finding("repaired", f"returned {len(recovered)} orphaned trials to the queue")
    return Finding(
        "problem",
        f"{len(orphans)} trials are RUNNING but their worker is gone: " + ", ".join(orphans[:5]),
        "return them to the queue",
    )


def _spool(queue: TrialQueue, directory: Path, repair: bool) -> Finding:
    spool = directory / SPOOL_DIR
    waiting = sorted(spool.glob("*.json")) if spool.is_dir() else []
    if not waiting:
        return Finding("ok", "no result waiting in the spool")
    if repair:
        recorded = import_spool(queue, spool)
        return Finding("repaired", f"recorded {len(recorded)} spooled results in storage")
    return Finding(
        "problem",
        f"{len(waiting)} results in {spool} were never recorded in storage (it was unreachable)",
        "record them",
    )


def _exported(study: Study, queue: TrialQueue, directory: Path, repair: bool) -> Finding:
    records = queue.records()
    expected = {(r.key, r.status) for r in records}
    problem = None
    path = directory / TRIALS_FILE
    try:
        table = read_table(path) if path.exists() else None
    except AblateError as err:
        problem = str(err)
    else:
        if table is None:
            problem = f"{path.name} does not exist"
        else:
            found = set(zip(table["trial_key"], table["status"], strict=True))
            if found != expected:
                problem = (
                    f"{path.name} differs from the storage ({len(expected - found)} results "
                    f"missing or changed, {len(found - expected)} not in storage)"
                )
    outputs = directory / OUTPUTS_DIR
    stored = queue.outputs.keys()
    absent = [
        r
        for r in records
        if r.status == "complete" and r.key in stored and not (outputs / f"{r.key}.npz").exists()
    ]
    if absent and problem is None:
        problem = f"{len(absent)} complete trials lack their saved model outputs in {OUTPUTS_DIR}/"
    if problem is None:
        return Finding("ok", f"{path.name} agrees with the storage ({len(records)} results)")
    if repair:
        export(study, records, queue.outputs, directory)
        return Finding("repaired", f"rewrote the results from storage ({problem})")
    return Finding("problem", problem, "export the results again from storage")


def describe(findings: list[Finding], repair: bool) -> str:
    marks = {"ok": "ok      ", "problem": "PROBLEM ", "repaired": "repaired"}
    lines = []
    for f in findings:
        line = f"{marks[f.severity]}  {f.text}"
        if f.severity == "problem" and f.repair and not repair:
            line += f" [{option('repair', 'True')}: {f.repair}]"
        lines.append(line)
    return "\n".join(lines)
