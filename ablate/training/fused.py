"""Fused training: a group of trials trained as one compiled JAX program over a trial axis.

Each trial's own model is built exactly as an unfused trial's (same seed, same initial
weights, same random streams); their variables are stacked along a new leading axis, and
Keras's own training step (``train_step`` of its JAX trainer: forward, loss, gradients,
BatchNorm statistics, optimizer update, metrics) runs under ``jax.vmap`` over that axis,
jit-compiled once for the group. Every trial keeps its own data order
(:mod:`ablate.training.order`), dropout masks, BatchNorm statistics and optimizer state;
one trial that diverges is recorded as diverged while the rest of its group trains on.

Which trials may share a program (:mod:`ablate.training.fusion`): the replicates of one
cell, for any builder -- their models have the same variables, and the first one's model is
the program -- and, for a built-in model that declares a fused builder, cells that differ
only in parameters it marks fusable: the program is then that builder's model, holding every
optional part the group uses, gated per trial (:mod:`ablate.models.gates`), and each trial's
variables are matched to it by layer name. After training, each trial's final values go
back into its own model, which is evaluated, inspected and recorded as an unfused one is.
"""

from __future__ import annotations

import time
import traceback
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace
from typing import Any

import numpy as np

from ablate.data import Dataset
from ablate.errors import AblateError
from ablate.study.grid import TrialSpec
from ablate.study.settings import Study
from ablate.targets import import_target
from ablate.training import backend
from ablate.training.failures import describe_exception, is_transient
from ablate.training.fused_steps import run_epochs
from ablate.training.records import TrialResult
from ablate.training.trial import (
    Attempt,
    EpochCallback,
    build_model,
    finish_trial,
    learning_rate_at,
    make_optimizer,
)

Pairs = list[tuple[Any, Any]]  # (a variable of the program, what it starts from for one trial)


@dataclass
class Member:
    """One trial of a fused group: its own model, and where its values sit in the program."""

    spec: TrialSpec
    params: dict[str, Any]  # the builder's resolved parameters for its cell
    model: Any  # the trial's own model (parameter counts, evaluation, what it learned)
    attempt: Attempt
    on_epoch: EpochCallback | None = None
    pairs: Pairs = field(default_factory=list)  # program variable -> own variable
    constants: Pairs = field(default_factory=list)  # program variable -> per-trial value
    diverged: bool = False


def train_group(
    study: Study,
    specs: Sequence[TrialSpec],
    dataset: Dataset,
    on_epoch: Sequence[EpochCallback | None] = (),
    on_progress: Callable[[int], None] | None = None,
) -> list[TrialResult]:
    """Train ``specs`` as one fused program; one result per trial, in order; never raises
    for a failing trial (a failure of the program itself fails every trial with it).
    ``on_progress`` gets the training examples seen since its last call, per trial."""
    keras = backend.import_keras()
    if backend.backend_name() != "jax":
        raise AblateError("fused training (run.fuse) needs the JAX backend: KERAS_BACKEND=jax")
    start = time.perf_counter()
    callbacks = list(on_epoch) + [None] * (len(specs) - len(on_epoch))
    members = [
        _member(study, s, dataset, start, cb) for s, cb in zip(specs, callbacks, strict=True)
    ]
    try:
        program = Program.build(keras, study, members, dataset)
        build_seconds = time.perf_counter() - start
        for m in members:
            m.attempt.phase = "train"
        program.train(members, on_progress)
        program.write_back(members)
    except Exception as err:
        return [_failed(m, err) for m in members]
    described = program.describe()  # once for the group: every member records the same
    return [_result(keras, study, m, dataset, described, build_seconds) for m in members]


def _member(
    study: Study, spec: TrialSpec, dataset: Dataset, start: float, cb: EpochCallback | None
) -> Member:
    """A trial's own model, built as an unfused trial builds it (seeded the same way)."""
    keras = backend.import_keras()
    model_spec = study.model.spec
    params = {**model_spec.defaults(), **study.model.builder_kwargs(), **spec.cell.as_dict()}
    model = build_model(study, spec, dataset)
    model.compile(optimizer=make_optimizer(keras, study.training),
                  **study.task_spec.compile_args(keras, dataset))  # fmt: skip
    attempt = Attempt(start=start)
    attempt.meta.update(
        backend=backend.backend_name(), versions=backend.versions(),
        params=int(model.count_params()),
        trainable_params=int(sum(int(np.prod(w.shape)) for w in model.trainable_weights)),
        device=backend.describe_device(),
    )  # fmt: skip
    return Member(spec, params, model, attempt, cb)


def _failed(member: Member, err: Exception) -> TrialResult:
    error = str(err) if isinstance(err, AblateError) else describe_exception(err)
    return TrialResult(
        status="failed", epochs=len(member.attempt.history),
        history=tuple(member.attempt.history),
        seconds=time.perf_counter() - member.attempt.start, error=error,
        error_type=type(err).__name__, transient=is_transient(err, member.attempt.phase),
        traceback=traceback.format_exc(), **member.attempt.meta,
    )  # fmt: skip


def _result(
    keras: Any, study: Study, m: Member, dataset: Dataset, fused: dict[str, Any], build: float
) -> TrialResult:
    """A trained member's record, as :func:`~ablate.training.trial.train_trial` makes it."""
    history = m.attempt.history
    train_seconds = sum(e.train_seconds for e in history)
    n = len(dataset.x_train)
    common: dict[str, Any] = {
        "epochs": len(history), "history": tuple(history), "build_seconds": build,
        "train_seconds": train_seconds,
        "images_per_second": n * len(history) / train_seconds if train_seconds > 0 else None,
        **m.attempt.meta,
    }  # fmt: skip
    _, y_test = study.task_spec.targets(dataset)
    try:
        result = finish_trial(keras, study, m.model, dataset, y_test, m.attempt, common)
    except Exception as err:
        return _failed(m, err)
    return replace(result, details={**result.details, "fused": fused})


@dataclass
class Program:
    """The compiled fused program: a template model, its step functions and the stacked state."""

    template: Any
    state: Any  # (trainable, non_trainable, optimizer, metrics), each a list of (K, ...) arrays
    fresh_metrics: Any  # the metrics' variables at zero, stacked
    study: Study
    dataset: Dataset
    steps: int = 0  # training steps done

    @classmethod
    def build(cls, keras: Any, study: Study, members: list[Member], dataset: Dataset) -> Program:
        template = _template(keras, study, members, dataset)
        replicates = template is members[0].model
        for m in members:
            m.pairs, m.constants = _match(template, m, replicates)
        return cls(template, *_stack(template, members), study, dataset)

    def describe(self) -> dict[str, Any]:
        k = len(self.state[0][0]) if self.state[0] else 0
        out: dict[str, Any] = {"group": int(k), "program": self.template.name}
        memory = _device_bytes()
        if memory is not None and k:
            out["device_bytes_per_trial"] = int(memory / k)
        return out

    def train(self, members: list[Member], on_progress: Callable[[int], None] | None) -> None:
        run_epochs(self, members, on_progress)

    def write_back(self, members: list[Member]) -> None:
        """Each trial's final values into its own model's variables."""
        trainable, non_trainable = self.state[0], self.state[1]
        values = dict(zip(map(id, self.template.trainable_variables), trainable, strict=True))
        values.update(
            zip(map(id, self.template.non_trainable_variables), non_trainable, strict=True)
        )
        for i, m in enumerate(members):
            for program_var, own_var in m.pairs:
                own_var.assign(np.asarray(values[id(program_var)][i]))

    def learning_rate(self) -> float:
        return learning_rate_at(self.study.training, self.steps)


def _template(keras: Any, study: Study, members: list[Member], dataset: Dataset) -> Any:
    """The model whose training step the group runs: the first trial's own model when all are
    replicates of one cell, else the model spec's fused builder over all their cells."""
    if len({m.spec.cell.label for m in members}) == 1:
        template = members[0].model
    else:
        build = import_target(study.model.spec.fused, "the fused model builder")
        keras.utils.set_random_seed(members[0].spec.seed)
        template = build(input_shape=dataset.input_shape, seed=members[0].spec.seed,
                         members=[m.params for m in members])  # fmt: skip
        template.compile(optimizer=make_optimizer(keras, study.training),
                         **study.task_spec.compile_args(keras, dataset))  # fmt: skip
    template.optimizer.build(template.trainable_variables)
    y_train, _ = study.task_spec.targets(dataset)
    # Keras builds its loss and metric trackers on the first batch; do it now, shapes only.
    template._symbolic_build(data_batch=(dataset.x_train[:2], y_train[:2]))
    return template


def _match(template: Any, member: Member, replicates: bool) -> tuple[Pairs, Pairs]:
    """Which variable of the trial's own model each program variable starts from, and the
    per-trial constants (gates); every own variable must find its place."""
    own_vars = [*member.model.trainable_variables, *member.model.non_trainable_variables]
    program_vars = [*template.trainable_variables, *template.non_trainable_variables]
    if replicates:  # the same builder, the same cell: the same variables in the same order
        if [tuple(v.shape) for v in own_vars] != [tuple(v.shape) for v in program_vars]:
            raise AblateError(
                f"the models of {member.spec.cell.label}'s replicates differ in their "
                "variables; the builder cannot be fused (run.fuse: off)"
            )
        return list(zip(program_vars, own_vars, strict=True)), []
    own = {layer.name: layer for layer in _layers(member.model)}
    pairs: Pairs = []
    constants: Pairs = []
    for layer in _layers(template):
        if hasattr(layer, "trial_values"):
            constants += layer.trial_values(member.params)
        if hasattr(layer, "adopt"):
            pairs += layer.adopt(own.get(layer.name))
        elif layer.name in own:
            pairs += list(zip(layer.variables, own[layer.name].variables, strict=True))
    placed = {id(o) for _, o in pairs}
    missing = [v.path for v in own_vars if id(v) not in placed]
    if missing:
        raise AblateError(f"the fused model has no place for {', '.join(missing[:3])} of "
                          f"{member.spec.cell.label}'s own model")  # fmt: skip
    return pairs, constants


def _layers(model: Any) -> list[Any]:
    """Every layer of a model, nested functional models opened up (not themselves listed)."""
    out = []
    for layer in model.layers:
        out += _layers(layer) if hasattr(layer, "layers") and layer.layers else [layer]
    return out


def _stack(template: Any, members: list[Member]) -> tuple[Any, Any]:
    """The group's state, each variable stacked over the trial axis, and zeroed metrics."""
    import jax.numpy as jnp

    def column(variables: list[Any]) -> list[Any]:
        rows = []
        for m in members:
            own = {id(p): o for p, o in m.pairs}
            consts = {id(p): v for p, v in m.constants}
            rows.append([
                consts[id(v)] if id(v) in consts
                else np.asarray(own[id(v)].value if id(v) in own else v.value)
                for v in variables
            ])  # fmt: skip
        return [jnp.stack([jnp.asarray(r[j]) for r in rows]) for j in range(len(variables))]

    metrics = column(template.metrics_variables)
    state = (
        column(template.trainable_variables),
        column(template.non_trainable_variables),
        column(template.optimizer.variables),
        metrics,
    )
    return state, metrics


def _device_bytes() -> int | None:
    """Memory the accelerator holds now (None on CPUs, where JAX does not say)."""
    import jax

    stats = jax.devices()[0].memory_stats() if jax.devices()[0].platform != "cpu" else None
    return None if not stats else int(stats.get("bytes_in_use", 0))
