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

from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np

from ablate.data.dataset import ARRAYS, Dataset, as_inputs
from ablate.errors import AblateError
from ablate.targets import call_user, check_keywords, import_target


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
    """Call a user's ``package.module:function`` and check what it returns; its own
    failures (import, signature, an exception it raises) are reported as the user's."""
    role = "the dataset function"
    function = import_target(target, role)
    check_keywords(
        function, role=role, target=target, given=("seed", *options),
        origin=lambda name: "" if name == "seed" else " (in data.options)",
    )  # fmt: skip
    out = call_user(function, f"{role} {target}", seed=seed, **dict(options))
    if isinstance(out, Dataset):
        return out
    pairs = isinstance(out, tuple) and len(out) == 2
    if pairs and all(isinstance(part, (tuple, list)) and len(part) == 2 for part in out):
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
    arrays = {k: _array(found[k], k, where) for k in ARRAYS}
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


def _array(value: Any, name: str, where: str) -> np.ndarray:
    """``value`` as a NumPy array of numbers, or a message naming the array."""
    try:
        array = np.asarray(value)
    except (ValueError, TypeError) as err:  # ragged lists, objects NumPy cannot stack
        raise AblateError(
            f"{where}: {name} cannot be made an array ({err}); give it as a NumPy array whose "
            "examples all have the same shape."
        ) from None
    if array.ndim == 0:
        raise AblateError(f"{where}: {name} is a single value, not an array of examples.")
    return array
