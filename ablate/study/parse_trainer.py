"""Reading a study that trains with the user's own function: ``trainer:`` and ``responses:``.

``trainer:`` is ``"package.module:function"``, or a mapping with ``function:`` and
``options:`` (keyword arguments every trial gets). ``responses:`` declares what the function
returns (:class:`~ablate.tasks.declared.Response`: the direction, the range, the trivial
baseline). ``model:``, ``training:`` and ``data:`` describe ablate's own Keras loop, so such a
study refuses them rather than silently ignoring them. Nothing is imported here: the function
is resolved and its signature checked before a run (:mod:`ablate.execution.preflight`).
"""

from __future__ import annotations

from typing import Any

from ablate.study.reading import (
    IDENTIFIER,
    RESERVED_NAMES,
    Reader,
    hashable,
    is_identifier,
    reserved_message,
)
from ablate.study.settings import TrainerSettings
from ablate.targets import is_target
from ablate.tasks.declared import Response

#: Sections that configure ablate's own Keras training, which a training function replaces.
KERAS_ONLY = ("model", "training", "data")


class TrainerReader(Reader):
    """The ``trainer:`` and ``responses:`` sections."""

    def trainer(self, top: dict[str, Any]) -> TrainerSettings:
        for key in KERAS_ONLY:
            if key in top:
                self.fail((key,), f"a study with trainer: trains with your function, so {key}: "
                          "(ablate's own Keras training) does not apply; remove it, or put "
                          "what your function needs under trainer.options")  # fmt: skip
        data, path = top["trainer"], ("trainer",)
        if isinstance(data, str):
            data = {"function": data}
        d = self.declared_section(TrainerSettings, data, path)
        function = d["function"]
        if not is_target(function):
            self.expect((*path, "function"), "your function as 'package.module:function'",
                        function)  # fmt: skip
        options = d.get("options") or {}
        if not isinstance(options, dict) or not all(
            isinstance(k, str) and is_identifier(k) for k in options
        ):
            self.expect((*path, "options"), "a mapping of keyword arguments", options)
        return TrainerSettings(function, tuple((k, hashable(v)) for k, v in options.items()))

    def responses(self, data: Any, factors: tuple[str, ...]) -> tuple[Response, ...]:
        path = ("responses",)
        if not isinstance(data, dict) or not data:
            self.expect(path, "a mapping of each response your function returns to its "
                        "declaration, e.g. {test_accuracy: {goal: max}}", data)  # fmt: skip
        out = []
        for name, spec in data.items():
            rpath = (*path, str(name))
            if not is_identifier(name):
                self.expect(rpath, f"a response name that is {IDENTIFIER}", name)
            if name in RESERVED_NAMES:
                self.fail(rpath, reserved_message("response", name))
            if name in factors:
                self.fail(rpath, f"'{name}' is a factor; a response needs a name of its own")
            if isinstance(spec, str):
                spec = {"goal": spec}
            d = self.declared_section(Response, spec, rpath)
            out.append(Response(name=name, **self.values(Response, d, rpath)))
        for r in out:
            if r.low is not None and r.high is not None and r.low >= r.high:
                self.fail((*path, r.name, "low"), f"is not below high ({r.high:g})")
        return tuple(out)
