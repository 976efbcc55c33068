"""The fused program's loop: epochs of vmapped training steps, then a vmapped evaluation.

Keras's JAX trainer states its steps as pure functions of (state, batch) -> (logs, state)
(``train_step``, ``test_step``); ``jax.vmap`` runs them for every trial of a group at once,
each on its own batch (training) or all on the same one (the test set), and ``jax.jit``
compiles ``steps_per_execution`` steps into one call with ``lax.scan``. What Keras's ``fit``
does around them is done here the same way: metrics reset at every epoch's start, the epoch's
values are the running means its last step returns, the test set is evaluated in order in
batches of ``eval_batch_size``. (Types are left loose here: the group and its members are
:class:`ablate.training.fused.Program` and ``Member``, which import this module.)
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

import numpy as np

from ablate.training import order
from ablate.training.records import EpochRecord
from ablate.training.trial import PROGRESS_EVERY, all_finite


def run_epochs(program: Any, members: list[Any], on_progress: Callable[[int], None] | None) -> None:
    """Train the group for the study's epochs, recording each live trial's epochs."""
    import jax.numpy as jnp

    study, data = program.study, program.dataset
    settings, task = study.training, study.task_spec
    y_train, y_test = task.targets(data)
    x = jnp.asarray(data.x_train)
    y = x if y_train is data.x_train else jnp.asarray(y_train)
    train = _train_function(program.template, same=y is x)
    test = _test_function(program.template)
    for epoch in range(settings.epochs):
        if all(m.diverged for m in members):
            return
        started = time.perf_counter()
        program.state = (*program.state[:3], [jnp.copy(a) for a in program.fresh_metrics])
        logs = _train_epoch(program, members, train, x, y, epoch, on_progress)
        train_logs = _per_trial(logs, len(members))
        train_seconds = time.perf_counter() - started
        test_logs: list[dict[str, float]] = [{} for _ in members]
        if settings.validate_each_epoch:
            test_logs = evaluate(program, test, data.x_test, y_test)
        eval_seconds = time.perf_counter() - started - train_seconds
        for m, tr, te in zip(members, train_logs, test_logs, strict=True):
            _record(program, m, epoch, tr, te, train_seconds, eval_seconds)


def _train_epoch(
    program: Any, members: list[Any], train: Any, x: Any, y: Any, epoch: int,
    on_progress: Callable[[int], None] | None,
) -> Any:  # fmt: skip
    """One epoch: each trial's own batches, ``steps_per_execution`` steps per call."""
    settings = program.study.training
    n, size = len(program.dataset.x_train), settings.batch_size
    per_trial = [order.permutation(m.spec.seed, epoch, n) for m in members]
    full = n // size
    chunks = []
    if full:  # (steps, K, batch)
        idx = np.stack([p[: full * size].reshape(full, size) for p in per_trial], axis=1)
        every = settings.steps_per_execution
        chunks = [idx[i : i + every] for i in range(0, full, every)]
    if n % size:  # the last, partial batch
        chunks.append(np.stack([p[full * size :] for p in per_trial])[None])
    reported, unreported, logs = time.perf_counter(), 0, None
    for chunk in chunks:
        logs, program.state = train(program.state, x, y, chunk)
        program.steps += len(chunk)
        unreported += chunk.shape[0] * chunk.shape[2]
        if on_progress is not None and time.perf_counter() - reported >= PROGRESS_EVERY:
            on_progress(unreported)
            reported, unreported = time.perf_counter(), 0
    return logs


def evaluate(program: Any, test: Any, x_test: np.ndarray, y_test: np.ndarray) -> list[dict]:
    """Every trial's test-set values (Keras's ``evaluate``: batches in order, running means)."""
    import jax.numpy as jnp

    size = program.study.training.eval_batch_size
    trainable, non_trainable = program.state[0], program.state[1]
    state = (trainable, non_trainable, [jnp.copy(a) for a in program.fresh_metrics])
    logs = None
    for i in range(0, len(x_test), size):
        xb = x_test[i : i + size]
        yb = xb if y_test is x_test else y_test[i : i + size]
        logs, state = test(state, xb, yb)
    return [{f"val_{k}": v for k, v in d.items()} for d in _per_trial(logs, len(trainable[0]))]


def _record(
    program: Any, member: Any, epoch: int, train: dict[str, float], test: dict[str, float],
    train_seconds: float, eval_seconds: float,
) -> None:  # fmt: skip
    """One epoch of one trial, as an unfused trial records it; a trial whose loss is no
    longer finite is diverged and records nothing more."""
    if member.diverged:
        return
    task = program.study.task_spec
    values = task.from_logs(train, "train")
    values.update(task.from_logs(test, "test") if test else {})
    record = EpochRecord(epoch=epoch + 1, values=values, learning_rate=program.learning_rate(),
                         train_seconds=train_seconds, eval_seconds=eval_seconds)  # fmt: skip
    member.attempt.history.append(record)
    member.diverged = not all_finite(record)
    if member.on_epoch is not None:
        member.on_epoch(record)


def _per_trial(logs: Any, k: int) -> list[dict[str, float]]:
    """{name: (K,) array} -> one {name: float} per trial."""
    arrays = {name: np.asarray(value) for name, value in (logs or {}).items()}
    return [{name: float(a[i]) for name, a in arrays.items()} for i in range(k)]


def _train_function(template: Any, same: bool) -> Any:
    """jit(scan over steps of vmap(train_step)); ``idx`` (steps, K, batch) picks each trial's
    examples from the training set on the device."""
    import jax

    step = jax.vmap(template.train_step)

    def many(state: Any, x: Any, y: Any, idx: Any) -> Any:
        def one(state: Any, i: Any) -> Any:
            xb = x[i]  # (K, batch, ...)
            logs, state = step(state, (xb, xb if same else y[i]))
            return state, logs

        state, logs = jax.lax.scan(one, state, idx)
        return jax.tree.map(lambda a: a[-1], logs), state

    return jax.jit(many, donate_argnums=0)


def _test_function(template: Any) -> Any:
    """jit(vmap(test_step)), every trial on the same batch."""
    import jax

    step = jax.vmap(template.test_step, in_axes=(0, None))
    return jax.jit(lambda state, xb, yb: step(state, (xb, yb)))
