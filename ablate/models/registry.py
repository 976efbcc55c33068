"""The builder interface: how a cell of the grid becomes a Keras model.

A builder is a callable ``build(*, input_shape, seed, **kwargs) -> keras.Model`` whose keyword
arguments are the study's model settings merged with one cell's factor levels, so a factor
can be any of the builder's parameters (``activation``, but also ``depth``). The model maps an
image batch to its reconstruction in [0, 1] and carries its own extra loss terms
(``add_loss``); it may expose ``encoder`` and ``decoder`` sub-models, which ablate then uses to
save what the model learned.

Besides the built-in ``vae``, a study may name a user's builder as ``"package.module:function"``;
it then receives the study's ``model.options`` and the cell's levels.

This module knows each built-in builder's parameters and their types without importing
Keras, so that a study file is validated in milliseconds, before any training starts.
"""

from __future__ import annotations

import importlib
import importlib.util
import math
import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Literal

#: Activations a convolution block accepts (names Keras resolves with ``keras.activations.get``).
ACTIVATIONS = (
    "elu", "gelu", "hard_sigmoid", "leaky_relu", "linear", "mish", "relu", "relu6",
    "selu", "sigmoid", "silu", "softplus", "softsign", "swish", "tanh",
)  # fmt: skip


@dataclass(frozen=True)
class Parameter:
    """One keyword argument of a builder, with the values it accepts."""

    name: str
    kind: Literal["bool", "int", "float", "choice", "int_list"]
    doc: str
    minimum: float | None = None
    maximum: float | None = None  # inclusive upper bound (keeps absurd sizes out)
    below: float | None = None  # exclusive upper bound
    choices: tuple[str, ...] = ()

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

    def _within(self, value: float) -> bool:
        return (
            (self.minimum is None or value >= self.minimum)
            and (self.maximum is None or value <= self.maximum)
            and (self.below is None or value < self.below)
        )


def is_int(value: Any) -> bool:
    """An integer, and not a bool (YAML's true is not 1 here)."""
    return isinstance(value, int) and not isinstance(value, bool)


def is_number(value: Any) -> bool:
    """A finite int or float, and not a bool."""
    return is_int(value) or (isinstance(value, float) and math.isfinite(value))


@dataclass(frozen=True)
class BuilderSpec:
    """A named builder: where its code lives and which parameters it takes."""

    name: str
    target: str  # "module:function", imported only when a model is built
    parameters: tuple[Parameter, ...] | None  # None: a user's builder, not checked ahead
    setting_names: tuple[str, ...] = ()  # parameters set in the study's `model:` section

    def parameter(self, name: str) -> Parameter | None:
        return next((p for p in self.parameters or () if p.name == name), None)

    def check_importable(self) -> str | None:
        """Why the builder's module cannot be imported (None if it can), without importing it."""
        module = self.target.partition(":")[0]
        try:
            found = importlib.util.find_spec(module)
        except (ImportError, ValueError) as err:
            return f"its module {module} cannot be found ({err})"
        return None if found else f"no module named {module} is on the Python path"

    def load(self) -> Callable[..., Any]:
        """Import and return the builder function (this imports Keras)."""
        module, _, function = self.target.partition(":")
        return getattr(importlib.import_module(module), function)


VAE = BuilderSpec(
    name="vae",
    target="ablate.model:build_vae",
    parameters=(
        Parameter("units", "int_list", "filters per coder stage", maximum=4096),
        Parameter("depth", "int", "convolution blocks per dense block", minimum=1, maximum=64),
        Parameter("latent_dim", "int", "dimension of the latent space", minimum=1, maximum=4096),
        Parameter("kl_weight", "float", "weight of the KL term", minimum=0, maximum=1e6),
        Parameter("dropout_rate", "float", "rate of every Dropout layer", minimum=0, below=1),
        Parameter("batch_norm", "bool", "BatchNormalization in every convolution block"),
        Parameter("dropout", "bool", "Dropout in every convolution block"),
        Parameter("spatial_attention", "bool", "spatial attention in every convolution block"),
        Parameter("activation", "choice", "activation closing every block", choices=ACTIVATIONS),
    ),
    setting_names=("units", "depth", "latent_dim", "kl_weight", "dropout_rate"),
)

BUILDERS: dict[str, BuilderSpec] = {VAE.name: VAE}

_TARGET_RE = re.compile(r"^[A-Za-z_][\w.]*:[A-Za-z_]\w*$")


def builder_spec(name: str) -> BuilderSpec | None:
    """A built-in builder by name, or a user's builder written as "package.module:function"."""
    if name in BUILDERS:
        return BUILDERS[name]
    if _TARGET_RE.match(name):
        return BuilderSpec(name=name, target=name, parameters=None)
    return None
