"""The one exception type that means "the user can fix this": the CLI prints it and exits 2.

A message that names one of the library's options (an argument of :func:`ablate.analyze` or
:func:`ablate.run_study`, which the command line takes as a flag) writes it with
:func:`option`: ``str(error)`` then says ``margin=D``, as a Python user passes it, and the CLI
says ``--margin D``, as its user types it (:meth:`AblateError.render`).
"""

from __future__ import annotations

import re
from typing import Any

_OPTION = re.compile("\u27e8([^|\u27e9]*)\\|([^|\u27e9]*)\\|([^\u27e9]*)\u27e9")


def option(name: str, value: str = "", flag: str = "") -> str:
    """An option named in a message: ``name`` as the library's parameter, ``value`` what to
    pass, ``flag`` the command line's spelling where it is not ``--name`` (see the module)."""
    return f"\u27e8{name}|{value}|{flag}\u27e9"


def render_options(text: str, *, flags: bool) -> str:
    """``text`` with every :func:`option` written as the command line's flag (``flags``) or as
    a Python keyword argument."""

    def one(m: re.Match[str]) -> str:
        name, value, flag = m[1], m[2], m[3]
        if flags:  # a switch's value (True) is the flag itself
            spelled = flag or "--" + name.replace("_", "-")
            return f"{spelled} {value}" if value and value not in ("True", "False") else spelled
        return f"{name}={value}" if value else name

    return _OPTION.sub(one, text)


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

    def __str__(self) -> str:
        return render_options(super().__str__(), flags=False)

    @property
    def raw(self) -> str:
        """The message with its options unrendered (to pass on to another error)."""
        return super().__str__()

    def render(self, *, flags: bool) -> str:
        """The message with its options written as flags (the CLI) or as parameters."""
        return render_options(super().__str__(), flags=flags)

    def __reduce__(self) -> tuple[Any, ...]:
        return (type(self), (super().__str__(), self.detail))


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
