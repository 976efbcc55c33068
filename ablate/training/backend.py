"""The Keras backend in this process: set up before import, imported quietly, described after.

Threads and GPU pinning must be decided before the framework is imported, through its
environment variables; that is what :func:`configure_process` does for TensorFlow, JAX and
PyTorch alike, so a worker process can share a machine with others without fighting over
cores or GPU memory.
"""

from __future__ import annotations

import contextlib
import functools
import importlib.util
import os
import platform
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Callable, Iterator
from importlib import metadata
from types import ModuleType


def configure_process(*, threads: int | None = None, gpu: str | None = None) -> None:
    """Set thread counts and GPU visibility for the Keras backend, before it is imported.

    ``threads``: compute threads for this process (None: the framework's default, all cores).
    ``gpu``: the GPU index this process may use ("" hides every GPU; None leaves it as is).
    Frameworks are also told to allocate GPU memory as needed instead of grabbing the card,
    so that several workers can share one GPU.
    """
    # Level 3 also hides the "failed call to cuInit" error TensorFlow logs on GPU-less machines.
    no_gpu = gpu == "" or (gpu is None and gpu_count() == 0)
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3" if no_gpu else "2")
    os.environ.setdefault("TF_FORCE_GPU_ALLOW_GROWTH", "true")
    os.environ.setdefault("XLA_PYTHON_CLIENT_PREALLOCATE", "false")
    if gpu is not None:
        os.environ["CUDA_VISIBLE_DEVICES"] = gpu
    if threads is not None:
        n = str(threads)
        os.environ["OMP_NUM_THREADS"] = n
        os.environ["MKL_NUM_THREADS"] = n
        os.environ["TF_NUM_INTRAOP_THREADS"] = n
        os.environ["TF_NUM_INTEROP_THREADS"] = "1" if threads == 1 else "2"
        flags = os.environ.get("XLA_FLAGS", "")
        if threads == 1 and "xla_cpu_multi_thread_eigen" not in flags:
            flags += " --xla_cpu_multi_thread_eigen=false intra_op_parallelism_threads=1"
        os.environ["XLA_FLAGS"] = flags.strip()


def import_keras() -> ModuleType:
    """Import Keras (and its backend) with the framework's start-up chatter kept off stderr.

    TensorFlow's C++ logging prints several lines at import and at the first device use that no
    environment variable silences; they are captured and shown only if either fails.
    """
    if "keras" in sys.modules:
        return sys.modules["keras"]
    choose_backend()
    with _captured_stderr() as captured:
        try:
            import keras

            # The first tensor makes the backend probe its devices, and TensorFlow's CUDA build
            # logs "failed call to cuInit" there on a machine without a GPU, whatever
            # TF_CPP_MIN_LOG_LEVEL says (seen with TensorFlow 2.21 in `ablate run --dry-run`).
            keras.ops.convert_to_tensor(0.0)
        except BaseException:
            sys.stderr.write(captured())
            raise
    if keras.backend.backend() == "torch" and os.environ.get("OMP_NUM_THREADS"):
        import torch

        torch.set_num_threads(int(os.environ["OMP_NUM_THREADS"]))
    module: ModuleType = keras  # an import without type information: Any to the checker
    return module


#: Keras's backends, each with the install extra that brings it and Keras.
BACKENDS = {"tensorflow": "ablate[tensorflow]", "jax": "ablate[jax]", "torch": "ablate[torch]"}


def missing_keras() -> tuple[str, str] | None:
    """Why Keras cannot run in this environment and the way out, in words (None: it can).
    Asked without importing anything: the core install (a function's or a program's studies,
    the analysis) has no deep-learning framework."""
    wanted = os.environ.get("KERAS_BACKEND")
    install = " or ".join(f"pip install '{extra}'" for extra in BACKENDS.values())
    install = f"install Keras with a backend ({install})"
    if wanted and wanted not in (*BACKENDS, "numpy", "openvino"):
        return (f"KERAS_BACKEND={wanted} is not a Keras backend",
                f"set KERAS_BACKEND to {', '.join(BACKENDS)}, or unset it")  # fmt: skip
    if importlib.util.find_spec("keras") is None:
        return "Keras is not installed", install
    if wanted and wanted != "numpy" and importlib.util.find_spec(wanted) is None:
        return f"KERAS_BACKEND={wanted} names a backend that is not installed", install
    if not wanted and not any(importlib.util.find_spec(name) for name in BACKENDS):
        return "no Keras backend (TensorFlow, JAX or PyTorch) is installed", install
    return None


def choose_backend() -> None:
    """Without KERAS_BACKEND, Keras uses TensorFlow: where it is not installed but JAX or
    PyTorch is, use that instead (a GPU machine without TensorFlow needs no setting)."""
    if os.environ.get("KERAS_BACKEND") or importlib.util.find_spec("tensorflow") is not None:
        return
    for name in ("jax", "torch"):
        if importlib.util.find_spec(name) is not None:
            os.environ["KERAS_BACKEND"] = name
            return


@contextlib.contextmanager
def _captured_stderr() -> Iterator[Callable[[], str]]:
    """Point file descriptor 2 at a temporary file; yield a function that reads it back."""
    try:
        fd = sys.stderr.fileno()
    except (AttributeError, OSError, ValueError):  # stderr replaced (pytest capture, IDEs)
        yield lambda: ""
        return
    sys.stderr.flush()
    saved = os.dup(fd)
    with tempfile.TemporaryFile(mode="w+b") as tmp:
        os.dup2(tmp.fileno(), fd)
        try:
            yield lambda: (tmp.seek(0), tmp.read().decode(errors="replace"))[1]
        finally:
            sys.stderr.flush()
            os.dup2(saved, fd)
            os.close(saved)


def backend_name() -> str:
    """The Keras backend that is (or will be) used: KERAS_BACKEND, else Keras's default (or
    the installed one, see :func:`choose_backend`)."""
    if "keras" in sys.modules:
        return str(sys.modules["keras"].backend.backend())
    choose_backend()
    return os.environ.get("KERAS_BACKEND", "tensorflow")


@functools.cache
def describe_device() -> str:
    """ "cpu" or the name of the GPU this process computes on (Keras imported); asked once
    per process, as a trial's record and its choice of XLA both need it."""
    backend = backend_name()
    try:
        if backend == "jax":
            import jax

            device = jax.devices()[0]
            return "cpu" if device.platform == "cpu" else f"gpu:{device.device_kind}"
        if backend == "torch":
            import torch

            if torch.cuda.is_available():
                return f"gpu:{torch.cuda.get_device_name(0)}"
            return "cpu"
        if backend == "tensorflow":
            import tensorflow as tf

            gpus = tf.config.list_logical_devices("GPU")
            if gpus:
                details = tf.config.experimental.get_device_details(
                    tf.config.list_physical_devices("GPU")[0]
                )
                return f"gpu:{details.get('device_name', gpus[0].name)}"
    except Exception:  # a description must never fail a trial
        return "unknown"
    return "cpu"


def versions() -> dict[str, str]:
    """Versions of Python and the libraries that shape a trial's numbers."""
    out = {"python": platform.python_version()}
    for name in ("ablate", "keras", "tensorflow", "jax", "torch", "numpy", "optuna"):
        with contextlib.suppress(metadata.PackageNotFoundError):
            out[name] = metadata.version(name)
    return out


def gpu_count() -> int:
    """GPUs this process may use, without importing a framework (nvidia-smi, then the env)."""
    visible = os.environ.get("CUDA_VISIBLE_DEVICES")
    if visible is not None and visible.strip() in ("", "-1"):
        return 0
    smi = shutil.which("nvidia-smi")
    if smi is None:
        return 0
    try:
        out = subprocess.run([smi, "-L"], capture_output=True, text=True, timeout=20).stdout
    except (OSError, subprocess.SubprocessError):
        return 0
    count = sum(1 for line in out.splitlines() if line.startswith("GPU "))
    if visible:
        count = min(count, len([v for v in visible.split(",") if v.strip()]))
    return count


def cpu_count() -> int:
    """Cores this process may run on (respects CPU affinity and cgroup-pinned sets, and in a
    SLURM task the CPUs it was given, which a cluster without CPU binding does not pin)."""
    try:
        cores = len(os.sched_getaffinity(0))
    except AttributeError:  # not Linux
        cores = os.cpu_count() or 1
    given = os.environ.get("SLURM_CPUS_PER_TASK", "")
    return min(cores, int(given)) if given.isdigit() and int(given) > 0 else cores
