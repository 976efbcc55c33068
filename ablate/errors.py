"""The one exception type that means "the user can fix this": the CLI prints it and exits 2."""

from __future__ import annotations

from typing import Any


class AblateError(Exception):
    """A problem with the user's input or environment, with the way out in its message.

    The message is one paragraph meant for a person: what is wrong, where, and what to do.
    ``detail`` is what the person needs below it, as it is (the traceback of their own code
    that failed, say), or "". The CLI prints both without ablate's traceback and exits with
    code 2. It survives pickling, so a check run in a child process reports it intact.
    """

    exit_code = 2

    def __init__(self, message: str, detail: str = "") -> None:
        super().__init__(message)
        self.detail = detail

    def __reduce__(self) -> tuple[Any, ...]:
        return (type(self), (str(self), self.detail))


class StudyFileError(AblateError):
    """A study file that cannot be parsed or does not follow the schema."""


def disk_full(err: BaseException) -> AblateError | None:
    """The error to report for a full disk (``err`` is, or wraps, ENOSPC): free some space and
    run the same command again; None for any other error."""
    import errno

    seen: set[int] = set()
    current: BaseException | None = err
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        if getattr(current, "errno", None) == errno.ENOSPC or "No space left" in str(current):
            where = getattr(current, "filename", None)
            place = f" holding {where}" if where else ""
            return AblateError(
                f"the disk{place} is full (no space left on the device). Free some space and "
                "run the same command again: every trial finished before is safe in storage, "
                "and the run carries on where it stopped."
            )
        current = current.__cause__ or current.__context__
    return None
