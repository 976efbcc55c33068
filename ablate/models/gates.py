"""Layers that let cells differing in architecture flags share one fused program.

A fused program (:mod:`ablate.training.fused`) trains many trials at once over a trial axis,
so all of them must have the same variables. Cells of the VAE differ in flags -- BatchNorm
on or off, Dropout on or off, which attention, which activation -- so the fused model holds
every optional part any of its trials uses, and per-trial constants (non-trainable variables,
one value per trial on the trial axis) say which parts each trial uses:

- :class:`Gate` ``on · branch + (1 − on) · skip``: ``on`` is 1 or 0, so a trial gets exactly
  its own model's value (multiplying by 1 and adding 0 are exact), and a branch switched off
  gets zero gradients and never moves (Adam's update of a zero gradient is zero);
- :class:`GatedDropout`: dropout at a per-trial rate (0 for a trial without Dropout), drawing
  the same mask from the same seed generator as Keras's own ``Dropout``;
- :class:`SelectActivation`: a one-hot choice among the activations the group uses.

Each declares :meth:`trial_values` (its constants for one trial's parameters) and, where it
stands in for a layer of the trial's own model, :meth:`adopt` (which own variable each of its
variables starts from). Keras only (``keras.ops``, ``keras.random``).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import keras
import numpy as np
from keras import layers, ops

Params = dict[str, Any]
Rule = Callable[[Params], float]
#: A per-trial constant: a variable and its value for one trial (a scalar or an array).
Constant = tuple[Any, np.ndarray | np.float32]


class Gate(layers.Layer):
    """[branch, skip] -> on · branch + (1 − on) · skip, ``on`` = ``rule(trial's parameters)``."""

    def __init__(self, rule: Rule, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.rule = rule
        self.on = self.add_weight(shape=(), initializer="ones", trainable=False, name="on")

    def call(self, inputs: Sequence[Any]) -> Any:
        branch, skip = inputs
        return self.on * branch + (1.0 - self.on) * skip

    def compute_output_shape(self, input_shape: Sequence[Any]) -> Any:
        return input_shape[0]

    def trial_values(self, params: Params) -> list[Constant]:
        return [(self.on, np.float32(self.rule(params)))]


class GatedDropout(layers.Layer):
    """Dropout at a per-trial rate: the mask of ``keras.layers.Dropout`` at that rate.

    ``jax.random.bernoulli(key, p)`` is ``uniform(key) < p``; drawing the uniform numbers from
    the same seed generator state as the trial's own ``Dropout`` gives the same mask. Rate 0
    keeps every value and divides by 1: the identity, as a model without Dropout.
    """

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.seed_generator = keras.random.SeedGenerator()
        self.rate = self.add_weight(shape=(), initializer="zeros", trainable=False, name="rate")

    def call(self, x: Any, training: bool = False) -> Any:
        if not training:
            return x
        keep = 1.0 - self.rate
        mask = keras.random.uniform(ops.shape(x), seed=self.seed_generator) < keep
        return ops.where(mask, x / keep, ops.zeros_like(x))

    def compute_output_shape(self, input_shape: Any) -> Any:
        return input_shape

    def trial_values(self, params: Params) -> list[Constant]:
        rate = params["dropout_rate"] if params["dropout"] else 0.0
        return [(self.rate, np.float32(rate))]

    def adopt(self, own: Any) -> list[tuple[Any, Any]]:
        """The trial's own Dropout's random stream (none without Dropout)."""
        if own is None:
            return []
        return [(self.seed_generator.state, own.seed_generator.state)]


class SelectActivation(layers.Layer):
    """Σ_k choice_k · activation_k(x), ``choice`` one-hot for the trial's own activation."""

    def __init__(self, names: Sequence[str], **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.names = tuple(names)
        self.functions = [keras.activations.get(n) for n in self.names]
        self.choice = self.add_weight(
            shape=(len(self.names),), initializer="ones", trainable=False, name="choice"
        )

    def call(self, x: Any) -> Any:
        out = self.choice[0] * self.functions[0](x)
        for k in range(1, len(self.functions)):
            out = out + self.choice[k] * self.functions[k](x)
        return out

    def compute_output_shape(self, input_shape: Any) -> Any:
        return input_shape

    def trial_values(self, params: Params) -> list[Constant]:
        one_hot = np.array([n == params["activation"] for n in self.names], dtype="float32")
        return [(self.choice, one_hot)]

    def adopt(self, own: Any) -> list[tuple[Any, Any]]:
        return []  # an Activation layer has no variables
