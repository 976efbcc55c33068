"""What a failed trial means: whether trying it again can help, and how it reads.

A trial fails with an exception. Some failures come back every time the same code meets the
same input -- an import error, a missing key, a shape that does not fit, a builder that
returns the wrong thing: *deterministic*; retrying them only spends the study's time. Others
depend on the moment -- memory taken by a neighbouring worker, a GPU or driver error, a
file system that hiccuped: *transient*, worth the study's ``run.retries``. The queue asks
:func:`is_transient` (recorded with the result) before it enqueues a retry.

A failure is recorded as ``Type: message``; :func:`describe_exception` makes that readable
where Keras wrapped the error of a layer in paragraphs of its own.
"""

from __future__ import annotations

import re
from typing import Literal

Phase = Literal["build", "train"]

#: Exception classes (by name, anywhere in the class's ancestry) of resources and devices:
#: TensorFlow's out-of-memory and runtime errors, PyTorch's CUDA out-of-memory, XLA's.
_TRANSIENT_CLASSES = frozenset(
    {
        "ResourceExhaustedError", "OutOfMemoryError", "UnavailableError", "AbortedError",
        "InternalError", "DeadlineExceededError", "CancelledError", "XlaRuntimeError",
    }
)  # fmt: skip
_TRANSIENT_TEXT = re.compile(r"out of memory|resource.?exhausted|cuda|cudnn|nccl|device", re.I)


def is_transient(err: BaseException, phase: Phase) -> bool:
    """Whether trying the trial again may succeed.

    Memory, the operating system and devices: yes. A ``RuntimeError`` while training: yes
    (frameworks raise it for device failures). Anything else -- and anything at all while the
    model is being built, except running out of memory -- comes back every time: no.
    """
    if isinstance(err, (MemoryError, OSError)):
        return True
    if any(cls.__name__ in _TRANSIENT_CLASSES for cls in type(err).__mro__):
        return True
    if _TRANSIENT_TEXT.search(str(err)):
        return phase == "train" or "memory" in str(err).lower()
    return phase == "train" and isinstance(err, RuntimeError)


_ANSI = re.compile(r"\x1b\[[0-9;]*m")


_KERAS_WRAPPER = re.compile(r"^Exception encountered when calling (\S+?)\.?\n+(.*?)(\n\n|$)", re.S)


def describe_exception(err: BaseException) -> str:
    """``Type: message`` for a trial's record, readable: terminal colours removed, and the
    message Keras wraps around an error raised inside a layer reduced to the layer and the
    error ("RuntimeError in Dense.call(): ...")."""
    message = err.args[0] if isinstance(err, KeyError) and err.args else err  # str() quotes it
    text = _ANSI.sub("", str(message)).strip()
    wrapped = _KERAS_WRAPPER.match(text)
    if wrapped:
        return f"{type(err).__name__} in {wrapped.group(1)}: {wrapped.group(2).strip()}"
    return f"{type(err).__name__}: {text}" if text else type(err).__name__
