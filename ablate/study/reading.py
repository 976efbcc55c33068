"""Reading a study file's YAML against the declarations: keys, lines, values, messages.

:class:`Reader` knows where every key of the file is (its line), refuses keys a section does
not declare (suggesting the closest one), reads a declared value (checked against its
:class:`~ablate.parameters.Parameter`) and words every refusal the same way: the file, the
key and its line, what was expected and what was found.
"""

from __future__ import annotations

import difflib
import keyword
from collections.abc import Mapping
from typing import Any, NoReturn

import yaml

from ablate.errors import StudyFileError
from ablate.parameters import Parameter, declared, is_int, is_number

#: What a factor, response or option name must be, as the messages say it: a Python identifier
#: (these names are the keyword arguments of builders and training functions), at most 64
#: characters, not a Python keyword.
IDENTIFIER = (
    "a Python identifier (letters of any script, digits and '_', not starting with a digit)"
)


def is_identifier(name: object) -> bool:
    """Whether ``name`` may name a factor, a response or an option (see :data:`IDENTIFIER`)."""
    return (isinstance(name, str) and name.isidentifier() and len(name) <= 64
            and not keyword.iskeyword(name))  # fmt: skip


#: Names ablate's own tables give their columns and rows -- the trials table's keys and
#: provenance, the epochs table's times, the analysis's residual columns and ANOVA rows -- so
#: that a factor or a declared response may not take one (tests/results checks the trials
#: table against this list).
RESERVED_NAMES = frozenset({
    "trial_key", "cell", "cell_index", "replicate", "seed", "status", "epochs", "epoch",
    "params", "trainable_params", "seconds", "build_seconds", "train_seconds", "eval_seconds",
    "images_per_second", "attempts", "error", "traceback", "backend", "device", "host",
    "worker", "versions", "started_at", "finished_at", "optuna_trial", "learning_rate",
    "residual", "total", "fitted", "leverage", "studentized", "normal_q",
})  # fmt: skip


def reserved_message(kind: str, name: str) -> str:
    """Why ``name`` cannot name a factor or a response, and the way out."""
    return (
        f"'{name}' is a name ablate's own tables use (the trials and epochs tables, the "
        f"analysis's residuals and ANOVA); give the {kind} another name, e.g. '{name}_'"
    )


class Reader:
    """Walks the parsed YAML, checking each key and value against the declarations."""

    def __init__(self, source: str, root: yaml.Node | None) -> None:
        self.source = source
        self.lines: dict[tuple[str, ...], int] = {}
        if root is not None:
            self._index(root, ())

    def _index(self, node: yaml.Node, path: tuple[str, ...]) -> None:
        """Record the line of every key, and refuse duplicate keys (YAML keeps the last)."""
        if isinstance(node, yaml.MappingNode):
            seen: set[str] = set()
            for key_node, value_node in node.value:
                key = str(key_node.value)
                if key in seen:
                    self.fail(
                        (*path, key),
                        "appears twice in the same section, and YAML would silently keep only "
                        "the last one; keep one of them",
                        line=key_node.start_mark.line + 1,
                    )
                seen.add(key)
                self.lines[(*path, key)] = key_node.start_mark.line + 1
                self._index(value_node, (*path, key))

    # -- messages -----------------------------------------------------------------------------

    def fail(self, path: tuple[str, ...], message: str, line: int | None = None) -> NoReturn:
        shown = [part if part.isprintable() else repr(part) for part in path]
        key = ".".join(shown) if path else "the top level"
        line = line or self.lines.get(path)
        where = f"{key} (line {line})" if line else key
        raise StudyFileError(f"{self.source}: {where}: {message}.")

    def expect(self, path: tuple[str, ...], expected: str, found: Any) -> NoReturn:
        self.fail(path, f"expected {expected}, found {describe(found)}")

    # -- sections and values ------------------------------------------------------------------

    def section(
        self, data: Any, path: tuple[str, ...], allowed: tuple[str, ...], required: tuple[str, ...]
    ) -> dict[str, Any]:
        """A mapping whose keys are all ``allowed`` and hold every ``required`` one."""
        if data is None and not required:
            return {}
        if not isinstance(data, dict):
            self.expect(path, "a mapping of keys to values", data)
        for key in data:
            if not isinstance(key, str):
                self.expect(path, "text keys", key)
            if key not in allowed:
                close = difflib.get_close_matches(key, allowed, n=1)
                hint = f" (did you mean '{close[0]}'?)" if close else ""
                self.fail(
                    (*path, key),
                    f"unknown key{hint}; the keys allowed here are {', '.join(allowed)}",
                )
        for key in required:
            if key not in data:
                where = ".".join(path) if path else "the study file"
                raise StudyFileError(
                    f"{self.source}: {where}: the required key '{key}' is missing; "
                    "studies/quick.yaml shows a complete study."
                )
        return data

    def declared_section(self, cls: type, data: Any, path: tuple[str, ...]) -> dict[str, Any]:
        """A section whose keys a settings dataclass declares: the mapping, checked for keys."""
        parameters = declared(cls)
        required = tuple(p.name for p in parameters if p.required)
        return self.section(data, path, tuple(p.name for p in parameters), required)

    def value(self, d: dict[str, Any], path: tuple[str, ...], param: Parameter) -> Any:
        """A declared value as ablate keeps it: the default when absent, checked otherwise."""
        if param.name not in d:
            return param.default
        value = d[param.name]
        if not param.accepts(value):
            self.expect((*path, param.name), param.expected(), value)
        return param.normalise(value)

    def integer(
        self, d: dict[str, Any], path: tuple[str, ...], key: str, minimum: int, maximum: int
    ) -> int | None:
        """An optional integer whose range depends on the rest of the study (a design's runs,
        say); None where the key is absent."""
        value = d.get(key)
        if value is None:
            return None
        if not is_int(value) or not minimum <= value <= maximum:
            self.expect((*path, key), f"an integer from {minimum} to {maximum:,}", value)
        return int(value)

    def values(self, cls: type, d: dict[str, Any], path: tuple[str, ...]) -> dict[str, Any]:
        """Every declared value of a settings dataclass that is not ``custom``, by name."""
        return {p.name: self.value(d, path, p) for p in declared(cls) if p.kind != "custom"}


def parameter(cls: type, name: str) -> Parameter:
    """The declaration of one key of a settings dataclass."""
    return next(p for p in declared(cls) if p.name == name)


def is_level(value: Any, factor: Any) -> bool:
    """Whether ``value`` is one of the factor's levels (true is not 1 here)."""
    return any(value == v and isinstance(value, bool) == isinstance(v, bool) for v in factor.levels)


def plain_level(value: Any) -> bool:
    """A level a user's builder may receive: true/false, short text, or a finite number."""
    if isinstance(value, str):
        return 0 < len(value) <= 64 and value.isprintable()
    return isinstance(value, bool) or is_number(value)


def level_kind(value: Any) -> str:
    if isinstance(value, bool):
        return "bool"
    return "string" if isinstance(value, str) else "number"


def describe(value: Any) -> str:
    """A value as a person reads it in an error message."""
    if value is None:
        return "nothing (null)"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, str):
        shown = value if len(value) <= 40 else value[:37] + "..."
        return f"the text {shown!r}"
    if isinstance(value, (int, float)):
        return f"the number {value!r}" if abs(value) < 1e15 else f"the number {value:.3g}"
    if isinstance(value, list):
        return f"a list of {len(value)} item{'s' if len(value) != 1 else ''}"
    if isinstance(value, Mapping):
        return "a mapping"
    return f"a {type(value).__name__}"


def hashable(value: Any) -> Any:
    """Lists as tuples and mappings as sorted pairs, so settings stay hashable and frozen."""
    if isinstance(value, list):
        return tuple(hashable(v) for v in value)
    if isinstance(value, dict):
        return tuple(sorted((str(k), hashable(v)) for k, v in value.items()))
    return value
