"""Wall time and throughput of a whole study for 1, 2, 4... worker processes, side by side.

    python bench/workers.py [--study studies/quick.yaml] [--workers 1 2 4] [--repeat 1]

Each run is a fresh `ablate run STUDY --workers N --workers-per-gpu N` in its own process and
results folder (so N workers share one GPU where there is one: set KERAS_BACKEND=jax there).
Runs are interleaved across repetitions (1 2 4 1 2 4 ...). Reports wall time, aggregate
training throughput (training images of all trials / wall time), the median per-trial
training speed, and the speed-up over the first worker count; where nvidia-smi answers, the
mean GPU utilisation over the run and the most GPU memory one worker process held (on one
GPU: `--workers-per-gpu` packs the workers there; start the CUDA MPS daemon,
`nvidia-cuda-mps-control -d`, to let their kernels run at the same time). Results go to
bench/results/workers-<date>.json with the machine, backend and versions.
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pandas as pd

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))

from bench._gpu import GpuSampler  # noqa: E402
from bench._machine import describe_machine, save, study_copy, table  # noqa: E402


def run_once(study_file: Path, workers: int, root: Path, tag: str) -> dict[str, float]:
    """One complete study run with ``workers`` processes; returns its measurements."""
    path = study_copy(study_file, root, f"w{workers}-{tag}")
    start = time.perf_counter()
    with GpuSampler() as gpu:
        proc = subprocess.run(
            [sys.executable, "-m", "ablate", "run", str(path), "--workers", str(workers),
             "--workers-per-gpu", str(workers)],
            capture_output=True, text=True,
        )  # fmt: skip
    wall = time.perf_counter() - start
    usage = gpu.window(0.0, float("inf"))
    if proc.returncode != 0:
        raise SystemExit(f"ablate run failed ({proc.returncode}):\n{proc.stderr[-3000:]}")
    trials = pd.read_parquet(root / path.stem / "trials.parquet")
    images = float((trials["images_per_second"] * trials["train_seconds"]).sum())
    return {
        "workers": workers,
        "wall_seconds": wall,
        "trials": len(trials),
        "throughput": images / wall,
        "trial_img_s": float(trials["images_per_second"].median()),
        "trial_seconds": float(trials["seconds"].median()),
        "gpu_util_mean": usage["util_mean"],
        "gpu_mib_per_worker": max(gpu.apps.values()) if gpu.apps else None,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--study", type=Path, default=HERE.parent / "studies" / "quick.yaml")
    parser.add_argument("--workers", type=int, nargs="+", default=[1, 2, 4])
    parser.add_argument("--repeat", type=int, default=1)
    parser.add_argument("--out", type=Path, default=HERE / "results")
    args = parser.parse_args()

    runs: list[dict[str, float]] = []
    with tempfile.TemporaryDirectory(prefix="ablate-bench-") as tmp:
        for rep in range(args.repeat):
            for n in args.workers:
                print(f"repetition {rep + 1}/{args.repeat}: {n} worker(s)...", flush=True)
                runs.append(run_once(args.study, n, Path(tmp), f"r{rep}"))
    rows = []
    for n in args.workers:
        mine = [r for r in runs if r["workers"] == n]
        rows.append(
            {
                "workers": n,
                "wall_seconds": statistics.median(r["wall_seconds"] for r in mine),
                "throughput": statistics.median(r["throughput"] for r in mine),
                "trial_img_s": statistics.median(r["trial_img_s"] for r in mine),
                "trial_seconds": statistics.median(r["trial_seconds"] for r in mine),
                "gpu_util_mean": mine[0]["gpu_util_mean"],
                "gpu_mib_per_worker": mine[0]["gpu_mib_per_worker"],
            }
        )
    base = rows[0]["wall_seconds"]
    for row in rows:
        row["speedup"] = base / row["wall_seconds"]
    machine = describe_machine()
    print(f"\n{args.study.name} on {machine['cpu']} ({machine['cores']} cores), "
          f"{machine['gpus'] or 'no GPU'}, backend {machine['backend']}")  # fmt: skip
    print(
        table(
            rows,
            [
                ("workers", "workers", "d"),
                ("wall_seconds", "wall s", ".1f"),
                ("speedup", f"vs {rows[0]['workers']}", ".2f"),
                ("throughput", "study img/s", ",.0f"),
                ("trial_img_s", "trial img/s", ",.0f"),
                ("trial_seconds", "trial s", ".1f"),
                ("gpu_util_mean", "GPU util %", ".0f"),
                ("gpu_mib_per_worker", "GPU MiB/worker", ",.0f"),
            ],
        )
    )
    path = save(
        args.out,
        "workers",
        {"study": str(args.study), "repeat": args.repeat, "machine": machine,
         "summary": rows, "runs": runs},
    )  # fmt: skip
    print(f"\nsaved {path}")


if __name__ == "__main__":
    main()
