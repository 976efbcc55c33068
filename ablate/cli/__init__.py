"""The ``ablate`` command: parse arguments, call the library, print, choose the exit code.

Exit codes: 0 done; 1 an unexpected error (a bug: the traceback is shown); 2 a problem the
user can fix (the message says how); 130 interrupted with Ctrl-C (a rerun resumes); 141 the
output's reader went away (``| head``). The parser is :mod:`ablate.cli.parser` (the CLI
reference is generated from it), the commands :mod:`ablate.cli.commands`; the library is
imported lazily, so that ``ablate analyze`` starts without a training framework.
"""

from __future__ import annotations

import logging
import os
import sys
import traceback
from collections.abc import Sequence

from ablate.cli.parser import build_parser
from ablate.errors import AblateError, disk_full
from ablate.secrets import scrub

__all__ = ["build_parser", "main"]


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.WARNING, format="ablate: %(message)s", stream=sys.stderr)
    try:
        code: int = args.handler(args)  # argparse's values are untyped
        return code
    except AblateError as err:
        _print_error(err)
        return err.exit_code
    except KeyboardInterrupt:
        print("ablate: interrupted", file=sys.stderr)
        return 130
    except BrokenPipeError:  # `ablate analyze ... | head`: the reader has what it wanted
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())  # no error at exit
        return 141  # as a shell reports a process ended by SIGPIPE
    except Exception as err:  # a full disk is the user's to fix; anything else is a bug
        full = disk_full(err)
        if full is not None:
            _print_error(full)
            return full.exit_code
        _report_bug()
        return 1


def _report_bug() -> None:
    """A bug: show where, but never a storage password."""
    print(
        "ablate: unexpected error (a bug in ablate; please report it with this output):\n"
        + scrub(traceback.format_exc()),
        file=sys.stderr,
    )


def _print_error(err: AblateError) -> None:
    """The message as one paragraph, then its detail (the user's own traceback) as it is."""
    message = " ".join(err.render(flags=True).splitlines())  # one paragraph
    print(f"ablate: error: {scrub(message)}", file=sys.stderr)
    if err.detail:
        print(scrub(err.detail), file=sys.stderr)
