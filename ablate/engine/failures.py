"""What a failed trial means: whether trying it again can help, and when to stop a study.

A trial fails with an exception. Some failures come back every time the same code meets the
same input -- an import error, a missing key, a shape that does not fit, a builder that
returns the wrong thing: *deterministic*; retrying them only spends the study's time. Others
depend on the moment -- memory taken by a neighbouring worker, a GPU or driver error, a
file system that hiccuped: *transient*, worth the study's ``run.retries``. The queue asks
:func:`is_transient` (recorded with the result) before it enqueues a retry.

And a study whose first trials all fail with the same error cannot succeed as it is:
:class:`FailureWatch` notices, so that the run stops and hands the rest of the trials back
instead of failing (and retrying) every one of them.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
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

#: How many of a run's first trials must fail the same way before the study is stopped.
FIRST_TRIALS = 3


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
_ABLATE_FILE = re.compile(r'^  File ".*[/\\]ablate[/\\](?!tests)[^"]*\.py"')


def without_ablate_frames(text: str) -> str:
    """A formatted traceback without ablate's own frames (each a ``  File`` line and the
    lines indented below it): what is left is the user's code and the libraries it called."""
    out: list[str] = []
    skipping = False
    for line in _ANSI.sub("", text or "").splitlines():
        if line.startswith("Traceback (most recent call last)"):
            continue  # the user's code, not a crash of ablate's
        if line.startswith("  File "):
            skipping = bool(_ABLATE_FILE.match(line))
        elif not line.startswith("    "):
            skipping = False
        if not skipping:
            out.append(line)
    return "\n".join(out).strip("\n")


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


def signature(error: str | None) -> str:
    """An error's first line with what differs between cells and runs of the same failure
    removed (numbers such as a cell's sizes, object addresses, temporary paths), so that the
    same failure in two cells compares equal."""
    first = (error or "").strip().splitlines()[0] if (error or "").strip() else ""
    first = re.sub(r"/tmp/[^\s'\"]+", "/tmp/?", first)
    return re.sub(r"0x[0-9a-fA-F]+|\d+(\.\d+)?", "#", first)


@dataclass
class FailureWatch:
    """Watches the first trials a run finishes; trips when they all failed the same way.

    It looks at the first ``min(FIRST_TRIALS, total)`` different trials (a retry of a trial
    already seen does not count again). One that completed or diverged, or a different error,
    means the study can succeed: the watch then stays quiet for the rest of the run.
    """

    total: int
    first: int = FIRST_TRIALS
    detail: str = ""  # the first failure's traceback, without ablate's frames
    _seen: dict[str, str | None] = field(default_factory=dict)
    _labels: list[str] = field(default_factory=list)
    _error: str = ""  # the first failure's message
    _settled: bool = False

    def observe(
        self, key: str, label: str, status: str, error: str | None, traceback: str = ""
    ) -> str | None:
        """Note a finished trial; returns why the study should stop, when it should."""
        needed = min(self.first, self.total)
        if self._settled or needed < 2 or key in self._seen:
            return None
        self._seen[key] = signature(error) if status == "failed" else None
        self.detail = self.detail or without_ablate_frames(traceback)
        self._error = self._error or (error or "").strip().split("\n", 1)[0]
        self._labels.append(label)
        kinds = set(self._seen.values())
        if None in kinds or len(kinds) > 1:
            self._settled = True
            return None
        if len(self._seen) < needed:
            return None
        self._settled = True
        return self._message(self._error or "an error", needed)

    def _message(self, error: str, count: int) -> str:
        cells = "; ".join(dict.fromkeys(self._labels))
        rest = self.total - count
        return (
            f"the first {count} trials all failed with the same error: {error} (cells: "
            f"{cells}). A study whose trials fail alike cannot succeed as it is, so the run "
            f"stopped instead of spending the other {rest} trial{'s' if rest != 1 else ''} "
            "on it; they are back in the queue. Fix the cause (the first failure's traceback "
            "is below; every one is in the traceback column of trials.parquet once final) and "
            "run the same command again: it retries the failed trials and trains the rest."
        )
