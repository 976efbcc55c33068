"""Reading a study file's ``model:`` and ``factors:``: the builder, its settings, the grid.

A built-in builder declares its parameters (:mod:`ablate.models.registry`): ``model:`` may fix
any of them for every cell, a factor may vary any of them that may vary between cells, and
every value is checked against the declaration. A user's builder
(``"package.module:function"``) takes ``model.options`` and any factor, as plain values.
"""

from __future__ import annotations

import difflib
from typing import Any

from ablate.models.registry import BUILDERS, ModelSpec, builder_spec
from ablate.parameters import Parameter
from ablate.study.reading import (
    IDENTIFIER,
    RESERVED_NAMES,
    Reader,
    describe,
    hashable,
    is_identifier,
    level_kind,
    plain_level,
    reserved_message,
)
from ablate.study.settings import Factor, ModelSettings


class ModelReader(Reader):
    """The ``model:`` and ``factors:`` sections."""

    def model_section(self, data: Any) -> tuple[ModelSpec, dict[str, Any]]:
        """The builder and the settings the ``model:`` section gives (checked, not resolved)."""
        path = ("model",)
        builder = data.get("builder", "vae") if isinstance(data, dict) else "vae"
        spec = builder_spec(builder) if isinstance(builder, str) else None
        if spec is None:
            self.expect(
                (*path, "builder"),
                f"one of {', '.join(BUILDERS)}, or your own as 'package.module:function'",
                builder,
            )
        if spec.parameters is None:
            d = self.section(data, path, ("builder", "options"), required=())
            options = d.get("options") or {}
            if not isinstance(options, dict) or not all(
                isinstance(k, str) and is_identifier(k) for k in options
            ):
                self.expect((*path, "options"), "a mapping of keyword arguments", options)
            return spec, {k: hashable(v) for k, v in options.items()}
        names = tuple(p.name for p in spec.parameters)
        d = self.section(data, path, ("builder", *names), required=())
        given = {}
        for name, value in d.items():
            if name == "builder":
                continue
            param = spec.parameter(name)
            assert param is not None
            if not param.accepts(value):
                self.expect((*path, name), param.expected(), value)
            given[name] = param.normalise(value)
        return spec, given

    def model(
        self, spec: ModelSpec, given: dict[str, Any], factors: tuple[Factor, ...]
    ) -> ModelSettings:
        """The fixed settings: what ``model:`` gives, every other non-factor default filled in."""
        varied = {f.name for f in factors}
        if spec.parameters is None:
            return ModelSettings(builder=spec.name, parameters=tuple(given.items()))
        for a, b in spec.exclusive:
            in_use = [
                n for n in (a, b) if n in varied or (n in given and given[n] != spec.defaults()[n])
            ]
            if len(in_use) == 2:
                where = " and ".join(
                    f"{n} ({'a factor' if n in varied else 'set under model:'})" for n in in_use
                )
                self.fail(
                    ("factors",) if a in varied or b in varied else ("model", b),
                    f"{where} describe the same part of the model; use one of the two",
                )
        values = {
            p.name: given.get(p.name, p.default) for p in spec.parameters if p.name not in varied
        }
        return ModelSettings(builder=spec.name, parameters=tuple(values.items()))

    def factors(self, data: Any, spec: ModelSpec, given: dict[str, Any]) -> tuple[Factor, ...]:
        path = ("factors",)
        if not isinstance(data, dict) or not data:
            self.expect(path, "a mapping of factor names to lists of levels", data)
        factors = []
        for name, levels in data.items():
            fpath = (*path, str(name))
            if not is_identifier(name):
                self.expect(fpath, f"a factor name that is {IDENTIFIER}", name)
            if name in RESERVED_NAMES:
                self.fail(fpath, reserved_message("factor", name))
            param = spec.parameter(name)
            if spec.parameters is not None and (param is None or not param.factor):
                allowed = tuple(p.name for p in spec.parameters if p.factor)
                close = difflib.get_close_matches(name, allowed, n=1)
                hint = f" (did you mean '{close[0]}'?)" if close else ""
                self.fail(
                    fpath,
                    f"'{name}' is not a parameter of the {spec.name} model{hint}; a factor can "
                    f"be any of {', '.join(allowed)}",
                )
            if name in given:
                self.fail(
                    fpath,
                    f"'{name}' is both a factor and fixed under model:; remove one of the two",
                )
            factors.append(self.factor(fpath, name, levels, param))
        return tuple(factors)

    def factor(
        self, path: tuple[str, ...], name: str, levels: Any, param: Parameter | None
    ) -> Factor:
        expected = param.expected() if param else "true/false, text or a number"
        if not isinstance(levels, list) or not levels:
            self.expect(path, f"a non-empty list of levels, each {expected}", levels)
        for level in levels:
            ok = param.accepts(level) if param else plain_level(level)
            if not ok:
                self.expect(path, f"levels that are each {expected}", level)
        if len({level_kind(level) for level in levels}) > 1:
            self.fail(path, "mixes kinds of levels; use all true/false, all text or all numbers")
        seen: list[Any] = []
        for level in levels:  # all of one kind by now, so 1 == 1.0 is the only coincidence
            if level in seen:
                self.fail(path, f"the level {describe(level)} is listed twice")
            seen.append(level)
        if len(levels) < 2:
            self.fail(
                path,
                "a factor needs at least 2 levels to have an effect; to fix a setting for "
                "every cell, set it under model: instead",
            )
        return Factor(name, tuple(levels))
