"""The checks before a run of ablate's own Keras loop: the data, the builder, the first model.

A study file that parses can still not run: the builder named as ``package.module:function``
may not exist or not take the study's factors, the dataset function may raise, the data may
not fit the task, the first cell's model may return the wrong thing or an output of the
wrong shape. These checks find each of these before any worker starts -- so that a mistake
costs seconds, not a study's worth of failed trials -- and report it as the user's (exit code
2), with the user's own traceback where their code raised:

1. the data is loaded once (a dataset function is called) and checked against itself, the
   task and the model's declared inputs; the task's trivial baselines are computed on it;
2. a user's builder is imported and its signature checked against what ablate passes;
3. the first cell's model is built on the data's input shape and run forward once on a few
   training examples: its output must have the task's shape and be finite.

Steps 2 and 3 import Keras. A coordinator makes them in a short-lived child process, sent a few
examples of the data (:func:`model_in_child`), so that it never holds a framework or a GPU;
where the calling process has imported Keras already (a notebook, the tests), they run there.
"""

from __future__ import annotations

import multiprocessing
import traceback
from dataclasses import replace
from multiprocessing.connection import Connection
from multiprocessing.process import BaseProcess

import numpy as np

from ablate.data import Dataset, check_dataset, read_dataset
from ablate.errors import AblateError, option
from ablate.study.grid import expand_trials
from ablate.study.settings import Study
from ablate.targets import user_code_error
from ablate.training import backend
from ablate.training.base import import_beside
from ablate.training.trial import build_model

#: Training examples the first cell's model is run forward on.
PROBE_EXAMPLES = 4


def check_fuse(study: Study) -> None:
    """A fused group size (``run.fuse``: a number above 1) needs the JAX backend, and a study
    whose replicates are seed streams (a fused group draws its noise from one stream)."""
    fuse, name = study.run.fuse, backend.backend_name()
    if isinstance(fuse, int) and fuse > 1 and study.streams.counts:
        raise AblateError(
            f"{study.source or study.name}: run.fuse: {fuse} trains trials together, and a "
            "group shares one source of noise, so it cannot keep seed streams apart "
            f"(replicates: {dict(study.streams.counts)}); set run.fuse: off, or give "
            "replicates as a count."
        )
    if isinstance(fuse, int) and fuse > 1 and name != "jax":
        raise AblateError(
            f"{study.source or study.name}: run.fuse: {fuse} trains trials together as one "
            f"JAX program, but the backend here is {name}. Run with KERAS_BACKEND=jax (JAX "
            "installed), or set run.fuse: off."
        )


def check_data(study: Study) -> Dataset:
    """Load the study's data once (a dataset function is called) and check it against
    itself, the task and the model's declared inputs; no framework is imported here."""
    import_beside(study)
    try:
        data = read_dataset(study.data, study.seed)
        check_dataset(data)
        study.task_spec.check_data(data)
        study.model.spec.check_inputs(data)
    except AblateError as err:
        raise AblateError(f"{study.source or study.name}: data: {err.raw}", err.detail) from None
    return data


def check_model(study: Study, data: Dataset) -> str:
    """Import a user's builder and check its signature, then build the first cell's model and
    run it forward (:func:`probe_model`); imports Keras."""
    import_beside(study)
    backend.import_keras()  # before the user's modules, which import it too: quietly
    spec = study.model.spec
    options = tuple(name for name, _ in study.model.parameters)
    try:
        spec.check_callable(options, study.factor_names)
    except AblateError as err:
        raise AblateError(
            f"{study.source or study.name}: model.builder: {err.raw}", err.detail
        ) from None
    return probe_model(study, data)


def sample(data: Dataset) -> Dataset:
    """A few examples of ``data`` that build and probe the same model as all of it (what a
    child process is sent): the first training examples, the classes named."""
    few = slice(0, PROBE_EXAMPLES)
    names = data.class_names
    if names is None and data.n_classes is not None:
        names = tuple(str(i) for i in range(data.n_classes))
    return replace(data, x_train=data.x_train[few], y_train=data.y_train[few],
                   x_test=data.x_test[few], y_test=data.y_test[few], class_names=names)  # fmt: skip


def probe_model(study: Study, data: Dataset) -> str:
    """Build the first cell's model and run it forward once on a few training examples;
    returns what was built, in words. Refuses a model that cannot be built, is not a Keras
    model, or whose output does not fit the task or is not finite."""

    keras = backend.import_keras()
    first = expand_trials(study)[0]
    spec = study.model.spec
    cell = f"the first cell ({first.cell.label})"
    builder = f"the model builder {spec.target}" if spec.is_users else f"the {spec.name} model"
    x = data.x_train[:PROBE_EXAMPLES]
    where = study.source or study.name
    try:
        model = build_model(study, first, data)
    except AblateError as err:
        raise AblateError(f"{where}: {builder}, building {cell}: {err.raw}", err.detail) from None
    except Exception as err:
        raise _model_error(f"{where}: {builder}, building {cell} for inputs of shape "
                           f"{data.input_shape},", err, spec.is_users) from None  # fmt: skip
    try:
        out = np.asarray(keras.ops.convert_to_numpy(model(x, training=False)))
    except Exception as err:
        raise _model_error(f"{where}: the model of {cell}, run forward on {len(x)} "
                           "training examples,", err, spec.is_users) from None  # fmt: skip
    expected = tuple(study.task_spec.output_shape(data))
    if tuple(out.shape[1:]) != expected:
        raise AblateError(
            f"{where}: the model of {cell} outputs shape {tuple(out.shape[1:])} per example when "
            f"run, not {expected} as the {study.task} task needs; check its last layers."
        )
    if not np.isfinite(out).all():
        raise AblateError(
            f"{where}: the model of {cell} outputs NaN or infinite values before any training "
            "(run forward on training examples); check its layers and their initialisation."
        )
    shape = "×".join(str(d) for d in expected)
    return f"{cell} builds ({int(model.count_params()):,} parameters; output {shape} per example)"


def _model_error(what: str, err: Exception, users: bool) -> AblateError:
    if users:
        return user_code_error(what, err)
    exception = "".join(traceback.format_exception_only(type(err), err)).strip().splitlines()
    return AblateError(
        f"{what} failed: {exception[0] if exception else type(err).__name__}. Check the "
        "model's settings (model: and the factors' levels) against the data's shape."
    )


# ---------------------------------------------------------------------------------------------
# In a child process

#: The child's one answer: ("ok", the model's summary), ("error", the problem it found in the
#: study) or ("bug", the traceback of anything else it raised).
_Answer = tuple[str, str | AblateError]


def model_in_child(study: Study, data: Dataset) -> str:
    """:func:`check_model` in a child process of its own (CPU only), its answer brought back."""
    ctx = multiprocessing.get_context("spawn")
    receive, send = ctx.Pipe(duplex=False)
    child = ctx.Process(target=_child, args=(study, data, send), name="ablate-checks",
                        daemon=True)  # fmt: skip
    child.start()
    send.close()
    try:
        answer = _wait(child, receive)
    finally:
        if child.is_alive():
            child.kill()
        child.join()
        receive.close()
    if answer is None:
        raise _crashed(study, child.exitcode)
    kind, value = answer
    if isinstance(value, AblateError):  # kind "error"
        raise value
    if kind == "bug":
        raise RuntimeError(f"the checks before the run failed in their process:\n{value}")
    return value


def _crashed(study: Study, code: int | None) -> AblateError:
    """The error for a child that ended without an answer, by its exit code."""
    how = f"signal {-code}" if isinstance(code, int) and code < 0 else f"exit code {code}"
    return AblateError(
        f"{study.source or study.name}: building the first cell's model (in a process of its "
        f"own) crashed with {how}, which points at native code in the model builder or the "
        f"machine running out of memory; run `ablate run STUDY` with {option('dry_run', 'True')} "
        "to see it happen in "
        "the foreground."
    )


def _wait(child: BaseProcess, receive: Connection) -> _Answer | None:
    """The child's answer, or None if it ended without one."""
    while True:
        if receive.poll(0.2):
            return _receive(receive)
        if not child.is_alive():
            return _receive(receive) if receive.poll(0) else None


def _receive(receive: Connection) -> _Answer | None:
    """The answer on the pipe; None where it closed without one."""
    try:
        answer: _Answer = receive.recv()
    except EOFError:
        return None
    return answer


def _child(study: Study, data: Dataset, send: Connection) -> None:
    """The child's side: CPU only, a couple of threads, then the model; one answer back."""
    backend.configure_process(threads=min(2, backend.cpu_count()), gpu="")
    try:
        answer: _Answer = ("ok", check_model(study, data))
    except AblateError as err:
        answer = ("error", err)
    except Exception:
        answer = ("bug", traceback.format_exc())
    send.send(answer)
    send.close()
