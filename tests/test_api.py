"""The public API's docstring example runs as written (doctest)."""

from __future__ import annotations

import doctest

import pytest

import ablate


@pytest.mark.slow
def test_the_public_api_example_runs_as_written() -> None:
    failures, tried = doctest.testmod(ablate, verbose=False, optionflags=doctest.ELLIPSIS)
    assert tried >= 6 and failures == 0


def test_every_public_name_resolves_to_what_it_names() -> None:
    import inspect

    for name in ablate.__all__:
        value = getattr(ablate, name)
        assert value is not None and name in ablate._API
        assert inspect.getmodule(value).__name__.startswith("ablate."), name
