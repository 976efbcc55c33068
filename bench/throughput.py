"""Single-trial training speed: the plain-Keras baseline against ablate's path, side by side.

    python bench/throughput.py [--repeat 3] [--train 2048] [--test 1000] [--epochs 6]
                               [--turn-steps 1]

For each chosen cell of the reference grid (default: the slowest, a middle and the fastest)
and each repetition, two processes train the same cell on the same data subset:

- **baseline**: what a user would write, as the reference did: TensorFlow's default threads,
  build the model, compile it with Adam and binary cross-entropy,
  ``model.fit(x, x, batch_size=64, epochs=E)`` on NumPy arrays, then ``model.evaluate``;
- **ablate**: ``ablate.training.train_trial``, exactly as ``ablate run`` calls it in a worker
  (the thread settings of a single worker on this machine, validation after every epoch,
  saved model outputs).

They run in lockstep, taking turns training step by step (baseline step 1, ablate step 1,
baseline step 2, ...; the first mover alternates between repetitions), never at the same time,
and each counts only the time it held the turn. A shared cloud machine's speed swings by tens of
percent within seconds (on the 2-core development machine one of the two cores was seen to
stall for seconds at a time, halving a 2-thread step's speed), far more than any difference
between the paths; turns a fraction of a second long put both under the same conditions, where
whole trials or whole epochs taken in turn did not. The turn is passed by a Keras callback
after every ``--turn-steps`` training steps, given to both paths alike.

Reported per trial: steady training images/second (epochs 2..E, the first one traces the
training step; also from the least disturbed epoch, the "best-epoch" figures), time to first
step (import, data, build, compile, first step), one evaluation pass over the test images
(first pass, tracing included), peak resident memory, and the ratio ablate / baseline; the
table gives medians over repetitions. Results go to bench/results/throughput-<date>.json with
the machine, backend and versions.

**GPU mode** (``--gpu``; one GPU, full MNIST from ``ABLATE_MNIST``, ``KERAS_BACKEND=jax``)::

    python bench/throughput.py --gpu [--pack 1 2 4 8] [--spe 32] [--epochs 3] [--train 60000]

runs one after another, each in fresh processes while nvidia-smi samples the GPU: the
plain-``fit`` baseline (Keras defaults, one trial), ablate's training path as it was before (no
XLA, one step per call; on ``--eager-train`` images), ablate's path with the study's defaults,
and ablate with ``--spe`` steps per call and K = ``--pack`` trials training at once in K
processes (as ``ablate run --workers-per-gpu K`` packs them; GPU memory allocated as needed),
then K = ``--mps-pack`` trials with NVIDIA's MPS daemon running (started and stopped by the
benchmark; skipped where it is not installed). The trials of a pack wait for each other after
their first epoch (tracing and compiling), so that epochs 2..E overlap. Reported: per-trial
training images/s (epochs 2..E, evaluation excluded), aggregate images/s over the pack's wall
time (per-epoch evaluation included), GPU memory per trial, mean GPU utilisation over that
time, and the projected wall time of the full reference study (32 cells x 25 epochs x 60,000
images: for each of 32/K rounds, the measured start-up and 25 epochs at the measured wall time
per epoch).
Results go to bench/results/throughput-gpu-<date>.json.
"""

from __future__ import annotations

import argparse
import json
import math
import multiprocessing
import os
import queue
import resource
import statistics
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
PATHS = ("baseline", "ablate")


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


class _Turns:
    """Two processes taking turns: only the one whose turn it is computes."""

    def __init__(self, cond: Any, turn: Any, done: Any, me: int) -> None:
        self.cond, self.turn, self.done, self.me = cond, turn, done, me

    def take(self) -> None:
        with self.cond:
            self.cond.wait_for(lambda: self.turn.value == self.me or self.done[1 - self.me])

    def give(self) -> None:
        with self.cond:
            self.turn.value = 1 - self.me
            self.cond.notify_all()

    def pass_and_wait(self) -> None:
        self.give()
        self.take()

    def finish(self) -> None:
        with self.cond:
            self.done[self.me] = 1
            self.turn.value = 1 - self.me
            self.cond.notify_all()


def _lockstep(keras: Any, turns: _Turns, every: int) -> Any:
    """A Keras callback that passes the turn after every ``every`` training steps and keeps,
    per epoch, the seconds spent waiting for it back (``waits``), and the seconds of every
    step (``steps``, batch begin to end)."""

    class Lockstep(keras.callbacks.Callback):
        def __init__(self) -> None:
            super().__init__()
            self.waits: list[float] = []
            self.steps: list[float] = []

        def on_epoch_begin(self, epoch: int, logs: Any = None) -> None:
            self.waits.append(0.0)

        def on_train_batch_begin(self, batch: int, logs: Any = None) -> None:
            self.step_start = time.perf_counter()

        def on_train_batch_end(self, batch: int, logs: Any = None) -> None:
            self.steps.append(time.perf_counter() - self.step_start)
            if (batch + 1) % every == 0:
                t = time.perf_counter()
                turns.pass_and_wait()
                self.waits[-1] += time.perf_counter() - t

    return Lockstep()


# ---------------------------------------------------------------------------------------------
# One path of one pair, in its own process


def _child(
    path: str, cell: dict[str, object], settings: dict[str, int], turns: _Turns, out: Any
) -> None:
    """Measure one path, computing only while it holds the turn; the result goes to ``out``."""
    try:
        turns.take()
        out.put(_measure(path, cell, settings, turns))
    except BaseException as err:  # reported by the parent
        out.put({"error": f"{type(err).__name__}: {err}"})
    finally:
        turns.finish()


def _measure(
    path: str, cell: dict[str, object], settings: dict[str, int], turns: _Turns
) -> dict[str, Any]:
    start = time.perf_counter()
    from ablate.study import parse_study
    from ablate.study.grid import Cell, TrialSpec
    from ablate.training import backend

    study = parse_study(_study_text(settings["train"], settings["test"], settings["epochs"]))
    if path == "ablate":
        # a single worker on this machine, as `ablate run --workers 1` would start it
        from ablate.execution.planning import plan_workers

        slot = plan_workers(study, workers=1, remaining=1)[0]
        backend.configure_process(threads=slot.threads, gpu=slot.gpu)
    else:
        os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")  # logging only; threads untouched
    keras = backend.import_keras()
    from ablate.data import load_dataset

    data = load_dataset(study.data)
    spec = TrialSpec(Cell(0, tuple(cell.items())), 0, 768)
    first_step = _first_step(path, keras, study, spec, data, since=start)
    turns.pass_and_wait()
    lockstep = _lockstep(keras, turns, settings["turn_steps"])
    if path == "ablate":
        from ablate.training.trial import train_trial

        result = train_trial(study, spec, data, callbacks=[lockstep])
        assert result.status == "complete", result.error
        epochs = [e.train_seconds for e in result.history]
        evals = [e.eval_seconds for e in result.history]
        evaluation, steady_eval = evals[0], statistics.median(evals[1:])
    else:
        epochs, evaluation = _baseline_trial(keras, study, spec, data, lockstep)
        steady_eval = None
    epochs = [e - w for e, w in zip(epochs, lockstep.waits, strict=True)]  # own turns only
    steady = epochs[1:]
    return {
        "images_per_second": len(data.x_train) * len(steady) / sum(steady),
        "best_images_per_second": len(data.x_train) / min(steady),  # least disturbed epoch
        "epoch_seconds": epochs,
        "step_seconds": lockstep.steps,
        "first_step_seconds": first_step,
        "eval_seconds": evaluation,
        "steady_eval_seconds": steady_eval,
        "peak_rss_mib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
    }


def _first_step(path: str, keras: Any, study: Any, spec: Any, data: Any, since: float) -> float:
    """Seconds from a fresh process to one finished training step (imports, data, build,
    compile, trace, step)."""
    if path == "ablate":
        from ablate.training.trial import prepare_model

        model, _ = prepare_model(keras, study, spec, data)
    else:
        model = _baseline_model(keras, study, spec, data.input_shape)
    x = data.x_train[: study.training.batch_size]
    model.fit(x, x, batch_size=len(x), epochs=1, verbose=0)
    return time.perf_counter() - since


def _baseline_model(keras: Any, study: Any, spec: Any, input_shape: tuple[int, ...]) -> Any:
    keras.utils.set_random_seed(spec.seed)
    kwargs = {**study.model.builder_kwargs(), **spec.cell.as_dict()}
    model = study.model.spec.build(input_shape=input_shape, **kwargs)
    t = study.training
    lr = keras.optimizers.schedules.InverseTimeDecay(t.learning_rate, 1, t.decay_rate())
    model.compile(optimizer=keras.optimizers.Adam(lr), loss="binary_crossentropy")
    return model


def _baseline_trial(
    keras: Any, study: Any, spec: Any, data: Any, lockstep: Any
) -> tuple[list[float], float]:
    """The reference's way: fit on NumPy arrays, then evaluate; per-epoch wall times
    (waits for the turn included: the caller takes them off)."""
    from bench._machine import epoch_clock

    model = _baseline_model(keras, study, spec, data.input_shape)
    times: list[float] = []
    x = data.x_train
    model.fit(x, x, batch_size=study.training.batch_size, epochs=study.training.epochs,
              verbose=0, callbacks=[epoch_clock(keras, times), lockstep])  # fmt: skip
    start = time.perf_counter()
    model.evaluate(data.x_test, data.x_test, verbose=0)
    return times, time.perf_counter() - start


def _pair(cell: str, settings: dict[str, int], first: str) -> dict[str, dict[str, Any]]:
    """Both paths on one cell, in lockstep; ``first`` moves first."""
    ctx = multiprocessing.get_context("spawn")  # fresh interpreters: thread settings apply
    cond, turn, done = ctx.Condition(), ctx.Value("i", PATHS.index(first)), ctx.Array("i", 2)
    queues = [ctx.Queue() for _ in PATHS]
    procs = [
        ctx.Process(target=_child, args=(path, CELLS[cell], settings,
                                         _Turns(cond, turn, done, i), queues[i]))
        for i, path in enumerate(PATHS)
    ]  # fmt: skip
    for proc in procs:
        proc.daemon = True  # a path that dies must not leave the other waiting for its turn
        proc.start()
    results = {}
    for i, path in enumerate(PATHS):
        while path not in results:
            try:
                results[path] = queues[i].get(timeout=5)
            except queue.Empty:
                if not procs[i].is_alive():
                    raise SystemExit(
                        f"{path} on the {cell} cell died (exit code {procs[i].exitcode})"
                    ) from None
    for proc in procs:
        proc.join()
    for path, result in results.items():
        if "error" in result:
            raise SystemExit(f"{path} on the {cell} cell failed: {result['error']}")
    return results


# ---------------------------------------------------------------------------------------------
# GPU mode: the baseline, ablate's path, and packs of K trials training at once

FULL_STUDY = {"cells": 32, "epochs": 25, "train": 60_000}


def _gpu_study_text(config: dict[str, Any], settings: dict[str, Any]) -> str:
    jit = {"auto": "auto", True: "true", False: "false"}[config["jit"]]
    return f"""
name: bench
factors:
  batch_norm: [true, false]
  dropout: [true, false]
  spatial_attention: [true, false]
  activation: [elu, relu, selu, sigmoid]
training: {{epochs: {settings["epochs"]}, batch_size: 64, jit_compile: {jit},
            steps_per_execution: {config["spe"]}, save_outputs: false}}
data: {{dataset: mnist, train_size: {config["train"]}, test_size: {settings["test"]}}}
"""


def _gpu_child(config: dict[str, Any], cell: dict[str, object], settings: dict[str, Any],
               barrier: Any, out: Any) -> None:  # fmt: skip
    """One trial of a pack, in its own process; its measurements go to ``out``."""
    try:
        out.put(_gpu_measure(config, cell, settings, barrier))
    except BaseException as err:  # reported by the parent
        barrier.abort()
        out.put({"error": f"{type(err).__name__}: {err}"})


def _gpu_measure(
    config: dict[str, Any], cell: dict[str, object], settings: dict[str, Any], barrier: Any
) -> dict[str, Any]:
    start = time.time()
    from ablate.study import parse_study
    from ablate.study.grid import Cell, TrialSpec
    from ablate.training import backend

    # several processes share the GPU: memory as needed, the cores divided among them
    threads = max(1, backend.cpu_count() // config["k"])
    backend.configure_process(threads=None if config["path"] == "baseline" else threads)
    keras = backend.import_keras()
    from ablate.data import load_dataset

    study = parse_study(_gpu_study_text(config, settings))
    data = load_dataset(study.data)
    spec = TrialSpec(Cell(0, tuple(cell.items())), 0, 768)
    marks: dict[str, float] = {}

    class Sync(keras.callbacks.Callback):
        """After the first epoch, wait for the rest of the pack; note when training ends."""

        def on_epoch_begin(self, epoch: int, logs: Any = None) -> None:
            self.epoch_start = time.perf_counter()

        def on_epoch_end(self, epoch: int, logs: Any = None) -> None:
            times.append(time.perf_counter() - self.epoch_start)
            if epoch == 0:
                barrier.wait(timeout=900)
                marks["release"] = time.time()

        def on_train_end(self, logs: Any = None) -> None:
            marks["end"] = time.time()

    times: list[float] = []
    if config["path"] == "ablate":
        from ablate.training.trial import train_trial, use_xla

        result = train_trial(study, spec, data, callbacks=[Sync()])
        assert result.status == "complete", result.error
        epochs = [e.train_seconds for e in result.history]
        evals = [e.eval_seconds for e in result.history]
        xla = use_xla(study.training)
        device = result.device
    else:
        model = _baseline_model(keras, study, spec, data.input_shape)
        model.fit(data.x_train, data.x_train, batch_size=64, epochs=settings["epochs"],
                  verbose=0, callbacks=[Sync()])  # fmt: skip
        t = time.perf_counter()
        model.evaluate(data.x_test, data.x_test, verbose=0)
        epochs, evals = times, [time.perf_counter() - t]
        xla, device = bool(model.jit_compile), backend.describe_device()
    steady = epochs[1:]
    return {
        "pid": os.getpid(),
        "device": device,
        "xla": xla,
        "start": start,
        **marks,
        "epoch_seconds": epochs,
        "eval_seconds": evals,
        "images_per_second": len(data.x_train) * len(steady) / sum(steady),
        "train": len(data.x_train),
        "peak_rss_mib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
    }


def _gpu_pack(config: dict[str, Any], settings: dict[str, Any], sampler: Any) -> dict[str, Any]:
    """K trials of the same cell training at once, each in its own process."""
    k = config["k"]
    ctx = multiprocessing.get_context("spawn")
    barrier, out = ctx.Barrier(k), ctx.Queue()
    procs = [
        ctx.Process(target=_gpu_child, args=(config, CELLS[settings["cell"]], settings, barrier,
                                             out), daemon=True)
        for _ in range(k)
    ]  # fmt: skip
    for proc in procs:
        proc.start()
    trials: list[dict[str, Any]] = []
    while len(trials) < k:
        try:
            trials.append(out.get(timeout=5))
        except queue.Empty:
            if not any(p.is_alive() for p in procs):
                raise SystemExit(f"{config['name']}: the trials died") from None
    for proc in procs:
        proc.join()
    errors = [t["error"] for t in trials if "error" in t]
    if errors:
        raise SystemExit(f"{config['name']} failed: {errors[0]}")
    release, end = max(t["release"] for t in trials), max(t["end"] for t in trials)
    n, steady_epochs = trials[0]["train"], settings["epochs"] - 1
    epoch_wall = (end - release) / steady_epochs  # one epoch of every trial, evaluation included
    startup = release - min(t["start"] for t in trials) - epoch_wall  # imports, data, compile
    scale = FULL_STUDY["train"] / n
    eval_once = trials[0]["eval_seconds"][-1] if config["path"] == "baseline" else 0.0
    rounds = math.ceil(FULL_STUDY["cells"] / k)
    projected = rounds * (startup + FULL_STUDY["epochs"] * epoch_wall * scale + eval_once)
    gpu = sampler.window(release, min(t["end"] for t in trials))
    mems = [sampler.apps.get(t["pid"]) for t in trials]
    return {
        **config,
        "per_trial_ips": statistics.median(t["images_per_second"] for t in trials),
        "aggregate_ips": k * n * steady_epochs / (end - release),
        "epoch_wall_seconds": epoch_wall,
        "startup_seconds": startup,
        "projected_study_seconds": projected,
        "gpu_mib_per_trial": statistics.median(m for m in mems if m) if any(mems) else None,
        **gpu,
        "device": trials[0]["device"],
        "xla": trials[0]["xla"],
        "trials": trials,
    }


def _mps(start: bool) -> bool:
    """Start (or stop) NVIDIA's MPS daemon, which lets the kernels of several processes run
    on the GPU at the same time; False where it is not installed."""
    import shutil
    import subprocess

    if shutil.which("nvidia-cuda-mps-control") is None:
        return False
    if start:
        return subprocess.run(["nvidia-cuda-mps-control", "-d"], check=False).returncode == 0
    subprocess.run(["nvidia-cuda-mps-control"], input="quit\n", text=True, check=False)
    time.sleep(2)  # let the daemon go before the next processes start
    return True


def main_gpu(args: argparse.Namespace) -> None:
    from bench._gpu import GpuSampler
    from bench._machine import describe_machine, save, table

    settings = {"epochs": args.epochs, "cell": args.cell, "test": args.test}
    full = args.train

    def config(name: str, path: str, jit: Any, spe: int, k: int, train: int) -> dict[str, Any]:
        return {"name": name, "path": path, "jit": jit, "spe": spe, "k": k, "train": train}

    configs = []
    if "baseline" in args.phases:
        configs.append(config("plain fit", "baseline", "auto", 1, 1, full))
    if "before" in args.phases:
        configs.append(config("ablate before (no XLA)", "ablate", False, 1, 1, args.eager_train))
    if "ablate" in args.phases:
        configs.append(config("ablate defaults", "ablate", "auto", 1, 1, full))
    if "packed" in args.phases:
        for k in args.pack:
            configs.append(config(f"ablate spe {args.spe}, K={k}", "ablate", "auto", args.spe, k,
                                  full))  # fmt: skip
        for k in args.mps_pack:
            configs.append(config(f"ablate spe {args.spe}, K={k}, MPS", "ablate", "auto",
                                  args.spe, k, full) | {"mps": True})  # fmt: skip
    rows: list[dict[str, Any]] = []
    args.out.mkdir(parents=True, exist_ok=True)
    with GpuSampler() as sampler:
        for c in configs:
            print(f"{c['name']}...", flush=True)
            if c.get("mps") and not _mps(start=True):
                print("  skipped: no nvidia-cuda-mps-control here", flush=True)
                continue
            try:
                rows.append(_gpu_pack(c, settings, sampler))
            finally:
                if c.get("mps"):
                    _mps(start=False)
            r = rows[-1]
            print(f"  per trial {r['per_trial_ips']:,.0f} img/s, aggregate "
                  f"{r['aggregate_ips']:,.0f} img/s, GPU {r['util_mean'] or 0:.0f}%, "
                  f"start-up {r['startup_seconds']:.0f} s, "
                  f"epoch wall {r['epoch_wall_seconds']:.1f} s, "
                  f"GPU MiB/trial {r['gpu_mib_per_trial']}, "
                  f"projected {r['projected_study_seconds'] / 60:.1f} min", flush=True)  # fmt: skip
            partial = {"machine_backend": os.environ.get("KERAS_BACKEND"), "summary": rows}
            (args.out / "throughput-gpu-partial.json").write_text(json.dumps(partial, default=str))
    base = next((r for r in rows if r["path"] == "baseline"), None)
    for r in rows:
        r["vs_plain_fit"] = r["aggregate_ips"] / base["aggregate_ips"] if base else None
        r["projected_min"] = r["projected_study_seconds"] / 60
    machine = describe_machine()
    print(f"\nreference model, {args.cell} cell, full MNIST ({full} training images), "
          f"{args.epochs} epochs (1 to compile, the rest timed), batch 64; "
          f"{machine['gpus'] or 'no GPU'}, backend {machine['backend']}")  # fmt: skip
    print(
        table(
            rows,
            [
                ("name", "run", "s"),
                ("per_trial_ips", "trial img/s", ",.0f"),
                ("aggregate_ips", "aggregate img/s", ",.0f"),
                ("vs_plain_fit", "vs plain fit", ".2f"),
                ("gpu_mib_per_trial", "GPU MiB/trial", ",.0f"),
                ("util_mean", "GPU util %", ".0f"),
                ("startup_seconds", "start-up s", ".1f"),
                ("epoch_wall_seconds", "epoch wall s", ".2f"),
                ("projected_min", "full study min", ".1f"),
            ],
        )
    )
    payload = {"settings": {**vars(args), "out": str(args.out)}, "machine": machine,
               "full_study": FULL_STUDY, "summary": rows,
               "gpu_samples": sampler.samples}  # fmt: skip
    print(f"\nsaved {save(args.out, 'throughput-gpu', payload)}")


# ---------------------------------------------------------------------------------------------


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--cells", nargs="+", default=list(CELLS), choices=list(CELLS))
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--train", type=int, default=2048)
    parser.add_argument("--test", type=int, default=1000)
    parser.add_argument("--epochs", type=int, default=6)
    parser.add_argument("--turn-steps", type=int, default=1,
                        help="training steps per turn (default: 1)")  # fmt: skip
    parser.add_argument("--out", type=Path, default=HERE / "results")
    gpu = parser.add_argument_group("GPU mode")
    gpu.add_argument("--gpu", action="store_true", help="the GPU comparison (see above)")
    gpu.add_argument("--phases", nargs="+", default=["baseline", "before", "ablate", "packed"],
                     choices=["baseline", "before", "ablate", "packed"])  # fmt: skip
    gpu.add_argument("--pack", type=int, nargs="+", default=[1, 2, 4, 8])
    gpu.add_argument("--mps-pack", type=int, nargs="*", default=[8],
                     help="packs to run again under NVIDIA's MPS daemon (started and stopped "
                          "here)")  # fmt: skip
    gpu.add_argument("--spe", type=int, default=32, help="steps per call for the packs")
    gpu.add_argument("--cell", default="middle", choices=list(CELLS))
    gpu.add_argument("--eager-train", type=int, default=6400,
                     help="training images for the run without XLA (slow)")  # fmt: skip
    args = parser.parse_args()
    if args.gpu:
        args.train = 60_000 if args.train == 2048 else args.train
        args.epochs = 3 if args.epochs == 6 else args.epochs
        args.test = 10_000 if args.test == 1000 else args.test
        if args.epochs < 2:
            parser.error("--epochs must be at least 2")
        main_gpu(args)
        return
    if args.epochs < 2:
        parser.error("--epochs must be at least 2: the first epoch (tracing) is not timed")
    from bench._machine import describe_machine, save, table

    if args.turn_steps < 1:
        parser.error("--turn-steps must be at least 1")
    settings = {"train": args.train, "test": args.test, "epochs": args.epochs,
                "turn_steps": args.turn_steps}  # fmt: skip
    runs = []
    for rep in range(args.repeat):
        for cell in args.cells:
            first = PATHS[rep % 2]
            print(f"repetition {rep + 1}/{args.repeat}: {cell} cell ({first} first)...",
                  flush=True)  # fmt: skip
            pair = _pair(cell, settings, first)
            for path, result in pair.items():
                runs.append({"cell": cell, "path": path, "repetition": rep, **result})
            print(f"  img/s baseline {pair['baseline']['images_per_second']:.0f}, ablate "
                  f"{pair['ablate']['images_per_second']:.0f}", flush=True)  # fmt: skip
    rows = []
    for cell in args.cells:

        def med(path: str, key: str, cell: str = cell) -> float:
            return statistics.median(
                r[key] for r in runs if r["cell"] == cell and r["path"] == path
            )

        pairs = [
            (a, b)
            for a in runs
            for b in runs
            if a["cell"] == b["cell"] == cell
            and a["repetition"] == b["repetition"]
            and (a["path"], b["path"]) == ("ablate", "baseline")
        ]
        ratios = [a["images_per_second"] / b["images_per_second"] for a, b in pairs]
        best = [a["best_images_per_second"] / b["best_images_per_second"] for a, b in pairs]
        rows.append({
            "cell": cell,
            "base_ips": med("baseline", "images_per_second"),
            "abl_ips": med("ablate", "images_per_second"),
            "ratio": statistics.median(ratios),
            "ratio_min": min(ratios),
            "best_ratio": statistics.median(best),
            "base_first": med("baseline", "first_step_seconds"),
            "abl_first": med("ablate", "first_step_seconds"),
            "base_eval": med("baseline", "eval_seconds"),
            "abl_eval": med("ablate", "eval_seconds"),
            "abl_steady_eval": med("ablate", "steady_eval_seconds"),
            "base_rss": med("baseline", "peak_rss_mib"),
            "abl_rss": med("ablate", "peak_rss_mib"),
        })  # fmt: skip
    machine = describe_machine()
    print(
        f"\nreference model, {args.train} training images, {args.epochs} epochs, batch 64, "
        f"{args.test} test images; {machine['cpu']} ({machine['cores']} cores), "
        f"{machine['gpus'] or 'no GPU'}, backend {machine['backend']}; medians of "
        f"{args.repeat} repetitions, the two paths taking turns every {args.turn_steps} training "
        "step(s)"
    )
    print(
        table(
            rows,
            [
                ("cell", "cell", "s"),
                ("base_ips", "baseline img/s", ",.0f"),
                ("abl_ips", "ablate img/s", ",.0f"),
                ("ratio", "ratio", ".2f"),
                ("ratio_min", "lowest ratio", ".2f"),
                ("best_ratio", "best-epoch ratio", ".2f"),
                ("base_first", "base 1st step s", ".1f"),
                ("abl_first", "ablate 1st step s", ".1f"),
                ("base_eval", "base eval s", ".2f"),
                ("abl_eval", "ablate eval s", ".2f"),
                ("abl_steady_eval", "(later passes)", ".2f"),
                ("base_rss", "base RSS MiB", ",.0f"),
                ("abl_rss", "ablate RSS MiB", ",.0f"),
            ],
        )
    )
    payload = {"settings": {**vars(args), "out": str(args.out)}, "machine": machine,
               "summary": rows, "runs": runs}  # fmt: skip
    print(f"\nsaved {save(args.out, 'throughput', payload)}")


if __name__ == "__main__":
    main()
