"""Reading a study that trains with the user's own function or program: ``trainer:`` and
``responses:``.

``trainer:`` is ``"package.module:function"``, or a mapping with ``function:`` or
``command:`` (a command line, run once per trial) and ``options:`` (keyword arguments every
trial gets, or values the command's template names). ``responses:`` declares what the function
returns or the program writes (:class:`~ablate.tasks.declared.Response`: the direction, the
range, the trivial baseline). ``model:``, ``training:`` and ``data:`` describe ablate's own
Keras loop, so such a study refuses them rather than silently ignoring them. Nothing is
imported or run here: the trainer checks its function or program before a run
(:meth:`ablate.training.base.Trainer.check`).
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
                self.fail((key,), f"a study with trainer: trains with your function or "
                          f"program, so {key}: (ablate's own Keras training) does not "
                          "apply; remove it, or put what your trainer needs under "
                          "trainer.options")  # fmt: skip
        data, path = top["trainer"], ("trainer",)
        if isinstance(data, str):
            data = {"function": data}
        d = self.declared_section(TrainerSettings, data, path)
        function, command = d.get("function"), d.get("command")
        if (function is None) == (command is None):
            self.fail(path, "give either function: (your training function) or command: (your "
                      "program's command line), one of the two")  # fmt: skip
        if function is not None and not is_target(function):
            self.expect((*path, "function"), "your function as 'package.module:function'",
                        function)  # fmt: skip
        if command is not None and (not isinstance(command, str) or not command.strip()):
            self.expect((*path, "command"), "a command line, e.g. 'python train.py --seed "
                        "{seed} --out {result}'", command)  # fmt: skip
        options = d.get("options") or {}
        if not isinstance(options, dict) or not all(
            isinstance(k, str) and is_identifier(k) for k in options
        ):
            self.expect((*path, "options"), "a mapping of keyword arguments", options)
        shell = self.values(TrainerSettings, d, path).get("shell", False)
        return TrainerSettings(
            function=function,
            command=command,
            shell=bool(shell),
            options=tuple((k, hashable(v)) for k, v in options.items()),
        )

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
