"""Users' own builders for the tests: the example classifier (examples/classifier/), and a
broken builder."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "examples" / "classifier"))

from mymodels import small_cnn


def not_a_model(*, input_shape: tuple[int, ...], **parameters: Any) -> dict[str, Any]:
    """A builder that forgot to return its model."""
    return {"input_shape": input_shape, **parameters}


__all__ = ["not_a_model", "small_cnn"]
