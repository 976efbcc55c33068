"""Stopping a study that cannot succeed: its first trials all fail with the same error.

A study whose first trials all fail the same way -- a bug that shows only in training, an
environment that lacks what the workers import -- would otherwise fail (and retry) every one
of its trials. :class:`FailureWatch` notices after the first three, so that the run stops,
hands the rest back, and says which error and where it was raised.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

#: How many of a run's first trials must fail the same way before the study is stopped.
FIRST_TRIALS = 3

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


def signature(error: str | None) -> str:
    """An error's first line with what differs between cells and runs of the same failure
    removed (numbers such as a cell's sizes, object addresses, paths such as a trial's own
    folder), so that the same failure in two cells compares equal."""
    first = (error or "").strip().splitlines()[0] if (error or "").strip() else ""
    first = re.sub(r"(?<![\w.])/[^\s'\"()]+", "/?", first)
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
        failed = status in ("failed", "stalled", "timed out")
        self._seen[key] = signature(error) if failed else None
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
        return (
            f"the first {count} trials all failed with the same error: {error} (cells: "
            f"{cells}). A study whose trials fail alike cannot succeed as it is, so the run "
            "stopped."
        )


def stopped_tally(failed: int, waiting: int) -> str:
    """What the stop left, counted in storage after it (trials that fail in a blink may all
    have failed before the workers heard of it), and the way out."""
    back = (f"{waiting} trial{'s are' if waiting != 1 else ' is'} back in the queue, untrained"
            if waiting else "no trial was left to hand back")  # fmt: skip
    return (
        f" {failed} trial{'s' if failed != 1 else ''} failed in all; {back}. Fix the cause (the "
        "first failure's traceback is below; every one is in the traceback column of "
        "trials.parquet) and run the same command again: it retries the failed trials and "
        "trains the rest."
    )
