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
"""

from __future__ import annotations

import argparse
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
    from ablate.engine import backend
    from ablate.study import parse_study
    from ablate.study.grid import Cell, TrialSpec

    study = parse_study(_study_text(settings["train"], settings["test"], settings["epochs"]))
    if path == "ablate":
        # a single worker on this machine, as `ablate run --workers 1` would start it
        from ablate.engine.runner import plan_workers

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
        from ablate.engine.training import train_trial

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
        from ablate.engine.training import prepare_model

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
    model = _baseline_model(keras, study, spec, data.input_shape)
    times: list[float] = []

    class EpochTimer(keras.callbacks.Callback):
        def on_epoch_begin(self, epoch: int, logs: Any = None) -> None:
            self.start = time.perf_counter()

        def on_epoch_end(self, epoch: int, logs: Any = None) -> None:
            times.append(time.perf_counter() - self.start)

    x = data.x_train
    model.fit(x, x, batch_size=study.training.batch_size, epochs=study.training.epochs,
              verbose=0, callbacks=[EpochTimer(), lockstep])  # fmt: skip
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
    args = parser.parse_args()
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
