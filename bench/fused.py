"""Fused training's throughput against plain ``fit``, side by side in one run (JAX).

    KERAS_BACKEND=jax python bench/fused.py [--groups 8 16 32] [--train 60000] [--epochs 2]
                                            [--study studies/reference.yaml]

On the study's model (default: the reference VAE, its batch size and steps per call) and the
first ``--train`` training images of its data (full MNIST where ``ABLATE_MNIST`` names a copy
of mnist.npz), one after another in this process:

- **plain fit**: what a user writes -- build one cell's model, compile it with Adam and the
  task's loss, ``model.fit(x, x, batch_size, epochs)`` on NumPy arrays (Keras's defaults);
- **ablate, one trial**: :func:`ablate.training.trial.train_trial`, as a worker runs it;
- **fused replicates** (K trials of one cell) and **fused mixed cells** (K trials cycling over
  the grid's cells), for each K of ``--groups``: :func:`ablate.training.fused.train_group`.

Throughput is training images per second summed over the trials trained at once, from the
epochs after the first (which compiles); the ratio is to plain fit. Evaluation after every
epoch is off for all of them (a training benchmark). Results go to
bench/results/fused-<date>.json with the device, driver, backend and versions. On the 2-core
CPU machine ``--train 512 --epochs 2 --groups 2`` checks that it works; fusing is for GPUs.
"""

from __future__ import annotations

import argparse
import dataclasses
import os
import sys
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))

from bench._machine import describe_machine, epoch_clock, save  # noqa: E402


def main() -> None:
    args = _arguments()
    os.environ.setdefault("KERAS_BACKEND", "jax")
    from ablate.data import load_dataset
    from ablate.study.grid import TrialSpec, cells
    from ablate.study.parse import load_study

    study = load_study(args.study)
    training = dataclasses.replace(study.training, epochs=args.epochs, validate_each_epoch=False)
    data = dataclasses.replace(study.data, train_size=args.train, test_size=args.test)
    study = dataclasses.replace(study, training=training, data=data)
    dataset = load_dataset(study.data, study.seed)
    grid = cells(study)
    rows = [
        _plain_fit(study, dataset, grid[0]),
        _one_trial(study, dataset, TrialSpec(grid[0], 0, 1)),
    ]
    for k in args.groups:
        replicates = [TrialSpec(grid[0], r, 1 + r) for r in range(k)]
        mixed = [TrialSpec(grid[i % len(grid)], i // len(grid), 1 + i) for i in range(k)]
        rows.append(_fused(study, dataset, replicates, f"fused replicates K={k}"))
        rows.append(_fused(study, dataset, mixed, f"fused mixed cells K={k}"))
    base = rows[0]["images_per_second"]
    for row in rows:
        row["ratio_to_plain_fit"] = row["images_per_second"] / base if base else None
        print(f"{row['path']:<28} {row['images_per_second']:>10.0f} images/s  "
              f"x{row['ratio_to_plain_fit']:.2f}", flush=True)  # fmt: skip
    path = save(HERE / "results", "fused", {"machine": describe_machine(), "args": vars(args) | {
        "study": str(args.study)}, "rows": rows})  # fmt: skip
    print(f"written {path}")


def _arguments() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--groups", type=int, nargs="+", default=[8, 16, 32])
    parser.add_argument("--train", type=int, default=60000)
    parser.add_argument("--test", type=int, default=1000)
    parser.add_argument("--epochs", type=int, default=2)
    parser.add_argument("--study", type=Path, default=HERE.parent / "studies" / "reference.yaml")
    return parser.parse_args()


def _steady(epoch_seconds: list[float], images: int, trials: int) -> dict[str, Any]:
    """Images per second over the epochs after the first (all trials of a group together)."""
    later = epoch_seconds[1:] or epoch_seconds
    return {"images_per_second": images * trials * len(later) / sum(later),
            "epoch_seconds": epoch_seconds, "trials": trials}  # fmt: skip


def _plain_fit(study: Any, dataset: Any, cell: Any) -> dict[str, Any]:
    import keras

    from ablate.study.grid import TrialSpec
    from ablate.training.trial import build_model

    model = build_model(study, TrialSpec(cell, 0, 1), dataset)
    model.compile(optimizer=keras.optimizers.Adam(study.training.learning_rate),
                  loss=keras.losses.BinaryCrossentropy())  # fmt: skip
    times: list[float] = []
    x = dataset.x_train
    model.fit(x, x, batch_size=study.training.batch_size, epochs=study.training.epochs,
              verbose=0, callbacks=[epoch_clock(keras, times)])  # fmt: skip
    return {"path": "plain fit", **_steady(times, len(x), 1)}


def _one_trial(study: Any, dataset: Any, spec: Any) -> dict[str, Any]:
    from ablate.training.trial import train_trial

    result = train_trial(study, spec, dataset)
    assert result.status == "complete", result.error
    times = [e.train_seconds for e in result.history]
    return {"path": "ablate, one trial", **_steady(times, len(dataset.x_train), 1)}


def _fused(study: Any, dataset: Any, specs: list[Any], label: str) -> dict[str, Any]:
    from ablate.training.fused import train_group

    results = train_group(study, specs, dataset)
    failed = [r.error for r in results if r.status != "complete"]
    assert not failed, failed[0]
    times = [e.train_seconds for e in results[0].history]
    row = {"path": label, **_steady(times, len(dataset.x_train), len(specs))}
    row["fused"] = results[0].details.get("fused")
    return row


if __name__ == "__main__":
    main()
