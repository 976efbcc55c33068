"""The synthetic sequence task of the attention sources: the label hidden in one time step.

n sequences of T steps and D features, x ~ Normal(0, noise²) (noise = 10 by default, as in
the sources), a label y ∈ {0, 1} drawn uniformly, and the label written into
one step: x[:, c, :] = y for every feature (c = ``attention_column``). Only that step
carries the label; a model that attends should put its weight there. NumPy only, no
download, and the same arrays for the same seed on every machine: the training set comes
from ``numpy.random.default_rng([seed, 0])``, the test set from an independent stream,
``default_rng([seed, 1])`` (so the test set does not change with ``n``).
"""

from __future__ import annotations

from typing import Any

import numpy as np

from ablate.data.dataset import Dataset
from ablate.errors import AblateError
from ablate.parameters import Parameter

OPTIONS = (
    Parameter("n", "int", 30_000, "training sequences", minimum=1, maximum=10_000_000),
    Parameter("n_test", "int", 10_000, "test sequences", minimum=1, maximum=10_000_000),
    Parameter("time_steps", "int", 10, "steps per sequence (T)", minimum=2, maximum=10_000),
    Parameter("input_dim", "int", 2, "features per step (D)", minimum=1, maximum=10_000),
    Parameter(
        "attention_column",
        "int",
        2,
        "the step c (counted from 0) that holds the label",
        minimum=0,
        maximum=9_999,
    ),
    Parameter(
        "noise", "float", 10.0, "standard deviation of every other value", minimum=0, maximum=1e6
    ),
)


def attention_sequences(seed: int, options: dict[str, Any]) -> Dataset:
    """The dataset for a study's seed and ``data.options`` (every option resolved)."""
    steps, column = options["time_steps"], options["attention_column"]
    if column >= steps:
        raise AblateError(
            f"data.options.attention_column is {column} but a sequence has only {steps} steps "
            f"(time_steps), counted from 0; choose a column from 0 to {steps - 1}."
        )
    size = 4 * steps * options["input_dim"] * (options["n"] + options["n_test"])
    if size > 8 << 30:
        raise AblateError(
            f"the sequences would take {size / 2**30:.0f} GiB (n + n_test sequences of "
            "time_steps × input_dim float32 values); lower data.options.n or n_test."
        )
    x_train, y_train = _generate(np.random.default_rng([seed, 0]), options["n"], options)
    x_test, y_test = _generate(np.random.default_rng([seed, 1]), options["n_test"], options)
    return Dataset(
        name="attention-sequences",
        source=f"a NumPy generator seeded with {seed} (the label in step {column} of {steps})",
        x_train=x_train,
        y_train=y_train,
        x_test=x_test,
        y_test=y_test,
        class_names=("0", "1"),
    )


def _generate(rng: np.random.Generator, n: int, options: dict[str, Any]) -> tuple[Any, Any]:
    """(x (n, T, D) float32, y (n,) int64): noise everywhere, the label in one step."""
    shape = (n, options["time_steps"], options["input_dim"])
    x = rng.standard_normal(shape, dtype=np.float32) * np.float32(options["noise"])
    y = rng.integers(0, 2, size=n)
    x[:, options["attention_column"], :] = y[:, None]
    return x, y
