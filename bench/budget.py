"""The resource budget: loading the full MNIST, and one worker's peak memory on it.

    ABLATE_MNIST=/path/to/mnist.npz python bench/budget.py [--epochs 1]

1. Loads the full MNIST (60,000 + 10,000 images) the way a worker does, in a fresh process,
   four times: the first may read from disk, the others show the load "after the first time"
   (files in the OS cache). Budget: under 2 seconds.
2. Trains one trial of the reference study's heaviest cell (every optional layer on) on the
   full 60,000 training images in a fresh process, as a worker would, and reports its peak
   resident memory. Budget: under 3 GiB.
Results go to bench/results/budget-<date>.json.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))

_LOAD = """
import json, resource, time
t = time.perf_counter()
from ablate.study.settings import DataSettings
from ablate.data import load_dataset
ds = load_dataset(DataSettings(dataset="mnist"))
print(json.dumps({"seconds": time.perf_counter() - t, "train": len(ds.x_train),
                  "test": len(ds.x_test)}))
"""

_TRAIN = """
import json, resource, sys, time
from ablate.training import backend
from ablate.study import load_study, parse_study
from ablate.study.grid import Cell, TrialSpec
from ablate.execution.planning import plan_workers
study = parse_study(open(sys.argv[1]).read())
slot = plan_workers(study, workers=1, remaining=1)[0]
backend.configure_process(threads=slot.threads, gpu=slot.gpu)
backend.import_keras()
from ablate.data import load_dataset
from ablate.training.trial import train_trial
data = load_dataset(study.data)
cell = Cell(0, (("batch_norm", True), ("dropout", True), ("spatial_attention", True),
                ("activation", "elu")))
result = train_trial(study, TrialSpec(cell, 0, 768), data)
print(json.dumps({"status": result.status, "images_per_second": result.images_per_second,
                  "seconds": result.seconds,
                  "peak_rss_mib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024}))
"""


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--epochs", type=int, default=1)
    parser.add_argument("--out", type=Path, default=HERE / "results")
    args = parser.parse_args()
    if not os.environ.get("ABLATE_MNIST"):
        raise SystemExit("set ABLATE_MNIST to the full mnist.npz (or a folder of IDX files)")
    from bench._machine import describe_machine, save

    loads = []
    for i in range(4):
        proc = subprocess.run([sys.executable, "-c", _LOAD], capture_output=True, text=True)
        if proc.returncode:
            raise SystemExit(proc.stderr[-2000:])
        loads.append(json.loads(proc.stdout))
        print(f"load {i + 1}: {loads[-1]['seconds']:.2f} s "
              f"({loads[-1]['train']:,} + {loads[-1]['test']:,} images)", flush=True)  # fmt: skip
    study = HERE / "out" / "budget.yaml"
    study.parent.mkdir(exist_ok=True)
    text = (HERE.parent / "studies" / "reference.yaml").read_text()
    study.write_text(text.replace("epochs: 25", f"epochs: {args.epochs}"))
    print(f"training one trial on the full MNIST ({args.epochs} epoch(s))...", flush=True)
    proc = subprocess.run([sys.executable, "-c", _TRAIN, str(study)], capture_output=True,
                          text=True)  # fmt: skip
    if proc.returncode:
        raise SystemExit(proc.stderr[-3000:])
    trial = json.loads(proc.stdout.strip().splitlines()[-1])
    warm = sorted(x["seconds"] for x in loads[1:])[len(loads[1:]) // 2]
    print(f"\nfull MNIST load after the first time: {warm:.2f} s (budget 2 s)")
    print(f"one worker, full MNIST, heaviest cell: peak {trial['peak_rss_mib']:,.0f} MiB "
          f"(budget 3,072 MiB); {trial['images_per_second']:.0f} img/s, "
          f"{trial['seconds']:.0f} s")  # fmt: skip
    path = save(args.out, "budget", {"machine": describe_machine(), "loads": loads,
                                     "warm_load_seconds": warm, "trial": trial})  # fmt: skip
    print(f"saved {path}")


if __name__ == "__main__":
    main()
