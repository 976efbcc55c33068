"""Chaos: a study of a few hundred fast trials run while an injector breaks things at random.

    sudo python bench/chaos.py [--trials 300] [--window 60] [--backends journal postgresql]

For each storage, a study of ``--trials`` trials of a fraction of a second each
(bench/chaos_trainer.py) runs with ``ablate run --workers 4``, first undisturbed (the baseline
wall time), then while an injector, for ``--window`` seconds, does one of these every 0.5 to
2.5 s at random:

- ``kill``: SIGKILL to a worker in the middle of whatever it does;
- ``stop``: SIGSTOP to a worker, continued 1 to 4 s later -- or, one time in three, never (its
  coordinator must notice the silence and end it);
- ``db-restart``: the PostgreSQL server restarted (``pg_ctl restart -m fast``);
- ``disk-full``: the results folder's disk (a 48 MB tmpfs) filled to the last byte, held for 2
  to 5 s, then freed.

A run that stops on a fault the user must fix (a full disk) is run again once the disk has
room, as its message says; every rerun is counted. Afterwards every trial must be complete
exactly once, in storage and in trials.parquet. The figures (faults injected by kind, reruns,
trials retried and why, wall time against the undisturbed run) go to
bench/results/chaos-<date>.json. Needs root (the tmpfs, and a PostgreSQL server of its own
started as the postgres user).
"""

from __future__ import annotations

import argparse
import contextlib
import os
import random
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from collections import Counter
from pathlib import Path
from typing import Any

import pandas as pd

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
sys.path.insert(0, str(ROOT))

from bench._machine import describe_machine, save  # noqa: E402

STUDY = """\
name: chaos
trainer: bench.chaos_trainer:quick
responses: {{score: max}}
factors: {{wide: [false, true], deep: [false, true]}}
replicates: {replicates}
results: {results}
run: {{heartbeat_seconds: 0.5, retries: 3, lost_retries: 50, stall_timeout: 20}}
"""


class Postgres:
    """A PostgreSQL server of the benchmark's own, on a free port, which it may restart."""

    def __init__(self, root: Path) -> None:
        self.bin = sorted(Path("/usr/lib/postgresql").glob("*/bin/initdb"))[-1].parent
        root.mkdir(parents=True, exist_ok=True)
        self.data, self.root = root / "data", root
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            self.port = s.getsockname()[1]
        shutil.chown(root, "postgres", "postgres")
        self._pg("initdb", "-D", str(self.data), "-U", "ablate", "--auth=trust", "--no-sync")
        self.url = f"postgresql://ablate@127.0.0.1:{self.port}/postgres"
        self.start()

    def _pg(self, tool: str, *args: str) -> None:
        subprocess.run(["runuser", "-u", "postgres", "--", str(self.bin / tool), *args],
                       check=True, capture_output=True, timeout=120)  # fmt: skip

    def start(self) -> None:
        options = f"-p {self.port} -k {self.root} -c listen_addresses=127.0.0.1 -c fsync=off"
        self._pg("pg_ctl", "-D", str(self.data), "-o", options, "-l", str(self.root / "log"),
                 "-w", "start")  # fmt: skip

    def restart(self) -> None:
        """Stop (ending every connection) and start again: what an upgrade or a crash-restart
        does to the workers' sessions."""
        self._pg("pg_ctl", "-D", str(self.data), "-m", "fast", "-w", "stop")
        self.start()

    def close(self) -> None:
        with contextlib.suppress(Exception):
            self._pg("pg_ctl", "-D", str(self.data), "-m", "immediate", "-w", "stop")


class SmallDisk:
    """A 48 MB tmpfs for the results folder, which the injector fills and frees."""

    def __init__(self, mount: Path) -> None:
        mount.mkdir(parents=True, exist_ok=True)
        subprocess.run(["mount", "-t", "tmpfs", "-o", "size=48m", "tmpfs", str(mount)],
                       check=True, capture_output=True)  # fmt: skip
        self.mount = mount
        self.filler = mount / "filler"
        self.full = threading.Event()

    def fill(self) -> None:
        self.full.set()
        with contextlib.suppress(OSError), open(self.filler, "wb") as f:
            while True:
                f.write(b"\0" * (1 << 20))
                f.flush()

    def free(self) -> None:
        self.filler.unlink(missing_ok=True)
        self.full.clear()

    def close(self) -> None:
        subprocess.run(["umount", "-l", str(self.mount)], capture_output=True)


def _workers(coordinator: int) -> list[int]:
    found = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            ppid = int(stat.read_text().rsplit(")", 1)[1].split()[1])
            cmd = (stat.parent / "cmdline").read_bytes().decode(errors="replace")
        except (OSError, ValueError, IndexError):
            continue
        if ppid == coordinator and "spawn_main" in cmd and "resource_tracker" not in cmd:
            found.append(int(stat.parent.name))
    return found


def _continue(pid: int) -> None:
    with contextlib.suppress(ProcessLookupError):  # ended meanwhile by its coordinator
        os.kill(pid, signal.SIGCONT)


class Injector(threading.Thread):
    """For ``window`` seconds, one fault at random every 0.5 to 2.5 s (see the module)."""

    def __init__(self, window: float, db: Postgres | None, disk: SmallDisk, seed: int) -> None:
        super().__init__(daemon=True)
        self.window, self.db, self.disk = window, db, disk
        self.rng = random.Random(seed)
        self.coordinator: int | None = None  # the running `ablate run`
        self.faults: Counter[str] = Counter()
        self.stopped: list[int] = []
        self.over = threading.Event()  # the study completed: no more faults

    def run(self) -> None:
        end = time.monotonic() + self.window
        kinds = ["kill", "stop", "disk-full"] + (["db-restart"] if self.db else [])
        while time.monotonic() < end and not self.over.wait(self.rng.uniform(0.5, 2.5)):
            kind = self.rng.choice(kinds)
            if self._inject(kind):
                self.faults[kind] += 1
        for pid in self.stopped:  # nothing stays stopped after the window
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGCONT)

    def _inject(self, kind: str) -> bool:
        victims = _workers(self.coordinator) if self.coordinator else []
        if kind in ("kill", "stop") and not victims:
            return False
        if kind == "kill":
            os.kill(self.rng.choice(victims), signal.SIGKILL)
        elif kind == "stop":
            pid = self.rng.choice(victims)
            os.kill(pid, signal.SIGSTOP)
            if self.rng.random() < 2 / 3:
                threading.Timer(self.rng.uniform(1, 4), _continue, (pid,)).start()
            else:
                self.stopped.append(pid)
        elif kind == "db-restart":
            assert self.db is not None
            self.db.restart()
        else:
            self.disk.fill()
            threading.Timer(self.rng.uniform(2, 5), self.disk.free).start()
        return True


def run_study(study: Path, url: str | None, injector: Injector | None) -> dict[str, Any]:
    """``ablate run`` until the study is complete, rerun after a stop a user would fix."""
    env = {**os.environ, "PYTHONPATH": str(ROOT), "ABLATE_STORAGE_TIMEOUT": "120",
           **({"ABLATE_STORAGE": url} if url else {})}  # fmt: skip
    start, reruns, messages = time.monotonic(), 0, []
    if injector is not None:
        injector.start()
    while True:
        proc = subprocess.Popen([sys.executable, "-m", "ablate", "run", str(study), "--workers",
                                 "4"], env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                text=True)  # fmt: skip
        if injector is not None:
            injector.coordinator = proc.pid
        out, err = proc.communicate(timeout=1800)
        if proc.returncode == 0:
            break
        reruns += 1
        messages.append(err.strip().splitlines()[-1] if err.strip() else f"exit {proc.returncode}")
        if injector is not None:
            while injector.disk.full.is_set():
                time.sleep(0.2)
        if reruns > 30:
            raise RuntimeError(f"the study never completed: {messages[-3:]}")
    if injector is not None:
        injector.over.set()
        injector.join()
    return {"seconds": round(time.monotonic() - start, 1), "reruns": reruns,
            "rerun_messages": messages[:10], "last_line": out.strip().splitlines()[-2]}  # fmt: skip


def check(study: Path, url: str | None) -> dict[str, Any]:
    """Every trial complete exactly once, in storage and in trials.parquet."""
    from ablate.queue.claims import opened_queue
    from ablate.study import load_study

    loaded = load_study(study)
    with opened_queue(loaded, url, create=False) as queue:
        summary = queue.summary()
        outcomes = Counter(e.outcome or e.state for e in queue.store.entries())
    trials = pd.read_parquet(loaded.results_dir / "trials.parquet")
    assert summary.complete == summary.total == len(trials), (summary, len(trials))
    assert summary.duplicates == 0 and trials["trial_key"].is_unique
    assert (trials["status"] == "complete").all()
    return {"complete": int(summary.complete), "retried": int((trials["attempts"] > 1).sum()),
            "attempts": dict(outcomes)}  # fmt: skip


def one_backend(backend: str, trials: int, window: float, root: Path) -> dict[str, Any]:
    db = Postgres(root / "pg") if backend == "postgresql" else None
    disk = SmallDisk(root / "disk")
    try:
        found: dict[str, Any] = {"backend": backend}
        for phase, inject in (("undisturbed", False), ("chaos", True)):
            folder = disk.mount / phase
            url = None
            if db is not None:
                url = db.url.rsplit("/", 1)[0] + f"/{phase}"
                subprocess.run(["runuser", "-u", "postgres", "--", str(db.bin / "createdb"),
                                "-h", "127.0.0.1", "-p", str(db.port), "-U", "ablate", phase],
                               check=True, capture_output=True)  # fmt: skip
            study = root / f"{backend}-{phase}.yaml"
            study.write_text(STUDY.format(replicates=trials // 4, results=folder))
            injector = Injector(window, db, disk, seed=7) if inject else None
            ran = run_study(study, url, injector)
            found[phase] = {**ran, **check(study, url)}
            if injector is not None:
                found[phase]["faults"] = dict(injector.faults)
        found["slowdown"] = round(found["chaos"]["seconds"] / found["undisturbed"]["seconds"], 2)
        return found
    finally:
        disk.close()
        if db is not None:
            db.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--trials", type=int, default=300)
    parser.add_argument("--window", type=float, default=60.0)
    parser.add_argument("--backends", nargs="+", default=["journal", "postgresql"])
    args = parser.parse_args()
    if os.geteuid() != 0:
        raise SystemExit("chaos needs root: a tmpfs to fill, a PostgreSQL server to restart")
    runs = []
    for backend in args.backends:
        with tempfile.TemporaryDirectory(prefix="ablate-chaos-") as tmp:
            root = Path(tmp)
            root.chmod(0o755)
            runs.append(one_backend(backend, args.trials, args.window, root))
        print(runs[-1], flush=True)
    payload = {"machine": describe_machine(), "trials": args.trials, "window": args.window,
               "runs": runs}  # fmt: skip
    print(save(HERE / "results", "chaos", payload))


if __name__ == "__main__":
    main()
