"""A whole study: the plain-Keras baseline loop against `ablate run`, side by side.

    python bench/study.py [--repeat 3] [--studies quick larger]

For each study and repetition, interleaved (baseline, ablate, baseline, ablate, ...):

- **baseline**: one Python process doing what a user would otherwise write: for every cell,
  build the model, compile it, ``model.fit(x, x, batch_size, epochs)`` on NumPy arrays and
  ``model.evaluate``, one cell after another (TensorFlow using every core);
- **ablate**: ``ablate run STUDY`` with its default settings for this machine (workers and
  threads chosen automatically), in a fresh results folder.

Studies: ``quick`` is studies/quick.yaml; ``larger`` is the same 32 cells with the reference
model (units [35, 25, 15, 5], depth 3) on 1,024 training digits for 2 epochs. Reported: wall
time, aggregate training throughput (training images of the study / wall time), the ratios,
and, from the larger study, a projection of the full reference study (32 cells x 25 epochs x
60,000 images) on this machine. Results go to bench/results/study-<date>.json.
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import yaml

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
sys.path.insert(0, str(ROOT))

from bench._machine import describe_machine, save, study_copy, table  # noqa: E402

_BASELINE = r"""
import itertools, json, os, sys, time
start = time.perf_counter()
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
import keras
from ablate.study import load_study
from ablate.data import load_dataset
study = load_study(sys.argv[1])
data = load_dataset(study.data)            # the same images ablate trains on
x, xt = data.x_train, data.x_test
t = study.training
for levels in itertools.product(*(f.levels for f in study.factors)):
    cell = dict(zip(study.factor_names, levels))
    keras.utils.set_random_seed(study.seed)
    kwargs = {**study.model.builder_kwargs(), **cell}
    model = study.model.spec.build(input_shape=data.input_shape, **kwargs)
    lr = keras.optimizers.schedules.InverseTimeDecay(t.learning_rate, 1, t.decay_rate())
    model.compile(optimizer=keras.optimizers.Adam(lr), loss="binary_crossentropy")
    model.fit(x, x, batch_size=t.batch_size, epochs=t.epochs, verbose=0)
    model.evaluate(xt, xt, verbose=0)
print(json.dumps({"wall_seconds": time.perf_counter() - start}))
"""


def _studies(root: Path) -> dict[str, tuple[Path, dict[str, Any]]]:
    """Each study's file under ``root`` and its parsed spec."""
    quick = yaml.safe_load((ROOT / "studies" / "quick.yaml").read_text())
    larger = {
        **quick,
        "name": "larger",
        "model": {**quick["model"], "units": [35, 25, 15, 5], "depth": 3},
        "training": {**quick["training"], "batch_size": 64},
        "data": {"dataset": "mnist-sample", "train_size": 1024, "test_size": 500},
    }
    studies = {}
    for name, spec in (("quick", quick), ("larger", larger)):
        path = root / f"{name}.yaml"
        path.write_text(yaml.safe_dump(spec, sort_keys=False))
        studies[name] = (path, spec)
    return studies


def _baseline(study_file: Path) -> dict[str, float]:
    start = time.perf_counter()
    proc = subprocess.run([sys.executable, "-c", _BASELINE, str(study_file)],
                          capture_output=True, text=True, cwd=ROOT)  # fmt: skip
    if proc.returncode != 0:
        raise SystemExit(f"baseline failed:\n{proc.stderr[-3000:]}")
    return {"wall_seconds": time.perf_counter() - start}


def _ablate(study_file: Path, results: Path, tag: str) -> dict[str, Any]:
    path = study_copy(study_file, results, tag)
    name = path.stem
    start = time.perf_counter()
    proc = subprocess.run([sys.executable, "-m", "ablate", "run", str(path)],
                          capture_output=True, text=True, cwd=ROOT)  # fmt: skip
    wall = time.perf_counter() - start
    if proc.returncode != 0:
        raise SystemExit(f"ablate run failed:\n{proc.stderr[-3000:]}")
    import pandas as pd

    trials = pd.read_parquet(results / name / "trials.parquet")
    epochs = pd.read_parquet(results / name / "epochs.parquet")
    workers = next(
        (line for line in proc.stderr.splitlines() if "starting" in line and "worker" in line), ""
    )
    return {"wall_seconds": wall, "trials": trials, "epochs": epochs, "workers": workers}


def _projection(run: dict[str, Any], spec: dict[str, Any]) -> dict[str, float]:
    """Hours for the full reference study, from the larger study's steady per-cell speed.

    Per cell: 25 epochs of 60,000 images at the cell's steady training speed (its last epoch),
    plus 25 evaluations of 10,000 test images at its measured evaluation speed, plus its build;
    divided by the concurrency ablate achieved (trial seconds per wall second).
    """
    trials, epochs = run["trials"], run["epochs"]
    concurrency = trials["seconds"].sum() / run["wall_seconds"]
    cells = len(trials)
    trials = trials[trials["status"] == "complete"]  # a diverged trial stopped early
    last = epochs.sort_values("epoch").groupby("trial_key").last()  # each trial's last epoch
    train_size = spec["data"]["train_size"]
    test_size = spec["data"]["test_size"]
    total = 0.0
    for _, t in trials.iterrows():
        e = last.loc[t["trial_key"]]
        steady_ips = train_size / e["train_seconds"]
        eval_ips = test_size / e["eval_seconds"]
        total += 25 * 60000 / steady_ips + 25 * 10000 / eval_ips + t["build_seconds"]
    total *= cells / len(trials)  # as if every cell had completed
    return {"hours": total / concurrency / 3600, "concurrency": concurrency,
            "steady_ips_median": float(
                (train_size / last["train_seconds"]).median())}  # fmt: skip


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--studies", nargs="+", default=["quick", "larger"],
                        choices=["quick", "larger"])  # fmt: skip
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--out", type=Path, default=HERE / "results")
    args = parser.parse_args()
    runs: list[dict[str, Any]] = []
    projection = None
    with tempfile.TemporaryDirectory(prefix="ablate-study-bench-") as tmp:
        root = Path(tmp)
        studies = _studies(root)
        for rep in range(args.repeat):
            for name in args.studies:
                study_file, spec = studies[name]
                images = 32 * spec["training"]["epochs"] * spec["data"]["train_size"]
                print(f"repetition {rep + 1}/{args.repeat}: {name}, baseline...", flush=True)
                base = _baseline(study_file)
                runs.append({"study": name, "path": "baseline", "repetition": rep,
                             "wall_seconds": base["wall_seconds"],
                             "throughput": images / base["wall_seconds"]})  # fmt: skip
                print(f"repetition {rep + 1}/{args.repeat}: {name}, ablate...", flush=True)
                abl = _ablate(study_file, root, f"r{rep}")
                runs.append({"study": name, "path": "ablate", "repetition": rep,
                             "wall_seconds": abl["wall_seconds"],
                             "throughput": images / abl["wall_seconds"],
                             "workers": abl["workers"]})  # fmt: skip
                if name == "larger" and projection is None:
                    projection = _projection(abl, spec)
    rows = []
    for name in args.studies:
        med = {
            (p, k): statistics.median(r[k] for r in runs if r["study"] == name and r["path"] == p)
            for p in ("baseline", "ablate")
            for k in ("wall_seconds", "throughput")
        }
        rows.append({
            "study": name,
            "base_wall": med["baseline", "wall_seconds"],
            "abl_wall": med["ablate", "wall_seconds"],
            "speedup": med["baseline", "wall_seconds"] / med["ablate", "wall_seconds"],
            "base_ips": med["baseline", "throughput"],
            "abl_ips": med["ablate", "throughput"],
            "ratio": med["ablate", "throughput"] / med["baseline", "throughput"],
        })  # fmt: skip
    machine = describe_machine()
    workers = next((r["workers"] for r in runs if r.get("workers")), "")
    print(f"\n{machine['cpu']} ({machine['cores']} cores), {machine['gpus'] or 'no GPU'}, backend "
          f"{machine['backend']}; medians of {args.repeat} interleaved repetitions")  # fmt: skip
    print(f"ablate's automatic settings: {workers.split('starting ')[-1]}")
    print(
        table(
            rows,
            [
                ("study", "study", "s"),
                ("base_wall", "baseline wall s", ".1f"),
                ("abl_wall", "ablate wall s", ".1f"),
                ("speedup", "faster by", ".2f"),
                ("base_ips", "baseline img/s", ",.0f"),
                ("abl_ips", "ablate img/s", ",.0f"),
                ("ratio", "throughput ratio", ".2f"),
            ],
        )
    )
    if projection:
        print(
            f"\nProjected full reference study (32 x 25 epochs x 60,000 images) on this machine "
            f"with ablate: {projection['hours']:.0f} hours (steady median "
            f"{projection['steady_ips_median']:.0f} img/s per trial, concurrency "
            f"{projection['concurrency']:.2f})"
        )
    payload = {"settings": {**vars(args), "out": str(args.out)}, "machine": machine,
               "summary": rows, "projection": projection, "runs": runs}  # fmt: skip
    print(f"\nsaved {save(args.out, 'study', json.loads(json.dumps(payload, default=str)))}")


if __name__ == "__main__":
    main()
