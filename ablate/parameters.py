"""Declared parameters: a name, a type, a range, a default and one line of doc, said once.

Every value a study file gives is declared here, once: the keys of the study file (as fields
of the settings dataclasses, :func:`setting`), the parameters of model builders
(:mod:`ablate.models.registry`) and the options of data sources (:mod:`ablate.data.sources`).
Validation of study files, the messages for values that do not fit, the resolved study's
defaults and the reference tables of the documentation all derive from these declarations.
Nothing here imports Keras, so a study file is checked in milliseconds.
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass
from typing import Any, Literal

Kind = Literal["bool", "int", "float", "choice", "int_list", "text", "mapping", "custom"]

#: A factor's level as a study file gives it: true/false, a number or a short text.
Level = bool | int | float | str

_METADATA_KEY = "ablate.parameter"


def is_int(value: object) -> bool:
    """An integer, and not a bool (YAML's true is not 1 here)."""
    return isinstance(value, int) and not isinstance(value, bool)


def is_number(value: object) -> bool:
    """A finite int or float, and not a bool."""
    return is_int(value) or (isinstance(value, float) and math.isfinite(value))


@dataclass(frozen=True)
class Parameter:
    """One value a study file may give, with the values it accepts.

    ``also``: words accepted besides the kind ("auto", "reference"); ``none``: null accepted
    (and what a missing value means when the default is None). A ``custom`` value is read by
    its section's own code (a mapping of levels, a design table), documented here all the same.
    """

    name: str
    kind: Kind
    default: Any
    doc: str
    minimum: float | None = None  # inclusive lower bound
    above: float | None = None  # exclusive lower bound
    maximum: float | None = None  # inclusive upper bound (keeps absurd sizes out)
    below: float | None = None  # exclusive upper bound
    choices: tuple[str, ...] = ()
    factor: bool = True  # may vary between cells (a list-valued setting may not)
    also: tuple[str, ...] = ()  # words accepted besides the kind
    none: bool = False  # null accepted
    values: str = ""  # what a custom value looks like, in words
    required: bool = False  # a study file must give it
    fusable: bool = False  # cells differing in it may train in one fused program

    def __post_init__(self) -> None:
        assert self.kind == "custom" or self.required or self.accepts(self.default), (
            f"{self.name}: default {self.default!r} is invalid"
        )

    def expected(self) -> str:
        """What a valid value looks like, in words, for error messages and reference tables."""
        extra = "".join(f' or "{word}"' for word in self.also) + (" or null" if self.none else "")
        return self._expected_kind() + extra

    def _expected_kind(self) -> str:
        if self.kind == "custom":
            return self.values
        if self.kind == "bool":
            return "true or false"
        if self.kind == "choice":
            return "one of " + ", ".join(self.choices)
        if self.kind == "text":
            return self.values or "text"
        if self.kind == "mapping":
            return self.values or "a mapping of names to values"
        if self.kind == "int_list":
            return f"a list of at least 3 integers from 1 to {_number(self.maximum)}"
        noun = "an integer" if self.kind == "int" else "a number"
        if self.minimum is not None:
            lower, joint = f"from {_number(self.minimum)}", ""
        elif self.above is not None:
            lower, joint = f"greater than {_number(self.above)}", "and "
        else:
            return noun
        if self.maximum is not None:
            upper = f"{joint or 'to '}{'at most ' if joint else ''}{_number(self.maximum)}"
        elif self.below is not None:
            upper = f"{joint}up to (not including) {_number(self.below)}"
        else:
            return f"{noun} of at least {_number(self.minimum)}" if not joint else f"{noun} {lower}"
        return f"{noun} {lower} {upper}"

    def accepts(self, value: Any) -> bool:
        """Whether ``value`` (as parsed from YAML) is valid for this parameter."""
        if (value is None and self.none) or (isinstance(value, str) and value in self.also):
            return True
        if self.kind in ("custom", "mapping"):
            return isinstance(value, dict) if self.kind == "mapping" else True
        if self.kind == "bool":
            return isinstance(value, bool)
        if self.kind == "choice":
            return isinstance(value, str) and value in self.choices
        if self.kind == "text":
            return isinstance(value, str)
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
        """The value as ablate keeps it: lists become tuples, numbers of a float kind floats;
        where null is accepted, its words ("auto") are null too."""
        if self.none and isinstance(value, str) and value in self.also:
            return None
        if self.kind == "int_list":
            return tuple(value)
        if self.kind == "float" and is_number(value):
            return float(value)
        return value

    def _within(self, value: float) -> bool:
        return (
            (self.minimum is None or value >= self.minimum)
            and (self.above is None or value > self.above)
            and (self.maximum is None or value <= self.maximum)
            and (self.below is None or value < self.below)
        )

    def describe_default(self) -> str:
        """The default as a study file writes it (for docs and tables)."""
        if self.required:
            return "(required)"
        value = self.default
        if value is None:
            return self.also[0] if self.also else "null"
        if isinstance(value, bool):
            return "true" if value else "false"
        if isinstance(value, tuple):
            return "[" + ", ".join(str(v) for v in value) + "]"
        return str(value) if value != "" else '""'


def _number(value: float | None) -> str:
    """A bound as people read it: 100,000 and 1,048,576 with separators, 0.05 as it is."""
    if value is None:
        return "?"
    if float(value).is_integer() and abs(value) >= 1000:
        return f"{int(value):,}"
    return f"{value:g}"


#: The default of a key a study file must give.
REQUIRED: Any = dataclasses.MISSING


def setting(default: Any, doc: str, kind: Kind | None = None, **bounds: Any) -> Any:
    """A field of a settings dataclass declared as a study-file key: its default (or
    :data:`REQUIRED`), its doc and the values it accepts (``Parameter``'s bounds, choices,
    words); ``kind`` from the default unless given."""
    if kind is None:
        kind = _kind_of(default)
    if isinstance(default, (list, dict, set)):
        raise TypeError("settings are frozen: give a tuple, not a list or a mapping")
    required = default is REQUIRED
    parameter = Parameter("", kind, None if required else default, doc, required=required,
                          **bounds)  # fmt: skip
    if required:
        return dataclasses.field(metadata={_METADATA_KEY: parameter})
    return dataclasses.field(default=default, metadata={_METADATA_KEY: parameter})


def _kind_of(default: Any) -> Kind:
    if isinstance(default, bool):
        return "bool"
    if is_int(default):
        return "int"
    if isinstance(default, float):
        return "float"
    if isinstance(default, str):
        return "text"
    raise TypeError(f"say the kind of a setting whose default is {default!r}")


def declared(cls: type) -> tuple[Parameter, ...]:
    """The study-file keys a settings dataclass declares, in field order, named."""
    return tuple(
        dataclasses.replace(f.metadata[_METADATA_KEY], name=f.name)
        for f in dataclasses.fields(cls)
        if _METADATA_KEY in f.metadata
    )


def find(parameters: tuple[Parameter, ...], name: str) -> Parameter | None:
    """The parameter called ``name``, if it is declared."""
    return next((p for p in parameters if p.name == name), None)


def markdown_table(parameters: tuple[Parameter, ...], prefix: str = "") -> str:
    """The parameters as a Markdown table (name, values, default, meaning), for docs."""
    rows = ["| parameter | values | default | meaning |", "| --- | --- | --- | --- |"]
    for p in parameters:
        values = p.expected().replace("|", "\\|")
        default = p.describe_default()
        shown = "none" if default in ("[]", '""') else f"`{default}`"  # empty: nothing to write
        rows.append(f"| `{prefix}{p.name}` | {values} | {shown} | {p.doc} |")
    return "\n".join(rows)
