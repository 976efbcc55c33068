"""A user's code named as ``"package.module:function"``: resolved, checked, and blamed fairly.

A study names a user's model builder (``model.builder``), dataset function (``data.dataset``)
or training function the same way. This module is the one place that

- recognises such a name (:data:`TARGET_RE`);
- imports it and returns the function, with a message that says which of the three steps
  failed (the module is not on the path, the module raised while importing, it has no such
  function) and, where the user's own code raised, that code's traceback frames only;
- checks the function's signature against the keyword arguments ablate will pass, so that
  a builder that does not take a factor fails before any trial, not in every one of them;
- turns an exception raised by the user's function into an :class:`AblateError` (exit 2):
  the error is the user's to fix, not a bug in ablate.

Nothing here imports Keras.
"""

from __future__ import annotations

import difflib
import importlib
import inspect
import re
import sys
import traceback
from collections.abc import Callable, Iterable
from pathlib import Path
from types import ModuleType
from typing import Any

from ablate.errors import AblateError

#: ``package.module:function``: a dotted module path, a colon, a function name.
TARGET_RE = re.compile(r"^[A-Za-z_][\w.]*:[A-Za-z_]\w*$")

_ABLATE_DIR = str(Path(__file__).resolve().parent)


def is_target(name: object) -> bool:
    """Whether ``name`` is written as ``package.module:function``."""
    return isinstance(name, str) and TARGET_RE.match(name) is not None


def import_target(target: str, role: str) -> Callable[..., Any]:
    """The function ``target`` names; ``role`` says what it is for, in messages ("the model
    builder", "the dataset function"). Every failure is an :class:`AblateError`."""
    module_name, _, function_name = target.partition(":")
    try:
        module = importlib.import_module(module_name)
    except ModuleNotFoundError as err:
        if err.name is not None and module_name.startswith(err.name):  # the module itself
            raise AblateError(
                f"{role} {target} cannot be imported: no module named {err.name} is on the "
                "Python path. Install its package, put the file beside the study file, or add "
                "its folder to PYTHONPATH."
            ) from None
        raise user_code_error(f"{role} {target} cannot be imported: its module", err) from None
    except Exception as err:  # the user's module raised while it was imported
        raise user_code_error(f"{role} {target} cannot be imported: its module", err) from None
    function: object = getattr(module, function_name, None)
    if function is None:
        names = [n for n, v in vars(module).items() if callable(v) and not n.startswith("_")]
        close = difflib.get_close_matches(function_name, names, n=1)
        hint = f" (did you mean {module_name}:{close[0]}?)" if close else ""
        raise AblateError(
            f"{role} {target} cannot be found: the module {module_name} "
            f"({_where(module)}) has no attribute {function_name}{hint}. Check the name "
            "after the colon."
        )
    if not callable(function):
        raise AblateError(
            f"{role} {target} is a {type(function).__name__}, not a function; name a "
            "function after the colon."
        )
    return function


def check_keywords(
    function: Callable[..., Any],
    *,
    role: str,
    target: str,
    given: Iterable[str],
    protocol: Iterable[str] = (),
    origin: Callable[[str], str] = lambda name: "",
) -> None:
    """Refuse a function that cannot be called with the keyword arguments ablate will pass.

    ``given``: the arguments always passed (the study's options and factors), each of which
    the function must take; ``protocol``: the arguments ablate passes only where the
    signature names them (``input_shape``, ``seed`` ...), which may satisfy a required
    parameter. ``origin`` says where a given argument comes from, for the message.
    """
    try:
        signature = inspect.signature(function)
    except (TypeError, ValueError):
        return  # a builtin or C function: nothing to check ahead
    params = signature.parameters.values()
    if any(p.kind is inspect.Parameter.VAR_KEYWORD for p in params):
        takes = None  # **kwargs: every keyword is taken
    else:
        takes = {p.name for p in params if p.kind in (p.POSITIONAL_OR_KEYWORD, p.KEYWORD_ONLY)}
    given = list(dict.fromkeys(given))
    names = ", ".join(sorted(takes or ())) or "none"
    for name in given:
        if takes is not None and name not in takes:
            raise AblateError(
                f"{role} {target} does not take the keyword argument '{name}'{origin(name)}; "
                f"its keyword parameters are {names}. Add '{name}' to its signature (or "
                "**kwargs), or remove it from the study file."
            )
    offered = set(given) | set(protocol)
    for p in params:
        required = p.default is inspect.Parameter.empty and p.kind not in (
            p.VAR_POSITIONAL,
            p.VAR_KEYWORD,
        )
        if required and (p.kind is p.POSITIONAL_ONLY or p.name not in offered):
            raise AblateError(
                f"{role} {target} requires the argument '{p.name}', which ablate does not "
                f"pass (it passes {', '.join(sorted(offered)) or 'nothing'} by keyword). Give "
                f"'{p.name}' a default, or set it in the study file."
            )


def protocol_arguments(function: Callable[..., Any], protocol: dict[str, Any]) -> dict[str, Any]:
    """The arguments of ``protocol`` that ``function`` takes by name (all of them if it takes
    ``**kwargs``, or where its signature cannot be read): ablate passes ``seed``,
    ``input_shape``, ``report`` ... only to functions that ask for them."""
    try:
        signature = inspect.signature(function)
    except (TypeError, ValueError):
        return protocol
    if any(p.kind is inspect.Parameter.VAR_KEYWORD for p in signature.parameters.values()):
        return protocol
    return {k: v for k, v in protocol.items() if k in signature.parameters}


def call_user(function: Callable[..., Any], what: str, /, **kwargs: Any) -> Any:
    """Call a user's function; an exception it raises becomes an :class:`AblateError` that
    names ``what`` failed and carries the function's own traceback frames."""
    try:
        return function(**kwargs)
    except AblateError:
        raise
    except Exception as err:
        raise user_code_error(what, err) from None


def user_code_error(what: str, err: BaseException) -> AblateError:
    """An exception raised in a user's code as an :class:`AblateError`: the message says
    ``what`` failed and with which exception; the detail is the traceback of the user's
    frames only (ablate's and the import machinery's left out)."""
    exception = "".join(traceback.format_exception_only(type(err), err)).strip()
    first = exception.splitlines()[0] if exception else type(err).__name__
    message = (
        f"{what} raised {first}. The error is in that code, not in ablate: fix it (its "
        "traceback is below) and run the same command again."
    )
    return AblateError(message, detail=user_frames(err))


def user_frames(err: BaseException) -> str:
    """The traceback of ``err`` (most recent call last) without ablate's frames or Python's
    import machinery, and without the "Traceback" header: it is the user's, not a crash."""
    frames = [
        frame
        for frame in traceback.extract_tb(err.__traceback__)
        if not frame.filename.startswith(_ABLATE_DIR) and not frame.filename.startswith("<frozen")
    ]
    lines = [*traceback.format_list(frames), *traceback.format_exception_only(type(err), err)]
    return "".join(lines).rstrip("\n")


def _where(module: ModuleType) -> str:
    path = getattr(module, "__file__", None)
    return f"from {path}" if path else f"a namespace package on {sys.path[0] or '.'}"
