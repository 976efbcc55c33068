"""A user's own data: an ``.npz`` file, or a Python function that returns the arrays.

An ``.npz`` (``dataset: npz``, ``data.path``) holds ``x_train, y_train, x_test, y_test`` and,
optionally, ``class_names``: images, sequences or tables alike. A function
(``dataset: "package.module:function"``) is called once per worker process with the study's
``seed`` and ``data.options`` as keyword arguments and returns a mapping with the same
names (or a :class:`~ablate.data.Dataset`, or Keras's ``((x_train, y_train), (x_test,
y_test))``). Inputs stored as unsigned bytes are taken to be images and scaled to [0, 1];
everything else is used as it is. Nothing is unpickled.
"""

from __future__ import annotations

import importlib
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np

from ablate.data.dataset import ARRAYS, Dataset, as_inputs
from ablate.errors import AblateError


def load_npz(path: str | None) -> Dataset:
    if path is None:
        raise AblateError("dataset: npz needs data.path, the .npz file to read.")
    p = Path(path).expanduser()
    if not p.is_file():
        raise AblateError(f"data.path {p}: no such file; dataset: npz reads an .npz file.")
    try:
        with np.load(p, allow_pickle=False) as f:
            found = {k: f[k] for k in f.files}
    except Exception as err:  # zip errors, truncation, pickled objects...
        raise AblateError(
            f"{p} cannot be read as an .npz file ({type(err).__name__}: {err}). It may be "
            "truncated, not an .npz at all, or hold Python objects (ablate never unpickles); "
            "save plain arrays with numpy.savez."
        ) from None
    return from_arrays(found, name="npz", source=str(p), where=str(p))


def load_function(target: str, seed: int, options: Mapping[str, Any]) -> Dataset:
    """Call a user's ``package.module:function`` and check what it returns."""
    module_name, _, function_name = target.partition(":")
    try:
        module = importlib.import_module(module_name)
    except ImportError as err:
        raise AblateError(
            f"the dataset function {target} cannot be imported ({err}); install its package "
            "or add its folder to PYTHONPATH."
        ) from None
    function = getattr(module, function_name, None)
    if not callable(function):
        raise AblateError(f"{module_name} has no function {function_name} (data.dataset).")
    try:
        out = function(seed=seed, **dict(options))
    except TypeError as err:
        raise AblateError(
            f"the dataset function {target} could not be called with seed and data.options "
            f"({err}); it must accept them as keyword arguments."
        ) from None
    if isinstance(out, Dataset):
        return out
    if isinstance(out, tuple) and len(out) == 2 and all(len(part) == 2 for part in out):
        (x_train, y_train), (x_test, y_test) = out
        out = {"x_train": x_train, "y_train": y_train, "x_test": x_test, "y_test": y_test}
    if not isinstance(out, Mapping):
        raise AblateError(
            f"the dataset function {target} returned {type(out).__name__}; it must return a "
            "mapping with x_train, y_train, x_test and y_test (or a Dataset)."
        )
    return from_arrays(dict(out), name=target, source=f"{target}(seed={seed})", where=target)


def from_arrays(found: dict[str, Any], *, name: str, source: str, where: str) -> Dataset:
    """A Dataset from the four arrays (and optional class names), each named if missing."""
    missing = [k for k in ARRAYS if k not in found]
    if missing:
        raise AblateError(
            f"{where} lacks {', '.join(missing)} (it has {', '.join(sorted(found)) or 'nothing'}"
            "); a dataset needs the arrays x_train, y_train, x_test and y_test."
        )
    arrays = {k: np.asarray(found[k]) for k in ARRAYS}
    names = found.get("class_names")
    class_names = None
    if names is not None:
        class_names = tuple(str(n) for n in np.asarray(names).reshape(-1))
    return Dataset(
        name=name,
        source=source,
        x_train=as_inputs(arrays["x_train"], "x_train"),
        y_train=arrays["y_train"],
        x_test=as_inputs(arrays["x_test"], "x_test"),
        y_test=arrays["y_test"],
        class_names=class_names,
    )
