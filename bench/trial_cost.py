"""Where the time of a small trial goes, and how close its training comes to the machine's peak.

    python bench/trial_cost.py [--study studies/quick.yaml] [--trials 4] [--threads 1]
                               [--reference-cell] [--mnist PATH]

Measured in one worker-like process (``--threads`` compute threads, as ``ablate run`` gives
each worker; 1 on a 2-core machine), for the first ``--trials`` cells of the study:

- process start and imports (a fresh ``python -c "import keras"`` timed from outside) and
  loading the data;
- per trial: building and compiling the model; the first training step (which includes
  tracing the step function) and the steady steps after it (with ``steps_per_execution``,
  the first call and the calls after it); the evaluations after each epoch
  (the first includes tracing the test step); what the task keeps afterwards (the saved
  outputs); recording the result in a real journal and exporting the parquet files;
- training FLOP/s: the model's training FLOP per example (:mod:`bench._flops`) × examples per
  second of steady steps, against NumPy's float32 matrix-multiply peak at the same threads.

``--reference-cell`` measures the reference model too (units [35, 25, 15, 5], depth 3,
batch 64, the middle cell: BatchNorm and selu), on 2,048 training images of the sample (or
of the full MNIST with ``--mnist``). Results go to bench/results/trial-cost-<date>.json.
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
sys.path.insert(0, str(ROOT))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--study", type=Path, default=ROOT / "studies" / "quick.yaml")
    parser.add_argument("--trials", type=int, default=4)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--reference-cell", action="store_true")
    parser.add_argument("--mnist", type=Path, help="full MNIST for the reference cell")
    parser.add_argument("--out", type=Path, default=HERE / "results")
    args = parser.parse_args()

    from ablate.training import backend

    backend.configure_process(threads=args.threads, gpu="")
    from bench._machine import describe_machine, save

    started = _start_and_imports()
    t = time.perf_counter()
    keras = backend.import_keras()
    import_seconds = time.perf_counter() - t

    from ablate.study import load_study
    from bench._flops import matmul_peak

    payload: dict[str, Any] = {
        "machine": describe_machine(),
        "threads": args.threads,
        "process": {**started, "keras_import_in_worker_seconds": import_seconds},
        "matmul_peak": matmul_peak(f"{args.threads} (BLAS threads: OMP_NUM_THREADS)"),
        "studies": [],
    }
    payload["studies"].append(_study_costs(keras, load_study(args.study), args.trials))
    if args.reference_cell:
        payload["studies"].append(_study_costs(keras, _reference(args), 1, cells=(13,)))
    for entry in payload["studies"]:
        entry["peak_fraction"] = entry["training_gflops"] / payload["matmul_peak"]["gflops"]
    path = save(args.out, "trial-cost", payload)
    _print(payload)
    print(f"\nwrote {path}")


def _start_and_imports() -> dict[str, float]:
    """A fresh interpreter importing ablate's worker side and Keras, timed from outside."""
    code = "import ablate.execution.runner, ablate.data; import keras"
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3"}
    t = time.perf_counter()
    subprocess.run([sys.executable, "-c", "pass"], check=True, env=env)
    bare = time.perf_counter() - t
    t = time.perf_counter()
    subprocess.run([sys.executable, "-c", code], check=True, env=env, capture_output=True)
    return {"python_start_seconds": bare, "start_and_imports_seconds": time.perf_counter() - t}


def _reference(args: argparse.Namespace) -> Any:
    from ablate.study import parse_study

    data = (
        f"{{dataset: mnist, path: {args.mnist}, train_size: 2048, test_size: 1000}}"
        if args.mnist
        else "{dataset: mnist-sample, train_size: 2048, test_size: 1000}"
    )
    return parse_study(
        "name: reference-cell\n"
        "factors: {batch_norm: [true, false], dropout: [true, false],\n"
        "          spatial_attention: [true, false], activation: [elu, relu, selu, sigmoid]}\n"
        "training: {epochs: 2, batch_size: 64}\n"
        f"data: {data}\n"
    )


def _study_costs(keras: Any, study: Any, n: int, cells: tuple[int, ...] = ()) -> dict[str, Any]:
    from ablate.data import load_dataset
    from ablate.execution.pool import export_queue
    from ablate.queue.claims import open_queue
    from ablate.queue.workers import WorkerIdentity
    from ablate.study.grid import expand_trials
    from ablate.training.trial import steps_per_call, train_trial
    from bench._flops import training_flops_per_example

    t = time.perf_counter()
    data = load_dataset(study.data, study.seed)
    load_seconds = time.perf_counter() - t
    specs = expand_trials(study)
    chosen = [specs[i] for i in cells] if cells else specs[:n]
    per_call = steps_per_call(study.training, len(data.x_train))  # steps between callbacks
    trials = []
    with tempfile.TemporaryDirectory() as tmp:
        import dataclasses

        study = dataclasses.replace(study, results=tmp)
        queue = open_queue(study, None)
        queue.populate(chosen)
        for spec in chosen:
            timer = _Timer(keras)
            result = train_trial(study, spec, data, callbacks=[timer.callback()])
            assert result.status == "complete", result.error
            validation = sum(timer.evals)
            t = time.perf_counter()
            claim = queue.claim(WorkerIdentity("bench"))
            queue.finish(claim, result)
            record_seconds = time.perf_counter() - t
            t = time.perf_counter()
            export_queue(queue, study.results_dir)
            export_seconds = time.perf_counter() - t
            steady = statistics.median(timer.steps[1:]) if len(timer.steps) > 1 else None
            model = study.model.spec.build(
                input_shape=data.input_shape,
                **{**study.model.builder_kwargs(), **spec.cell.as_dict()},
            )
            flops = training_flops_per_example(model)
            trials.append(
                {
                    "cell": spec.cell.label,
                    "seconds": result.seconds,
                    "build_and_compile": result.build_seconds,
                    "first_step": timer.steps[0],
                    "steady_step_median": steady,
                    "steps": len(timer.steps) * per_call,
                    "steps_per_call": per_call,
                    "training_steps_total": sum(timer.steps),
                    "training_other": result.train_seconds - sum(timer.steps),
                    "first_evaluation": timer.evals[0] if timer.evals else None,
                    "evaluations_total": validation,
                    "after_training": result.eval_seconds - validation,
                    "record_in_journal": record_seconds,
                    "export_parquet": export_seconds,
                    "examples_per_second_steady": study.training.batch_size * per_call / steady
                    if steady
                    else None,
                    "training_flop_per_example": flops,
                }
            )
    steady_rate = statistics.median(t["examples_per_second_steady"] for t in trials)
    flops = statistics.median(t["training_flop_per_example"] for t in trials)
    return {
        "study": study.name,
        "model": study.model.to_dict(),
        "batch_size": study.training.batch_size,
        "train_size": len(data.x_train),
        "epochs": study.training.epochs,
        "load_data_seconds": load_seconds,
        "trials": trials,
        "training_gflops": steady_rate * flops / 1e9,
    }


class _Timer:
    """Wall time of every training step and every evaluation, from Keras callbacks."""

    def __init__(self, keras: Any) -> None:
        self.keras = keras
        self.steps: list[float] = []
        self.evals: list[float] = []

    def callback(self) -> Any:
        timer = self

        class Timer(self.keras.callbacks.Callback):
            def on_train_batch_begin(self, batch: int, logs: Any = None) -> None:
                self._t = time.perf_counter()

            def on_train_batch_end(self, batch: int, logs: Any = None) -> None:
                timer.steps.append(time.perf_counter() - self._t)

            def on_test_begin(self, logs: Any = None) -> None:
                self._e = time.perf_counter()

            def on_test_end(self, logs: Any = None) -> None:
                timer.evals.append(time.perf_counter() - self._e)

        return Timer()


def _print(payload: dict[str, Any]) -> None:
    p = payload["process"]
    print(f"python start {p['python_start_seconds']:.2f} s; start + imports "
          f"{p['start_and_imports_seconds']:.2f} s (Keras import in a worker "
          f"{p['keras_import_in_worker_seconds']:.2f} s)")  # fmt: skip
    peak = payload["matmul_peak"]
    print(f"matmul peak ({payload['threads']} thread(s)): {peak['gflops']:.1f} GFLOP/s")
    for s in payload["studies"]:
        share = 100 * s["peak_fraction"]
        print(f"\n{s['study']}: data {s['load_data_seconds']:.2f} s; training "
              f"{s['training_gflops']:.1f} GFLOP/s = {share:.0f}% of peak")  # fmt: skip
        keys = (
            "seconds", "build_and_compile", "first_step", "training_steps_total",
            "evaluations_total", "after_training", "record_in_journal", "export_parquet",
        )  # fmt: skip
        print("  " + "  ".join(f"{k:>12.12}" for k in keys))
        for t in s["trials"]:
            print("  " + "  ".join(f"{t[k]:12.2f}" for k in keys) + f"  {t['cell']}")


if __name__ == "__main__":
    main()
