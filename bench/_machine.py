"""What a benchmark ran on: machine, backend and library versions, recorded with every result."""

from __future__ import annotations

import contextlib
import datetime as dt
import json
import os
import platform
import socket
import subprocess
from pathlib import Path
from typing import Any

from ablate.training import backend


def describe_machine() -> dict[str, Any]:
    cpu = platform.processor() or ""
    with contextlib.suppress(OSError):
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    gpus = []
    with contextlib.suppress(OSError, subprocess.SubprocessError):
        out = subprocess.run(["nvidia-smi", "-L"], capture_output=True, text=True, timeout=20)
        gpus = [line for line in out.stdout.splitlines() if line.startswith("GPU ")]
    mem_gib = None
    with contextlib.suppress(OSError, ValueError):
        kib = next(
            int(line.split()[1])
            for line in Path("/proc/meminfo").read_text().splitlines()
            if line.startswith("MemTotal")
        )
        mem_gib = round(kib / 2**20, 1)
    return {
        "host": socket.gethostname(),
        "cpu": cpu,
        "cores": backend.cpu_count(),
        "memory_gib": mem_gib,
        "gpus": gpus,
        "os": platform.platform(),
        "backend": os.environ.get("KERAS_BACKEND", "tensorflow"),
        "versions": backend.versions(),
        "date": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
    }


def study_copy(study_file: Path, root: Path, suffix: str) -> Path:
    """A copy of a study file named ``<name>-<suffix>`` with its results under ``root``."""
    import yaml

    spec = yaml.safe_load(study_file.read_text())
    spec["name"] = f"{spec['name']}-{suffix}"
    spec["results"] = str(root)
    path = root / f"{spec['name']}.yaml"
    path.write_text(yaml.safe_dump(spec, sort_keys=False))
    return path


def save(results_dir: Path, name: str, payload: dict[str, Any]) -> Path:
    """Write a benchmark's JSON to bench/results/<name>-<date>.json; returns the path."""
    results_dir.mkdir(parents=True, exist_ok=True)
    stamp = dt.datetime.now(dt.UTC).strftime("%Y%m%d-%H%M%S")
    path = results_dir / f"{name}-{stamp}.json"
    path.write_text(json.dumps(payload, indent=2, default=str) + "\n")
    return path


def table(rows: list[dict[str, Any]], columns: list[tuple[str, str, str]]) -> str:
    """A plain-text table: columns are (key, header, format)."""
    heads = [h for _, h, _ in columns]
    cells = [
        [format(r[k], f) if r.get(k) is not None else "–" for k, _, f in columns] for r in rows
    ]
    widths = [max(len(h), *(len(c[i]) for c in cells)) for i, h in enumerate(heads)]
    line = "  ".join(h.rjust(w) for h, w in zip(heads, widths, strict=True))
    body = ["  ".join(c.rjust(w) for c, w in zip(row, widths, strict=True)) for row in cells]
    return "\n".join([line, "-" * len(line), *body])


def epoch_clock(keras: Any, times: list[float]) -> Any:
    """A Keras callback that appends every epoch's wall seconds to ``times``."""
    import time

    class EpochClock(keras.callbacks.Callback):
        def on_epoch_begin(self, epoch: int, logs: Any = None) -> None:
            self.start = time.perf_counter()

        def on_epoch_end(self, epoch: int, logs: Any = None) -> None:
            times.append(time.perf_counter() - self.start)

    return EpochClock()
