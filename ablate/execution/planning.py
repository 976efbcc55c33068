"""Planning worker processes for this machine: how many, which GPU each, how many threads.

Without GPUs, one single-threaded worker per core (two threads each on machines with more
than 8 cores), as measured fastest for small models on small CPUs; with GPUs, groups of
``workers_per_gpu`` workers share each GPU, and the CPU cores are divided among all of them.
Never more workers than trials left to run.
"""

from __future__ import annotations

from dataclasses import dataclass

from ablate.study.settings import Study
from ablate.training import backend


@dataclass(frozen=True)
class WorkerSlot:
    """Where one worker process runs: its name, its GPU ("" for none) and its thread count."""

    name: str
    gpu: str
    threads: int


def plan_workers(
    study: Study,
    *,
    workers: int | None = None,
    workers_per_gpu: int | None = None,
    remaining: int,
    gpus: int | None = None,
    cores: int | None = None,
) -> list[WorkerSlot]:
    """Worker processes for this machine (see the module); ``gpus`` and ``cores`` default
    to what this machine has."""
    gpus = backend.gpu_count() if gpus is None else gpus
    cores = backend.cpu_count() if cores is None else cores
    per_gpu = workers_per_gpu or study.run.workers_per_gpu
    n = workers or study.run.workers
    if gpus:
        n = n or gpus * per_gpu
    else:
        threads = study.run.threads_per_worker or (1 if cores <= 8 else 2)
        n = n or max(1, cores // threads)
    n = max(1, min(n, remaining))
    threads = study.run.threads_per_worker or max(1, cores // n)
    return [
        WorkerSlot(
            name=f"w{i + 1}",
            gpu=str((i // per_gpu) % gpus) if gpus else "",
            threads=threads,
        )
        for i in range(n)
    ]


def describe_slots(slots: list[WorkerSlot]) -> str:
    """The workers' placement in a few words, for progress and the dry run."""
    gpus = sorted({s.gpu for s in slots if s.gpu})
    if gpus:
        return f"GPU {', '.join(gpus)}; {slots[0].threads} CPU threads each"
    return f"CPU, {slots[0].threads} thread{'s' if slots[0].threads > 1 else ''} each"
