"""Single-trial training speed: the plain-Keras baseline against ablate's path, side by side.

    python bench/throughput.py [--repeat 3] [--train 2048] [--test 1000] [--epochs 5]

For each chosen cell of the reference grid (default: the slowest, a middle and the fastest)
and each repetition, it runs, interleaved (baseline, ablate, baseline, ablate, ...), each in
a fresh process on the same data subset and the same reference model:

- **baseline**: what a user would write, as the reference did: build the model, compile it
  with Adam and binary cross-entropy, ``model.fit(x, x, batch_size=64, epochs=E)`` on NumPy
  arrays, then ``model.evaluate``;
- **ablate**: ``ablate.training.train_trial``, exactly as ``ablate run`` calls it in a worker
  (thread settings of a single worker on this machine, validation after every epoch, saved
  model outputs).

It reports per trial: steady training images/second (epochs 2..E), time to first step
(build + compile + the first training step), evaluation time, peak resident memory, and
the ratio ablate / baseline; the table gives medians over repetitions. Results go to
bench/results/throughput-<date>.json with the machine, backend and versions.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import statistics
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))

CELLS = {  # by cost: every optional layer on, a middle one, none
    "slowest": {"batch_norm": True, "dropout": True, "spatial_attention": True,
                "activation": "elu"},
    "middle": {"batch_norm": True, "dropout": False, "spatial_attention": False,
               "activation": "selu"},
    "fastest": {"batch_norm": False, "dropout": False, "spatial_attention": False,
                "activation": "relu"},
}  # fmt: skip


def _study_text(train: int, test: int, epochs: int) -> str:
    return f"""
name: bench
factors:
  batch_norm: [true, false]
  dropout: [true, false]
  spatial_attention: [true, false]
  activation: [elu, relu, selu, sigmoid]
training: {{epochs: {epochs}, batch_size: 64}}
data: {{dataset: mnist-sample, train_size: {train}, test_size: {test}}}
"""


# ---------------------------------------------------------------------------------------------
# One measurement, in its own process


def _measure(
    path: str, cell: dict[str, object], train: int, test: int, epochs: int
) -> dict[str, float]:
    from ablate import backend
    from ablate.config import parse_study
    from ablate.grid import Cell, TrialSpec

    study = parse_study(_study_text(train, test, epochs))
    if path == "ablate":
        # a single worker on this machine, as `ablate run --workers 1` would start it
        from ablate.runner import plan_workers

        slot = plan_workers(study, workers=1, remaining=1)[0]
        backend.configure_process(threads=slot.threads, gpu=slot.gpu)
    else:
        os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    keras = backend.import_keras()
    from ablate.data import load_dataset

    data = load_dataset(study.data)
    spec = TrialSpec(Cell(0, tuple(cell.items())), 0, 768)
    first_step = _first_step(path, keras, study, spec, data)
    if path == "ablate":
        from ablate.training import train_trial

        result = train_trial(study, spec, data)
        assert result.status == "complete", result.error
        steady = [e.train_seconds for e in result.history[1:]]
        evaluation = result.eval_seconds
    else:
        steady, evaluation = _baseline_trial(keras, study, spec, data)
    return {
        "images_per_second": len(data.x_train) * len(steady) / sum(steady),
        "first_step_seconds": first_step,
        "eval_seconds": evaluation,
        "peak_rss_mib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
    }


def _first_step(path: str, keras: Any, study: Any, spec: Any, data: Any) -> float:
    """Seconds from nothing to one finished training step (build, compile, trace, step)."""
    start = time.perf_counter()
    if path == "ablate":
        from ablate.training import prepare_model

        model, _ = prepare_model(keras, study, spec, data.input_shape)
    else:
        model = _baseline_model(keras, study, spec)
    x = data.x_train[: study.training.batch_size]
    model.fit(x, x, batch_size=len(x), epochs=1, verbose=0)
    return time.perf_counter() - start


def _baseline_model(keras: Any, study: Any, spec: Any) -> Any:
    from ablate.model import build_vae

    keras.utils.set_random_seed(spec.seed)
    model = build_vae(**study.model.builder_kwargs(), **spec.cell.as_dict())
    t = study.training
    lr = keras.optimizers.schedules.InverseTimeDecay(t.learning_rate, 1, t.decay_rate())
    model.compile(optimizer=keras.optimizers.Adam(lr), loss="binary_crossentropy")
    return model


def _baseline_trial(keras: Any, study: Any, spec: Any, data: Any) -> tuple[list[float], float]:
    """The reference's way: fit on NumPy arrays, then evaluate; per-epoch wall times."""
    model = _baseline_model(keras, study, spec)
    times: list[float] = []

    class EpochTimer(keras.callbacks.Callback):
        def on_epoch_begin(self, epoch: int, logs: Any = None) -> None:
            self.start = time.perf_counter()

        def on_epoch_end(self, epoch: int, logs: Any = None) -> None:
            times.append(time.perf_counter() - self.start)

    x = data.x_train
    model.fit(x, x, batch_size=study.training.batch_size, epochs=study.training.epochs,
              verbose=0, callbacks=[EpochTimer()])  # fmt: skip
    start = time.perf_counter()
    model.evaluate(data.x_test, data.x_test, verbose=0)
    return times[1:], time.perf_counter() - start


# ---------------------------------------------------------------------------------------------


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--cells", nargs="+", default=list(CELLS), choices=list(CELLS))
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--train", type=int, default=2048)
    parser.add_argument("--test", type=int, default=1000)
    parser.add_argument("--epochs", type=int, default=5)
    parser.add_argument("--out", type=Path, default=HERE / "results")
    parser.add_argument("--one", nargs=2, metavar=("PATH", "CELL"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.one:
        path, cell = args.one
        print(json.dumps(_measure(path, CELLS[cell], args.train, args.test, args.epochs)))
        return

    from bench._machine import describe_machine, save, table

    runs = []
    for rep in range(args.repeat):
        for cell in args.cells:
            for path in ("baseline", "ablate"):
                print(f"repetition {rep + 1}/{args.repeat}: {cell} cell, {path}...", flush=True)
                proc = subprocess.run(
                    [sys.executable, __file__, "--one", path, cell, "--train", str(args.train),
                     "--test", str(args.test), "--epochs", str(args.epochs)],
                    capture_output=True, text=True,
                )  # fmt: skip
                if proc.returncode != 0:
                    raise SystemExit(f"{path} on {cell} failed:\n{proc.stderr[-3000:]}")
                runs.append({"cell": cell, "path": path, "repetition": rep,
                             **json.loads(proc.stdout.strip().splitlines()[-1])})  # fmt: skip
    rows = []
    for cell in args.cells:
        med = {
            (path, key): statistics.median(
                r[key] for r in runs if r["cell"] == cell and r["path"] == path
            )
            for path in ("baseline", "ablate")
            for key in ("images_per_second", "first_step_seconds", "eval_seconds", "peak_rss_mib")
        }
        rows.append({
            "cell": cell,
            "base_ips": med["baseline", "images_per_second"],
            "abl_ips": med["ablate", "images_per_second"],
            "ratio": med["ablate", "images_per_second"] / med["baseline", "images_per_second"],
            "base_first": med["baseline", "first_step_seconds"],
            "abl_first": med["ablate", "first_step_seconds"],
            "base_eval": med["baseline", "eval_seconds"],
            "abl_eval": med["ablate", "eval_seconds"],
            "base_rss": med["baseline", "peak_rss_mib"],
            "abl_rss": med["ablate", "peak_rss_mib"],
        })  # fmt: skip
    machine = describe_machine()
    print(
        f"\nreference model, {args.train} training images, {args.epochs} epochs, batch 64; "
        f"{machine['cpu']} ({machine['cores']} cores), {machine['gpus'] or 'no GPU'}, backend "
        f"{machine['backend']}; medians of {args.repeat} interleaved repetitions"
    )
    print(
        table(
            rows,
            [
                ("cell", "cell", "s"),
                ("base_ips", "baseline img/s", ",.0f"),
                ("abl_ips", "ablate img/s", ",.0f"),
                ("ratio", "ratio", ".2f"),
                ("base_first", "base 1st step s", ".1f"),
                ("abl_first", "ablate 1st step s", ".1f"),
                ("base_eval", "base eval s", ".2f"),
                ("abl_eval", "ablate eval s", ".2f"),
                ("base_rss", "base RSS MiB", ",.0f"),
                ("abl_rss", "ablate RSS MiB", ",.0f"),
            ],
        )
    )
    settings = {**vars(args), "out": str(args.out)}
    payload = {"settings": settings, "machine": machine, "summary": rows, "runs": runs}
    path = save(args.out, "throughput", payload)
    print(f"\nsaved {path}")


if __name__ == "__main__":
    main()
