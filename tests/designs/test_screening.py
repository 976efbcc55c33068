"""Plackett–Burman and definitive screening designs: their published properties.

- A Plackett–Burman design's main effects are orthogonal, and its two-factor interactions
  are partially aliased with main effects at ±1/3 in 12 runs and at ±0.2 or ±0.6 in 20 runs
  (Montgomery, ModelMatrix and Analysis of Experiments, section 8.6.3 and Example 8.8).
- A definitive screening design (Jones and Nachtsheim 2011) has 2k + 1 runs for an even
  number k of three-level factors, and main effects orthogonal to each other and to every
  two-factor interaction and quadratic effect.
"""

from __future__ import annotations

import itertools

import numpy as np
import pandas as pd
import pytest

from ablate.designs.aliases import model_aliases, structure
from ablate.designs.matrix import build_matrix, factor_infos
from ablate.designs.screening import (
    definitive_screening,
    plackett_burman,
    plackett_burman_sizes,
)
from ablate.errors import AblateError


def _frame(matrix: np.ndarray) -> pd.DataFrame:
    return pd.DataFrame(matrix > 0, columns=[f"x{i + 1}" for i in range(matrix.shape[1])])


@pytest.mark.parametrize(("runs", "k", "sizes"), [(12, 11, {1 / 3}), (20, 12, {0.2, 0.6})])
def test_plackett_burman_partial_aliasing(runs: int, k: int, sizes: set[float]) -> None:
    m = plackett_burman(k, runs)
    assert m.shape == (runs, k) and len({tuple(r) for r in m}) == runs
    assert np.array_equal(m.T @ m, runs * np.eye(k))  # orthogonal, balanced main effects
    frame = _frame(m)
    infos = factor_infos(frame, list(frame.columns))
    found = structure(frame, infos)
    assert found.kind == "orthogonal two-level" and found.resolution is None
    assert not found.relation.regular
    # the alias matrix of main effects against two-factor interactions, computed directly
    x = m.astype(float)
    pairs = list(itertools.combinations(range(k), 2))
    x2 = np.column_stack([x[:, i] * x[:, j] for i, j in pairs])
    a = x.T @ x2 / runs  # (X1'X1)^-1 X1'X2 for orthogonal ±1 columns
    entries = {round(abs(v), 6) for v in a.ravel() if abs(v) > 1e-9}
    assert entries == {round(s, 6) for s in sizes}
    aliases = model_aliases(frame, infos, build_matrix(frame, infos, "sum", 1))
    row = aliases.set_index("term").loc["x1"]
    assert row["aliases"] == ""  # no full alias
    expected = sum(abs(v) > 1e-9 for v in a[0])
    counts = [int(part.split()[0]) for part in row["partial"].split("; ") if "two-factor" in part]
    assert sum(counts) == expected


def test_plackett_burman_sizes_and_refusals() -> None:
    assert plackett_burman_sizes(11)[:3] == [12, 16, 20]
    assert 28 not in plackett_burman_sizes(20)  # pydoe builds 2^e, 12·2^e and 20·2^e only
    with pytest.raises(AblateError, match="12, 16, 20"):
        plackett_burman(11, 28)
    assert plackett_burman(7).shape == (8, 7)  # the smallest by default


@pytest.mark.parametrize("k", [4, 6, 8])
def test_definitive_screening_properties(k: int) -> None:
    d = definitive_screening(k, 0).astype(float)
    assert d.shape == (2 * k + 1, k) and set(np.unique(d)) == {-1.0, 0.0, 1.0}
    second = [d[:, i] * d[:, j] for i, j in itertools.combinations(range(k), 2)]
    second += [d[:, i] ** 2 for i in range(k)]
    s = np.column_stack(second)
    assert np.allclose(d.T @ d, np.diag(np.diag(d.T @ d)))  # main effects orthogonal
    assert np.allclose(d.T @ (s - s.mean(axis=0)), 0)  # and free of all second-order terms


def test_definitive_screening_with_two_level_factors() -> None:
    d = definitive_screening(4, 2)
    assert d.shape[1] == 6 and set(np.unique(d[:, 4:])) == {-1, 1}
