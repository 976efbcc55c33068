"""The trial queue at scale: claim and finish latency as a study grows, on both storages.

    python bench/scale.py [--trials 1000 10000] [--workers 1 4 8]
                          [--storage journal postgresql://ablate:ablate@127.0.0.1:5432/ablate]
                          [--outputs-kb 40] [--epochs 3]

Trials "train" instantly: K worker processes run ablate's worker loop
(:func:`ablate.execution.worker.serve`: the lost-worker check, ``claim``) with a trial that
sends one ``heartbeat``, one ``report_epoch`` per epoch and ``finish``es with a realistic
result (a history of ``--epochs`` epochs, ``--outputs-kb`` of incompressible model outputs),
until the queue is empty. For every (storage, N, K) a fresh study (a new journal, or a new
database on the PostgreSQL server named: its role needs CREATEDB) is filled with N trials,
and the benchmark reports:

- the median and 90th percentile of claim + finish time (the lost-worker check included)
  at the start (first 10% of trial numbers), middle (45-55%) and end (last 10%) of the study;
- total queue time (all workers' claim, heartbeat, epoch and finish calls) and wall time;
- storage size per trial (outputs apart; the empty study's size subtracted), and the size of
  the outputs kept beside it (``stored-outputs/`` or the ``ablate_outputs`` table);
- each worker's resident memory at the end (VmRSS) and its peak (VmHWM);
- the time of `ablate status` and `ablate export` on the finished study (fresh processes);
- duplicates (a key trained twice) and lost trials (never completed), both to be 0.

Results go to bench/results/scale-<date>.json with the machine and versions. It needs a
quiet machine for timings; ``--trials 200 --workers 2`` checks that it works. The `ablate`
commands run as ``python -m ablate``: set PYTHONPATH to the checkout if ablate is not
installed from it.
"""

from __future__ import annotations

import argparse
import io
import json
import multiprocessing
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))

from bench._machine import describe_machine, save, table  # noqa: E402

STUDY = """\
name: {name}
model: {{units: [8, 6, 4, 2], depth: 1}}
factors:
  batch_norm: [true, false]
  activation: [relu, sigmoid, tanh, elu, selu]
training: {{epochs: {epochs}, batch_size: 32}}
data: {{dataset: mnist-sample, train_size: 96, test_size: 64}}
replicates: {replicates}
results: {results}
"""
CELLS = 10  # cells of the study above


def _outputs(kb: int, seed: int) -> bytes:
    """About ``kb`` kB of model outputs as a trial saves them (.npz of float16 arrays)."""
    import numpy as np

    rng = np.random.default_rng(seed)
    n = kb * 1024 // 2
    buffer = io.BytesIO()
    np.savez_compressed(
        buffer,
        latent=rng.standard_normal((n // 4, 2)).astype(np.float16),
        reconstructions=rng.standard_normal(n // 2).astype(np.float16),
    )
    return buffer.getvalue()


def _result(epochs: int, outputs: bytes | None) -> Any:
    """A complete trial's result, shaped like a VAE trial's (values, history, provenance)."""
    from ablate.training.records import EpochRecord, TrialResult

    names = ("loss", "recon_loss", "kl_loss")
    history = tuple(
        EpochRecord(
            e,
            {f"{p}_{n}": 0.5 / e + i / 100 for p in ("train", "test") for i, n in
             enumerate(names)},
            0.001,
            4.2,
            0.4,
        )
        for e in range(1, epochs + 1)
    )  # fmt: skip
    return TrialResult(
        status="complete",
        values={"test_loss": 0.3, "test_recon_loss": 0.28, "test_kl_loss": 0.02,
                "train_loss": 0.31},
        epochs=epochs, history=history, params=14_000, trainable_params=13_900,
        seconds=45.0, build_seconds=1.5, train_seconds=42.0, eval_seconds=1.5,
        images_per_second=300.0, backend="tensorflow", device="cpu",
        versions={"python": "3.11", "ablate": "0.1.0", "keras": "3.15", "optuna": "5.0"},
        outputs=outputs,
    )  # fmt: skip


def _memory() -> dict[str, float]:
    """This process's resident memory now and at its peak, MiB."""
    out = {}
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(("VmRSS:", "VmHWM:")):
            out[line.split(":")[0]] = int(line.split()[1]) / 1024
    return {"rss_mib": out.get("VmRSS", 0.0), "peak_rss_mib": out.get("VmHWM", 0.0)}


class _Timed:
    """A trial queue whose claims (with the lost-worker check before them) are timed."""

    def __init__(self, queue: Any) -> None:
        self._queue = queue
        self.lost_s = 0.0  # the check run since the last claim
        self.claim_s = 0.0

    def __getattr__(self, name: str) -> Any:
        return getattr(self._queue, name)

    def recover_lost(self) -> list[str]:
        start = time.perf_counter()
        try:
            return self._queue.recover_lost()
        finally:
            self.lost_s += time.perf_counter() - start

    def take_back(self) -> list[Any]:  # the same check, as the queue names it since issue 35
        start = time.perf_counter()
        try:
            return list(self._queue.take_back())
        finally:
            self.lost_s += time.perf_counter() - start

    def claim(self, worker: Any) -> Any:
        start = time.perf_counter()
        try:
            return self._queue.claim(worker)
        finally:
            self.claim_s = self.lost_s + time.perf_counter() - start
            self.lost_s = 0.0


def _worker(study_file: str, url: str | None, name: str, epochs: int, kb: int, out: str) -> None:
    """One worker process: ablate's worker loop (``serve``) with trials that train at once:
    a heartbeat, one intermediate value per epoch, and the result."""
    from ablate.execution.worker import serve
    from ablate.queue.claims import opened_queue
    from ablate.queue.workers import WorkerIdentity
    from ablate.study import load_study

    study = load_study(Path(study_file))
    me = WorkerIdentity(name)
    outputs = _outputs(kb, os.getpid()) if kb else None  # made once: the bench's own work
    samples = []
    start = time.perf_counter()
    with opened_queue(study, url, create=False) as queue:
        opened = time.perf_counter() - start
        timed = _Timed(queue)

        def run(claims: list[Any]) -> None:
            (claim,) = claims
            t1 = time.perf_counter()
            queue.heartbeat(claim, {"epoch": 0, "epochs": epochs})
            for e in range(1, epochs + 1):
                queue.report_epoch(claim, e, {"test_loss": 0.5 / e})
            t2 = time.perf_counter()
            result = _result(epochs, outputs)
            t3 = time.perf_counter()
            assert queue.finish(claim, result)
            t4 = time.perf_counter()
            samples.append((claim.number, claim.spec.key, timed.claim_s, t2 - t1, t4 - t3))

        serve(timed, me, lambda event: None, run, idle=min(study.run.heartbeat_seconds, 5.0))
    Path(out).write_text(json.dumps({"name": name, "open_s": opened, "samples": samples,
                                     **_memory()}))  # fmt: skip


def _phase(samples: list[list[Any]], n: int, lo: float, hi: float) -> dict[str, float]:
    """Claim + finish latency of the trials numbered in [lo, hi) of the study, ms."""
    picked = [s[2] + s[4] for s in samples if lo * n <= s[0] < hi * n]
    if not picked:
        return {"median_ms": float("nan"), "p90_ms": float("nan"), "n": 0}
    picked.sort()
    return {
        "median_ms": 1000 * statistics.median(picked),
        "p90_ms": 1000 * picked[min(len(picked) - 1, int(0.9 * len(picked)))],
        "n": len(picked),
    }


def _database(server: str, name: str, drop: bool = False) -> str:
    import sqlalchemy

    admin = sqlalchemy.create_engine(server, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(sqlalchemy.text(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)"))
        if not drop:
            conn.execute(sqlalchemy.text(f"CREATE DATABASE {name}"))
    admin.dispose()
    return server.rsplit("/", 1)[0] + f"/{name}"


def _database_bytes(url: str) -> dict[str, int]:
    """Bytes of each table (with its indexes and TOAST) of the database."""
    import sqlalchemy

    engine = sqlalchemy.create_engine(url)
    with engine.connect() as conn:
        rows = conn.execute(sqlalchemy.text(
            "SELECT relname, pg_total_relation_size(c.oid) FROM pg_class c JOIN pg_namespace n "
            "ON n.oid = c.relnamespace WHERE c.relkind = 'r' AND n.nspname = 'public'"
        )).all()  # fmt: skip
    engine.dispose()
    return {name: int(size) for name, size in rows}


def _storage_bytes(url: str | None, directory: Path) -> int:
    """The storage's size, its saved outputs apart: the journal, or the database's tables."""
    if url is None:
        return (directory / "optuna.journal").stat().st_size
    tables = _database_bytes(url)
    return sum(tables.values()) - tables.get("ablate_outputs", 0)


def _cli(*args: str) -> float:
    start = time.perf_counter()
    proc = subprocess.run([sys.executable, "-m", "ablate", *args], capture_output=True,
                          text=True)  # fmt: skip
    if proc.returncode != 0:
        raise SystemExit(f"ablate {' '.join(args[:1])} failed:\n{proc.stderr[-2000:]}")
    return time.perf_counter() - start


def run_once(server: str | None, n: int, k: int, args: argparse.Namespace, root: Path) -> dict:
    """One study of ``n`` trials worked by ``k`` processes; returns its measurements."""
    from ablate.queue.claims import opened_queue
    from ablate.results import prepare_results_dir
    from ablate.study import parse_study
    from ablate.study.grid import expand_trials

    name = f"scale_{'pg' if server else 'journal'}_{n}_{k}"
    text = STUDY.format(name=name, epochs=args.epochs, replicates=-(-n // CELLS), results=root)
    study = parse_study(text)
    url = _database(server, name) if server else None
    directory = prepare_results_dir(study, url)
    study_file = directory / "study.yaml"
    specs = expand_trials(study)[:n]
    with opened_queue(study, url):
        pass  # the study alone, for the size of its storage without trials
    empty = _storage_bytes(url, directory)
    start = time.perf_counter()
    with opened_queue(study, url) as queue:
        queue.populate(specs)
    populate = time.perf_counter() - start

    ctx = multiprocessing.get_context("spawn")
    outs = [root / f"{name}-w{i}.json" for i in range(k)]
    procs = [
        ctx.Process(target=_worker, args=(str(study_file), url, f"w{i + 1}", args.epochs,
                                          args.outputs_kb, str(outs[i])))
        for i in range(k)
    ]  # fmt: skip
    start = time.perf_counter()
    for p in procs:
        p.start()
    for p in procs:
        p.join()
    wall = time.perf_counter() - start
    if any(p.exitcode for p in procs):
        raise SystemExit(f"a worker failed ({[p.exitcode for p in procs]})")
    workers = [json.loads(o.read_text()) for o in outs]
    samples = [s for w in workers for s in w["samples"]]
    keys = [s[1] for s in samples]

    storage_url = ["--storage", url] if url else []
    status_s = _cli("status", str(directory), *storage_url)
    export_s = _cli("export", str(directory), *storage_url)
    with opened_queue(study, url, create=False) as queue:
        summary = queue.summary()
    outputs_dir = directory / "outputs"
    exported = sum(p.stat().st_size for p in outputs_dir.glob("*.npz"))
    storage_bytes, tables = _storage_bytes(url, directory), {}
    outputs_in_storage = 0
    if server:
        tables = _database_bytes(url)
        outputs_in_storage = tables.get("ablate_outputs", 0)
    else:
        outputs_in_storage = sum(p.stat().st_size for p in (directory / "stored-outputs").glob("*"))
    row = {
        "storage": "postgresql" if server else "journal",
        "trials": n,
        "workers": k,
        "start": _phase(samples, n, 0.0, 0.1),
        "middle": _phase(samples, n, 0.45, 0.55),
        "end": _phase(samples, n, 0.9, 1.0),
        "claim_median_ms": 1000 * statistics.median(s[2] for s in samples),
        "finish_median_ms": 1000 * statistics.median(s[4] for s in samples),
        "epochs_heartbeat_median_ms": 1000 * statistics.median(s[3] for s in samples),
        "queue_seconds": sum(s[2] + s[3] + s[4] for s in samples),
        "wall_seconds": wall,
        "populate_seconds": populate,
        "open_seconds": max(w["open_s"] for w in workers),
        "storage_bytes": storage_bytes,  # outputs apart
        "empty_storage_bytes": empty,
        "bytes_per_trial": (storage_bytes - empty) / n,
        "outputs_in_storage_bytes": outputs_in_storage,
        "outputs_exported_bytes": exported,
        "tables": tables,
        "worker_rss_mib": [round(w["rss_mib"], 1) for w in workers],
        "worker_peak_rss_mib": [round(w["peak_rss_mib"], 1) for w in workers],
        "status_seconds": status_s,
        "export_seconds": export_s,
        "trained": len(keys),
        "duplicates": len(keys) - len(set(keys)) + summary.duplicates,
        "lost": n - summary.complete,
    }
    if server and not args.keep:
        _drop(server, name)
    return row


def _drop(server: str, name: str) -> None:
    """Drop a run's database; autovacuum may hold it a moment (the role cannot end that)."""
    import sqlalchemy

    for attempt in range(10):
        try:
            _database(server, name, drop=True)
            return
        except sqlalchemy.exc.ProgrammingError as err:
            if attempt == 9:
                print(f"could not drop database {name} ({err.orig}); drop it by hand")
                return
            time.sleep(3)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--trials", type=int, nargs="+", default=[1000, 10000])
    parser.add_argument("--workers", type=int, nargs="+", default=[1, 4, 8])
    parser.add_argument("--storage", nargs="+", default=["journal"],
                        help="'journal' and/or PostgreSQL server URLs (a database is created "
                        "on it per run; the role needs CREATEDB)")  # fmt: skip
    parser.add_argument("--outputs-kb", type=int, default=40)
    parser.add_argument("--epochs", type=int, default=3)
    parser.add_argument("--keep", action="store_true", help="keep the databases afterwards")
    parser.add_argument("--out", type=Path, default=HERE / "results")
    args = parser.parse_args()

    rows = []
    with tempfile.TemporaryDirectory(prefix="ablate-scale-") as tmp:
        for storage in args.storage:
            server = None if storage == "journal" else storage
            for n in args.trials:
                for k in args.workers:
                    print(f"{'postgresql' if server else 'journal'}: {n} trials, {k} "
                          "worker(s)...", flush=True)  # fmt: skip
                    root = Path(tmp) / f"{len(rows)}"
                    root.mkdir()
                    rows.append(run_once(server, n, k, args, root))
                    print(json.dumps({k: v for k, v in rows[-1].items() if k != "tables"}),
                          flush=True)  # fmt: skip
    shown = [
        {
            "storage": r["storage"], "n": r["trials"], "k": r["workers"],
            "start": r["start"]["median_ms"], "middle": r["middle"]["median_ms"],
            "end": r["end"]["median_ms"], "queue": r["queue_seconds"],
            "wall": r["wall_seconds"], "kb": r["bytes_per_trial"] / 1000,
            "rss": max(r["worker_rss_mib"]), "status": r["status_seconds"],
            "export": r["export_seconds"], "dup": r["duplicates"], "lost": r["lost"],
        }
        for r in rows
    ]  # fmt: skip
    columns = [
        ("storage", "storage", ""), ("n", "N", ","), ("k", "K", "d"),
        ("start", "start ms", ".1f"), ("middle", "middle ms", ".1f"), ("end", "end ms", ".1f"),
        ("queue", "queue s", ".0f"), ("wall", "wall s", ".0f"), ("kb", "kB/trial", ".2f"),
        ("rss", "worker RSS MiB", ".0f"), ("status", "status s", ".1f"),
        ("export", "export s", ".1f"), ("dup", "dup", "d"), ("lost", "lost", "d"),
    ]  # fmt: skip
    print(table(shown, columns))
    save(args.out, "scale", {"machine": describe_machine(), "args": vars(args) | {
        "out": str(args.out)}, "runs": rows})  # fmt: skip


if __name__ == "__main__":
    main()
