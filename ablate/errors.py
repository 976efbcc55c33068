"""The one exception type that means "the user can fix this": the CLI prints it and exits 2."""

from __future__ import annotations


class AblateError(Exception):
    """A problem with the user's input or environment, with the way out in its message.

    The message is one paragraph meant for a person: what is wrong, where, and what to do.
    The CLI prints it without a traceback and exits with code 2.
    """

    exit_code = 2


class StudyFileError(AblateError):
    """A study file that cannot be parsed or does not follow the schema."""
