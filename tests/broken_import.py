"""A user's builder module that fails while it is imported (a typo at its top level)."""

from __future__ import annotations

WIDTHS = {"small": 4}
DEFAULT_WIDTH = WIDTHS["smal"]


def build(**kwargs: object) -> None:
    raise AssertionError("never reached")
