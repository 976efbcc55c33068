"""GPU readings for the benchmarks: utilisation and memory sampled with nvidia-smi."""

from __future__ import annotations

import contextlib
import statistics
import subprocess
import threading
import time
from typing import Any


def _query(args: list[str]) -> list[list[str]]:
    out = subprocess.run(
        ["nvidia-smi", *args, "--format=csv,noheader,nounits"],
        capture_output=True,
        text=True,
        timeout=10,
    ).stdout
    return [[c.strip() for c in line.split(",")] for line in out.splitlines() if line.strip()]


class GpuSampler:
    """Samples GPU utilisation, memory in use and each process's memory every ``every`` s."""

    def __init__(self, every: float = 0.25) -> None:
        self.every = every
        self.samples: list[tuple[float, float, float]] = []  # (time, util %, used MiB)
        self.apps: dict[int, float] = {}  # pid -> highest memory seen, MiB
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, daemon=True)
        self.available = True

    def __enter__(self) -> GpuSampler:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join(timeout=15)

    def _loop(self) -> None:
        while not self._stop.is_set():
            try:
                for util, used in _query(["--query-gpu=utilization.gpu,memory.used"])[:1]:
                    self.samples.append((time.time(), float(util), float(used)))
                for row in _query(["--query-compute-apps=pid,used_memory"]):
                    with contextlib.suppress(ValueError, IndexError):
                        pid, mib = int(row[0]), float(row[1])
                        self.apps[pid] = max(self.apps.get(pid, 0.0), mib)
            except (OSError, subprocess.SubprocessError, ValueError):
                self.available = False
                return
            self._stop.wait(self.every)

    def window(self, start: float, end: float) -> dict[str, Any]:
        """Mean and peak utilisation and peak memory in use between two ``time.time()``s."""
        inside = [s for s in self.samples if start <= s[0] <= end]
        if not inside:
            return {"util_mean": None, "util_max": None, "used_mib_max": None, "samples": 0}
        return {
            "util_mean": statistics.fmean(s[1] for s in inside),
            "util_max": max(s[1] for s in inside),
            "used_mib_max": max(s[2] for s in inside),
            "samples": len(inside),
        }
