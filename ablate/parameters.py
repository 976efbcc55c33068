"""Declared parameters: a name, a type, a range, a default and one line of doc, said once.

Model builders (:mod:`ablate.models.registry`) and data sources (:mod:`ablate.data.sources`)
declare their parameters with :class:`Parameter`; validation of study files, the messages
for values that do not fit, the resolved study's defaults and the README's tables of
parameters all derive from these declarations. Nothing here imports Keras, so a study file
is checked in milliseconds.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, Literal

Kind = Literal["bool", "int", "float", "choice", "int_list"]


def is_int(value: Any) -> bool:
    """An integer, and not a bool (YAML's true is not 1 here)."""
    return isinstance(value, int) and not isinstance(value, bool)


def is_number(value: Any) -> bool:
    """A finite int or float, and not a bool."""
    return is_int(value) or (isinstance(value, float) and math.isfinite(value))


@dataclass(frozen=True)
class Parameter:
    """One keyword argument of a builder or a data source, with the values it accepts."""

    name: str
    kind: Kind
    default: Any
    doc: str
    minimum: float | None = None
    maximum: float | None = None  # inclusive upper bound (keeps absurd sizes out)
    below: float | None = None  # exclusive upper bound
    choices: tuple[str, ...] = ()
    factor: bool = True  # may vary between cells (a list-valued setting may not)

    def __post_init__(self) -> None:
        assert self.accepts(self.default), f"{self.name}: default {self.default!r} is invalid"

    def expected(self) -> str:
        """What a valid value looks like, in words, for error messages."""
        if self.kind == "bool":
            return "true or false"
        if self.kind == "choice":
            return "one of " + ", ".join(self.choices)
        if self.kind == "int_list":
            return f"a list of at least 3 integers from 1 to {self.maximum:g}"
        noun = "an integer" if self.kind == "int" else "a number"
        if self.minimum is not None and self.below is not None:
            return f"{noun} from {self.minimum:g} up to (not including) {self.below:g}"
        if self.minimum is not None and self.maximum is not None:
            return f"{noun} from {self.minimum:g} to {self.maximum:g}"
        if self.minimum is not None:
            return f"{noun} of at least {self.minimum:g}"
        return noun

    def accepts(self, value: Any) -> bool:
        """Whether ``value`` (as parsed from YAML) is valid for this parameter."""
        if self.kind == "bool":
            return isinstance(value, bool)
        if self.kind == "choice":
            return isinstance(value, str) and value in self.choices
        if self.kind == "int_list":
            return (
                isinstance(value, (list, tuple))
                and len(value) >= 3
                and all(is_int(v) and self._within(v) and v >= 1 for v in value)
            )
        if not is_number(value) or (self.kind == "int" and not is_int(value)):
            return False
        return self._within(value)

    def normalise(self, value: Any) -> Any:
        """The value as ablate keeps it: lists become tuples, numbers of a float kind floats."""
        if self.kind == "int_list":
            return tuple(value)
        if self.kind == "float":
            return float(value)
        return value

    def _within(self, value: float) -> bool:
        return (
            (self.minimum is None or value >= self.minimum)
            and (self.maximum is None or value <= self.maximum)
            and (self.below is None or value < self.below)
        )

    def describe_default(self) -> str:
        """The default as a study file writes it (for docs and tables)."""
        value = self.default
        if isinstance(value, bool):
            return "true" if value else "false"
        if isinstance(value, tuple):
            return "[" + ", ".join(str(v) for v in value) + "]"
        return str(value)


def find(parameters: tuple[Parameter, ...], name: str) -> Parameter | None:
    """The parameter called ``name``, if it is declared."""
    return next((p for p in parameters if p.name == name), None)


def markdown_table(parameters: tuple[Parameter, ...]) -> str:
    """The parameters as a Markdown table (name, type, default, range, meaning), for docs."""
    rows = ["| parameter | values | default | meaning |", "| --- | --- | --- | --- |"]
    for p in parameters:
        rows.append(f"| `{p.name}` | {p.expected()} | `{p.describe_default()}` | {p.doc} |")
    return "\n".join(rows)
